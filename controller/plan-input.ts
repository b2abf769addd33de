import type { LoadResult } from '../specs/model.js';
import type { Inventory } from '../state/inventory.js';
import type { DesiredUnit } from './desired.js';
import type { Observed } from './observed.js';

export interface PlanOptions {
  prefix: string;
  instance: string;
  /** This state directory's owner id (state/owner.ts): what proves a resource is ours. */
  owner: string;
  /** `--adopt`: take over declared bottles' resources that another state directory created. */
  adopt?: boolean;
  /** Owner ids whose state directory still exists: `--adopt` never takes from those. */
  liveOwners?: Set<string>;
  subnetPool: string;
  publishHost: string;
  allowEmpty: boolean;
  /** A pass that would remove more units than this removes none (Infinity: no limit). */
  maxDeletions?: number;
  /** Watch mode: units removed in the recent window, which count against maxDeletions too. */
  recentDeletions?: number;
  /** Subnets of the host's own interfaces: never allocated to a bottle network. */
  hostSubnets: string[];
}

/** What an image says about how its containers run (from one inspect per image ID, cached). */
export interface ImageInfo {
  /** `Config.User` as written: "", "1000", "1000:1000", "node", "node:staff". */
  user?: string;
  stopSignal?: string;
  /** The user resolved to ids (numeric users at once; names once a container of it was created). */
  uid?: number;
  gid?: number;
}

export interface PlanInput {
  load: LoadResult;
  /** Rendered valid bottles, by unit. */
  desired: Map<string, DesiredUnit>;
  snapshot: Observed;
  inventories: Map<string, Inventory>;
  /** Content hash of each rendered file on disk now (undefined: missing), by host path. */
  fileHashes: Map<string, string | undefined>;
  /** Owner of each rendered file on disk now, by host path (absent: not known). */
  fileOwners?: Map<string, { uid: number; gid: number }>;
  /** Keyed digest of a secret variable's value; undefined when the variable is not set. */
  secretDigest: (envVar: string) => string | undefined;
  /**
   * Containers about to be adopted with no record of their configuration: keyed digests of the
   * secret values found in their environment (read from the engine, never kept), by container.
   */
  observedSecrets?: Map<string, Record<string, string | undefined>>;
  /** By image ID. */
  images?: Map<string, ImageInfo>;
  opts: PlanOptions;
  /** The time the plan is for (expiry): the caller's clock, so the planner stays a function of its input. */
  now?: number;
  /** Plan only the units this accepts (watch mode works per bottle). */
  include?: (unit: string) => boolean;
}
