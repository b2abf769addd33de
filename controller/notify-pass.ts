// Notifications about a pass rather than one bottle: a held pass (an invalid file, an empty
// source, the deletion guard) and a new revision applied. Each is said once when it begins and
// once when it ends, whatever the number of passes in between, and not again by a restarted
// reconciler: what was said is kept in <state>/notify.json. Pure: the caller reads and writes it.
import { formatDiagnostic, type LoadResult } from '../specs/model.js';
import type { Notification } from './notification.js';
import type { Plan } from './plan-types.js';
import type { Reason } from './reasons.js';
import { unitKey } from './unit-key.js';

/** What the reconciler of a state directory has said so far. */
export interface NotifyState {
  /** Open pass holds by key (`InvalidSpec:<file>`, `EmptySource`, `DeletionGuard`). */
  holds: Record<string, { reason: string; message: string; bottles: string[]; since: string }>;
  /** The last revision a message said was applied. */
  revision?: string;
  last?: { event: string; reason: string; time: string };
  /** When the newest load said so far was read (watch mode's passes may finish out of order). */
  seenAt?: number;
}

/**
 * A bottle's own Ready transition is not sent when the pass hold is its cause: one message for
 * the invalid file or the guard says it for every bottle it holds.
 */
export const PASS_HOLDS: ReadonlySet<Reason> = new Set(['InvalidSpec', 'EmptySource', 'DeletionGuard']);

export function passNotices(plan: Plan, load: LoadResult, prev: NotifyState, now: string, planned: (unit: string) => boolean): { notices: Notification[]; next: NotifyState } {
  const current = new Map<string, { reason: string; message: string; bottles: string[] }>();
  const heldBy = (reason: string, file?: string) => plan.units.filter((u) => u.held?.reason === reason && (file === undefined || u.source === file)).map((u) => u.name).sort();
  // From the load, which every pass reads whole: an invalid file, an empty source.
  const byFile = new Map<string, string[]>();
  for (const d of load.diagnostics) byFile.set(d.file, [...(byFile.get(d.file) ?? []), formatDiagnostic(d)]);
  for (const f of load.brokenFiles) if (!byFile.has(f)) byFile.set(f, [`${f}: cannot be read or parsed`]);
  for (const [file, lines] of byFile) {
    // The documents the file holds that cannot be applied, whether or not they ever ran.
    const held = [...load.held].filter(([, ds]) => ds.some((x) => x.file === file)).map(([key]) => unitKey.name(unitKey.fromDocKey(key)));
    current.set(`InvalidSpec:${file}`, { reason: 'InvalidSpec', message: lines.slice(0, 3).join('; ') + (lines.length > 3 ? `; and ${lines.length - 3} more` : ''), bottles: [...new Set([...heldBy('InvalidSpec', file), ...held])].sort() });
  }
  // The empty-source guard is decided from the load alone (plan.pruneGuard), so also by a pass
  // that plans none of the bottles it holds; the deletion guard replaces it only when it is off.
  const guardedNow = plan.units.some((u) => u.held?.reason === 'DeletionGuard');
  if (plan.pruneGuard && !guardedNow) {
    current.set('EmptySource', { reason: 'EmptySource', message: plan.pruneGuard, bottles: [...new Set([...(prev.holds.EmptySource?.bottles ?? []), ...heldBy('EmptySource')])].sort() });
  }
  // From the plan, which may cover some units only (watch mode): the guard ends when none of
  // the bottles it held is held by it any more.
  const guarded = heldBy('DeletionGuard');
  const old = prev.holds.DeletionGuard;
  const still = old ? old.bottles.filter((b) => !planned(b) || guarded.includes(b)) : [];
  if (guarded.length || still.length) {
    current.set('DeletionGuard', { reason: 'DeletionGuard', message: plan.units.find((u) => u.held?.reason === 'DeletionGuard')?.held!.message ?? old!.message, bottles: [...new Set([...still, ...guarded])].sort() });
  }

  const notices: Notification[] = [];
  const holds: NotifyState['holds'] = {};
  for (const [key, h] of current) {
    const was = prev.holds[key];
    holds[key] = { ...h, since: was?.since ?? now };
    if (!was) notices.push({ event: 'held', reason: h.reason, message: h.message, bottles: h.bottles, time: now, ...(load.revision && { revision: load.revision }) });
  }
  for (const [key, h] of Object.entries(prev.holds)) {
    if (!current.has(key)) notices.push({ event: 'released', reason: h.reason, message: releasedText(key, h.reason), bottles: h.bottles, time: now, ...(load.revision && { revision: load.revision }) });
  }
  let revision = prev.revision;
  if (load.revision && load.revision !== prev.revision) {
    revision = load.revision;
    const n = load.bottles.size;
    notices.push({ event: 'applied', reason: 'NewRevision', message: `revision ${load.revision.slice(0, 12)} applied (${n} bottle${n === 1 ? '' : 's'} declared)`, revision: load.revision, time: now });
  }
  const last = notices.at(-1);
  return { notices, next: { holds, ...(revision && { revision }), ...((last ?? prev.last) && { last: last ? { event: last.event, reason: last.reason, time: last.time } : prev.last }) } };
}

function releasedText(key: string, reason: string): string {
  if (reason === 'InvalidSpec') return `${key.slice('InvalidSpec:'.length)} is valid again (or gone)`;
  if (reason === 'EmptySource') return 'the source holds spec files again';
  return 'the deletion guard no longer holds any bottle';
}
