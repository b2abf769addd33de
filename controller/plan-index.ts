import type { ObservedContainer, ObservedNetwork } from '../resources/docker/driver.js';
import type { Observed, ObservedWorkload } from './observed.js';
import { Ownership, type Claim, type ClaimedResource, type OwnershipOptions } from './ownership.js';
import { L } from './labels.js';
import type { UnitKey } from './unit-key.js';

type Observable = ObservedNetwork | ObservedContainer | ObservedWorkload;

interface Owned {
  networks: ObservedNetwork[];
  containers: ObservedContainer[];
  /** Objects of agent backends (machines). */
  workloads: ObservedWorkload[];
}

/**
 * One snapshot, indexed once: by name, by network, and by the unit that provably owns each
 * resource. Every unit's planning reads from here instead of scanning the whole snapshot, so a
 * pass is linear in the number of resources, and ownership is decided in one place.
 */
export class SnapshotIndex {
  readonly networksByName = new Map<string, ObservedNetwork[]>();
  readonly containersByName = new Map<string, ObservedContainer>();
  /** Agent backends' objects by name. */
  readonly workloadsByName = new Map<string, ObservedWorkload>();
  /** Containers with an endpoint on each network (by network name), ours or not. */
  readonly containersOnNetwork = new Map<string, ObservedContainer[]>();
  readonly networkIds = new Set<string>();
  private readonly claims = new Map<object, Claim>();
  private readonly owned = new Map<UnitKey, Owned>();
  private readonly adoptable = new Map<UnitKey, Owned>();
  private readonly ownership: Ownership;

  constructor(
    readonly snapshot: Observed,
    ownership: OwnershipOptions,
  ) {
    this.ownership = new Ownership(ownership);
    for (const n of snapshot.networks) {
      push(this.networksByName, n.name, n);
      this.networkIds.add(n.id);
      this.record({ type: 'network', name: n.name, id: n.id, labels: n.labels }, n, 'networks');
    }
    for (const c of snapshot.containers) {
      this.containersByName.set(c.name, c);
      for (const net of Object.keys(c.networks)) push(this.containersOnNetwork, net, c);
      this.record({ type: 'container', name: c.name, id: c.id, labels: c.labels, imageId: c.imageId }, c, 'containers');
    }
    for (const obs of snapshot.workloads?.values() ?? []) {
      for (const w of obs.objects) {
        this.workloadsByName.set(w.name, w);
        // An object that cannot carry labels can never be proven ours.
        this.record({ type: w.type, name: w.name, labels: w.labelled ? w.labels : {} }, w, 'workloads');
      }
    }
  }

  private record<K extends keyof Owned>(r: ClaimedResource, obj: Owned[K][number], list: K): void {
    const claim = this.ownership.claim(r);
    this.claims.set(obj, claim);
    if (claim.kind === 'foreign') return;
    const byUnit = claim.kind === 'ours' ? this.owned : this.adoptable;
    let o = byUnit.get(claim.unit);
    if (!o) byUnit.set(claim.unit, (o = { networks: [], containers: [], workloads: [] }));
    (o[list] as Owned[K][number][]).push(obj);
  }

  claimOf(obj: Observable): Claim {
    return this.claims.get(obj) ?? { kind: 'foreign', why: 'not observed' };
  }

  /** Does `unit` own this observed resource? */
  owns(unit: UnitKey, obj: Observable): boolean {
    const c = this.claimOf(obj);
    return c.kind === 'ours' && c.unit === unit;
  }

  /** Resources the unit provably owns. */
  ownedBy(unit: UnitKey): Owned {
    return this.owned.get(unit) ?? EMPTY;
  }

  /** Resources of a declared unit that `--adopt` takes over in this pass. */
  adoptableBy(unit: UnitKey): Owned {
    return this.adoptable.get(unit) ?? EMPTY;
  }

  /** Owned by the unit, or taken over by it in this pass (`--adopt`). */
  mine(unit: UnitKey, obj: Observable): boolean {
    const c = this.claimOf(obj);
    return c.kind !== 'foreign' && c.unit === unit;
  }

  /** Units that own at least one observed resource. */
  ownerUnits(): UnitKey[] {
    return [...this.owned.keys()];
  }

  /** Our shared sidecar containers (any unit), for the bottles that connect them. */
  isOurShared(c: ObservedContainer): boolean {
    const claim = this.claimOf(c);
    return claim.kind === 'ours' && c.labels[L.kind] === 'shared';
  }

  /** A network of ours, of any unit (a network a bottle may be connected to by bottled). */
  isOurNetwork(name: string): boolean {
    return (this.networksByName.get(name) ?? []).some((n) => this.claimOf(n).kind === 'ours');
  }
}

const EMPTY: Owned = { networks: [], containers: [], workloads: [] };

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
