// The Docker backend's steps: one planned action, one or two Engine calls, the inventory written
// before what it records is made. Decisions were taken by the planner; none are taken here.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import type { DesiredContainer } from '../../controller/desired.js';
import { execDelivered, recordDelivered, secretValue, type ExecContext, type Save, type StepOutcome } from '../../controller/exec-context.js';
import { configHash, containerConfig, secretDigests, secretFreeHash } from '../../controller/hash.js';
import { resolveUser } from '../../controller/image-user.js';
import { L } from '../../controller/labels.js';
import { writeInPlace } from '../../state/fsutil.js';
import { resourceKey, type Inventory } from '../../state/inventory.js';
import type { ContainerAction, DockerAction, FileAction, FileOwner, NetworkAction } from './actions.js';
import type { ContainerCreate } from './create-body.js';
import type { DockerDriver } from './driver.js';
import { DockerError } from './errors.js';
import { ownerOf } from './plan-files.js';
import { resolveAtExecution, waitReady } from './running.js';

export async function dockerStep(a: DockerAction, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  if (a.on === 'network') return networkStep(a, inv, ctx, save);
  if (a.on === 'file') return fileStep(a);
  return containerStep(a, inv, ctx, save);
}

/**
 * A swarm overlay stays in use by a removed service's tasks until they have shut down, a few
 * seconds later ("in use by task"): the removal waits for them, bounded by --wait-timeout.
 */
async function removeOnceFree(remove: () => Promise<void>, ctx: ExecContext): Promise<void> {
  const deadline = Date.now() + ctx.waitTimeoutMs;
  for (;;) {
    try {
      return await remove();
    } catch (e) {
      if (!/is in use by task/.test((e as Error).message) || Date.now() > deadline || ctx.signal?.aborted) throw e;
      await new Promise((r) => setTimeout(r, 100)); // tasks stop within about a second
    }
  }
}

async function networkStep(a: NetworkAction, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  const { docker } = ctx;
  const name = a.resource.name;
  if (a.kind === 'remove') {
    await removeOnceFree(() => docker.removeNetwork(a.networkId ?? name).catch(ignoreNotFound), ctx);
    delete inv.subnets[name];
    delete inv.resources[resourceKey('network', name)];
    await save();
    return 'done';
  }
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
    driver: n.desired.driver,
    options: n.desired.options,
    labels: { ...n.desired.labels, [L.specHash]: n.hash },
  });
  await save(() => (inv.resources[resourceKey('network', name)]!.id = netId));
  return 'done';
}

async function fileStep(a: FileAction): Promise<StepOutcome> {
  await writeInPlace(a.file.hostPath, a.file.content, a.file.mode, a.fileOwner);
  return 'done';
}

async function containerStep(a: ContainerAction, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  const { docker } = ctx;
  const name = a.resource.name;
  switch (a.kind) {
    case 'create':
    case 'recreate':
      return createContainer(a, inv, ctx, save);
    case 'connect':
      await waitReady(a.waitFor ?? [], ctx);
      if (a.replaceStale) await docker.disconnect(a.endpoint.network, name).catch(() => {});
      try {
        await docker.connect(a.networkId ?? a.endpoint.network, name, a.endpoint);
      } catch (e) {
        if (!(e instanceof DockerError && e.kind === 'already-connected')) throw e;
      }
      return 'done';
    case 'disconnect':
      await docker.disconnect(a.networkId ?? a.networkName, name);
      await save(() => {
        const r = inv.resources[name];
        if (r) r.extraNetworks = (r.extraNetworks ?? []).filter((n) => n !== a.networkName);
      });
      return 'done';
    case 'start':
      await waitReady(a.waitFor ?? [], ctx);
      await docker.start(name);
      return 'done';
    case 'signal':
      await docker.signal(name, a.signal);
      await save(() => recordDelivered(inv, name, a.delivers));
      return 'done';
    case 'exec':
      await execDelivered(name, a.exec, a.delivers, await docker.exec(name, a.exec), inv, save);
      return 'done';
    case 'restart':
      await docker.restart(name, ctx.stopTimeoutSec);
      await save(() => recordDelivered(inv, name, a.delivers));
      return 'done';
    case 'update':
      await docker.update(name, a.restartPolicy);
      await save(() => {
        const r = inv.resources[name];
        if (r) r.restartPolicy = a.restartPolicy;
      });
      return 'done';
    case 'stop':
      // Recorded first: a crash after the update must not leave a policy `no` that the record
      // does not know of (nothing would turn it back on when the bottle is given more time).
      await save(() => {
        const r = inv.resources[name];
        if (r) r.restartPolicy = 'no';
      });
      await docker.update(name, 'no');
      await docker.stop(name, ctx.stopTimeoutSec);
      return 'done';
    case 'remove':
      await docker.stop(name, ctx.stopTimeoutSec);
      await docker.removeContainer(name);
      delete inv.delivered[name];
      await fs.rm(ctx.paths.unitDir(inv.unit) + '/' + name, { recursive: true, force: true });
      delete inv.resources[resourceKey('container', name)];
      await save();
      return 'done';
  }
}

async function createContainer(a: Extract<ContainerAction, { kind: 'create' | 'recreate' }>, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  const { docker } = ctx;
  const name = a.resource.name;
  const c = a.container.desired;
  let { hash, config } = a.container;
  if (!hash || !config) {
    await waitReady(c.waitFor, ctx);
    const env = await resolveAtExecution(c, ctx);
    config = containerConfig(c, env, secretDigests(c.secretEnv, (v) => ctx.secrets.digest(v)), ctx.publishHost);
    hash = configHash(config);
    if (a.container.verifyHash !== undefined && a.container.verifyHash === hash) return 'skipped';
  }
  const known = a.fileOwner && 'uid' in a.fileOwner ? a.fileOwner : undefined;
  for (const f of a.fileWrites) await writeInPlace(f.hostPath, f.content, f.mode, ownerOf(f, known));
  inv.resources[name] = { type: 'container', role: c.role, specHash: hash, applied: config, extraNetworks: c.externalNetworks, ...(known && { fileOwner: known }) };
  await save();
  if (a.kind === 'recreate') {
    await docker.stop(name, ctx.stopTimeoutSec);
    await docker.removeContainer(name);
  }
  const id = await docker.createContainer(createSpec(c, config, hash, a.container.stopSignal, ctx));
  if (a.fileOwner && 'user' in a.fileOwner) {
    // The image runs as a named user: its ids are in its own /etc/passwd, readable from the
    // created (not yet started) container. Files are chowned before it starts.
    const ids = await userIds(docker, name, a.fileOwner.user);
    for (const f of c.files) {
      const o = ownerOf(f, ids);
      if (o) await fs.chown(f.hostPath, o.uid, o.gid);
    }
    // What the image's user resolves to is kept for the image; a security.user is this container's alone.
    if (c.security.user === undefined) {
      const imageId = (await docker.inspectContainer(id)).Image;
      const img = ctx.images.get(imageId);
      if (img) ctx.images.set(imageId, { ...img, uid: ids.uid, gid: ids.gid });
    }
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

function createSpec(c: DesiredContainer, config: Record<string, unknown>, hash: string, stopSignal: string, ctx: ExecContext): ContainerCreate {
  return {
    name: c.name,
    image: c.image,
    command: c.command,
    env: config.env as Record<string, string>,
    secretEnv: Object.fromEntries(Object.entries(c.secretEnv).map(([k, v]) => [k, secretValue(k, v, ctx.secrets)])),
    labels: { ...c.labels, [L.specHash]: hash, [L.configHash]: secretFreeHash(config), [L.createId]: crypto.randomBytes(6).toString('hex') },
    stopSignal,
    ports: c.ports,
    publishHost: ctx.publishHost,
    healthcheck: c.healthcheck,
    init: c.init,
    binds: c.files.map((f) => ({ host: f.hostPath, path: f.path })),
    resources: c.resources,
    security: c.security,
    ...(c.runtime && { runtime: c.runtime }),
    primary: c.primary,
  };
}

/** uid/gid of the image user of a created container, from its own /etc/passwd and /etc/group. */
async function userIds(docker: DockerDriver, name: string, user: string): Promise<FileOwner> {
  const [passwd, group] = await Promise.all([docker.readFile(name, '/etc/passwd'), docker.readFile(name, '/etc/group')]);
  const ids = resolveUser(user, passwd?.toString('utf8') ?? '', group?.toString('utf8'));
  if (!ids) throw new Error(`${name}: its image runs as user "${user}", which its /etc/passwd does not name; give the files uid/gid`);
  return ids;
}

function ignoreNotFound(e: unknown): void {
  if (e instanceof DockerError && e.kind === 'not-found') return;
  throw e;
}
