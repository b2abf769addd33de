import type { ObservedWorkload } from '../../controller/observed.js';
import type { ServiceShape } from './shape.js';

/** A task of a service as status needs it: where it runs, or why it does not. */
export interface TaskView {
  state: string;
  desiredState: string;
  /** The node's hostname (its ID when the node list does not know it). */
  node?: string;
  /** Swarm's own words: `no suitable node (…)`, `No such image: …`. */
  message?: string;
  createdAt: string;
}

export interface ObservedService extends ObservedWorkload {
  type: 'service';
  service: {
    id: string;
    running: number;
    desired: number;
    /** Config names the service's spec uses (they cannot be removed while it does). */
    configs: string[];
    /** Networks its spec joins, by name or ID as Swarm returns them. */
    networks: string[];
    /** Its tasks (Swarm keeps a few past ones), newest first. */
    tasks: TaskView[];
    updating: boolean;
    /** Swarm's UpdateStatus: `paused` or `rollback_*` means the declared spec did not take. */
    update?: { state: string; message?: string };
    /** What its spec says now, for drift made by hand. */
    shape: ServiceShape;
  };
}

/** A Swarm config or secret of ours (a secret's data is never returned by the API). */
export interface ObservedConfig extends ObservedWorkload {
  type: 'config' | 'secret';
  configId: string;
}
