import { resourceKey, type Inventory } from '../state/inventory.js';
import { L } from './labels.js';
import { unitKey, type UnitKey } from './unit-key.js';

/**
 * Invariant 7: ownership is proven, not assumed. A resource belongs to a unit of this
 * reconciler when its labels name this instance and that unit, the labels were set on the
 * resource itself (not inherited from the image a container was made from), and either:
 * - its `bottled.owner` is this state directory's id, or
 * - this state directory's inventory records it under that name with that owner (adopted with
 *   `--adopt`, or created by a bottled that did not write owner labels yet).
 * Anything else with our labels is someone else's: never changed, never removed.
 */
export type Claim =
  | { kind: 'ours'; unit: UnitKey }
  /** Another owner's (or an unrecorded older bottled's) resource of a declared unit, taken over with `--adopt`. */
  | { kind: 'adoptable'; unit: UnitKey; owner?: string }
  | { kind: 'foreign'; unit?: UnitKey; why: string };

export interface ClaimedResource {
  /** `network`, `container`, or an agent backend's type (`machine`). */
  type: string;
  name: string;
  /** Docker's ID (networks, containers). */
  id?: string;
  labels: Record<string, string>;
  /** Containers: the image they were created from (its labels may have been copied onto them). */
  imageId?: string;
}

export interface OwnershipOptions {
  instance: string;
  owner: string;
  inventories: Map<string, Inventory>;
  /** Image ID -> the image's own labels (one list call answers it for every image). */
  imageLabels: Map<string, Record<string, string>>;
  /** `--adopt`: take over declared units' resources that another state directory created. */
  adopt: boolean;
  /** Owner ids whose state directory still exists on this host: never adopted from. */
  liveOwners?: Set<string>;
  declared: (unit: UnitKey) => boolean;
}

export class Ownership {
  constructor(private readonly o: OwnershipOptions) {}

  claim(r: ClaimedResource): Claim {
    const labels = r.labels;
    if (labels[L.managedBy] !== 'bottled') return { kind: 'foreign', why: 'not created by bottled' };
    if (labels[L.instance] !== this.o.instance) return { kind: 'foreign', why: `it belongs to bottled instance ${labels[L.instance] ?? '?'}` };
    const unit = unitKey.fromLabels(labels);
    if (!unit) return { kind: 'foreign', why: 'its bottled labels name no bottle' };
    if (r.type === 'container' && this.inheritedFromImage(r)) {
      return { kind: 'foreign', unit, why: `its bottled labels were copied from its image ${shortId(r.imageId ?? '')} (a container made from a committed bottle is not a bottle)` };
    }
    const owner = labels[L.owner];
    const rec = this.o.inventories.get(unit)?.resources[resourceKey(r.type, r.name)];
    // The record is the proof: its owner label as recorded, and the resource's ID once known.
    const recorded = !!rec && rec.type === r.type && (rec.id === undefined || r.id === undefined || rec.id === r.id);
    if (recorded && (owner === this.o.owner || rec!.owner === owner)) return { kind: 'ours', unit };
    if (this.o.adopt && this.o.declared(unit)) {
      if (owner && this.o.liveOwners?.has(owner)) {
        return { kind: 'foreign', unit, why: `it belongs to the bottled state directory ${labels[L.ownerDir] ?? '?'}, which still exists: --adopt takes over only what a lost state directory left (reconcile from that one, or remove it first)` };
      }
      return { kind: 'adoptable', unit, owner };
    }
    if (owner === this.o.owner) {
      return { kind: 'foreign', unit, why: rec ? 'it carries this state directory\'s labels but is not the resource it created (another ID): made by hand?' : 'it carries this state directory\'s labels but its inventory has no record of it; run with --adopt to take it over' };
    }
    return { kind: 'foreign', unit, why: foreignOwner(labels, this.o.instance) };
  }

  /** The unit this reconciler owns the resource for, if any. */
  unitOf(r: ClaimedResource): UnitKey | undefined {
    const c = this.claim(r);
    return c.kind === 'ours' ? c.unit : undefined;
  }

  /**
   * `docker commit` keeps every label of a container in the image, and `docker run` of that image
   * copies them onto the new container. A container bottled created has its own random create-id;
   * one made from such an image carries the image's (or, from before create-ids, its spec hash).
   */
  private inheritedFromImage(r: ClaimedResource): boolean {
    const img = r.imageId ? this.o.imageLabels.get(r.imageId) : undefined;
    if (!img || img[L.managedBy] !== 'bottled') return false;
    const mine = r.labels[L.createId];
    return mine !== undefined ? mine === img[L.createId] : r.labels[L.specHash] === img[L.specHash];
  }
}

function foreignOwner(labels: Record<string, string>, instance: string): string {
  const owner = labels[L.owner];
  if (!owner) {
    return `it was created by bottled (instance ${instance}) before owner labels and this state directory has no record of it; run with --adopt to take it over`;
  }
  const dir = labels[L.ownerDir];
  return `it belongs to another bottled state directory${dir ? ` (${dir})` : ''} with the same --instance ${instance}; ` +
    'run with --adopt to take it over (e.g. after that state directory was lost)';
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
