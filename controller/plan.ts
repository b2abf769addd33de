import { isBrokenSource } from '../specs/load.js';
import type { Inventory } from '../state/inventory.js';
import type { PlanInput } from './plan-input.js';
import { heldUnit } from './plan-actions.js';
import { SnapshotIndex } from './plan-index.js';
import { planRemoval } from './plan-removal.js';
import { expiryOf, planExpired } from './plan-expiry.js';
import { allocateSubnets } from './plan-subnets.js';
import type { Plan, UnitPlan } from './plan-types.js';
import { planUnit, withDefaultAddresses } from './plan-unit.js';
import { unitKey, type UnitKey } from './unit-key.js';

export type { Observed } from './observed.js';

export type { ImageInfo, PlanInput, PlanOptions } from './plan-input.js';

/**
 * The planner: desired graph + one observed snapshot + inventory -> ordered actions with causes.
 * Pure: no I/O, deterministic for the same input. The executor carries no decision logic.
 */
export function plan(input: PlanInput): Plan {
  const { load, desired, snapshot, inventories, opts } = input;
  const index = new SnapshotIndex(snapshot, {
    instance: opts.instance,
    owner: opts.owner,
    inventories,
    imageLabels: snapshot.imageLabels ?? new Map(),
    adopt: !!opts.adopt,
    liveOwners: opts.liveOwners,
    declared: (u) => desired.has(u),
  });

  // Every unit this reconciler knows of: declared, in an inventory, or owning a resource.
  const known = new Set<UnitKey>([...desired.keys(), ...inventories.keys(), ...index.ownerUnits()]);
  for (const key of load.held.keys()) known.add(unitKey.fromDocKey(key));

  const subnets = allocateSubnets(input, index);
  const claims = nameClaims(input, index);

  let pruneGuard: string | undefined;
  if (load.fileCount === 0 && !opts.allowEmpty) {
    pruneGuard = `${load.describe} holds no spec files: nothing is pruned without --allow-empty`;
  } else if (load.selector !== undefined && load.bottles.size + load.shared.size === 0 && !opts.allowEmpty) {
    // A selector that matches nothing is more often a typo than a host emptied on purpose. Held
    // documents do not count: they come from every host.
    pruneGuard = `no document in ${load.describe} matches --selector ${load.selector}: nothing is pruned without --allow-empty`;
  }

  const now = input.now ?? Date.now();
  const units: UnitPlan[] = [];
  for (const unit of [...known].sort()) {
    if (input.include && !input.include(unit)) continue;
    const d = desired.get(unit);
    const inv = inventories.get(unit);
    const heldDiags = load.held.get(unitKey.toDocKey(unit));
    if (heldDiags) {
      units.push(heldUnit(unit, inv, {
        reason: 'InvalidSpec',
        message: heldDiags.map((x) => `${x.file}:${x.line}:${x.col}: ${x.message}`).join('; '),
        failure: false, // reported as invalid spec files (exit 2), not as a failed bottle
      }));
      continue;
    }
    if (!d) {
      const src = inv?.source?.file;
      if (pruneGuard) {
        units.push(heldUnit(unit, inv, { reason: 'EmptySource', message: pruneGuard, failure: false }));
      } else if (src && load.emptyFiles?.has(src)) {
        // Truncated and not written yet (a generator writing it, an editor saving): not a removal.
        units.push(heldUnit(unit, inv, { reason: 'SourceEmptied', message: `${src}, which declared it, holds no documents now: taken for a file being written; delete the file to remove what it declared`, failure: false }));
      } else if (load.brokenFiles.size > 0 && (!src || isBrokenSource(load, src))) {
        units.push(heldUnit(unit, inv, {
          reason: 'InvalidSpec',
          message: src
            ? `${src} cannot be read or parsed: running resources left as they are`
            : `some spec files cannot be parsed (${[...load.brokenFiles].join(', ')}): not pruned until they can`,
          failure: false,
        }));
      } else {
        units.push(planRemoval(unit, inv, input, index));
      }
      continue;
    }
    const expiry = d.suspend ? undefined : expiryOf(d, inv, now);
    if (expiry?.expired) {
      units.push(planExpired(d, inv, input, index, expiry));
      continue;
    }
    const u = planUnit(withDefaultAddresses(d, subnets), inv, input, index, subnets, claims);
    units.push(expiry ? { ...u, expiry } : u);
  }

  holdSharedInUse(units, index, inventories);

  // Every kind of unit counts: a shared sidecar's removal disconnects every bottle that uses it.
  const removals = units.filter((u) => u.state === 'removed');
  const max = opts.maxDeletions ?? Infinity;
  const recent = opts.recentDeletions ?? 0;
  if (removals.length && removals.length + recent > max) {
    const some = removals.slice(0, 8).map((u) => (u.kind === 'shared' ? `SharedSidecar ${u.name}` : u.name)).join(', ') + (removals.length > 8 ? ', …' : '');
    const what = countKinds(removals);
    const before = recent ? ` after ${recent} removed in the last ${DELETION_WINDOW_TEXT}` : '';
    pruneGuard = `this pass would remove ${what} (${some})${before}, more than --max-deletions ${max}: nothing is removed`;
    for (const [i, u] of units.entries()) {
      if (u.state === 'removed') units[i] = heldUnit(u.unit, inventories.get(u.unit), { reason: 'DeletionGuard', message: pruneGuard, failure: true });
    }
  }
  return { units, pruneGuard };
}

/**
 * A SharedSidecar whose document is gone (or is for another host) is not removed while it is
 * joined to a bottle that stays and may still need it: one held for an invalid file (what it
 * declares cannot be read), or one whose own removal is held. Bottles removed in the same pass,
 * bottles that let it go, and bottles that still name it (SharedSidecarMissing) do not count.
 */
function holdSharedInUse(units: UnitPlan[], index: SnapshotIndex, inventories: Map<string, Inventory>): void {
  const byUnit = new Map(units.map((u) => [u.unit, u]));
  for (const [i, u] of units.entries()) {
    if (u.kind !== 'shared' || u.state !== 'removed') continue;
    const users = new Set<string>();
    for (const c of index.ownedBy(u.unit).containers) {
      for (const net of Object.keys(c.networks)) {
        for (const n of index.networksByName.get(net) ?? []) {
          const claim = index.claimOf(n);
          if (claim.kind !== 'ours' || claim.unit === u.unit) continue;
          const other = byUnit.get(claim.unit);
          // A user that leaves, or lets the sidecar go from this network in this pass, is no user;
          // nor one that still declares it (held SharedSidecarMissing): deleting the document
          // was what its author asked for.
          const lets = other?.actions.some((a) => a.kind === 'disconnect' && a.resource.name === c.name && a.networkName === net);
          // Nor an expired bottle: stopped and kept, it uses nothing.
          if (other?.state !== 'removed' && !lets && other?.held?.reason !== 'SharedSidecarMissing' && !other?.expiry?.expired) users.add(claim.unit);
        }
      }
    }
    if (users.size) {
      const list = [...users].sort().join(', ');
      units[i] = heldUnit(u.unit, inventories.get(u.unit), { reason: 'SharedSidecarInUse', message: `no longer declared here, but still joined to ${list}, which stay${users.size === 1 ? 's' : ''}: removed once ${users.size === 1 ? 'it leaves' : 'they leave'}`, failure: true });
    }
  }
}

/** Watch mode counts removals over this long against --max-deletions (one `rm` at a time adds up). */
export const DELETION_WINDOW_MS = 10 * 60_000;
const DELETION_WINDOW_TEXT = '10 minutes';

function countKinds(units: UnitPlan[]): string {
  const bottles = units.filter((u) => u.kind === 'bottle').length;
  const shared = units.length - bottles;
  const parts = [];
  if (bottles) parts.push(`${bottles} bottle${bottles === 1 ? '' : 's'}`);
  if (shared) parts.push(`${shared} shared sidecar${shared === 1 ? '' : 's'}`);
  return parts.join(' and ');
}

/** Which unit may use each desired container name; a name two units render to goes to the one that has it. */
function nameClaims(input: PlanInput, index: SnapshotIndex): Map<string, UnitKey> {
  const claims = new Map<string, UnitKey[]>();
  for (const d of input.desired.values()) {
    for (const c of d.containers) claims.set(c.name, [...(claims.get(c.name) ?? []), d.unit]);
  }
  const owner = new Map<string, UnitKey>();
  for (const [name, units] of claims) {
    const o = index.containersByName.get(name);
    const claim = o ? index.claimOf(o) : undefined;
    const has = claim && claim.kind !== 'foreign' ? claim.unit : undefined;
    owner.set(name, has && units.includes(has) ? has : [...units].sort()[0]!);
  }
  return owner;
}
