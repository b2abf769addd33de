import type { Reason } from './reasons.js';
import type { DesiredUnit } from './desired.js';

import type { AdoptAction } from './action-base.js';
import type { BackendAction } from '../resources/actions.js';

/** A planned step: adopting into the inventory (the core's), or an action of a backend. */
export type Action = AdoptAction | BackendAction;

export type ActionKind = Action['kind'];

export type UnitState = 'changes' | 'in-sync' | 'held' | 'removed';

export interface Hold {
  /** Machine-readable reason for status (InvalidSpec, NameCollision, ImageMissing, ...). */
  reason: Reason;
  message: string;
  /** A failure makes `reconcile --once` exit 1; a deliberate hold (suspend, empty source) or an
   *  invalid spec (exit 2 through the diagnostics) does not. */
  failure: boolean;
}

export interface UnitPlan {
  unit: string;
  kind: 'bottle' | 'shared';
  name: string;
  source?: string;
  revision?: string;
  state: UnitState;
  held?: Hold;
  actions: Action[];
  /** Subnets to record in the inventory before anything is created. */
  subnets: Record<string, string>;
  /** The unit is no longer declared: drop its inventory and files once the actions succeed. */
  removeUnit?: boolean;
  desired?: DesiredUnit;
  /** Hash over the unit's resource hashes (observed spec hash in status). */
  specHash?: string;
  /**
   * What is wrong and not bottled's to change: a container of someone else's on one of the
   * bottle's sealed networks (it can answer to a sidecar's alias). The actions still run; the
   * unit is not Ready until it is gone.
   */
  alerts?: string[];
  /** `spec.lifetime`: when the unit expires (or expired), and what is done then. */
  expiry?: Expiry;
  /** How this plan widens what the unit's containers can reach or do (plan's `!` lines). */
  widens?: string[];
}

export interface Expiry {
  /** ISO 8601. */
  at: string;
  onExpiry: 'stop' | 'remove';
  /** The time has come: the plan stops or removes it. */
  expired: boolean;
  /** A ttl of a unit not created yet: counted from its first creation, not from now. */
  fromNow?: boolean;
}

export interface Plan {
  units: UnitPlan[];
  /** Why nothing is pruned this pass, when a guard applies. */
  pruneGuard?: string;
}

// Derived from the reason table in reasons.ts; re-exported for the modules that import them from here.
export { QUIET_HOLDS, STALLED_REASONS } from './reasons.js';
