import type { SnapshotIndex } from './plan-index.js';
import type { LoadResult } from '../specs/model.js';
import type { StatePaths } from '../state/paths.js';
import { readStatus, writeStatus, type Condition, type ResourceStatus, type UnitStatus } from '../state/status.js';
import type { UnitResult } from './execute.js';
import { L } from './labels.js';
import type { UnitPlan } from './plan-types.js';
import { isStalled, type Reason } from './reasons.js';
import { agentBackend } from '../resources/backends.js';
import { sealOf } from './seal.js';

// Typed here rather than in state/status.ts: what is read back from disk may be any string.
type Cond = Omit<Condition, 'lastTransitionTime' | 'reason'> & { reason: Reason };

/** Per-resource health of a declared unit, from one indexed snapshot. */
export function resourceHealth(u: UnitPlan, index: SnapshotIndex): ResourceStatus[] {
  const d = u.desired;
  if (!d) return [];
  const out: ResourceStatus[] = [];
  for (const n of d.networks) {
    const o = (index.networksByName.get(n.name) ?? []).find((x) => index.owns(d.unit, x));
    out.push({ type: 'network', name: n.name, health: o ? 'present' : 'missing' });
  }
  const planned = new Map(u.actions.flatMap((a) => ('container' in a && a.container.hash ? [[a.resource.name, a.container.hash] as const] : [])));
  const internal = (net: string) => index.networksByName.get(net)?.[0]?.internal;
  for (const c of d.containers) {
    const found = index.containersByName.get(c.name);
    const o = found && index.owns(d.unit, found) ? found : undefined;
    if (!o) {
      out.push({ type: 'container', name: c.name, health: 'missing' });
      continue;
    }
    const seal = sealOf(c, internal);
    const at = out.length;
    const want = planned.get(c.name);
    if (want && o.labels[L.specHash] !== want) out.push({ type: 'container', name: c.name, health: 'drifted', detail: 'spec hash differs' });
    else if (o.state !== 'running') out.push({ type: 'container', name: c.name, health: 'stopped', detail: o.status });
    else if (o.health === 'starting' || o.health === 'unhealthy' || o.health === 'healthy') out.push({ type: 'container', name: c.name, health: o.health });
    else out.push({ type: 'container', name: c.name, health: 'running' });
    out[at] = { ...out[at]!, seal };
  }
  if (d.workload) out.push(...(agentBackend(d.workload.backend)?.health(u, d.workload, index) ?? []));
  return out;
}

export async function writeUnitStatus(
  paths: StatePaths,
  u: UnitPlan,
  r: UnitResult,
  index: SnapshotIndex,
  load: LoadResult,
  /** The status before the pass, when the caller read it already (null: there was none). */
  prev?: UnitStatus | null,
): Promise<{ readyChanged: boolean; ready?: { status: string; reason: string; message: string }; status?: UnitStatus }> {
  if (u.state === 'removed' && r.ok && !u.expiry?.expired) return { readyChanged: false }; // its status went with it
  const resources = resourceHealth(u, index);
  const notReady = resources.filter((x) => !['present', 'running', 'healthy'].includes(x.health));
  const conditions: Cond[] = [];
  if (u.expiry?.expired && r.ok && u.state !== 'held') {
    const msg = `expired at ${u.expiry.at}: ${u.expiry.onExpiry === 'stop' ? 'stopped, its containers kept' : 'removed'}`;
    conditions.push({ type: 'Ready', status: 'False', reason: 'Expired', message: msg });
    conditions.push({ type: 'Reconciling', status: 'False', reason: 'Expired', message: msg });
    conditions.push({ type: 'Stalled', status: 'False', reason: 'Expired', message: '' });
  } else if (u.state === 'held') {
    const h = u.held!;
    const stalled = isStalled(h.reason);
    conditions.push({ type: 'Ready', status: h.reason === 'Suspended' ? 'Unknown' : 'False', reason: h.reason, message: h.message });
    conditions.push({ type: 'Reconciling', status: 'False', reason: h.reason, message: stalled ? 'waiting for its input to change' : h.message });
    conditions.push({ type: 'Stalled', status: stalled ? 'True' : 'False', reason: h.reason, message: h.message });
  } else if (!r.ok && r.reason && isStalled(r.reason)) {
    conditions.push({ type: 'Ready', status: 'False', reason: r.reason, message: r.error ?? r.reason });
    conditions.push({ type: 'Reconciling', status: 'False', reason: r.reason, message: 'waiting for what is in the way to change' });
    conditions.push({ type: 'Stalled', status: 'True', reason: r.reason, message: r.error ?? r.reason });
  } else if (!r.ok) {
    conditions.push({ type: 'Ready', status: 'False', reason: r.reason ?? 'Failed', message: r.error ?? 'failed' });
    conditions.push({ type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry', message: r.error ?? 'failed' });
    conditions.push({ type: 'Stalled', status: 'False', reason: r.reason ?? 'Failed', message: 'will be retried' });
  } else if (notReady.length) {
    const msg = notReady.map((x) => `${x.type} ${x.name} ${x.health}`).join(', ');
    conditions.push({ type: 'Ready', status: 'False', reason: 'NotReady', message: msg });
    conditions.push({ type: 'Reconciling', status: 'True', reason: 'Progressing', message: msg });
    conditions.push({ type: 'Stalled', status: 'False', reason: 'NotReady', message: '' });
  } else {
    const msg = r.executed ? `applied ${r.executed} change${r.executed === 1 ? '' : 's'}` : 'in sync';
    conditions.push({ type: 'Ready', status: 'True', reason: 'Succeeded', message: msg });
    conditions.push({ type: 'Reconciling', status: 'False', reason: 'Succeeded', message: msg });
    conditions.push({ type: 'Stalled', status: 'False', reason: 'Succeeded', message: '' });
  }
  const { readyChanged, status } = await writeStatus(paths, {
    unit: u.unit,
    kind: u.kind,
    source: u.source,
    observedSpecHash: u.specHash,
    observedRevision: u.revision ?? load.revision,
    resources,
    conditions,
    lastError: r.ok ? undefined : r.error,
    ...(u.expiry && { expiresAt: u.expiry.at, onExpiry: u.expiry.onExpiry }),
    ...(prev?.lastNotification && { lastNotification: prev.lastNotification }),
  }, prev);
  return { readyChanged, ready: status.conditions.find((c) => c.type === 'Ready'), status };
}

/**
 * A unit in backoff: its status (written by its last pass) says when the next attempt is. No
 * status yet, or no time to say: nothing is written.
 */
export async function noteRetry(paths: StatePaths, unit: string, at: number | undefined, error: string | undefined): Promise<void> {
  const st = await readStatus(paths, unit);
  if (!st || !at) return;
  await writeStatus(paths, { ...st, nextRetryAt: new Date(at).toISOString(), lastError: error ?? st.lastError });
}
