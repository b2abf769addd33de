import type { DockerSnapshot } from '../resources/docker/driver.js';
import type { MachineObserved } from '../resources/smolvm/driver.js';

/** One observation: Docker, plus smolvm machines when some bottle needs them. */
export interface Observed extends DockerSnapshot {
  /** Undefined when smolvm was not asked (no smolvm bottle) or could not answer. */
  machines?: MachineObserved[];
  /** Why smolvm could not answer (missing binary, too old, ...). */
  machineError?: string;
}
