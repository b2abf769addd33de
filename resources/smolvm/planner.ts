// smolvm as a backend, its pure half: the agent is a microVM behind the bottle's Docker sidecars.
import type { AgentPlanner } from '../../controller/backend.js';
import type { DesiredUnit } from '../../controller/desired.js';
import type { SubnetChoice } from '../../controller/plan-subnets.js';
import { hostAddress } from '../../controller/subnets.js';
import type { DesiredMachine } from './desired.js';
import { machineHealth } from './health.js';
import type { ObservedMachine } from './observe-types.js';
import { planMachine } from './plan.js';
import { renderSmolvmBottle } from './render.js';

export const smolvmPlanner: AgentPlanner<DesiredMachine, ObservedMachine> = {
  name: 'smolvm',
  resourceType: 'machine',
  unavailable: 'SmolvmUnavailable',
  render: renderSmolvmBottle,
  withAddresses,
  plan: planMachine,
  removal: (o, cause) => ({ kind: 'remove', on: 'machine', resource: { type: 'machine', name: o.name }, cause }),
  stopping: (o, cause) => (o.machine.state === 'stopped' ? undefined : { kind: 'stop', on: 'machine', resource: { type: 'machine', name: o.name }, cause }),
  health: machineHealth,
};

/** The first sidecar sits at .2 of the bottle subnet unless it pins an address. */
function withAddresses(d: DesiredUnit, subnets: Map<string, SubnetChoice>): DesiredUnit {
  if (!d.containers.length || d.containers[0]!.primary.ip) return d;
  const subnet = subnets.get(d.networks[0]!.name)?.subnet;
  if (!subnet) return d;
  const [first, ...rest] = d.containers;
  return { ...d, containers: [{ ...first!, primary: { ...first!.primary, ip: hostAddress(subnet, 2) } }, ...rest] };
}
