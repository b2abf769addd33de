// The smolvm backend's steps: the same inventory discipline as containers (record first, then
// act). The machine's sidecars are Docker containers: readiness and addresses come from them.
import fs from 'node:fs/promises';
import path from 'node:path';
import { machineConfig, type DesiredMachine } from './desired.js';
import { execDelivered, recordDelivered, secretValue, type ExecContext, type Save, type StepOutcome } from '../../controller/exec-context.js';
import { artifactStamp, configHash, secretDigests, secretFreeHash } from '../../controller/hash.js';
import { L } from '../../controller/labels.js';
import { writeInPlace } from '../../state/fsutil.js';
import type { Inventory } from '../../state/inventory.js';
import { ReadinessError } from '../../controller/errors.js';
import { inspectAll, substituteFromRunning, waitReady } from '../docker/running.js';
import type { MachineAction } from './actions.js';
import { machineAllowList } from './allow-list.js';
import type { SmolvmDriver } from './driver.js';
import { SmolvmError } from './errors.js';

export async function machineStep(a: MachineAction, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  const smolvm = smolvmOf(ctx);
  switch (a.kind) {
    case 'create':
    case 'recreate': {
      const name = a.resource.name;
      const m = a.machine.desired;
      let { hash, config } = a.machine;
      if (!hash || !config) {
        await waitReady(m.waitFor, ctx);
        ({ hash, config } = await resolveMachineAtExecution(m, ctx));
        if (a.machine.verifyHash !== undefined && a.machine.verifyHash === hash) return 'skipped';
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
        secretValues: hostSecrets(m, ctx),
        cpus: m.cpus,
        memMiB: m.memMiB,
        labels: { ...m.labels, [L.specHash]: hash, [L.configHash]: secretFreeHash(config) },
        command: m.command,
      });
      return 'done';
    }
    case 'start':
    case 'restart': {
      const name = a.resource.name;
      const values = hostSecrets(a.machine, ctx);
      if (a.kind === 'restart') await smolvm.stop(name); // kills an unreachable zombie too
      await smolvm.start(name, { secretValues: values });
      if (a.delivers) await save(() => recordDelivered(inv, name, a.delivers!));
      return 'done';
    }
    case 'rewrite-file': {
      const name = a.machineName;
      const f = a.file;
      await writeInPlace(f.hostPath, f.content, f.mode);
      // cp does not create parent directories (smolvm-cli.md): make them first.
      const dir = path.posix.dirname(f.path);
      if (dir !== '/') {
        const r = await smolvm.exec(name, ['mkdir', '-p', dir]);
        if (r.exitCode !== 0) throw new Error(`mkdir -p ${dir} in ${name} exited ${r.exitCode}: ${r.stderr.trim().slice(-200)}`);
      }
      await smolvm.cp(name, f.hostPath, f.path, { mode: f.mode, uid: f.uid, gid: f.gid ?? f.uid });
      if (a.delivers) await save(() => recordDelivered(inv, name, a.delivers!));
      return 'done';
    }
    case 'exec': {
      const name = a.resource.name;
      const r = await smolvm.exec(name, a.exec);
      await execDelivered(name, a.exec, a.delivers, { exitCode: r.exitCode, output: r.stderr }, inv, save);
      return 'done';
    }
    case 'stop':
      await smolvm.stop(a.resource.name);
      return 'done';
    case 'remove': {
      const name = a.resource.name;
      await smolvm.stop(name).catch(() => {});
      await smolvm.delete(name);
      delete inv.resources[name];
      delete inv.delivered[name];
      await save();
      return 'done';
    }
  }
}

function smolvmOf(ctx: ExecContext): SmolvmDriver {
  const driver = ctx.drivers.get('smolvm') as SmolvmDriver | undefined;
  if (!driver) throw new SmolvmError('missing-binary', 'smolvm is not available (--smolvm PATH)');
  return driver;
}

/** HOSTVAR -> value for the machine's --secret-env references: in smolvm's environment only. */
function hostSecrets(m: DesiredMachine, ctx: ExecContext): Record<string, string> {
  return Object.fromEntries(Object.entries(m.secretEnv).map(([k, v]) => [v, secretValue(k, v, ctx.secrets)]));
}

async function resolveMachineAtExecution(m: DesiredMachine, ctx: ExecContext): Promise<{ hash: string; config: Record<string, unknown> }> {
  const running = await inspectAll(m.waitFor, ctx);
  const ips: string[] = [];
  let published = false;
  let network = '';
  for (const [name, info] of running) {
    const [net, ep] = Object.entries(info.NetworkSettings.Networks ?? {})[0] ?? [];
    if (!net || !ep?.IPAddress) throw new ReadinessError(`${name} has no address yet`);
    network = net;
    ips.push(ep.IPAddress);
    if (Object.keys(info.HostConfig.PortBindings ?? {}).length) published = true;
  }
  const env = substituteFromRunning(m.name, m.env, m.placeholders, running, network, ctx.publishHost);
  const fromStat = m.from ? artifactStamp(await fs.stat(m.from)) : undefined;
  const config = machineConfig(m, env, secretDigests(m.secretEnv, (v) => ctx.secrets.digest(v)), machineAllowList(ips, published, ctx.publishHost), fromStat);
  return { hash: configHash(config), config };
}
