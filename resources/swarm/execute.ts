// The swarm backend's steps, with the same inventory discipline as containers: record first,
// then act, so a kill at any point leaves nothing unrecorded.
import { secretFreeHash } from '../../controller/hash.js';
import { secretValue, type ExecContext, type Save, type StepOutcome } from '../../controller/exec-context.js';
import { L } from '../../controller/labels.js';
import { AbortedError, ReadinessError } from '../../controller/errors.js';
import type { Inventory } from '../../state/inventory.js';
import { DockerError } from '../docker/errors.js';
import type { ServiceAction, ServicePayload } from './actions.js';
import type { SwarmDriver } from './driver.js';
import { serviceSpec } from './service-spec.js';

export async function serviceStep(a: ServiceAction, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  const swarm = swarmOf(ctx);
  const name = a.resource.name;
  switch (a.kind) {
    case 'create':
    case 'update': {
      const p = a.service;
      await waitRunning(swarm, p.desired.waitFor, ctx);
      const configs = await ensureConfigs(swarm, p, inv, save);
      const secrets = await ensureSecrets(swarm, p, inv, ctx, save);
      // A SharedSidecar keeps (or, created anew, gets) the overlays of the bottles that use it.
      const extraNetworks = await Promise.all((p.joins ?? []).map(async (j) => ({ Target: await swarm.networkId(j.overlay), Aliases: j.aliases })));
      const spec = serviceSpec(p.desired, { hash: p.hash, secretFreeHash: secretFreeHash(p.config), configs, secrets, stopTimeoutSec: ctx.stopTimeoutSec, extraNetworks });
      await save(() => (inv.resources[name] = { ...inv.resources[name], type: 'service', role: p.desired.role, specHash: p.hash, applied: p.config }));
      if (a.kind === 'create') {
        try {
          const id = await swarm.createService(spec);
          await save(() => (inv.resources[name]!.id = id));
        } catch (e) {
          // Made by the attempt a kill interrupted (the record was written first): update it, if it
          // is provably that one (our owner label); a stranger's service is never changed.
          if (!(e instanceof DockerError && e.kind === 'name-conflict')) throw e;
          const cur = await swarm.inspectService(name);
          const labels = cur.Spec.Labels ?? {};
          if (labels[L.owner] !== ctx.owner.id || labels[L.instance] !== p.desired.labels[L.instance]) throw new Error(`service ${name} exists and is not this bottle's: it is left alone`);
          await swarm.updateService(name, cur.Version.Index, spec);
        }
      } else {
        await retryOutOfSequence(async () => {
          const cur = await swarm.inspectService(name);
          await swarm.updateService(name, cur.Version.Index, spec);
        });
      }
      return 'done';
    }
    case 'join':
    case 'leave': {
      const netId = await swarm.networkId(a.overlay).catch((e) => {
        if (a.kind === 'leave' && e instanceof DockerError && e.kind === 'not-found') return undefined;
        throw e;
      });
      if (!netId) return 'done'; // the overlay is gone: nothing to leave
      await retryOutOfSequence(async () => {
        const cur = await swarm.inspectService(name).catch((e) => {
          if (e instanceof DockerError && e.kind === 'not-found') throw new Error(`SharedSidecar service ${name} does not exist (yet): ${a.kind === 'join' ? 'it is joined once it runs' : 'nothing to leave'}`);
          throw e;
        });
        const spec = cur.Spec as Record<string, unknown> & { TaskTemplate: { Networks?: { Target: string; Aliases?: string[] }[] } };
        const nets = (spec.TaskTemplate.Networks ?? []).filter((n) => n.Target !== netId && n.Target !== a.overlay);
        if (a.kind === 'join') nets.push({ Target: netId, Aliases: a.aliases });
        await swarm.updateService(name, cur.Version.Index, { ...spec, TaskTemplate: { ...spec.TaskTemplate, Networks: nets } });
      });
      // The bottle's own services start once the shared sidecar answers on its overlay.
      if (a.kind === 'join') await waitAttached(swarm, name, netId, ctx);
      return 'done';
    }
    case 'remove': {
      if (a.resource.type === 'config') {
        await swarm.removeConfig(name).catch(ignoreNotFound);
      } else if (a.resource.type === 'secret') {
        await swarm.removeSecret(name).catch(ignoreNotFound);
      } else {
        await swarm.removeService(name).catch(ignoreNotFound);
      }
      await save(() => {
        delete inv.resources[name];
        delete inv.delivered[name];
      });
      return 'done';
    }
  }
}

/**
 * A config or secret by name, made if missing: recorded before it is made (a kill in between
 * leaves a record, never an orphan); a name taken meanwhile is the attempt a kill interrupted.
 */
async function ensure(name: string, type: 'config' | 'secret', inv: Inventory, save: Save, find: () => Promise<string | undefined>, create: () => Promise<string>): Promise<string> {
  const found = await find();
  if (found) return found;
  await save(() => (inv.resources[name] = { type, role: type }));
  let id: string;
  try {
    id = await create();
  } catch (e) {
    if (!(e instanceof DockerError && e.kind === 'name-conflict')) throw e;
    id = (await find())!;
  }
  await save(() => (inv.resources[name]!.id = id));
  return id;
}

/** The service's configs (immutable: made once, named by their content). */
async function ensureConfigs(swarm: SwarmDriver, p: ServicePayload, inv: Inventory, save: Save) {
  return Promise.all(p.configs.map(async (c) => {
    const labels = { ...p.desired.labels, [L.role]: 'config', 'bottled.service': p.desired.name, 'bottled.path': c.path };
    const content = p.desired.files.find((x) => x.path === c.path)!.content;
    return { ...c, id: await ensure(c.name, 'config', inv, save, () => swarm.findConfig(c.name), () => swarm.createConfig(c.name, content, labels)) };
  }));
}

/** The service's secrets; the value goes to the manager only. */
async function ensureSecrets(swarm: SwarmDriver, p: ServicePayload, inv: Inventory, ctx: ExecContext, save: Save) {
  return Promise.all(p.secrets.map(async (x) => {
    const labels = { ...p.desired.labels, [L.role]: 'secret', 'bottled.service': p.desired.name, 'bottled.variable': x.variable };
    return { ...x, id: await ensure(x.name, 'secret', inv, save, () => swarm.findSecret(x.name), () => swarm.createSecret(x.name, secretValue(x.variable, x.from, ctx.secrets), labels)) };
  }));
}

/** Sidecars first, as on the docker backend: each has a running task (healthy, with a check). */
async function waitRunning(swarm: SwarmDriver, names: string[], ctx: ExecContext): Promise<void> {
  if (!names.length) return;
  const deadline = Date.now() + ctx.waitTimeoutMs;
  const pending = new Set(names);
  let last = '';
  while (pending.size) {
    if (ctx.signal?.aborted) throw new AbortedError();
    for (const n of [...pending]) {
      const tasks = await swarm.tasks(n);
      if (tasks.some((t) => t.Status.State === 'running' && t.DesiredState === 'running')) pending.delete(n);
      else {
        const t = tasks.find((x) => x.Status.Err) ?? tasks[0];
        last = `${n}: ${t ? `task ${t.Status.State}${t.Status.Err ? `: ${t.Status.Err}` : t.Status.Message ? ` (${t.Status.Message})` : ''}` : 'no task yet'}`;
      }
    }
    if (!pending.size) return;
    if (Date.now() > deadline) throw new ReadinessError(`${last} after ${ctx.waitTimeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Two bottles may join the same SharedSidecar service in one pass: an update made from a stale
 * version is refused ("update out of sequence"), and is made again from a fresh read.
 */
async function retryOutOfSequence(fn: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= 30 || !/out of sequence/i.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
  }
}

/** A running task of the service attached to the network (its successor, after a join). */
async function waitAttached(swarm: SwarmDriver, service: string, netId: string, ctx: ExecContext): Promise<void> {
  const deadline = Date.now() + ctx.waitTimeoutMs;
  for (;;) {
    if (ctx.signal?.aborted) throw new AbortedError();
    const tasks = await swarm.tasks(service);
    if (tasks.some((t) => t.Status.State === 'running' && t.DesiredState === 'running' && (t.NetworksAttachments ?? []).some((n) => n.Network?.ID === netId))) return;
    if (Date.now() > deadline) {
      const t = tasks.find((x) => x.Status.Err) ?? tasks[0];
      throw new ReadinessError(`${service} has no running task on the bottle's overlay after ${ctx.waitTimeoutMs} ms${t ? ` (task ${t.Status.State}${t.Status.Err ? `: ${t.Status.Err}` : ''})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function ignoreNotFound(e: unknown): void {
  if (!(e instanceof DockerError && e.kind === 'not-found')) throw e;
}

function swarmOf(ctx: ExecContext): SwarmDriver {
  const driver = ctx.drivers.get('swarm') as SwarmDriver | undefined;
  if (!driver) throw new Error('no swarm driver configured');
  return driver;
}
