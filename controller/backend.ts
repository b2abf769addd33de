// The seam between the generic core and a backend that runs a bottle's agent somewhere other
// than a Docker container (smolvm today). The core keeps the lifecycle, the inventory
// discipline, ownership, prune guards, shared sidecars, status and events; a backend renders,
// observes, plans, executes and reports on its own workload, and says how drift is found.
// Backends are listed in resources/backends.ts (runtime) and resources/actions.ts (types).
import type { BottleDoc, SharedSidecarDoc } from '../specs/model.js';
import type { Inventory } from '../state/inventory.js';
import type { ResourceStatus } from '../state/status.js';
import type { DesiredUnit, DesiredWorkload } from './desired.js';
import type { ObservedWorkload, WorkloadObservation } from './observed.js';
import type { ExecContext, Save, StepOutcome } from './exec-context.js';
import type { ActionList, Changed } from './plan-actions.js';
import type { SnapshotIndex } from './plan-index.js';
import type { PlanInput } from './plan-input.js';
import type { Action, Hold, UnitPlan } from './plan-types.js';
import type { Reason } from './reasons.js';
import type { RenderContext } from './render-parts.js';
import type { SubnetChoice } from './plan-subnets.js';
import type { Security } from './security.js';

export interface ObserveRequest {
  /** Units planned this pass that run on this backend. */
  planned: DesiredUnit[];
}

export interface PlanArgs<W extends DesiredWorkload> {
  acts: ActionList;
  d: DesiredUnit;
  w: W;
  inv: Inventory | undefined;
  input: PlanInput;
  index: SnapshotIndex;
  /** What the Docker part of the unit changes in this pass (its addresses may change). */
  changed: Changed;
  /** Add the hash of every resource the workload is made of (the unit's spec hash). */
  unitHashes: string[];
}

/**
 * The pure half of an agent backend: what the planner, the renderer and status ask. It must not
 * import a driver (the planner's import closure stays free of I/O).
 */
export interface AgentPlanner<W extends DesiredWorkload = DesiredWorkload, O extends ObservedWorkload = ObservedWorkload> {
  /** The `spec.backend` value, also the folder name under resources/. */
  readonly name: string;
  /** The type of its objects in the inventory, ownership claims and events. */
  readonly resourceType: string;
  /** Types of its other objects (Swarm's configs beside its services). */
  readonly otherTypes?: readonly string[];
  /** The hold reason when the backend cannot be observed (its bottles only are held). */
  readonly unavailable: Reason;
  /** A bottle document on this backend -> its desired graph (Docker sidecars + the workload). */
  render(doc: BottleDoc, ctx: RenderContext): DesiredUnit;
  /** A SharedSidecar document with this `spec.backend` -> its desired graph (Swarm: one service). */
  renderShared?(doc: SharedSidecarDoc, ctx: RenderContext): DesiredUnit;
  /**
   * Actions that take this backend's shared objects off the networks of a unit being removed
   * (a Swarm SharedSidecar service leaves a removed bottle's overlay before it is removed).
   */
  leaving?(unit: string, networks: { name: string; id: string }[], index: SnapshotIndex): DistributiveOmitAction[];
  /** Why a unit's removal must wait, if one of this backend's objects of someone else's uses its networks. */
  removalBlocked?(unit: string, networks: { name: string; id: string }[], index: SnapshotIndex): string | undefined;
  /** The desired graph once subnets are chosen (e.g. sidecars pinned at known addresses). */
  withAddresses?(d: DesiredUnit, subnets: Map<string, SubnetChoice>): DesiredUnit;
  /** The workload's actions, or a hold. Runs after the unit's containers are planned. */
  plan(args: PlanArgs<W>): Hold | undefined;
  /** The action that removes an owned object of a unit that is no longer declared. */
  removal(o: O, cause: string): DistributiveOmitAction;
  /** The action that stops an owned object and keeps it (an expired bottle), or none when it is stopped. */
  stopping?(o: O, cause: string, rec: Inventory['resources'][string] | undefined): DistributiveOmitAction | undefined;
  /** Removals of a higher phase wait for those of lower ones (default 0): a config after its service. */
  removalPhase?(o: O): number;
  /**
   * The workload's parts that carry `security:` (Swarm's services), for plan's "! widens the
   * seal" lines: what each is, its hardening, and the networks it joins beyond the first.
   */
  hardenedParts?(w: W): HardenedPart[];
  /** Health of the workload for status, from the same snapshot. */
  health(u: UnitPlan, w: W, index: SnapshotIndex): ResourceStatus[];
}

export interface HardenedPart {
  name: string;
  role: 'agent' | 'sidecar' | 'shared';
  component?: string;
  security: Security;
  env: Record<string, string>;
  /** Networks joined beyond its first (a route out when it is the egress network). */
  outs: string[];
}

/** The I/O half: observation, execution and polling, with the backend's own driver. */
export interface AgentRuntime<D = unknown> {
  readonly name: string;
  readonly resourceType: string;
  readonly otherTypes?: readonly string[];
  /** One observation per pass: a constant number of calls, whatever the number of bottles. */
  observe(driver: D | undefined, req: ObserveRequest): Promise<WorkloadObservation>;
  /** One step of an action whose target (`on`) is this backend's resource type. */
  execute(a: Action, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome>;
  /** Drift without an event stream: which workloads run now (name -> running). */
  poll?(driver: D): Promise<Map<string, boolean>>;
  /** The status reason of an error its driver threw (undefined: not one of its errors). */
  reasonOf?(err: unknown): Reason | undefined;
}

/** An action as an ActionList takes it (without id and after). */
export type DistributiveOmitAction = Parameters<ActionList['add']>[0];
