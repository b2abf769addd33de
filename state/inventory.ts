import fs from 'node:fs/promises';
import path from 'node:path';
import type { StatePaths } from './paths.js';
import { readJson, writeJsonAtomic } from './fsutil.js';

/** What bottled created (or is about to create) for one unit (a bottle or a shared sidecar). */
export interface InventoryResource {
  /** `network`, `container`, or an agent backend's object type (`machine`). */
  type: string;
  role: string;
  specHash?: string;
  /** The hashed create-time configuration (secrets only as keyed hashes): source of plan causes. */
  applied?: Record<string, unknown>;
  /** Extra networks this container was connected to by bottled (agent.networks), for causes. */
  extraNetworks?: string[];
  /**
   * The `bottled.owner` label of a resource this state directory took over with `--adopt` (or
   * none, for one created by a bottled that wrote no owner labels): the record is the proof.
   */
  owner?: string;
  /**
   * The resource's spec-hash label when it was proven equal to `specHash` without its record
   * (adopted after the state directory and its secret HMAC key were lost).
   */
  labelHash?: string;
  /** Set once a container from before bottled kept restart policies across signals was updated in place. */
  restartPolicy?: 'always' | 'no';
  /**
   * Docker's ID of the network or container, recorded once it exists. Labels can be copied onto
   * anything by anyone; an ID cannot: a resource whose ID is not this one is not ours.
   */
  id?: string;
  /** uid:gid its image's user resolved to, for files that inherit the container's user. */
  fileOwner?: { uid: number; gid: number };
}

export interface Inventory {
  version: 1;
  unit: string; // bottle name, or `shared.<name>`
  source?: { file: string; revision?: string };
  /** Subnets chosen for networks, by network name: recorded so they never move. */
  subnets: Record<string, string>;
  resources: Record<string, InventoryResource>;
  /** Content hash of each file whose onChange was delivered, by container then path. */
  delivered: Record<string, Record<string, string>>;
  updatedAt?: string;
  /** When the unit was first created here (a `spec.lifetime.ttl` counts from it). */
  createdAt?: string;
  /** `spec.agent.shell`, for `bottled exec` (which reads no spec). */
  shell?: string[];
}

/**
 * Key of a resource in `resources`. Docker names networks and containers in separate spaces
 * (a bottle's sidecar `egress` and its egress network are both `<prefix>-<bottle>-egress`), so
 * networks are kept under `network/<name>` (a name never holds a '/').
 */
export function resourceKey(type: InventoryResource['type'], name: string): string {
  return type === 'network' ? `network/${name}` : name;
}

export function emptyInventory(unit: string): Inventory {
  return { version: 1, unit, subnets: {}, resources: {}, delivered: {} };
}

export async function readInventory(paths: StatePaths, unit: string): Promise<Inventory | undefined> {
  const inv = await readJson<Inventory>(paths.inventory(unit));
  if (!inv || inv.version !== 1) return undefined;
  inv.subnets ??= {};
  inv.resources ??= {};
  inv.delivered ??= {};
  // Written before networks had a key of their own: move them (and, for a network whose record
  // a same-named container overwrote, the subnet recorded for it is the proof that remains).
  for (const [k, r] of Object.entries(inv.resources)) {
    if (r.type === 'network' && !k.startsWith('network/')) {
      delete inv.resources[k];
      inv.resources[resourceKey('network', k)] = r;
    }
  }
  for (const net of Object.keys(inv.subnets)) {
    inv.resources[resourceKey('network', net)] ??= { type: 'network', role: 'network' };
  }
  return inv;
}

/** All inventories, keyed by unit. One directory read: cheap enough for every pass. */
export async function readAllInventories(paths: StatePaths): Promise<Map<string, Inventory>> {
  const out = new Map<string, Inventory>();
  let names: string[];
  try {
    names = await fs.readdir(paths.bottlesDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  await Promise.all(
    names.sort().map(async (n) => {
      const inv = await readInventory(paths, n);
      if (inv) out.set(n, inv);
    }),
  );
  return out;
}

export async function writeInventory(paths: StatePaths, inv: Inventory): Promise<void> {
  inv.updatedAt = new Date().toISOString();
  await writeJsonAtomic(paths.inventory(inv.unit), inv);
}

/** The unit is gone: drop its inventory and rendered files (or only the files). */
export async function removeUnitState(paths: StatePaths, unit: string, opts: { keepInventory?: boolean } = {}): Promise<void> {
  if (!opts.keepInventory) return fs.rm(paths.unitDir(unit), { recursive: true, force: true });
  const dir = paths.unitDir(unit);
  const keep = path.basename(paths.inventory(unit));
  for (const e of await fs.readdir(dir).catch(() => [] as string[])) {
    if (e !== keep) await fs.rm(path.join(dir, e), { recursive: true, force: true });
  }
}
