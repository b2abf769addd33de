import type { DesiredUnit } from '../../controller/desired.js';
import { ownershipLabels } from '../../controller/labels.js';
import { names } from '../../controller/names.js';
import { bottleNetworks, bottleUnitBase, renderFiles, runtimeOf, sharedUnitBase, type RenderContext } from '../../controller/render-parts.js';
import type { BottleDoc, ContainerCommon, SharedSidecarDoc } from '../../specs/model.js';
import { unitKey } from '../../controller/unit-key.js';
import { resolveSecurity } from '../../controller/security.js';
import type { DesiredService, DesiredSwarmBottle } from './desired.js';

const NO_PLACEMENT = { constraints: [], preferences: [] };

/** A sidecar's or SharedSidecar's runtime fields, as a service takes them (ports are refused on swarm). */
function serviceRuntime(c: ContainerCommon): Pick<DesiredService, 'image' | 'command' | 'env' | 'secretEnv' | 'init' | 'healthcheck' | 'security'> {
  const { ports: _ports, runtime: _runtime, ...rt } = runtimeOf(c, 'sidecar');
  return rt;
}

/**
 * Swarm topology: the bottle network is an internal, attachable overlay (sealed: engine-lab.md),
 * the egress network a plain overlay when a sidecar asks for it; every container a service.
 * The networks are the core's (subnets allocated and recorded as on the docker backend).
 */
export function renderSwarmBottle(doc: BottleDoc, ctx: RenderContext): DesiredUnit {
  const { prefix, instance, paths } = ctx;
  const b = doc.metadata.name;
  const spec = doc.spec;
  const user = doc.metadata.labels;
  const netName = names.bottleNetwork(prefix, b);
  const egressName = names.egressNetwork(prefix, b);
  const networks = bottleNetworks(doc, ctx, {
    driver: 'overlay',
    internalOptions: {},
    // A task and its start-first successor each, SharedSidecars joined, and a load-balancer
    // address per node that runs a task on it.
    hosts: 2 * (spec.sidecars.length + 1 + spec.uses.length) + 8,
    egressHosts: 2 * spec.sidecars.filter((s) => s.egress).length + 8,
  });
  const services: DesiredService[] = spec.sidecars.map((s) => {
    const name = names.sidecar(prefix, b, s.name);
    return {
      name,
      role: 'sidecar',
      component: s.name,
      ...serviceRuntime(s),
      networks: [{ network: netName, aliases: s.aliases }, ...(s.egress ? [{ network: egressName, aliases: [s.name] }] : [])],
      files: renderFiles(s.files, b, name, paths),
      labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'sidecar', s.name, user),
      placement: s.placement ?? NO_PLACEMENT,
      waitFor: [],
    };
  });
  const a = spec.agent;
  const agentName = names.agent(prefix, b);
  services.push({
    name: agentName,
    role: 'agent',
    image: a.image ?? '',
    command: a.command,
    env: a.env,
    secretEnv: a.secretEnv,
    init: a.init,
    resources: a.resources,
    security: resolveSecurity('agent', a.security, a.env),
    networks: [{ network: netName, aliases: [] }],
    files: renderFiles(a.files, b, agentName, paths),
    labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'agent', undefined, user),
    placement: a.placement ?? NO_PLACEMENT,
    // As on the docker backend: sidecars run (healthy, when they have a check) before the agent.
    waitFor: services.map((s) => s.name),
  });
  const workload: DesiredSwarmBottle = {
    backend: 'swarm',
    type: 'service',
    name: agentName,
    services,
    secretEnv: Object.fromEntries(services.flatMap((s) => Object.entries(s.secretEnv).map(([k, v]) => [`${s.name}/${k}`, v]))),
    files: [],
    waitFor: [],
    members: services.map((s) => s.name),
  };
  return { ...bottleUnitBase(doc), networks, containers: [], workload };
}

/**
 * A SharedSidecar on swarm: one service on an overlay of its own, joined to the overlay of each
 * swarm bottle that uses it (by that bottle's plan, as on the docker backend), under its alias.
 */
export function renderSwarmShared(doc: SharedSidecarDoc, ctx: RenderContext): DesiredUnit {
  const { prefix, instance, paths } = ctx;
  const n = doc.metadata.name;
  const s = doc.spec;
  const unit = unitKey.shared(n);
  const user = doc.metadata.labels;
  const netName = names.sharedNetwork(prefix, n);
  const name = names.shared(prefix, n);
  const service: DesiredService = {
    name,
    role: 'shared',
    ...serviceRuntime(s),
    networks: [{ network: netName, aliases: [s.alias] }],
    files: renderFiles(s.files, unit, name, paths),
    labels: ownershipLabels(instance, ctx.owner, 'shared', n, 'shared', undefined, user),
    placement: s.placement ?? NO_PLACEMENT,
    waitFor: [],
  };
  const workload: DesiredSwarmBottle = {
    backend: 'swarm',
    type: 'service',
    name,
    services: [service],
    secretEnv: Object.fromEntries(Object.entries(s.secretEnv).map(([k, v]) => [`${name}/${k}`, v])),
    files: [],
    waitFor: [],
    members: [name],
  };
  return {
    ...sharedUnitBase(doc, ctx, { backend: 'swarm', driver: 'overlay', hosts: 2 }),
    containers: [],
    workload,
  };
}
