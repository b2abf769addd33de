import type { DesiredContainer, DesiredFile, DesiredMachine, DesiredNetwork, DesiredUnit, Endpoint } from './desired.js';
import type { Reason } from './reasons.js';

export type ActionKind =
  | 'create'
  | 'connect'
  | 'disconnect'
  | 'start'
  | 'rewrite-file'
  | 'signal'
  | 'exec'
  | 'restart'
  | 'recreate'
  | 'remove'
  | 'adopt'
  /** In-place change of a container's host settings (restart policy) without a restart. */
  | 'update';

export interface Action {
  id: number;
  kind: ActionKind;
  resource: { type: 'network' | 'container' | 'machine' | 'file'; name: string };
  cause: string;
  /** Ids of the actions this one waits for (dependency order). */
  after: number[];
  /** Printed as part of the action before it (the start that follows a create). */
  implicit?: boolean;
  network?: { desired: DesiredNetwork; subnet: string; gateway: string; ipRange?: string; hash: string; config: Record<string, unknown> };
  container?: {
    desired: DesiredContainer;
    /** Undefined while a placeholder can only be resolved once a sidecar runs (executor resolves). */
    hash?: string;
    config?: Record<string, unknown>;
    /** Recreate only if the hash, resolved at execution, differs from the running container's. */
    verifyHash?: string;
    /** The image's STOPSIGNAL (or SIGTERM): set explicitly so a signal through the API keeps the restart policy. */
    stopSignal: string;
  };
  /** smolvm agent: create / recreate payload, like `container`. */
  machine?: { desired: DesiredMachine; hash?: string; config?: Record<string, unknown>; verifyHash?: string };

  /** A file copied into this machine (`machine cp`) rather than bind-mounted. */
  intoMachine?: string;
  endpoint?: Endpoint;
  /** Connect: first disconnect a stale endpoint of the same network (a hard-killed run can leave one). */
  replaceStale?: boolean;
  /** Disconnect: the network; remove of a container: its role, for ordering. */
  networkName?: string;
  /**
   * The network's ID when it already exists (connect to agent.networks, disconnect, remove).
   * Docker looks a network up by full ID before by name, so a network *named* like another's
   * ID would otherwise be mistaken for it: an agent would land on Docker's bridge.
   */
  networkId?: string;
  file?: DesiredFile;
  /** For signal / exec / restart: the files whose content this delivers (recorded on success). */
  delivers?: DesiredFile[];
  signal?: string;
  exec?: string[];
  /** Containers that must be running (healthy if they have a check) before this action runs. */
  waitFor?: string[];
  /** Files written (in place) before a create or recreate, so the bind-mount sources exist. */
  fileWrites?: DesiredFile[];
  /**
   * Owner of rendered files that name none: the container user's ids, or (create) the image's
   * user name, resolved from the created container's /etc/passwd before it starts.
   */
  fileOwner?: { uid: number; gid: number } | { user: string };
  /** Inventory entry made by adopt. */
  adopt?: {
    type: 'network' | 'container' | 'machine';
    role: string;
    specHash?: string;
    delivered?: Record<string, string>;
    /** The resource's owner label when it is taken over from another state directory (`--adopt`). */
    owner?: string;
    /** Docker's ID of what is adopted. */
    id?: string;
    /** Proven equal to `specHash` though its label says this (a new secret HMAC key). */
    labelHash?: string;
    applied?: Record<string, unknown>;
  };
  /** update: the restart policy to set in place. */
  restartPolicy?: 'always';
}

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
}

export interface Plan {
  units: UnitPlan[];
  /** Why nothing is pruned this pass, when a guard applies. */
  pruneGuard?: string;
}

// Derived from the reason table in reasons.ts; re-exported for the modules that import them from here.
export { QUIET_HOLDS, STALLED_REASONS } from './reasons.js';
