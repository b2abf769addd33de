import { L } from '../../controller/labels.js';
import type { SnapshotIndex } from '../../controller/plan-index.js';
import type { UnitPlan } from '../../controller/plan-types.js';
import type { ResourceStatus } from '../../state/status.js';
import type { DesiredMachine } from './desired.js';
import type { ObservedMachine } from './observe-types.js';

/** The machine's health for status: missing, drifted from the planned hash, running or not. */
export function machineHealth(u: UnitPlan, m: DesiredMachine, index: SnapshotIndex): ResourceStatus[] {
  const found = index.workloadsByName.get(m.name) as ObservedMachine | undefined;
  const o = found && index.owns(u.unit, found) ? found : undefined;
  const want = u.actions.flatMap((a) => (a.on === 'machine' && (a.kind === 'create' || a.kind === 'recreate') && a.machine.hash ? [a.machine.hash] : []))[0];
  if (!o) return [{ type: 'machine', name: m.name, health: 'missing' }];
  if (want && o.labels[L.specHash] !== want) return [{ type: 'machine', name: m.name, health: 'drifted', detail: 'spec hash differs' }];
  const running = o.machine.state === 'running';
  return [{ type: 'machine', name: m.name, health: running ? 'running' : 'stopped', detail: running ? undefined : o.machine.rawState }];
}
