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

/** Execute one unit's actions in order. No decisions here beyond "this step failed: stop". */
export async function executeUnit(up: UnitPlan, inventory: Inventory | undefined, ctx: ExecContext): Promise<UnitResult> {
  const log = ctx.log.child({ bottle: up.unit });
  const inv = inventory ?? emptyInventory(up.unit);
  if (up.source) inv.source = { file: up.source, revision: up.revision };
  Object.assign(inv.subnets, up.subnets);
  let invDirty = !inventory || Object.keys(up.subnets).some((k) => inventory.subnets[k] !== up.subnets[k]);
  const flush = async () => {
    if (invDirty) await writeInventory(ctx.paths, inv);
    invDirty = false;
  };
  let executed = 0;

  for (const a of up.actions) {
    if (ctx.signal?.aborted) return { unit: up.unit, ok: false, executed, error: 'aborted', reason: 'Aborted' };
    const what = `${a.kind} ${a.resource.type} ${a.resource.name}`;
    ctx.onStep?.(up.unit, a);
    try {
      const did = await step(a, inv, ctx, async (change) => {
        change?.();
        invDirty = true;
        await flush();
      });
      if (did === 'skipped') {
        // The rest of the plan assumed a recreate: stop here and plan the unit again from what runs now.
        log.info({ action: a.kind, resource: a.resource.name }, `${a.resource.name}: environment unchanged, not recreated; planning again`);
        await flush();
        return { unit: up.unit, ok: true, executed, requeue: true };
      }
      executed++;
      await ctx.events.append({ unit: up.unit, reconcileId: ctx.reconcileId, action: a.kind, resource: `${a.resource.type} ${a.resource.name}`, cause: a.cause, result: 'ok', revision: up.revision });
      log.info({ action: a.kind, resource: a.resource.name, cause: a.cause }, what);
      await ctx.afterStep?.(up.unit, a);
    } catch (e) {
      await flush().catch(() => {});
      const err = e as Error;
      const reason = reasonOf(e);
      await ctx.events.append({ unit: up.unit, reconcileId: ctx.reconcileId, action: a.kind, resource: `${a.resource.type} ${a.resource.name}`, cause: a.cause, result: 'failed', error: err.message, revision: up.revision });
      log.error({ action: a.kind, resource: a.resource.name, err: { message: err.message } }, `${what} failed`);
      return { unit: up.unit, ok: false, executed, error: err.message, reason };
    }
  }
  if (up.removeUnit) {
    await removeUnitState(ctx.paths, up.unit);
    await removeStatus(ctx.paths, up.unit);
  } else {
    await flush();
  }
  return { unit: up.unit, ok: true, executed };
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
