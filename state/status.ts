import fs from 'node:fs/promises';
import type { StatePaths } from './paths.js';
import { readJson, writeJsonAtomic } from './fsutil.js';

export type ConditionType = 'Ready' | 'Reconciling' | 'Stalled';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export type ResourceHealth = 'running' | 'healthy' | 'starting' | 'unhealthy' | 'stopped' | 'missing' | 'drifted' | 'present';

export interface ResourceStatus {
  type: 'network' | 'container' | 'machine' | 'service';
  name: string;
  health: ResourceHealth;
  detail?: string;
  /** The Swarm node (hostname) its task runs, or last ran, on. */
  node?: string;
  /** What a container can reach and do by construction (controller/seal.ts). */
  seal?: SealReport;
}

export interface SealReport {
  networks: { name: string; routeOut: boolean }[];
  ports: number[];
  runtime: string;
  capAdd: string[];
  capDrop: string[];
  noNewPrivileges: boolean;
  readOnlyRootfs: boolean;
}

export interface UnitStatus {
  unit: string;
  kind: 'bottle' | 'shared';
  source?: string;
  observedSpecHash?: string;
  observedRevision?: string;
  conditions: Condition[];
  resources: ResourceStatus[];
  lastError?: string;
  nextRetryAt?: string;
  /** `spec.lifetime`: when it expires (or expired), and what is done then. */
  expiresAt?: string;
  onExpiry?: 'stop' | 'remove';
  /** The last notification sent for it (`--notify`). */
  lastNotification?: { event: string; reason: string; time: string };
  createdAt: string;
  updatedAt: string;
}

export async function readStatus(paths: StatePaths, unit: string): Promise<UnitStatus | undefined> {
  return readJson<UnitStatus>(paths.status(unit));
}

export async function readAllStatus(paths: StatePaths, include?: (unit: string) => boolean): Promise<UnitStatus[]> {
  let names: string[];
  try {
    names = await fs.readdir(paths.statusDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const all = await Promise.all(
    names.filter((n) => n.endsWith('.json') && (!include || include(n.slice(0, -5)))).sort().map((n) => readStatus(paths, n.slice(0, -5))),
  );
  return all.filter((s): s is UnitStatus => !!s);
}

/**
 * Write a status, keeping lastTransitionTime of conditions whose status did not change
 * (Kubernetes semantics: the time says when it became so, not when it was last checked).
 * A status equal to the stored one but for times is not rewritten: a no-op pass over many
 * bottles writes nothing. Returns whether the Ready condition changed (for events).
 */
export async function writeStatus(
  paths: StatePaths,
  next: Omit<UnitStatus, 'createdAt' | 'updatedAt' | 'conditions'> & {
    conditions: Omit<Condition, 'lastTransitionTime'>[];
  },
  /** What is on disk now, if the caller knows it (null: nothing); else it is read. */
  known?: UnitStatus | null,
): Promise<{ status: UnitStatus; readyChanged: boolean }> {
  const prev = known === undefined ? await readStatus(paths, next.unit) : (known ?? undefined);
  const now = new Date().toISOString();
  const conditions = next.conditions.map((c) => {
    const old = prev?.conditions.find((p) => p.type === c.type);
    const same = old && old.status === c.status && old.reason === c.reason;
    return { ...c, lastTransitionTime: same ? old.lastTransitionTime : now };
  });
  const status: UnitStatus = { ...next, conditions, createdAt: prev?.createdAt ?? now, updatedAt: now };
  const ready = (s?: UnitStatus) => s?.conditions.find((c) => c.type === 'Ready');
  const readyChanged = ready(prev)?.status !== ready(status)?.status || ready(prev)?.reason !== ready(status)?.reason;
  if (prev && sameButTimes(prev, status)) return { status: prev, readyChanged: false };
  await writeJsonAtomic(paths.status(next.unit), status);
  return { status, readyChanged };
}

function sameButTimes(a: UnitStatus, b: UnitStatus): boolean {
  const strip = (s: UnitStatus) => JSON.stringify({ ...s, createdAt: 0, updatedAt: 0, conditions: s.conditions.map((c) => ({ ...c, lastTransitionTime: 0 })) });
  return strip(a) === strip(b);
}

export async function removeStatus(paths: StatePaths, unit: string): Promise<void> {
  await fs.rm(paths.status(unit), { force: true });
}
