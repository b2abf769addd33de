import type { BottleDoc, SharedSidecarDoc } from '../specs/model.js';
import { agentBackend } from '../resources/backends.js';
import type { DesiredUnit } from './desired.js';
import { ownershipLabels } from './labels.js';
import { names } from './names.js';
import { bottleNetworks, bottleUnitBase, renderFiles, renderSidecar, runtimeOf, sharedUnitBase, type RenderContext, placeholdersIn } from './render-parts.js';
import { unitKey } from './unit-key.js';
import { resolveSecurity } from './security.js';

export { placeholdersIn, prefixFor, type RenderContext } from './render-parts.js';

/** A bottle document -> its desired resource graph. Pure, apart from path arithmetic. */
export function renderBottle(doc: BottleDoc, ctx: RenderContext): DesiredUnit {
  const agent = agentBackend(doc.spec.backend);
  return agent ? agent.render(doc, ctx) : renderDockerBottle(doc, ctx);
}

function renderDockerBottle(doc: BottleDoc, ctx: RenderContext): DesiredUnit {
  const { prefix, instance, paths } = ctx;
  const b = doc.metadata.name;
  const spec = doc.spec;
  const user = doc.metadata.labels;
  const netName = names.bottleNetwork(prefix, b);
  const egressName = names.egressNetwork(prefix, b);

  const networks = bottleNetworks(doc, ctx, {
    // The host keeps no address on the bridge: the agent cannot reach host services through
    // the gateway or docker0 (Internal alone still allows that).
    internalOptions: { 'com.docker.network.bridge.inhibit_ipv4': 'true' },
    hosts: spec.sidecars.length + 1 + spec.uses.length,
    egressHosts: spec.sidecars.filter((s) => s.egress).length,
  });

  const containers = spec.sidecars.map((s) => renderSidecar(s, doc, ctx, netName, s.egress ? [{ network: egressName, aliases: [s.name] }] : []));

  const a = spec.agent;
  const agentName = names.agent(prefix, b);
  containers.push({
    type: 'container',
    name: agentName,
    role: 'agent',
    image: a.image ?? '',
    command: a.command,
    env: a.env,
    secretEnv: a.secretEnv,
    init: a.init,
    ports: [],
    resources: a.resources,
    security: resolveSecurity('agent', a.security, a.env),
    ...(a.runtime && { runtime: a.runtime }),
    primary: { network: netName, aliases: [] },
    managedExtras: [],
    externalNetworks: a.networks,
    files: renderFiles(a.files, b, agentName, paths),
    labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'agent', undefined, user),
    // compose's depends_on: sidecars run (and are healthy, when they have a check) before the agent.
    waitFor: spec.sidecars.map((s) => names.sidecar(prefix, b, s.name)),
    placeholders: placeholdersIn(a.env, (x) => names.sidecar(prefix, b, x)),
  });

  return { ...bottleUnitBase(doc), networks, containers };
}

/** State-dir and status key of a SharedSidecar: dots never occur in names, so no clash with a bottle. */
export function sharedUnit(name: string): string {
  return unitKey.shared(name);
}

/** A SharedSidecar: one long-lived container on its own network, joined to the bottles that use it. */
export function renderShared(doc: SharedSidecarDoc, ctx: RenderContext): DesiredUnit {
  const other = doc.spec.backend && doc.spec.backend !== 'docker' ? agentBackend(doc.spec.backend)?.renderShared : undefined;
  if (other) return other(doc, ctx);
  const { prefix, instance, paths } = ctx;
  const n = doc.metadata.name;
  const s = doc.spec;
  const unit = sharedUnit(n);
  const user = doc.metadata.labels;
  const netName = names.sharedNetwork(prefix, n);
  const name = names.shared(prefix, n);
  return {
    ...sharedUnitBase(doc, ctx, { backend: 'docker', hosts: 1 }),
    containers: [
      {
        type: 'container',
        name,
        role: 'shared',
        ...runtimeOf(s, 'shared'),
        primary: { network: netName, aliases: [s.alias] },
        managedExtras: [],
        externalNetworks: [],
        files: renderFiles(s.files, unit, name, paths),
        labels: ownershipLabels(instance, ctx.owner, 'shared', n, 'shared', undefined, user),
        waitFor: [],
        placeholders: [],
      },
    ],
  };
}
