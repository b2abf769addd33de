/**
 * The swarm benchmark (`npm run bench -- --swarm`): bottled on a three-node lab swarm of its own
 * (network namespaces, a registry on the lab bridge, torn down at the end), beside the floor:
 * the minimal Swarm API calls for the same topology, 4 bottles in parallel, straight from
 * dockerode. For N = 10 and 30: cold converge, a no-op pass, a one-file change, teardown; then
 * the time a lost worker's tasks take to run elsewhere, and that the pass after it does nothing.
 */
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import type Docker from 'dockerode';
import { World, bottleYaml, passLog } from '../test/helpers/harness.js';
import { Lab } from '../test/helpers/lab-engine.js';
import { ms, ratio, table } from './table.js';

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const SIZES = [10, 30];

interface Images { sidecar: string; agent: string }

function swarmBottle(name: string, img: Images, generation = 0): string {
  return bottleYaml(
    name,
    `backend: swarm
sidecars:
  - name: proxy
    image: ${img.sidecar}
    aliases: [egress, proxy]
    egress: true
    placement: {constraints: [node.role==worker]}
    files:
      - {path: /etc/bench/reload.conf, content: "generation ${generation}\\n", onChange: restart}
agent:
  image: ${img.agent}`,
  );
}

async function allRunning(m: Docker, label: string, count: number): Promise<void> {
  for (;;) {
    const svcs = (await m.listServices({ status: true, filters: JSON.stringify({ label: [label] }) } as never)) as unknown as { ServiceStatus?: { RunningTasks: number } }[];
    if (svcs.length === count && svcs.every((s) => (s.ServiceStatus?.RunningTasks ?? 0) >= 1)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The floor: what any tool must ask a manager for this topology, 4 bottles at a time. */
async function floor(m: Docker, img: Images, n: number, tag: string, subnetOf: (i: number, k: number) => string) {
  const label = { 'bench.floor': tag };
  const limit = pLimit(4);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, (_, i) => limit(async () => {
    const b = `${tag}-b${i}`;
    await m.createNetwork({ Name: `${b}-net`, Driver: 'overlay', Attachable: true, Internal: true, CheckDuplicate: true, Labels: label, IPAM: { Driver: 'default', Config: [{ Subnet: subnetOf(i, 0) }] } });
    await m.createNetwork({ Name: `${b}-egress`, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: label, IPAM: { Driver: 'default', Config: [{ Subnet: subnetOf(i, 1) }] } });
    const cfg = (await m.createConfig({ Name: `${b}-conf0`, Labels: label, Data: Buffer.from('generation 0\n').toString('base64') } as never)) as unknown as { id?: string; ID?: string };
    const svc = (name: string, image: string, nets: { Target: string; Aliases: string[] }[], extra: Record<string, unknown> = {}) => ({
      Name: name, Labels: label, Mode: { Replicated: { Replicas: 1 } }, EndpointSpec: { Mode: 'dnsrr' },
      UpdateConfig: { Parallelism: 1, Order: 'start-first', Monitor: 1e9 }, TaskTemplate: { ContainerSpec: { Image: image, Init: true, ...extra }, Networks: nets, RestartPolicy: { Condition: 'any', Delay: 1e9 } },
    });
    await m.createService(svc(`${b}-proxy`, img.sidecar, [{ Target: `${b}-net`, Aliases: ['egress', 'proxy'] }, { Target: `${b}-egress`, Aliases: ['proxy'] }], { Configs: [{ File: { Name: '/etc/bench/reload.conf', UID: '0', GID: '0', Mode: 0o644 }, ConfigID: cfg.id ?? cfg.ID, ConfigName: `${b}-conf0` }] }) as never);
    // Sidecar running before the agent, as bottled does.
    for (;;) {
      const t = (await m.listTasks({ filters: JSON.stringify({ service: [`${b}-proxy`] }) } as never)) as unknown as { Status: { State: string } }[];
      if (t.some((x) => x.Status.State === 'running')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await m.createService(svc(b, img.agent, [{ Target: `${b}-net`, Aliases: [] }]) as never);
  })));
  const cold = performance.now() - t0;
  await allRunning(m, `bench.floor=${tag}`, 2 * n);
  const running = performance.now() - t0;
  const t1 = performance.now();
  await Promise.all(Array.from({ length: n }, (_, i) => limit(async () => {
    const b = `${tag}-b${i}`;
    await m.getService(b).remove();
    await m.getService(`${b}-proxy`).remove();
    await m.getConfig(`${b}-conf0`).remove();
    // An overlay is in use by the removed services' tasks until they shut down: any tool waits.
    for (const net of [`${b}-egress`, `${b}-net`]) {
      for (;;) {
        try {
          await m.getNetwork(net).remove();
          break;
        } catch (e) {
          if (!/in use by task/.test((e as Error).message)) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  })));
  return { cold, running, teardown: performance.now() - t1 };
}

export async function swarmBench(json: boolean, onCleanup: (fn: () => Promise<void>) => void): Promise<void> {
  say('starting a three-node lab swarm with a registry');
  const lab = await Lab.start(3, { registry: true });
  onCleanup(() => lab.stop()); // an interrupted run takes its lab down too
  const worlds: World[] = [];
  try {
    await lab.swarm();
    const refs = await lab.pushImages(['bottled/sidecar:local', 'bottled/busybox:local']);
    const img = { sidecar: refs.get('bottled/sidecar:local')!, agent: refs.get('bottled/busybox:local')! };
    const mgr = lab.nodes[0]!;
    const rows: string[][] = [];
    const out: Record<string, unknown>[] = [];
    for (const n of SIZES) {
      const w = await new World(`bsw${n}`).setup();
      worlds.push(w);
      const run = async (extra: string[] = []) => {
        const t = performance.now();
        const r = await w.run(['reconcile', '--once', '--docker-host', mgr.host, ...extra], { env: { LOG_LEVEL: 'info' } });
        const wall = performance.now() - t;
        const p = passLog(r);
        if (r.code !== 0 || !p) throw new Error(`bottled exited ${r.code ?? r.signal}: ${r.stderr.slice(-3000)}`);
        return { wall, executed: Number(p.executed), calls: Number(p.dockerCalls) + Number(p.swarmCalls) };
      };
      for (let i = 0; i < n; i++) await w.write(`b${i}.yaml`, swarmBottle(`b${i}`, img));
      const t0 = performance.now();
      const cold = await run();
      await allRunning(mgr.docker, `bottled.instance=${w.instance}`, 2 * n);
      const coldRunning = performance.now() - t0;
      const noops = [];
      for (let i = 0; i < 3; i++) noops.push(await run());
      if (noops.some((x) => x.executed !== 0)) throw new Error('a no-op pass executed actions');
      const noop = noops.sort((a, b) => a.wall - b.wall)[1]!;
      await w.write('b0.yaml', swarmBottle('b0', img, 1));
      const change = await run();
      for (let i = 0; i < n; i++) await w.rm(`b${i}.yaml`);
      const teardown = await run(['--allow-empty', '--max-deletions', 'unlimited']);
      // The floor, on the same swarm, with subnets of its own.
      const base = 10 + SIZES.indexOf(n);
      const f = await floor(mgr.docker, img, n, `fl${n}`, (i, k) => `10.${160 + base}.${i * 2 + k}.0/24`); // apart from the lab swarm's pool (10.190/16) and the worlds'
      say(`N=${n}: cold ${ms(cold.wall)} ms (all running ${ms(coldRunning)}), floor ${ms(f.cold)} (${ms(f.running)}); no-op ${ms(noop.wall)} ms / ${noop.calls} calls; change ${ms(change.wall)} ms; teardown ${ms(teardown.wall)} ms, floor ${ms(f.teardown)}`);
      rows.push([`${n}`, 'cold converge (process returns)', ms(cold.wall), ms(f.cold), ratio(cold.wall, f.cold)]);
      rows.push([`${n}`, 'cold converge (every task running)', ms(coldRunning), ms(f.running), ratio(coldRunning, f.running)]);
      rows.push([`${n}`, `no-op pass (${noop.calls} calls)`, ms(noop.wall), '-', '-']);
      rows.push([`${n}`, `one-file change (${change.executed} actions)`, ms(change.wall), '-', '-']);
      rows.push([`${n}`, 'teardown', ms(teardown.wall), ms(f.teardown), ratio(teardown.wall, f.teardown)]);
      out.push({ n, cold: cold.wall, coldRunning, floorCold: f.cold, floorRunning: f.running, noop: noop.wall, noopCalls: noop.calls, change: change.wall, teardown: teardown.wall, floorTeardown: f.teardown });
    }
    // Node loss: 10 bottles with sidecars on workers; kill the worker that runs most of them.
    const w = await new World('bswloss').setup();
    worlds.push(w);
    for (let i = 0; i < 10; i++) await w.write(`b${i}.yaml`, swarmBottle(`b${i}`, img));
    const r = await w.run(['reconcile', '--once', '--docker-host', mgr.host]);
    if (r.code !== 0) throw new Error(r.stderr.slice(-2000));
    await allRunning(mgr.docker, `bottled.instance=${w.instance}`, 20);
    const victim = lab.nodes[1]!;
    const t0 = performance.now();
    await lab.killEngine(victim);
    const victimId = ((await mgr.docker.listNodes()) as { ID: string; Description: { Hostname: string } }[]).find((x) => x.Description.Hostname === victim.name)!.ID;
    for (;;) {
      const tasks = (await mgr.docker.listTasks({ filters: JSON.stringify({ 'desired-state': ['running'] }) } as never)) as unknown as { NodeID: string; Status: { State: string } }[];
      const svcs = (await mgr.docker.listServices({ filters: JSON.stringify({ label: [`bottled.instance=${w.instance}`] }) } as never)) as unknown as unknown[];
      if (svcs.length === 20 && tasks.filter((t) => t.Status.State === 'running' && t.NodeID !== victimId).length >= 20) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const recovered = performance.now() - t0;
    const after = await w.run(['reconcile', '--once', '--docker-host', mgr.host], { env: { LOG_LEVEL: 'info' } });
    const executed = Number(passLog(after)?.executed);
    rows.push(['10', `worker killed -> every task running elsewhere (Swarm), then a pass: ${executed} actions`, ms(recovered), '-', '-']);
    out.push({ nodeLoss: { recoveredMs: recovered, passAfterExecuted: executed } });
    if (json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    else process.stdout.write(table('Swarm: bottled on a three-node lab swarm vs the minimal API calls (4 in parallel), ms', ['N', 'step', 'bottled', 'floor', 'ratio'], rows));
  } finally {
    await lab.stop();
    for (const w of worlds) await w.cleanup().catch(() => {});
  }
}
