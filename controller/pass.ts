import crypto from 'node:crypto';
import os from 'node:os';
import ipaddr from 'ipaddr.js';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import fs from 'node:fs/promises';
import type { DockerDriver } from '../resources/docker.js';
import type { SmolvmDriver } from '../resources/smolvm.js';
import { loadSpecs } from '../specs/load.js';
import { SpecCache } from '../specs/spec-cache.js';
import type { LoadResult } from '../specs/model.js';
import { hashKey, Secrets } from '../specs/secrets.js';
import type { SpecSource } from '../specs/source.js';
import { EventLog } from '../state/events.js';
import { fileHash } from '../state/fsutil.js';
import { readAllInventories, type Inventory } from '../state/inventory.js';
import type { StatePaths } from '../state/paths.js';
import type { DesiredUnit } from './desired.js';
import { executeUnit, type ExecContext, type UnitResult } from './execute.js';
import { plan, type Observed, type PlanOptions } from './plan.js';
import type { Plan, UnitPlan } from './plan-types.js';
import { renderBottle, renderShared, sharedUnit } from './render.js';
import { writeUnitStatus } from './status-writer.js';

export interface PassOptions extends Omit<PlanOptions, 'hostSubnets'> {
  /** Opens the spec source for one pass (a git source resolves its ref anew each time). */
  openSource: () => Promise<SpecSource>;
  /** `--max-deletions`: a pass that would remove more bottles than this removes none. */
  maxDeletions: number;
  /** Validated spec files by content (kept across passes in watch mode). */
  specCache?: SpecCache;
  /** The smolvm driver (`--smolvm PATH`); only run when some bottle has a machine. */
  smolvm?: SmolvmDriver;
  paths: StatePaths;
  allowOutside: boolean;
  secretsFile?: string;
  concurrency: number;
  waitTimeoutMs: number;
  stopTimeoutSec: number;
  dryRun: boolean;
}

export interface PassHooks {
  afterStep?: ExecContext['afterStep'];
  /** Abort signal of one unit's pass (watch mode: a newer spec supersedes it). */
  signalFor?: (unit: string) => AbortSignal | undefined;
  /** Plan only the units this accepts. */
  include?: (unit: string) => boolean;
  /** Shared bound on bottles executing at once (watch mode runs passes side by side). */
  limit?: LimitFunction;
}

export interface Observation {
  load: LoadResult;
  snapshot: Observed;
  inventories: Map<string, Inventory>;
  desired: Map<string, DesiredUnit>;
  plan: Plan;
  secrets: Secrets;
}

export interface PassResult extends Observation {
  results: UnitResult[];
  reconcileId: string;
}

/** Load, observe, plan. Read-only: `plan` and `--dry-run` stop here. */
export async function observeAndPlan(o: PassOptions, docker: DockerDriver, opts: { createKey: boolean; include?: (unit: string) => boolean }): Promise<Observation> {
  const [load, docked, inventories] = await Promise.all([
    specsOf(o, opts.createKey),
    docker.snapshot(),
    readAllInventories(o.paths),
  ]);
  const snapshot: Observed = docked;
  const secrets = await Secrets.load({ secretsFile: o.secretsFile, key: await hashKey(o.paths.hashKey, opts.createKey) });
  const desired = new Map<string, DesiredUnit>();
  const rctx = { prefix: o.prefix, instance: o.instance, paths: o.paths };
  for (const doc of load.bottles.values()) desired.set(doc.metadata.name, renderBottle(doc, rctx));
  for (const doc of load.shared.values()) desired.set(sharedUnit(doc.metadata.name), renderShared(doc, rctx));
  const wantsMachines =
    [...desired.values()].some((d) => d.machine) ||
    [...inventories.values()].some((inv) => Object.values(inv.resources).some((r) => r.type === 'machine'));
  if (wantsMachines) Object.assign(snapshot, await observeMachines(o.smolvm));
  const fromStats = new Map<string, string | undefined>();
  await Promise.all(
    [...desired.values()].flatMap((d) => (d.machine?.from ? [d.machine.from] : [])).map(async (f) => {
      const st = await fs.stat(f).catch(() => undefined);
      fromStats.set(f, st ? `${st.size}:${Math.round(st.mtimeMs)}` : undefined);
    }),
  );
  const fileHashes = new Map<string, string | undefined>();
  await Promise.all(
    // Only the units this pass plans: a per-bottle pass in watch mode reads only its own files.
    [...desired.values()]
      .filter((d) => !opts.include || opts.include(d.unit))
      .flatMap((d) => d.containers.flatMap((c) => c.files))
      .map(async (f) => fileHashes.set(f.hostPath, await fileHash(f.hostPath))),
  );
  const p = plan({
    load,
    desired,
    snapshot,
    inventories,
    fileHashes,
    fromStats,
    secretDigest: (v) => secrets.digest(v),
    opts: { ...o, hostSubnets: hostSubnets() },
    include: opts.include,
  });
  return { load, snapshot, inventories, desired, plan: p, secrets };
}

/** Load the specs, through the content cache; only a writing command (reconcile) saves it. */
export async function specsOf(o: PassOptions, save: boolean): Promise<LoadResult> {
  o.specCache ??= await SpecCache.open(o.paths.specCache);
  const load = await loadSpecs(await o.openSource(), { allowOutside: o.allowOutside, cache: o.specCache });
  if (save) await o.specCache.save();
  return load;
}

/** One `machine ls --json` (after a one-time version check); a failure holds only smolvm bottles. */
async function observeMachines(smolvm: SmolvmDriver | undefined): Promise<Pick<Observed, 'machines' | 'machineError'>> {
  if (!smolvm) return { machineError: 'no smolvm driver configured' };
  try {
    await smolvm.assertSupported();
    return { machines: await smolvm.list() };
  } catch (e) {
    return { machineError: (e as Error).message };
  }
}

/** One reconcile pass over every unit (or `only` those): observe, plan, execute, report. */
export async function runPass(o: PassOptions, docker: DockerDriver, log: Logger, hooks: PassHooks = {}): Promise<PassResult> {
  const reconcileId = crypto.randomBytes(6).toString('hex');
  const plog = log.child({ reconcileId });
  const obs = await observeAndPlan(o, docker, { createKey: true, include: hooks.include });
  const events = new EventLog(o.paths);
  const ctx: ExecContext = {
    docker,
    smolvm: o.smolvm,
    paths: o.paths,
    events,
    log: plog,
    secrets: obs.secrets,
    reconcileId,
    publishHost: o.publishHost,
    waitTimeoutMs: o.waitTimeoutMs,
    stopTimeoutSec: o.stopTimeoutSec,
    afterStep: hooks.afterStep,
  };
  const limit = hooks.limit ?? pLimit(o.concurrency);
  const run = (u: UnitPlan) =>
    limit(async (): Promise<UnitResult> => {
      if (u.state === 'held') {
        return { unit: u.unit, ok: !u.held!.failure, executed: 0, error: u.held!.failure ? u.held!.message : undefined, reason: u.held!.reason };
      }
      // A removed unit with nothing left to remove (a crash after its last step) still drops its state.
      if (!u.actions.length && !u.removeUnit) return { unit: u.unit, ok: true, executed: 0 };
      return executeUnit(u, obs.inventories.get(u.unit), { ...ctx, signal: hooks.signalFor?.(u.unit) });
    });
  // Shared sidecars first: bottles connect to them, and must never hold every slot while waiting.
  const byUnit = new Map<string, UnitResult>();
  for (const phase of ['shared', 'bottle'] as const) {
    const units = obs.plan.units.filter((u) => u.kind === phase);
    (await Promise.all(units.map(run))).forEach((r) => byUnit.set(r.unit, r));
  }
  const results = obs.plan.units.map((u) => byUnit.get(u.unit)!);
  // Status from what runs after the pass: one more snapshot, only when something changed.
  const changed = results.some((r) => r.executed > 0);
  let after: Observed = obs.snapshot;
  if (changed) {
    after = await docker.snapshot();
    if (obs.snapshot.machines || obs.snapshot.machineError) Object.assign(after, await observeMachines(o.smolvm));
  }
  await Promise.all(
    obs.plan.units.map(async (u, i) => {
      const changed = await writeUnitStatus(o.paths, u, results[i]!, after, obs.load, o.instance);
      // A hold that is a failure (collision, deletion guard, ...) is an event when it begins.
      if (changed && u.state === 'held' && u.held?.failure) {
        await events.append({ unit: u.unit, reconcileId, action: 'hold', cause: u.held.reason, result: 'failed', error: u.held.message, revision: u.revision ?? obs.load.revision });
      }
    }),
  );
  for (const [i, u] of obs.plan.units.entries()) {
    const r = results[i]!;
    // The deletion guard is one decision for the pass: logged once by the caller, not per bottle.
    if (u.state === 'held' && u.held?.failure && u.held.reason !== 'DeletionGuard') plog.warn({ bottle: u.unit, reason: u.held.reason }, u.held.message);
    else if (!r.ok) plog.error({ bottle: u.unit, reason: r.reason }, r.error ?? 'failed');
  }
  return { ...obs, results, reconcileId };
}

/** IPv4 subnets of the host's own interfaces: a bottle network there would shadow them. */
function hostSubnets(): string[] {
  const out: string[] = [];
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4' || a.internal || !a.cidr) continue;
      out.push(`${ipaddr.IPv4.networkAddressFromCIDR(a.cidr).toString()}/${a.cidr.split('/')[1]}`);
    }
  }
  return out;
}
