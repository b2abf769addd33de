import crypto from 'node:crypto';
import os from 'node:os';
import ipaddr from 'ipaddr.js';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import type { DockerDriver } from '../resources/docker/driver.js';
import { agentRuntimes } from '../resources/runtimes.js';
import type { AgentRuntime } from './backend.js';
import type { WorkloadObservation } from './observed.js';
import { loadSpecs } from '../specs/load.js';
import { SpecCache } from '../specs/spec-cache.js';
import type { LoadResult } from '../specs/model.js';
import { hashKey, Secrets } from '../specs/secrets.js';
import type { SpecSource } from '../specs/source.js';
import { EventLog } from '../state/events.js';
import { fileStamp } from '../state/fsutil.js';
import { readAllStatus, removeStatus, writeStatus, type UnitStatus } from '../state/status.js';
import { ImageCache } from '../state/image-cache.js';
import { ownerIdentity, type OwnerIdentity } from '../state/owner.js';
import { normalizeImageRef } from '../resources/docker/image-ref.js';
import { DockerError } from '../resources/docker/errors.js';
import type { ObservedContainer } from '../resources/docker/driver.js';
import { numericUser } from './image-user.js';
import type { PassProgress } from './progress.js';
import type { GitTracker } from './git-tracker.js';
import { L } from './labels.js';
import { StatePaths } from '../state/paths.js';
import { readAllInventories, type Inventory } from '../state/inventory.js';

import type { DesiredUnit } from './desired.js';
import { executeUnit, unrecorded, type ExecContext, type UnitResult } from './execute.js';
import { plan, type Observed, type PlanOptions } from './plan.js';
import type { Plan, UnitPlan } from './plan-types.js';
import { renderBottle, renderShared, sharedUnit } from './render.js';
import { writeUnitStatus } from './status-writer.js';
import { notifyPass, transitionOf, type Notification } from './notify.js';
import { PASS_HOLDS } from './notify-pass.js';
import type { Reason } from './reasons.js';
import { SnapshotIndex } from './plan-index.js';
import { selectDocuments, type Selector } from '../specs/selector.js';

export interface PassOptions extends Omit<PlanOptions, 'hostSubnets' | 'owner'> {
  /** Opens the spec source for one pass. */
  openSource: () => Promise<SpecSource>;
  /** `--git`: which revision is applied (fetched, verified) — refreshed by its caller, not per pass. */
  tracker?: GitTracker;
  /** `--selector`: the bottles of the source this reconciler serves (all without it). */
  selector?: Selector;
  /** `--notify`: told of each transition of a bottle's Ready condition (never waited for). */
  notify?: (n: Notification) => void;
  /** `--max-deletions`: a pass that would remove more bottles than this removes none. */
  maxDeletions: number;
  /** Validated spec files by content (kept across passes in watch mode). */
  specCache?: SpecCache;
  /** Agent backends' drivers by backend name (`--smolvm PATH`); each asked only when a bottle needs it. */
  drivers: Map<string, unknown>;
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
  /**
   * Containers the event stream says died: the list API can still show them running (Docker
   * emits `die` before it updates the state it lists), so they are inspected.
   */
  reinspect?: Set<string>;
  /** Progress of the pass, given how many units have work (undefined: none shown). */
  progress?: (total: number) => PassProgress | undefined;
  /** The plan, before anything of it runs (watch mode counts removals as they begin). */
  planned?: (plan: Plan) => void;
}

export interface Observation {
  load: LoadResult;
  snapshot: Observed;
  inventories: Map<string, Inventory>;
  desired: Map<string, DesiredUnit>;
  plan: Plan;
  secrets: Secrets;
  owner: OwnerIdentity;
  images: ImageCache;
  /** Status files as they were before the pass (read with everything else). */
  statuses: Map<string, UnitStatus>;
}

export interface PassResult extends Observation {
  results: UnitResult[];
  reconcileId: string;
  /** What runs after the pass (the snapshot before it, when nothing was executed). */
  after: Observed;
}

/** Load, observe, plan. Read-only: `plan` and `--dry-run` stop here. */
export async function observeAndPlan(
  o: PassOptions,
  docker: DockerDriver,
  opts: { createKey: boolean; include?: (unit: string) => boolean; reinspect?: Set<string> },
): Promise<Observation> {
  // Everything read at once: the engine's answer (the slowest part) arrives while the spec
  // files are loaded, rendered and the rendered files on disk are stamped.
  const docked = docker.snapshot();
  docked.catch(() => {}); // awaited below; a rejection must not go unhandled meanwhile
  const [load, inventories, owner, images, statuses] = await Promise.all([
    specsOf(o, opts.createKey),
    readAllInventories(o.paths),
    ownerIdentity(o.paths, opts.createKey),
    ImageCache.open(o.paths),
    readAllStatus(o.paths, opts.include),
  ]);
  const secrets = await Secrets.load({ secretsFile: o.secretsFile, key: await hashKey(o.paths.hashKey, opts.createKey) });
  const desired = new Map<string, DesiredUnit>();
  const rctx = { prefix: o.prefix, instance: o.instance, owner, paths: o.paths };
  for (const doc of load.bottles.values()) desired.set(doc.metadata.name, renderBottle(doc, rctx));
  for (const doc of load.shared.values()) desired.set(sharedUnit(doc.metadata.name), renderShared(doc, rctx));
  const planned = [...desired.values()].filter((d) => !opts.include || opts.include(d.unit));
  const fileHashes = new Map<string, string | undefined>();
  const fileOwners = new Map<string, { uid: number; gid: number }>();
  // Only the units this pass plans: a per-bottle pass in watch mode reads only its own files.
  const stamped = Promise.all(
    planned.flatMap((d) => d.containers.flatMap((c) => c.files)).map(async (f) => {
      const st = await fileStamp(f.hostPath);
      fileHashes.set(f.hostPath, st?.hash);
      if (st) fileOwners.set(f.hostPath, { uid: st.uid, gid: st.gid });
    }),
  );
  const snapshot: Observed = await docked;
  await stamped;
  await reinspect(snapshot, docker, opts.reinspect);
  snapshot.workloads = await observeWorkloads(o, wantedBackends(desired, inventories), planned);
  // Not known (the engine refused `info`): not checked; the create then says what the engine says.
  if (planned.some((d) => d.containers.some((c) => c.runtime))) snapshot.runtimes = await docker.runtimes().catch(() => undefined);
  const observedSecrets = new Map<string, Record<string, string | undefined>>();
  await Promise.all([
    ...adoptionCandidates(planned, snapshot, inventories).map(async (c) => {
      observedSecrets.set(c.name, await secretsInContainer(docker, c.name, c.secretEnv, secrets));
    }),
    learnImages(docker, images, snapshot, planned),
  ]);
  const p = plan({
    load,
    desired,
    snapshot,
    inventories,
    fileHashes,
    fileOwners,
    observedSecrets,
    images: images.records,
    secretDigest: (v) => secrets.digest(v),
    // Listing the host's interfaces costs ~0.1 ms each, and every bridge Docker made is one: only
    // a pass that may choose a subnet needs them.
    opts: { ...o, owner: owner.id, hostSubnets: mayAllocate(planned, snapshot) ? hostSubnets() : [], liveOwners: o.adopt ? await liveOwners(snapshot, o.instance, owner.id) : undefined },
    include: opts.include,
  });
  return { load, snapshot, inventories, desired, plan: p, secrets, owner, images, statuses: new Map(statuses.map((st) => [st.unit, st])) };
}

/**
 * Other owners of this instance whose state directory still exists here (its owner.json names
 * that id): `--adopt` is for what a lost state directory left, never a live one's bottles.
 */
async function liveOwners(snapshot: Observed, instance: string, self: string): Promise<Set<string>> {
  const dirs = new Map<string, string>();
  for (const r of [...snapshot.networks, ...snapshot.containers]) {
    const owner = r.labels[L.owner];
    const dir = r.labels[L.ownerDir];
    if (r.labels[L.instance] === instance && owner && owner !== self && dir) dirs.set(owner, dir);
  }
  const live = new Set<string>();
  await Promise.all([...dirs].map(async ([owner, dir]) => {
    if ((await ownerIdentity(new StatePaths(dir), false)).id === owner) live.add(owner);
  }));
  return live;
}

/** Patch the listed state and networks of containers that the event stream says changed since. */
async function reinspect(snapshot: Observed, docker: DockerDriver, names: Set<string> | undefined): Promise<void> {
  if (!names?.size) return;
  await Promise.all(
    snapshot.containers.filter((c) => names.has(c.name) || names.has(c.id)).map(async (c) => {
      try {
        const info = await docker.inspectContainer(c.name);
        const st = info.State;
        c.state = (st.Status as ObservedContainer['state']) ?? c.state;
        c.exitCode = st.ExitCode;
        c.status = st.Running ? c.status : `Exited (${st.ExitCode})`;
        c.health = (st.Health?.Status as ObservedContainer['health']) ?? undefined;
        c.restartPolicy = info.HostConfig?.RestartPolicy?.Name;
        // A network (dis)connect is announced before the list shows it, as a death is.
        c.networks = Object.fromEntries(Object.entries(info.NetworkSettings.Networks ?? {}).map(([n, ep]) => [n, { networkId: ep.NetworkID ?? '', ip: ep.IPAddress || undefined }]));
      } catch (e) {
        if (!(e instanceof DockerError && e.kind === 'not-found')) throw e;
        snapshot.containers = snapshot.containers.filter((x) => x !== c);
      }
    }),
  );
}

/**
 * Containers with secrets that would be adopted with no record of how they were created (the
 * state directory was lost): the secret values they hold prove whether they are unchanged.
 */
function adoptionCandidates(planned: DesiredUnit[], snapshot: Observed, inventories: Map<string, Inventory>) {
  const byName = new Map(snapshot.containers.map((c) => [c.name, c] as const));
  return planned.flatMap((d) => d.containers.filter((c) => Object.keys(c.secretEnv).length && byName.has(c.name) && !inventories.get(d.unit)?.resources[c.name]));
}

/** Keyed digests of the secret variables' values in a container's environment (values never kept). */
async function secretsInContainer(docker: DockerDriver, name: string, secretEnv: Record<string, string>, secrets: Secrets): Promise<Record<string, string | undefined>> {
  const env = (await docker.inspectContainer(name)).Config.Env ?? [];
  const out: Record<string, string | undefined> = {};
  for (const k of Object.keys(secretEnv)) {
    const line = env.find((e) => e.startsWith(`${k}=`));
    out[k] = line === undefined ? undefined : secrets.digestOf(line.slice(k.length + 1));
  }
  return out;
}

/** User and stop signal of every image a planned container uses (cached by immutable image ID). */
async function learnImages(docker: DockerDriver, images: ImageCache, snapshot: Observed, planned: DesiredUnit[]): Promise<void> {
  const ids = new Set(planned.flatMap((d) => d.containers.map((c) => snapshot.images.get(normalizeImageRef(c.image)))).filter((x): x is string => !!x));
  await Promise.all(
    [...ids].filter((id) => !images.get(id)).map(async (id) => {
      const cfg = await docker.imageConfig(id);
      images.set(id, { ...cfg, ...numericUser(cfg.user) });
    }),
  );
}

/** Load the specs, through the content cache; only a writing command (reconcile) saves it. */
export async function specsOf(o: PassOptions, save: boolean): Promise<LoadResult> {
  o.specCache ??= await SpecCache.open(o.paths.specCache);
  const load = selectDocuments(await loadSpecs(await o.openSource(), { allowOutside: o.allowOutside, cache: o.specCache, prefix: o.prefix }), o.selector);
  if (save) await o.specCache.save();
  return load;
}

/** Agent backends some declared unit runs on, or some inventory records an object of. */
function wantedBackends(desired: Map<string, DesiredUnit>, inventories: Map<string, Inventory>): AgentRuntime[] {
  const types = new Set<string>();
  for (const inv of inventories.values()) for (const r of Object.values(inv.resources)) types.add(r.type);
  return agentRuntimes().filter((b) => [...desired.values()].some((d) => d.workload?.backend === b.name) || types.has(b.resourceType) || !!b.otherTypes?.some((t) => types.has(t)));
}

/** One observation of each wanted agent backend (a failure holds only its bottles). */
async function observeWorkloads(o: PassOptions, backends: AgentRuntime[], planned: DesiredUnit[]): Promise<Map<string, WorkloadObservation> | undefined> {
  if (!backends.length) return undefined;
  const seen = await Promise.all(backends.map(async (b) => [b.name, await b.observe(o.drivers.get(b.name), { planned: planned.filter((d) => d.workload?.backend === b.name) })] as const));
  return new Map(seen);
}

/** One reconcile pass over every unit (or `only` those): observe, plan, execute, report. */
export async function runPass(o: PassOptions, docker: DockerDriver, log: Logger, hooks: PassHooks = {}): Promise<PassResult> {
  const reconcileId = crypto.randomBytes(6).toString('hex');
  const plog = log.child({ reconcileId });
  const seenAt = Date.now();
  const obs = await observeAndPlan(o, docker, { createKey: true, include: hooks.include, reinspect: hooks.reinspect });
  hooks.planned?.(obs.plan);
  const events = new EventLog(o.paths);
  const ctx: ExecContext = {
    docker,
    drivers: o.drivers,
    paths: o.paths,
    events,
    log: plog,
    secrets: obs.secrets,
    reconcileId,
    publishHost: o.publishHost,
    waitTimeoutMs: o.waitTimeoutMs,
    stopTimeoutSec: o.stopTimeoutSec,
    afterStep: hooks.afterStep,
    owner: obs.owner,
    images: obs.images,
  };
  const limit = hooks.limit ?? pLimit(o.concurrency);
  const work = obs.plan.units.filter((u) => u.state !== 'held' && u.actions.length > 0);
  const progress = work.length ? hooks.progress?.(work.length) : undefined;
  if (progress) ctx.onStep = (unit, a) => progress.step(unit, `${a.kind} ${a.resource.name}`);
  progress?.start();
  const run = (u: UnitPlan) =>
    limit(async (): Promise<UnitResult> => {
      if (progress && u.state !== 'held' && u.actions.length) progress.unitStarted(u.unit);
      const r = await runUnit(u);
      if (progress && u.state !== 'held' && u.actions.length) progress.unitDone(u.unit, r.ok);
      return r;
    });
  const runUnit = async (u: UnitPlan): Promise<UnitResult> => {
    if (u.state === 'held') {
      // A held bottle that runs still has its first creation recorded (a ttl counts from it).
      if (u.held!.reason !== 'Suspended' && unrecorded(u, obs.inventories.get(u.unit))) await executeUnit({ ...u, actions: [] }, obs.inventories.get(u.unit), ctx).catch(() => {});
      return { unit: u.unit, ok: !u.held!.failure, executed: 0, error: u.held!.failure ? u.held!.message : undefined, reason: u.held!.reason };
    }
    // A removed unit with nothing left to remove (a crash after its last step) still drops its state.
    // A ttl needs the unit's creation time recorded (also one created before bottled kept it), exec its shell.
    const stamp = u.state !== 'removed' && unrecorded(u, obs.inventories.get(u.unit));
    const r = !u.actions.length && !u.removeUnit && !stamp ? { unit: u.unit, ok: true, executed: 0 } : await executeUnit(u, obs.inventories.get(u.unit), { ...ctx, signal: hooks.signalFor?.(u.unit) });
    if (r.ok && u.alerts?.length) return { ...r, ok: false, reason: 'ForeignEndpoint', error: u.alerts.join('; ') };
    return r;
  };
  // Shared sidecars first: bottles connect to them, and must never hold every slot while waiting.
  const byUnit = new Map<string, UnitResult>();
  try {
    // Shared sidecars before the bottles that join them; a removed one after the bottles, which
    // may still be using it until they leave.
    const phases = [(u: UnitPlan) => u.kind === 'shared' && u.state !== 'removed', (u: UnitPlan) => u.kind === 'bottle', (u: UnitPlan) => u.kind === 'shared' && u.state === 'removed'];
    for (const phase of phases) {
      const units = obs.plan.units.filter(phase);
      (await Promise.all(units.map(run))).forEach((r) => byUnit.set(r.unit, r));
    }
  } finally {
    progress?.stop();
  }
  const results = obs.plan.units.map((u) => byUnit.get(u.unit)!);
  // Status from what runs after the pass: one more snapshot, only when something changed.
  const changed = results.some((r) => r.executed > 0);
  let after: Observed = obs.snapshot;
  let inventories = obs.inventories;
  if (changed) {
    [after, inventories] = await Promise.all([docker.snapshot(), readAllInventories(o.paths)]);
    const asked = agentRuntimes().filter((b) => obs.snapshot.workloads?.has(b.name));
    after.workloads = await observeWorkloads(o, asked, obs.plan.units.flatMap((u) => (u.desired ? [u.desired] : [])));
  }
  await obs.images.save(new Set(after.images.values()));
  const index = new SnapshotIndex(after, {
    instance: o.instance,
    owner: obs.owner.id,
    inventories,
    imageLabels: after.imageLabels ?? new Map(),
    adopt: false,
    declared: () => false,
  });
  await Promise.all(
    obs.plan.units.map(async (u, i) => {
      const prev = obs.statuses.get(u.unit) ?? null;
      const { readyChanged: changed, ready, status } = await writeUnitStatus(o.paths, u, results[i]!, index, obs.load, prev);
      const before = prev?.conditions.find((c) => c.type === 'Ready');
      const event = o.notify ? bottleEvent(before, ready, prev?.lastNotification?.event) : undefined;
      if (event && ready && status) {
        const time = new Date().toISOString();
        o.notify!({ event, bottle: u.name, kind: u.kind, reason: ready.reason, message: ready.message, revision: u.revision ?? obs.load.revision, time });
        await writeStatus(o.paths, { ...status, lastNotification: { event, reason: ready.reason, time } }, status);
      }
      // A hold that is a failure (collision, deletion guard, ...) is an event when it begins.
      if (changed && u.state === 'held' && u.held?.failure) {
        await events.append({ unit: u.unit, reconcileId, action: 'hold', cause: u.held.reason, result: 'failed', error: u.held.message, revision: u.revision ?? obs.load.revision });
      }
    }),
  );
  // A status of a unit nothing knows any more (a file that was never valid, then deleted): gone too.
  const planned = new Set(obs.plan.units.map((u) => u.unit));
  await Promise.all([...obs.statuses.keys()].filter((u) => !planned.has(u) && !inventories.has(u)).map((u) => removeStatus(o.paths, u)));
  if (o.notify) await notifyPass(o.paths, obs.plan, obs.load, o.notify, (u) => !hooks.include || hooks.include(u), seenAt);
  for (const [i, u] of obs.plan.units.entries()) {
    const r = results[i]!;
    // The deletion guard is one decision for the pass: logged once by the caller, not per bottle.
    if (u.state === 'held' && u.held?.failure && u.held.reason !== 'DeletionGuard') plog.warn({ bottle: u.unit, reason: u.held.reason }, u.held.message);
    else if (!r.ok) plog.error({ bottle: u.unit, reason: r.reason }, r.error ?? 'failed');
  }
  return { ...obs, results, reconcileId, after };
}

/** Does some planned network lack an observed one (so a subnet may be chosen or rechecked)? */
function mayAllocate(planned: DesiredUnit[], snapshot: Observed): boolean {
  const names = new Set(snapshot.networks.map((n) => n.name));
  return planned.some((d) => d.networks.some((n) => !names.has(n.name) && !n.fixedSubnet));
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

/**
 * What a bottle's own message says, if anything. A pass hold (an invalid file, the guards) is
 * said once for all it holds, by notifyPass: while it holds, the bottle says nothing; once it
 * lets go, the bottle says what is new since its own last message (broken in another way, or
 * recovered from what it said before).
 */
function bottleEvent(before: { status: string; reason: string } | undefined, ready: { status: string; reason: string; message: string } | undefined, lastSaid: string | undefined): Notification['event'] | undefined {
  if (!ready || PASS_HOLDS.has(ready.reason as Reason)) return undefined;
  if (before && PASS_HOLDS.has(before.reason as Reason)) {
    if (ready.status === 'False' && lastSaid !== 'not-ready') return 'not-ready';
    if (ready.status === 'True' && lastSaid === 'not-ready') return 'recovered';
    return undefined;
  }
  return transitionOf(before?.status, ready);
}
