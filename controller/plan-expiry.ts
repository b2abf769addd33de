// Expiry (`spec.lifetime`): a bottle past its time is stopped and kept, or removed like an
// undeclared one, and never brought back by a later pass until its document says otherwise.
// Pure: the time is an input of the plan, as everything else is.
import type { ObservedContainer } from '../resources/docker/driver.js';
import { agentBackend } from '../resources/backends.js';
import type { Inventory } from '../state/inventory.js';
import type { DesiredUnit } from './desired.js';
import { L } from './labels.js';
import { ActionList, heldUnit } from './plan-actions.js';
import type { SnapshotIndex } from './plan-index.js';
import type { PlanInput } from './plan-input.js';
import { planRemoval } from './plan-removal.js';
import type { Expiry, UnitPlan } from './plan-types.js';

/** When the unit expires, if its spec says so; undefined: never. */
export function expiryOf(d: DesiredUnit, inv: Inventory | undefined, now: number): Expiry | undefined {
  const l = d.lifetime;
  if (!l) return undefined;
  if (l.expiresAt !== undefined) return { at: l.expiresAt, onExpiry: l.onExpiry, expired: Date.parse(l.expiresAt) <= now };
  // ttl counts from the unit's first creation, which its inventory records (kept after an
  // expiry removed everything, so the bottle is not created again with a fresh ttl).
  const from = inv?.createdAt ? Date.parse(inv.createdAt) : now;
  const at = from + (l.ttl ?? 0);
  if (!Number.isFinite(at) || Math.abs(at) > 8.64e15) return undefined; // the schema bounds ttl; a corrupt createdAt must not stop the planner
  return { at: new Date(at).toISOString(), onExpiry: l.onExpiry, expired: at <= now, ...(!inv?.createdAt && { fromNow: true }) };
}

/** The actions of a unit past its expiry, or the hold that says it has expired and nothing is left to do. */
export function planExpired(d: DesiredUnit, inv: Inventory | undefined, input: PlanInput, index: SnapshotIndex, exp: Expiry): UnitPlan {
  const owned = index.ownedBy(d.unit);
  // --adopt after a lost state directory: what it would take over is stopped too, never left running.
  const adoptable = index.adoptableBy(d.unit);
  const exists = owned.containers.length + owned.networks.length + owned.workloads.length > 0 || (exp.onExpiry === 'stop' && adoptable.containers.length > 0);
  const done = (message: string) => ({ ...heldUnit(d.unit, inv, { reason: 'Expired', message, failure: false }, d), expiry: exp });
  const when = `expired at ${exp.at}`;
  if (exp.onExpiry === 'remove') {
    if (!exists) return done(inv?.createdAt ? `${when}: removed; it is not created again while its document says so` : `${when}, before it was created: not created`);
    const p = planRemoval(d.unit, inv, input, index, `${when} (spec.lifetime, onExpiry: remove)`);
    if (p.state !== 'held') return { ...p, source: d.origin.file, revision: d.origin.revision, desired: d, expiry: exp };
    // The removal must wait (someone else's container on its network, a backend that does not
    // answer): an expiry is a limit all the same, so what can be stopped is stopped meanwhile.
    const waits = p.held!;
    if (waits.reason !== 'NetworkInUse') return { ...p, desired: d, expiry: exp };
    const stopping = planStop(d, inv, input, index, exp, `${when} (spec.lifetime, onExpiry: remove): stopped until it can be removed`);
    if (stopping.state === 'held' && stopping.held?.reason === 'Expired') return { ...heldUnit(d.unit, inv, { ...waits, message: `${when}: its containers are stopped; removal waits: ${waits.message}` }, d), expiry: exp };
    return stopping.state === 'held' ? stopping : { ...stopping, alerts: [`${when}: stopped, not removed yet: ${waits.message}`] };
  }

  if (!exists) return done(`${when}, before it was created: not created`);
  return planStop(d, inv, input, index, exp, `${when} (spec.lifetime, onExpiry: stop): stopped and kept`);
}

/** Stop what the unit runs, agent first, and keep it; held Expired once nothing runs. */
function planStop(d: DesiredUnit, inv: Inventory | undefined, input: PlanInput, index: SnapshotIndex, exp: Expiry, cause: string): UnitPlan {
  const owned = index.ownedBy(d.unit);
  const adoptable = index.adoptableBy(d.unit);
  const when = `expired at ${exp.at}`;
  const done = (message: string) => ({ ...heldUnit(d.unit, inv, { reason: 'Expired', message, failure: false }, d), expiry: exp });
  const acts = new ActionList();
  const first: number[] = [];
  // The agent first: it is what uses the sidecars, as in a removal.
  if (d.workload) {
    const backend = agentBackend(d.workload.backend);
    const seen = input.snapshot.workloads?.get(d.workload.backend);
    if (backend && (!seen || seen.error !== undefined)) {
      return heldUnit(d.unit, inv, { reason: backend.unavailable, message: `${when}, but its ${backend.resourceType} cannot be stopped: ${seen?.error ?? `${backend.name} was not asked`}`, failure: true }, d);
    }
    for (const o of owned.workloads) {
      const a = backend?.stopping?.(o, cause, inv?.resources[o.name]);
      if (a) first.push(acts.add(a).id);
    }
  }
  const role = (c: ObservedContainer) => (c.labels[L.role] === 'agent' ? 0 : 1);
  for (const c of [...owned.containers, ...adoptable.containers].sort((a, b) => role(a) - role(b) || a.name.localeCompare(b.name))) {
    const up = c.state === 'running' || c.state === 'restarting' || c.state === 'paused';
    // Stopped by hand or by a crash, it keeps Docker's restart policy: an engine restart would
    // start it again. The stop step also turns that policy off.
    // One whose policy the pass inspected (an event named it) is trusted over the record.
    if (!up && inv?.resources[c.name]?.restartPolicy === 'no' && (c.restartPolicy === undefined || c.restartPolicy === 'no')) continue;
    const a = acts.add({ kind: 'stop', on: 'container', resource: { type: 'container', name: c.name }, cause, after: role(c) ? first : [] });
    if (!role(c)) first.push(a.id);
  }
  if (!acts.list.length) return done(`${when}: stopped, its containers kept`);
  return {
    unit: d.unit,
    kind: d.kind,
    name: d.name,
    source: d.origin.file,
    revision: d.origin.revision,
    state: 'changes',
    actions: acts.list,
    subnets: {},
    desired: d,
    expiry: exp,
  };
}
