import type { ActionBase, ResourceRef } from '../../controller/action-base.js';
import type { DesiredFile } from '../../controller/desired.js';
import type { DesiredMachine } from './desired.js';

export interface MachinePayload {
  desired: DesiredMachine;
  /** Undefined while a sidecar address is only known once it runs (executor resolves). */
  hash?: string;
  config?: Record<string, unknown>;
  /** Recreate only if the hash resolved at execution differs from the machine's. */
  verifyHash?: string;
}

type M = ActionBase & { on: 'machine' };

export type MachineAction =
  | (M & { kind: 'create' | 'recreate'; resource: ResourceRef<'machine'>; machine: MachinePayload; waitFor: string[] })
  | (M & { kind: 'start' | 'restart'; resource: ResourceRef<'machine'>; machine: DesiredMachine; delivers?: DesiredFile[] })
  | (M & { kind: 'exec'; resource: ResourceRef<'machine'>; exec: string[]; delivers: DesiredFile[] })
  | (M & { kind: 'remove'; resource: ResourceRef<'machine'> })
  /** Stopped and kept (expiry). */
  | (M & { kind: 'stop'; resource: ResourceRef<'machine'> })
  /** A file copied into the machine (`machine cp`): a machine has no bind mounts. */
  | (M & { kind: 'rewrite-file'; resource: ResourceRef<'file'>; file: DesiredFile; machineName: string; delivers?: DesiredFile[] });
