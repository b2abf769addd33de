import type { Logger } from 'pino';
import type { DockerDriver } from '../resources/docker/driver.js';
import type { Secrets } from '../specs/secrets.js';
import type { EventLog } from '../state/events.js';
import type { ImageCache } from '../state/image-cache.js';
import type { Inventory } from '../state/inventory.js';
import type { OwnerIdentity } from '../state/owner.js';
import type { StatePaths } from '../state/paths.js';
import type { DesiredFile } from './desired.js';
import type { Action } from './plan-types.js';

export interface ExecContext {
  docker: DockerDriver;
  /** Agent backends' drivers by backend name. */
  drivers: Map<string, unknown>;
  paths: StatePaths;
  events: EventLog;
  log: Logger;
  secrets: Secrets;
  reconcileId: string;
  publishHost: string;
  /** Bound on each readiness wait (sidecar healthy before the agent starts). */
  waitTimeoutMs: number;
  stopTimeoutSec: number;
  signal?: AbortSignal;
  /** Called before every step (progress). */
  onStep?: (unit: string, action: Action) => void;
  /** Called after every completed step (tests use it to kill the process between steps). */
  afterStep?: (unit: string, action: Action) => Promise<void> | void;
  /** This state directory (its id is on every resource, set by the renderer). */
  owner: OwnerIdentity;
  /** Image facts learned at observation; a create resolves a named user into it. */
  images: ImageCache;
}

/** `skipped`: a conditional recreate was not needed; the unit is planned again at once. */
export type StepOutcome = 'done' | 'skipped';

/** Change the inventory (optionally) and write it now: before the change it records is made. */
export type Save = (change?: () => void) => Promise<void>;

export function recordDelivered(inv: Inventory, target: string, files: DesiredFile[]): void {
  const d = (inv.delivered[target] ??= {});
  for (const f of files) d[f.path] = f.hash;
}

/** An onChange exec counts as delivered only when it succeeded (else the next pass runs it again). */
export async function execDelivered(target: string, exec: string[], delivers: DesiredFile[], r: { exitCode: number; output: string }, inv: Inventory, save: Save): Promise<void> {
  if (r.exitCode !== 0) throw new Error(`exec ${JSON.stringify(exec)} in ${target} exited ${r.exitCode}: ${r.output.trim().slice(-300)}`);
  await save(() => recordDelivered(inv, target, delivers));
}

/** The value of secretEnv entry `name` (host variable `variable`): only ever put in the workload's environment. */
export function secretValue(name: string, variable: string, secrets: Secrets): string {
  const value = secrets.value(variable);
  if (value === undefined) throw new Error(`secretEnv ${name}: variable ${variable} is not set`);
  return value;
}
