import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import path from 'node:path';
import type { DockerDriver } from '../resources/docker.js';
import type { SmolvmDriver } from '../resources/smolvm.js';
import { DockerError } from '../resources/docker-errors.js';
import { AbortedError, ReadinessError } from './errors.js';
import { reasonOf, type Reason } from './reasons.js';
import type { Secrets } from '../specs/secrets.js';
import type { EventLog } from '../state/events.js';
import { writeInPlace } from '../state/fsutil.js';
import { emptyInventory, removeUnitState, resourceKey, writeInventory, type Inventory } from '../state/inventory.js';
import type { StatePaths } from '../state/paths.js';
import { removeStatus } from '../state/status.js';
import type { DesiredContainer, DesiredFile, DesiredMachine } from './desired.js';
import { configHash, containerConfig, machineConfig } from './hash.js';
import { substitutePlaceholders } from '../specs/placeholders.js';
import { L } from './labels.js';
import type { Action, UnitPlan } from './plan-types.js';
import type { OwnerIdentity } from '../state/owner.js';
import type { ImageCache } from '../state/image-cache.js';
import crypto from 'node:crypto';
import { secretFreeHash } from './hash.js';
import { resolveUser } from './image-user.js';
import { ownerOf, type FileOwner } from './plan-files.js';

export interface ExecContext {
  docker: DockerDriver;
  /** Present when some bottle uses the smolvm backend. */
  smolvm?: SmolvmDriver;
  paths: StatePaths;
  events: EventLog;
  log: Logger;
  secrets: Secrets;
  reconcileId: string;
  publishHost: string;
  /** Bound on each readiness wait (sidecar healthy before the agent starts). */
  waitTimeoutMs: number;
  stopTimeoutSec: number;
  signal?: AbortSignal;
  /** Called before every step (progress). */
  onStep?: (unit: string, action: Action) => void;
  /** Called after every completed step (tests use it to kill the process between steps). */
  afterStep?: (unit: string, action: Action) => Promise<void> | void;
  /** This state directory (its id is on every resource, set by the renderer). */
  owner: OwnerIdentity;
  /** Image facts learned at observation; a create resolves a named user into it. */
  images: ImageCache;
}

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

export { AbortedError, ReadinessError };

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

type StepOutcome = 'done' | 'skipped';

/** Change the inventory (optionally) and write it now. */
type Save = (change?: () => void) => Promise<void>;

async function step(a: Action, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  const { docker } = ctx;
  const name = a.resource.name;
  if (a.resource.type === 'machine' || a.intoMachine) return machineStep(a, inv, ctx, save);
  switch (a.kind) {
    case 'adopt':
      adopt(a, inv);
      await save();
      return 'done';
    case 'create':
    case 'recreate': {
      if (a.network) {
        const n = a.network;
        // Inventory first: a crash after the create leaves a recorded, labelled network.
        inv.resources[resourceKey('network', name)] = { type: 'network', role: n.desired.role, specHash: n.hash };
        inv.subnets[name] = n.subnet;
        await save();
        if (a.kind === 'recreate') await docker.removeNetwork(a.networkId ?? name).catch(ignoreNotFound);
        const netId = await docker.createNetwork({
          name,
          subnet: n.subnet,
          gateway: n.gateway,
          ipRange: n.ipRange,
          internal: n.desired.internal,
          options: n.desired.options,
          labels: { ...n.desired.labels, [L.specHash]: n.hash },
        });
        await save(() => (inv.resources[resourceKey('network', name)]!.id = netId));
        return 'done';
      }
      const c = a.container!.desired;
      let { hash, config } = a.container!;
      if (!hash) {
        await waitReady(c.waitFor, ctx);
        const env = await resolveAtExecution(c, ctx);
        config = containerConfig(c, env, secretDigests(c, ctx.secrets), ctx.publishHost);
        hash = configHash(config);
        if (a.container!.verifyHash !== undefined && a.container!.verifyHash === hash) return 'skipped';
      }
      const known = a.fileOwner && 'uid' in a.fileOwner ? a.fileOwner : undefined;
      for (const f of a.fileWrites ?? []) await writeInPlace(f.hostPath, f.content, f.mode, ownerOf(f, known));
      inv.resources[name] = { type: 'container', role: c.role, specHash: hash, applied: config, extraNetworks: c.externalNetworks, ...(known && { fileOwner: known }) };
      await save();
      if (a.kind === 'recreate') {
        await docker.stop(name, ctx.stopTimeoutSec);
        await docker.removeContainer(name);
      }
      const id = await docker.createContainer(name, createBody(c, config!, hash, a.container!.stopSignal, ctx));
      if (a.fileOwner && 'user' in a.fileOwner) {
        // The image runs as a named user: its ids are in its own /etc/passwd, readable from the
        // created (not yet started) container. Files are chowned before it starts.
        const ids = await userIds(docker, name, a.fileOwner.user);
        for (const f of c.files) {
          const o = ownerOf(f, ids);
          if (o) await fs.chown(f.hostPath, o.uid, o.gid);
        }
        const imageId = (await docker.inspectContainer(id)).Image;
        const img = ctx.images.get(imageId);
        if (img) ctx.images.set(imageId, { ...img, uid: ids.uid, gid: ids.gid });
        await save(() => (inv.resources[name]!.fileOwner = ids));
      }
      // A fresh container reads the current content at start: everything is delivered. Its ID is
      // recorded with it (a crash before this leaves a record without an ID: its labels prove it).
      await save(() => {
        inv.resources[name]!.id = id;
        inv.delivered[name] = Object.fromEntries(c.files.map((f) => [f.path, f.hash]));
      });
      return 'done';
    }
    case 'connect': {
      await waitReady(a.waitFor ?? [], ctx);
      if (a.replaceStale) await docker.disconnect(a.endpoint!.network, name).catch(() => {});
      try {
        await docker.connect(a.networkId ?? a.endpoint!.network, name, a.endpoint!);
      } catch (e) {
        if (!(e instanceof DockerError && e.kind === 'already-connected')) throw e;
      }
      return 'done';
    }
    case 'disconnect':
      await docker.disconnect(a.networkId ?? a.networkName!, name);
      await save(() => {
        const r = inv.resources[name];
        if (r) r.extraNetworks = (r.extraNetworks ?? []).filter((n) => n !== a.networkName);
      });
      return 'done';
    case 'start':
      await waitReady(a.waitFor ?? [], ctx);
      await docker.start(name);
      return 'done';
    case 'rewrite-file':
      await writeInPlace(a.file!.hostPath, a.file!.content, a.file!.mode, a.fileOwner && 'uid' in a.fileOwner ? a.fileOwner : undefined);
      return 'done';
    case 'signal':
      await docker.signal(name, a.signal!);
      await save(() => recordDelivered(inv, name, a.delivers ?? []));
      return 'done';
    case 'update':
      await docker.update(name, a.restartPolicy!);
      await save(() => {
        const r = inv.resources[name];
        if (r) r.restartPolicy = a.restartPolicy;
      });
      return 'done';
    case 'exec': {
      const r = await docker.exec(name, a.exec!);
      await delivered(a, name, r.exitCode, r.output, inv, save);
      return 'done';
    }
    case 'restart':
      await docker.restart(name, ctx.stopTimeoutSec);
      await save(() => recordDelivered(inv, name, a.delivers ?? []));
      return 'done';
    case 'remove':
      if (a.resource.type === 'network') {
        await docker.removeNetwork(a.networkId ?? name).catch(ignoreNotFound);
        delete inv.subnets[name];
      } else {
        await docker.stop(name, ctx.stopTimeoutSec);
        await docker.removeContainer(name);
        delete inv.delivered[name];
        await fs.rm(ctx.paths.unitDir(inv.unit) + '/' + name, { recursive: true, force: true });
      }
      delete inv.resources[resourceKey(a.resource.type === 'network' ? 'network' : 'container', name)];
      await save();
      return 'done';
  }
}

function adopt(a: Action, inv: Inventory): void {
  const { type, role, specHash, owner, labelHash, applied, id } = a.adopt!;
  inv.resources[resourceKey(type, a.resource.name)] = {
    type,
    role,
    specHash,
    ...(id !== undefined && { id }),
    ...(owner !== undefined && { owner }),
    ...(labelHash !== undefined && { labelHash }),
    ...(applied !== undefined && { applied }),
  };
  if (a.adopt!.delivered) inv.delivered[a.resource.name] = { ...a.adopt!.delivered, ...inv.delivered[a.resource.name] };
}

function smolvmOf(ctx: ExecContext): SmolvmDriver {
  if (!ctx.smolvm) throw new Error('smolvm is not available (--smolvm PATH)');
  return ctx.smolvm;
}

/** HOSTVAR -> value for the machine's --secret-env references: in smolvm's environment only. */
function secretValues(m: DesiredMachine, secrets: Secrets): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.secretEnv)) {
    const value = secrets.value(v);
    if (value === undefined) throw new Error(`secretEnv ${k}: variable ${v} is not set`);
    out[v] = value;
  }
  return out;
}

/** Steps on a smolvm machine: same inventory discipline as containers. */
async function machineStep(a: Action, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  const smolvm = smolvmOf(ctx);
  const name = a.intoMachine ?? a.resource.name;
  switch (a.kind) {
    case 'adopt':
      adopt(a, inv);
      await save();
      return 'done';
    case 'create':
    case 'recreate': {
      const m = a.machine!.desired;
      let { hash, config } = a.machine!;
      if (!hash) {
        await waitReady(m.waitFor, ctx);
        ({ hash, config } = await resolveMachineAtExecution(m, ctx));
        if (a.machine!.verifyHash !== undefined && a.machine!.verifyHash === hash) return 'skipped';
      }
      inv.resources[name] = { type: 'machine', role: 'agent', specHash: hash, applied: config };
      delete inv.delivered[name]; // a new machine has none of its files yet
      await save();
      if (a.kind === 'recreate') {
        await smolvm.stop(name);
        await smolvm.delete(name);
      }
      await waitReady(m.waitFor, ctx);
      const c = config as { env: Record<string, string>; allowCidrs: string[] };
      await smolvm.create({
        name,
        image: m.image,
        from: m.from,
        net: true,
        allowCidrs: c.allowCidrs,
        env: c.env,
        secretEnv: m.secretEnv,
        secretValues: secretValues(m, ctx.secrets),
        cpus: m.cpus,
        memMiB: m.memMiB,
        labels: { ...m.labels, [L.specHash]: hash, [L.configHash]: secretFreeHash(config!) },
        command: m.command,
      });
      return 'done';
    }
    case 'start':
    case 'restart': {
      const values = secretValues(a.machine!.desired, ctx.secrets);
      if (a.kind === 'restart') await smolvm.stop(name); // kills an unreachable zombie too
      await smolvm.start(name, { secretValues: values });
      if (a.delivers) {
        await save(() => recordDelivered(inv, name, a.delivers!));
      }
      return 'done';
    }
    case 'rewrite-file': {
      const f = a.file!;
      await writeInPlace(f.hostPath, f.content, f.mode);
      // cp does not create parent directories (smolvm-cli.md): make them first.
      const dir = path.posix.dirname(f.path);
      if (dir !== '/') {
        const r = await smolvm.exec(name, ['mkdir', '-p', dir]);
        if (r.exitCode !== 0) throw new Error(`mkdir -p ${dir} in ${name} exited ${r.exitCode}: ${r.stderr.trim().slice(-200)}`);
      }
      await smolvm.cp(name, f.hostPath, f.path, { mode: f.mode, uid: f.uid, gid: f.gid ?? f.uid });
      if (a.delivers) {
        await save(() => recordDelivered(inv, name, a.delivers!));
      }
      return 'done';
    }
    case 'exec': {
      const r = await smolvm.exec(name, a.exec!);
      await delivered(a, name, r.exitCode, r.stderr, inv, save);
      return 'done';
    }
    case 'remove':
      await smolvm.stop(name).catch(() => {});
      await smolvm.delete(name);
      delete inv.resources[name];
      delete inv.delivered[name];
      await save();
      return 'done';
    default:
      throw new Error(`${a.kind} is not an action on a machine`);
  }
}

async function resolveMachineAtExecution(m: DesiredMachine, ctx: ExecContext): Promise<{ hash: string; config: Record<string, unknown> }> {
  const running = await inspectAll(m.waitFor, ctx);
  const allow: string[] = [];
  let published = false;
  let network = '';
  for (const [name, info] of running) {
    const [net, ep] = Object.entries(info.NetworkSettings.Networks ?? {})[0] ?? [];
    if (!net || !ep?.IPAddress) throw new ReadinessError(`${name} has no address yet`);
    network = net;
    allow.push(`${ep.IPAddress}/32`);
    if (Object.keys(info.HostConfig.PortBindings ?? {}).length) published = true;
  }
  if (published) allow.push(`${ctx.publishHost}/32`);
  const env = substituteFromRunning(m.name, m.env, m.placeholders, running, network, ctx.publishHost);
  const digests = Object.fromEntries(Object.entries(m.secretEnv).map(([k, v]) => [k, ctx.secrets.digest(v) ?? '']));
  let fromStat: string | undefined;
  if (m.from) {
    const st = await fs.stat(m.from);
    fromStat = `${st.size}:${Math.round(st.mtimeMs)}`;
  }
  const config = machineConfig(m, env, digests, allow, fromStat);
  return { hash: configHash(config), config };
}

function ignoreNotFound(e: unknown): void {
  if (e instanceof DockerError && e.kind === 'not-found') return;
  throw e;
}

/** An onChange exec counts as delivered only when it succeeded (else the next pass runs it again). */
async function delivered(a: Action, name: string, exitCode: number, output: string, inv: Inventory, save: Save): Promise<void> {
  if (exitCode !== 0) throw new Error(`exec ${JSON.stringify(a.exec)} in ${name} exited ${exitCode}: ${output.trim().slice(-300)}`);
  await save(() => recordDelivered(inv, name, a.delivers ?? []));
}

function recordDelivered(inv: Inventory, container: string, files: DesiredFile[]): void {
  const d = (inv.delivered[container] ??= {});
  for (const f of files) d[f.path] = f.hash;
}

function secretDigests(c: DesiredContainer, secrets: Secrets): Record<string, string> {
  return Object.fromEntries(Object.entries(c.secretEnv).map(([k, v]) => [k, secrets.digest(v) ?? '']));
}

const toNs = (ms?: number) => (ms === undefined ? undefined : ms * 1_000_000);

/** uid/gid of the image user of a created container, from its own /etc/passwd and /etc/group. */
async function userIds(docker: ExecContext['docker'], name: string, user: string): Promise<FileOwner> {
  const [passwd, group] = await Promise.all([docker.readFile(name, '/etc/passwd'), docker.readFile(name, '/etc/group')]);
  const ids = resolveUser(user, passwd?.toString('utf8') ?? '', group?.toString('utf8'));
  if (!ids) throw new Error(`${name}: its image runs as user "${user}", which its /etc/passwd does not name; give the files uid/gid`);
  return ids;
}

function createBody(c: DesiredContainer, config: Record<string, unknown>, hash: string, stopSignal: string, ctx: ExecContext): Record<string, unknown> {
  const env = config.env as Record<string, string>;
  const secretPairs = Object.entries(c.secretEnv).map(([k, v]) => {
    const value = ctx.secrets.value(v);
    if (value === undefined) throw new Error(`secretEnv ${k}: variable ${v} is not set`);
    return `${k}=${value}`;
  });
  const portKeys = c.ports.map((p) => `${p}/tcp`);
  return {
    Image: c.image,
    ...(c.command ? { Cmd: c.command } : {}),
    Env: [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...secretPairs],
    Labels: { ...c.labels, [L.specHash]: hash, [L.configHash]: secretFreeHash(config), [L.createId]: crypto.randomBytes(6).toString('hex') },
    // Explicit (the image's own, or Docker's default): with one set, Engine 20.10 keeps the
    // restart policy when another signal arrives through its kill API (moby#11065/#41302).
    StopSignal: stopSignal,
    ...(portKeys.length ? { ExposedPorts: Object.fromEntries(portKeys.map((k) => [k, {}])) } : {}),
    ...(c.healthcheck
      ? {
          Healthcheck: {
            Test: c.healthcheck.test,
            Interval: toNs(c.healthcheck.intervalMs),
            Timeout: toNs(c.healthcheck.timeoutMs),
            Retries: c.healthcheck.retries,
            StartPeriod: toNs(c.healthcheck.startPeriodMs),
          },
        }
      : {}),
    HostConfig: {
      Init: c.init,
      // Survive crashes, engine restarts and host reboots even when no reconciler is running.
      // `always`, not `unless-stopped`: Engine 20.10 marks a container that got any signal
      // through its API as manually stopped, which `unless-stopped` honours for good.
      RestartPolicy: { Name: 'always' },
      Binds: c.files.map((f) => `${f.hostPath}:${f.path}:ro`),
      ...(portKeys.length ? { PortBindings: Object.fromEntries(portKeys.map((k) => [k, [{ HostIp: ctx.publishHost, HostPort: '' }]])) } : {}),
      ...(c.resources?.cpus ? { NanoCpus: Math.round(c.resources.cpus * 1e9) } : {}),
      ...(c.resources?.memoryMiB ? { Memory: c.resources.memoryMiB * 1024 * 1024 } : {}),
    },
    // API 1.41 honours one network at create; the others are connected before start.
    NetworkingConfig: {
      EndpointsConfig: {
        [c.primary.network]: {
          Aliases: c.primary.aliases,
          ...(c.primary.ip ? { IPAMConfig: { IPv4Address: c.primary.ip } } : {}),
        },
      },
    },
  };
}

/** Wait (bounded) until each container runs, and is healthy when it has a healthcheck. */
async function waitReady(containers: string[], ctx: ExecContext): Promise<void> {
  for (const name of containers) {
    const deadline = Date.now() + ctx.waitTimeoutMs;
    let delay = 100;
    for (;;) {
      if (ctx.signal?.aborted) throw new AbortedError();
      const info = await ctx.docker.inspectContainer(name);
      const st = info.State;
      const health = st.Health?.Status;
      if (st.Running && (!health || health === 'healthy')) break;
      if (!st.Running && st.Status !== 'created' && st.Status !== 'restarting') {
        throw new ReadinessError(`${name} is ${st.Status} (exit code ${st.ExitCode}) instead of running`);
      }
      if (health === 'unhealthy') throw new ReadinessError(`${name} is unhealthy`);
      if (Date.now() >= deadline) throw new ReadinessError(`${name} not ready after ${ctx.waitTimeoutMs} ms (${health ?? st.Status})`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1000);
    }
  }
}

type Inspected = Awaited<ReturnType<DockerDriver['inspectContainer']>>;

async function inspectAll(containers: string[], ctx: ExecContext): Promise<Map<string, Inspected>> {
  const out = new Map<string, Inspected>();
  for (const c of new Set(containers)) out.set(c, await ctx.docker.inspectContainer(c));
  return out;
}

/** Resolve `${sidecar.*}` placeholders from the sidecars as they run now (fresh inspects). */
function substituteFromRunning(
  owner: string,
  env: Record<string, string>,
  placeholders: DesiredContainer['placeholders'],
  running: Map<string, Inspected>,
  network: string,
  publishHost: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const r = substitutePlaceholders(v, (ref) => {
      if (ref.field === 'host') return publishHost;
      const target = placeholders.find((p) => p.sidecar === ref.sidecar)?.target;
      const info = target ? running.get(target) : undefined;
      if (ref.field === 'ip') return info?.NetworkSettings.Networks?.[network]?.IPAddress || undefined;
      return (info?.NetworkSettings.Ports?.[`${ref.port}/tcp`] ?? []).find((b) => b.HostPort)?.HostPort;
    });
    if ('unresolved' in r) throw new ReadinessError(`${owner}: ${k} cannot be resolved yet (${r.unresolved.map((u) => `${u.sidecar}.${u.field}`).join(', ')})`);
    out[k] = r.value;
  }
  return out;
}

async function resolveAtExecution(c: DesiredContainer, ctx: ExecContext): Promise<Record<string, string>> {
  const running = await inspectAll(c.placeholders.filter((p) => p.field !== 'host').map((p) => p.target), ctx);
  // Sidecars of a bottle share its bottle network, which is this container's primary one.
  return substituteFromRunning(c.name, c.env, c.placeholders, running, c.primary.network, ctx.publishHost);
}
