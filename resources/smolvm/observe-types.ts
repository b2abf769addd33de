import type { ObservedWorkload } from '../../controller/observed.js';
import type { DesiredUnit } from '../../controller/desired.js';
import type { DesiredMachine } from './desired.js';
import type { MachineObserved } from './types.js';

/** A machine in the snapshot: what the core proves ownership by, and what smolvm said. */
export interface ObservedMachine extends ObservedWorkload {
  type: 'machine';
  machine: MachineObserved;
}

/** What the planner knows besides the machine list: each planned `agent.from` artifact's stamp. */
export interface SmolvmFacts {
  /** size:mtime by path; undefined: the artifact does not exist. */
  fromStats: Map<string, string | undefined>;
}

export function machineOf(d: DesiredUnit): DesiredMachine | undefined {
  return d.workload?.backend === 'smolvm' ? (d.workload as DesiredMachine) : undefined;
}
