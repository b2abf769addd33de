/**
 * Watch-mode figures (npm run bench -- --watch):
 *  - file-drop-to-running latency: a bottle file is written into the watched dir; the clock
 *    stops when its agent container runs. Docker's own part is the time between the first
 *    and the last Engine step the daemon logs for that bottle; the rest is bottled's.
 *  - an idle daemon with 20 ready bottles: Engine API calls, CPU time and RSS over 20 s.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Daemon, World, bottleYaml, docker } from '../test/helpers/harness.js';
import { DockerSocketProxy } from '../test/helpers/socket-proxy.js';

const bottle = (name: string) =>
  bottleYaml(
    name,
    `sidecars:
  - name: proxy
    image: bottled/sidecar:local
    aliases: [egress, proxy]
    egress: true
agent:
  image: bottled/busybox:local`,
  );

function procStat(pid: number): { cpuMs: number; rssMb: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpuMs: (Number(stat[11]) + Number(stat[12])) * 10, rssMb: Number(rss) / 1024 };
}

async function running(name: string): Promise<boolean> {
  return docker.getContainer(name).inspect().then((i) => i.State.Running, () => false);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function watchBench(): Promise<string> {
  const w = await new World('wbench').setup();
  const proxy = await new DockerSocketProxy().start();
  const d = new Daemon(w, ['--resync', '60s', '--docker-host', proxy.host]);
  const lines: string[] = [];
  try {
    await d.start();
    const total: number[] = [];
    const engine: number[] = [];
    for (let i = 0; i < 7; i++) {
      const name = `lat${i}`;
      const t0 = performance.now();
      await w.write(`${name}.yaml`, bottle(name));
      while (!(await running(w.name_(name)))) await new Promise((r) => setTimeout(r, 10));
      const t1 = performance.now();
      await d.waitLog((l) => l.bottle === name && l.action === 'start' && l.resource === w.name_(name));
      const steps = d.logs.filter((l) => l.bottle === name && typeof l.action === 'string').map((l) => Number(l.time));
      // Engine time: from just before the first step (a create network) to the agent's start.
      const first = d.logs.find((l) => l.bottle === name && l.msg === `bottle ${name} is reconciling`);
      total.push(t1 - t0);
      engine.push(Math.max(...steps) - Number(first?.time ?? Math.min(...steps)));
    }
    const overhead = total.map((t, i) => t - engine[i]!);
    lines.push('watch mode: file drop -> agent running (7 bottles, each: 2 networks, sidecar, agent)');
    lines.push(`  latency    median ${median(total).toFixed(0)} ms   (min ${Math.min(...total).toFixed(0)}, max ${Math.max(...total).toFixed(0)})`);
    lines.push(`  engine     median ${median(engine).toFixed(0)} ms   (pass start to agent started, Docker's create/start calls)`);
    lines.push(`  bottled    median ${median(overhead).toFixed(0)} ms   (latency minus engine: debounce 300 ms + load + observe + plan)`);

    for (let i = 7; i < 20; i++) await w.write(`idle${i}.yaml`, bottle(`idle${i}`));
    for (let i = 7; i < 20; i++) while (!(await running(w.name_(`idle${i}`)))) await new Promise((r) => setTimeout(r, 50));
    // Let the follow-up passes of our own events finish.
    for (let quiet = 0; quiet < 3; ) {
      const n = proxy.requests.length;
      await new Promise((r) => setTimeout(r, 1000));
      quiet = proxy.requests.length === n ? quiet + 1 : 0;
    }
    const before = procStat(d.pid);
    const calls = proxy.requests.length;
    await new Promise((r) => setTimeout(r, 20_000));
    const after = procStat(d.pid);
    lines.push('idle daemon, 20 ready bottles, 20 s between resyncs');
    lines.push(`  Engine API calls  ${proxy.requests.length - calls}`);
    lines.push(`  CPU time          ${after.cpuMs - before.cpuMs} ms (${(((after.cpuMs - before.cpuMs) / 20_000) * 100).toFixed(2)} % of one core)`);
    lines.push(`  RSS               ${after.rssMb.toFixed(0)} MB`);
    return lines.join('\n');
  } finally {
    await d.stop();
    await proxy.stop();
    await w.cleanup();
  }
}
