// smolvm as a backend: the agent is a microVM behind the bottle's Docker sidecars.
import type { AgentBackend } from '../../controller/backend.js';
import type { DesiredUnit } from '../../controller/desired.js';
import type { SubnetChoice } from '../../controller/plan-subnets.js';
import { hostAddress } from '../../controller/subnets.js';
import type { DesiredMachine } from './desired.js';
import type { SmolvmDriver } from './driver.js';
import { machineStep } from './execute.js';
import { machineHealth } from './health.js';
import { observeMachines, type ObservedMachine } from './observe.js';
import { planMachine } from './plan.js';
import { renderSmolvmBottle } from './render.js';

export const smolvmBackend: AgentBackend<DesiredMachine, ObservedMachine, SmolvmDriver> = {
  name: 'smolvm',
  resourceType: 'machine',
  unavailable: 'SmolvmUnavailable',
  render: renderSmolvmBottle,
  withAddresses,
  observe: observeMachines,
  plan: planMachine,
  removal: (o, cause) => ({ kind: 'remove', on: 'machine', resource: { type: 'machine', name: o.name }, cause }),
  health: machineHealth,
  execute: (a, inv, ctx, save) => {
    if (a.on !== 'machine') throw new Error(`smolvm cannot carry out ${a.kind} of ${a.resource.type} ${a.resource.name}`);
    return machineStep(a, inv, ctx, save);
  },
  // smolvm has no event stream: `machine ls --json` tells which machines stopped or vanished.
  poll: async (smolvm) => new Map((await smolvm.list()).map((m) => [m.name, m.state === 'running'] as const)),
};

/** The first sidecar sits at .2 of the bottle subnet unless it pins an address. */
function withAddresses(d: DesiredUnit, subnets: Map<string, SubnetChoice>): DesiredUnit {
  if (!d.containers.length || d.containers[0]!.primary.ip) return d;
  const subnet = subnets.get(d.networks[0]!.name)?.subnet;
  if (!subnet) return d;
  const [first, ...rest] = d.containers;
  return { ...d, containers: [{ ...first!, primary: { ...first!.primary, ip: hostAddress(subnet, 2) } }, ...rest] };
}
