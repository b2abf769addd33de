import type { DesiredUnit } from '../../controller/desired.js';
import { ownershipLabels } from '../../controller/labels.js';
import { names } from '../../controller/names.js';
import { bottleUnitBase, placeholdersIn, renderFiles, renderSidecar, type RenderContext } from '../../controller/render-parts.js';
import type { BottleDoc } from '../../specs/model.js';
import type { DesiredMachine } from './desired.js';

/**
 * smolvm topology: an ordinary bridge with a name-derived /24, sidecars pinned (first at .2,
 * set once the subnet is known, see `withAddresses`) and published on the host, and the agent
 * as a machine that may reach exactly its sidecars.
 */
export function renderSmolvmBottle(doc: BottleDoc, ctx: RenderContext): DesiredUnit {
  const { prefix, instance, paths } = ctx;
  const b = doc.metadata.name;
  const spec = doc.spec;
  const user = doc.metadata.labels;
  const netName = names.bottleNetwork(prefix, b);
  const containers = spec.sidecars.map((s) => renderSidecar(s, doc, ctx, netName, []));
  const a = spec.agent;
  const machineName = names.agent(prefix, b);
  const machine: DesiredMachine = {
    backend: 'smolvm',
    type: 'machine',
    name: machineName,
    image: a.image,
    from: a.fromPath ?? a.from,
    command: a.command,
    env: a.env,
    secretEnv: a.secretEnv,
    cpus: a.resources?.cpus,
    memMiB: a.resources?.memoryMiB,
    labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'agent', undefined, user),
    files: renderFiles(a.files, b, machineName, paths),
    waitFor: containers.map((c) => c.name),
    placeholders: placeholdersIn(a.env, (x) => names.sidecar(prefix, b, x)),
  };
  return {
    ...bottleUnitBase(doc),
    networks: [
      {
        type: 'network',
        name: netName,
        role: 'network',
        internal: false,
        options: {},
        labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'network', undefined, user),
        fixedSubnet: spec.network.subnet,
        allocPrefix: 24,
        deriveFrom: b,
      },
    ],
    containers,
    workload: machine,
  };
}
