import type { SnapshotIndex } from './plan-index.js';
import type { Inventory } from '../state/inventory.js';
import type { DesiredUnit } from './desired.js';
import type { DistributiveOmit } from './action-base.js';
import type { Action, Hold, UnitPlan } from './plan-types.js';
import { unitKey, type UnitKey } from './unit-key.js';

/**
 * A unit's actions in dependency order. Each waits for the previous action on its resource
 * (and a file's for its container's), for what it names in `after`, and for every earlier action
 * that clears the way: removing a container or machine, or a disconnect, frees names and
 * addresses; a network must exist before anything joins it; a planner marks others (`clears`).
 * Everything else (two sidecars' chains, a network's removal) may run side by side.
 */
export class ActionList {
  readonly list: Action[] = [];
  private last = new Map<string, number>(); // resource name -> id of its latest action
  private clearing: number[] = [];
  /** `clears`: everything added later waits for this action (see above). */
  add<A extends Action>(a: DistributiveOmit<A, 'id' | 'after'> & { after?: number[] }, opts: { clears?: boolean } = {}): A {
    const id = this.list.length + 1;
    const deps = new Set([...(a.after ?? []), ...this.clearing]);
    const prev = this.last.get(a.resource.name);
    if (prev) deps.add(prev);
    if ('file' in a) {
      const ctr = this.last.get(a.file.container);
      if (ctr) deps.add(ctr);
    }
    const action = { ...a, id, after: [...deps].sort((x, y) => x - y) } as unknown as A;
    this.list.push(action);
    this.last.set(a.resource.name, id);
    // A file's action orders after (and before) the actions of the container that reads it.
    if ('file' in action) this.last.set(action.file.container, id);
    if (opts.clears || (a.on === 'network' ? a.kind !== 'remove' : a.kind === 'remove' || a.kind === 'disconnect')) this.clearing.push(id);
    return action;
  }
  lastOf(name: string): number | undefined {
    return this.last.get(name);
  }
}

export function heldUnit(unit: UnitKey, inv: Inventory | undefined, held: Hold, d?: DesiredUnit): UnitPlan {
  return {
    unit,
    kind: unitKey.kind(unit),
    name: unitKey.name(unit),
    source: d?.origin.file ?? inv?.source?.file,
    revision: d?.origin.revision ?? inv?.source?.revision,
    state: 'held',
    held,
    actions: [],
    subnets: {},
    desired: d,
  };
}

/** The sidecar's short name in messages (`bundle`), or the container name. */
export function shortName(container: string, d: DesiredUnit): string {
  return d.containers.find((c) => c.name === container)?.component ?? container;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export interface Changed {
  /** Containers created, recreated or started in this pass (their addresses may change). */
  changing: Set<string>;
  /** Containers created or recreated (new endpoints). */
  replaced: Set<string>;
}

export function adoptCause(claim: ReturnType<SnapshotIndex['claimOf']>): string {
  return claim.kind === 'adoptable'
    ? `taken over with --adopt from ${claim.owner ? `state directory owner ${claim.owner}` : 'an older bottled'}`
    : 'ours (owner label), missing from the inventory';
}
