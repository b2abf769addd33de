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
      const spec = serviceSpec(p.desired, { hash: p.hash, secretFreeHash: secretFreeHash(p.config), configs, secrets });
      await save(() => (inv.resources[name] = { ...inv.resources[name], type: 'service', role: p.desired.role, specHash: p.hash, applied: p.config }));
      if (a.kind === 'create') {
        try {
          const id = await swarm.createService(spec);
          await save(() => (inv.resources[name]!.id = id));
        } catch (e) {
          // Made by the attempt a kill interrupted (the record was written first): update it.
          if (!(e instanceof DockerError && e.kind === 'name-conflict')) throw e;
          const cur = await swarm.inspectService(name);
          await swarm.updateService(name, cur.Version.Index, spec);
        }
      } else {
        await retryOutOfSequence(async () => {
          const cur = await swarm.inspectService(name);
          // A SharedSidecar keeps the bottle overlays its users joined it to.
          const own = new Set(await Promise.all(p.desired.networks.map((n) => swarm.networkId(n.network))));
          const joined = p.desired.role === 'shared' ? (cur.Spec.TaskTemplate?.Networks ?? []).filter((n) => !own.has(n.Target)) : [];
          const tt = spec.TaskTemplate as { Networks: unknown[] };
          await swarm.updateService(name, cur.Version.Index, { ...spec, TaskTemplate: { ...tt, Networks: [...tt.Networks, ...joined] } });
        });
      }
      return 'done';
    }
    case 'join':
    case 'leave': {
      const netId = await swarm.networkId(a.overlay);
      await retryOutOfSequence(async () => {
        const cur = await swarm.inspectService(name);
        const spec = cur.Spec as Record<string, unknown> & { TaskTemplate: { Networks?: { Target: string; Aliases?: string[] }[] } };
        const nets = (spec.TaskTemplate.Networks ?? []).filter((n) => n.Target !== netId && n.Target !== a.overlay);
        if (a.kind === 'join') nets.push({ Target: netId, Aliases: a.aliases });
        await swarm.updateService(name, cur.Version.Index, { ...spec, TaskTemplate: { ...spec.TaskTemplate, Networks: nets } });
      });
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

/** The service's configs, each recorded before it is made (a config is immutable: made once). */
async function ensureConfigs(swarm: SwarmDriver, p: ServicePayload, inv: Inventory, save: Save) {
  const out = [];
  for (const c of p.configs) {
    let id = await swarm.findConfig(c.name);
    if (!id) {
      await save(() => (inv.resources[c.name] = { type: 'config', role: 'config' }));
      const f = p.desired.files.find((x) => x.path === c.path)!;
      const labels = { ...p.desired.labels, [L.role]: 'config', 'bottled.service': p.desired.name, 'bottled.path': c.path };
      try {
        id = await swarm.createConfig(c.name, f.content, labels);
      } catch (e) {
        if (!(e instanceof DockerError && e.kind === 'name-conflict')) throw e;
        id = (await swarm.findConfig(c.name))!;
      }
      await save(() => (inv.resources[c.name]!.id = id));
    }
    out.push({ ...c, id });
  }
  return out;
}

/** The service's secrets, each recorded before it is made; the value goes to the manager only. */
async function ensureSecrets(swarm: SwarmDriver, p: ServicePayload, inv: Inventory, ctx: ExecContext, save: Save) {
  const out = [];
  for (const x of p.secrets) {
    let id = await swarm.findSecret(x.name);
    if (!id) {
      await save(() => (inv.resources[x.name] = { type: 'secret', role: 'secret' }));
      const labels = { ...p.desired.labels, [L.role]: 'secret', 'bottled.service': p.desired.name, 'bottled.variable': x.variable };
      try {
        id = await swarm.createSecret(x.name, secretValue(x.variable, x.from, ctx.secrets), labels);
      } catch (e) {
        if (!(e instanceof DockerError && e.kind === 'name-conflict')) throw e;
        id = (await swarm.findSecret(x.name))!;
      }
      await save(() => (inv.resources[x.name]!.id = id));
    }
    out.push({ ...x, id });
  }
  return out;
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
      if (attempt >= 8 || !/out of sequence/i.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
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
