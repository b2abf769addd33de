import stringify from 'safe-stable-stringify';
import type { LoadResult } from '../specs/model.js';
import { sha256 } from '../state/fsutil.js';
import type { UnitResult } from './execute.js';
import type { PassOutcome } from './lifecycle.js';
import type { UnitPlan } from './plan-types.js';
import { isQuiet, isStalled } from './reasons.js';
import { unitKey } from './unit-key.js';

/** What a unit's pass came to, for its lifecycle: the plan's hold, or how execution ended. */
export function outcomeOf(u: UnitPlan, r: UnitResult): PassOutcome {
  if (u.state === 'held') {
    const h = u.held!;
    if (isStalled(h.reason)) return { kind: 'stalled', reason: h.reason, message: h.message };
    if (isQuiet(h.reason)) return { kind: 'held', reason: h.reason, message: h.message };
    return { kind: 'failed', reason: h.reason, error: h.message }; // ImageMissing, NetworkMissing, ...
  }
  if (r.ok && r.requeue) return { kind: 'requeue' };
  if (r.ok) return u.state === 'removed' ? { kind: 'removed' } : { kind: 'ready' };
  if (r.reason === 'Aborted') return { kind: 'aborted' };
  if (r.reason && isStalled(r.reason)) return { kind: 'stalled', reason: r.reason, message: r.error ?? r.reason };
  if (r.reason === 'DockerUnreachable') return { kind: 'engine-down' };
  return { kind: 'failed', reason: r.reason ?? 'Failed', error: r.error ?? 'failed' };
}

/** What identifies a unit's input: its document, or its diagnostics when it is invalid. */
export function fingerprints(load: LoadResult): Map<string, string> {
  const out = new Map<string, string>();
  // The revision is part of the input: a new commit gives every bottle a pass (and its status the commit).
  const doc = (d: { metadata: unknown; spec: unknown; origin: { file: string; revision?: string } }) =>
    sha256(stringify({ m: d.metadata, s: d.spec, f: d.origin.file, r: d.origin.revision }) ?? '');
  for (const [name, d] of load.shared) out.set(unitKey.shared(name), doc(d));
  // A bottle's input includes the shared sidecars it uses: declaring one un-stalls its users.
  for (const [name, d] of load.bottles) out.set(name, sha256(doc(d) + d.spec.uses.map((u) => out.get(unitKey.shared(u)) ?? 'missing').join(',')));
  for (const [key, diags] of load.held) out.set(unitKey.fromDocKey(key), 'invalid:' + sha256(stringify(diags) ?? ''));
  return out;
}
