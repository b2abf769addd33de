import { reasonOf } from './reason-of.js';
import type { Reason } from './reasons.js';
import type { AdoptAction } from './action-base.js';
import { backendStep } from '../resources/runtimes.js';
import { emptyInventory, removeUnitState, resourceKey, writeInventory, type Inventory } from '../state/inventory.js';
import { removeStatus } from '../state/status.js';
import type { ExecContext, Save, StepOutcome } from './exec-context.js';
import type { Action, UnitPlan } from './plan-types.js';

export type { ExecContext } from './exec-context.js';
export { AbortedError, ReadinessError } from './errors.js';

export interface UnitResult {
  unit: string;
  ok: boolean;
  executed: number;
  /** The pass stopped early on purpose (a conditional recreate was not needed): plan again at once. */
  requeue?: boolean;
  error?: string;
  /** Reason for status when failed (ImageMissing, DockerError, NotReady, ...). */
  reason?: Reason;
}

/** Independent actions of one unit (two sidecars' chains) run at most this many at a time. */
const UNIT_PARALLELISM = 4;

/**
 * Execute one unit's actions in dependency order (`after`): an action starts once every action
 * it waits for has succeeded, and independent ones run side by side, as compose does. No
 * decisions here beyond "a step failed (or found its recreate unneeded): start nothing more".
 */
export async function executeUnit(up: UnitPlan, inventory: Inventory | undefined, ctx: ExecContext): Promise<UnitResult> {
  const log = ctx.log.child({ bottle: up.unit });
  const inv = inventory ?? emptyInventory(up.unit);
  if (up.source) inv.source = { file: up.source, revision: up.revision };
  Object.assign(inv.subnets, up.subnets);
  let invDirty = !inventory || Object.keys(up.subnets).some((k) => inventory.subnets[k] !== up.subnets[k]);
  if (up.desired && !up.removeUnit) {
    // A ttl counts from here: the first time anything of the declared unit is recorded.
    if (!inv.createdAt) {
      inv.createdAt = new Date().toISOString();
      invDirty = true;
    }
    if (unrecorded(up, inv)) {
      if (up.desired.shell) inv.shell = up.desired.shell;
      else delete inv.shell;
      invDirty = true;
    }
  }
  // Writes are chained: each writes the whole record as it is then, so the file always ends with
  // the latest state even when steps finish out of order.
  let writes = Promise.resolve();
  const flush = (): Promise<void> => {
    const write = writes.then(async () => {
      if (!invDirty) return;
      invDirty = false;
      try {
        await writeInventory(ctx.paths, inv);
      } catch (e) {
        invDirty = true; // still to be written: the next save tries again
        throw e;
      }
    });
    writes = write.catch(() => {}); // one failed write fails its own step, not every later one
    return write;
  };
  const save: Save = async (change) => {
    change?.();
    invDirty = true;
    await flush();
  };

  let executed = 0;
  let stop: UnitResult | undefined;
  const done = new Set<number>();
  const started = new Set<number>();
  const running = new Map<number, Promise<void>>();

  const run = async (a: Action): Promise<void> => {
    const what = `${a.kind} ${a.resource.type} ${a.resource.name}`;
    ctx.onStep?.(up.unit, a);
    try {
      const did = await step(a, inv, ctx, save);
      if (did === 'skipped') {
        // The rest of the plan assumed a recreate: start nothing more and plan the unit again from what runs now.
        log.info({ action: a.kind, resource: a.resource.name }, `${a.resource.name}: environment unchanged, not recreated; planning again`);
        stop ??= { unit: up.unit, ok: true, executed, requeue: true };
        return;
      }
      executed++;
      done.add(a.id);
      await ctx.events.append({ unit: up.unit, reconcileId: ctx.reconcileId, action: a.kind, resource: `${a.resource.type} ${a.resource.name}`, cause: a.cause, result: 'ok', revision: up.revision });
      log.info({ action: a.kind, resource: a.resource.name, cause: a.cause }, what);
      await ctx.afterStep?.(up.unit, a);
    } catch (e) {
      const err = e as Error;
      await ctx.events.append({ unit: up.unit, reconcileId: ctx.reconcileId, action: a.kind, resource: `${a.resource.type} ${a.resource.name}`, cause: a.cause, result: 'failed', error: err.message, revision: up.revision });
      log.error({ action: a.kind, resource: a.resource.name, err: { message: err.message } }, `${what} failed`);
      // A failure outweighs a requeue another step asked for: it is what status must show.
      if (!stop || stop.ok) stop = { unit: up.unit, ok: false, executed, error: err.message, reason: reasonOf(e) };
    }
  };

  for (;;) {
    if (!stop && ctx.signal?.aborted) stop = { unit: up.unit, ok: false, executed, error: 'aborted', reason: 'Aborted' };
    if (!stop) {
      for (const a of up.actions) {
        if (running.size >= UNIT_PARALLELISM) break;
        if (started.has(a.id) || !a.after.every((id) => done.has(id))) continue;
        started.add(a.id);
        running.set(a.id, run(a).finally(() => running.delete(a.id)));
      }
    }
    if (!running.size) break;
    await Promise.race(running.values());
  }
  await flush().catch(() => {});
  if (stop) return { ...stop, executed };
  if (started.size < up.actions.length) {
    // Only a plan whose `after` names an action that is not in it gets here: a planner bug.
    return { unit: up.unit, ok: false, executed, error: 'actions wait for one another in a circle', reason: 'Failed' };
  }
  if (up.removeUnit && up.expiry?.expired && inv.createdAt) {
    // Still declared: what stays is when it was first created (a ttl is not counted afresh,
    // also after a crash here: the record is replaced before anything else goes) and its
    // status, which says Expired until the document goes.
    await writeInventory(ctx.paths, { ...emptyInventory(up.unit), source: inv.source, createdAt: inv.createdAt });
    await removeUnitState(ctx.paths, up.unit, { keepInventory: true });
  } else if (up.removeUnit) {
    await removeUnitState(ctx.paths, up.unit);
    if (!up.expiry?.expired) await removeStatus(ctx.paths, up.unit);
  }
  return { unit: up.unit, ok: true, executed };
}

/** What the inventory keeps of a declared unit besides its resources, and does not have yet. */
export function unrecorded(up: UnitPlan, inv: Inventory | undefined): boolean {
  if (!up.desired || up.removeUnit || !inv) return false;
  return (!!up.desired.lifetime?.ttl && !inv.createdAt) || JSON.stringify(up.desired.shell) !== JSON.stringify(inv.shell);
}

/** The step of one action: the core's own (adopt), or its backend's. */
async function step(a: Action, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  if (a.on === 'inventory') {
    adopt(a, inv);
    await save();
    return 'done';
  }
  return backendStep(a, inv, ctx, save);
}

function adopt(a: AdoptAction, inv: Inventory): void {
  const { type, role, specHash, owner, labelHash, applied, id } = a.adopt;
  inv.resources[resourceKey(type, a.resource.name)] = {
    type,
    role,
    specHash,
    ...(id !== undefined && { id }),
    ...(owner !== undefined && { owner }),
    ...(labelHash !== undefined && { labelHash }),
    ...(applied !== undefined && { applied }),
  };
  if (a.adopt.delivered) inv.delivered[a.resource.name] = { ...a.adopt.delivered, ...inv.delivered[a.resource.name] };
}
