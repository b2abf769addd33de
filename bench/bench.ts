/**
 * bottled benchmark: measured side by side in one run, never a timed test.
 *
 *   npm run bench [-- --quick] [-- --json]
 *   node --import tsx bench/bench.ts [--quick] [--json]      (after npm run build)
 *
 * 1. `bottled reconcile --once` for N = 10 and 50 bottles: cold converge, no-op, one-file
 *    change (SIGHUP), teardown (--allow-empty). Wall time of the process, its passMs, Engine API
 *    calls counted at the socket (DockerSocketProxy), peak RSS (its maxRssKb).
 * 2. Baselines for the N=10 cold converge: the floor (7 dockerode calls a bottle, 4 bottles in
 *    parallel) and the old launcher (one docker CLI process per step, in sequence).
 * 3. Targets at 60 bottles: no-op pass <= 5 calls and < 100 ms, no-op process < 1 s, RSS < 150 MB.
 *
 * Everything runs through one recording proxy in front of the Docker socket, in its own
 * --instance/--prefix/--subnet-pool and temp dirs, and is removed at the end (also on failure).
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BIN, docker, dockerExec, runNode } from '../test/helpers/harness.js';
import { DockerSocketProxy } from '../test/helpers/socket-proxy.js';
import { cleanupBaseline, floor, oldLauncher, type BaselineResult } from './baselines.js';
import { BenchWorld, SIDECAR, benchBottle, mean, median, pickPools, runBottled, summarize, type Measure } from './lib.js';
import { DockerDriver } from '../resources/docker/driver.js';
import { loadSpecs } from '../specs/load.js';
import { DirSource } from '../specs/source.js';
import { report, type NoopPieces, type Row } from './report.js';
import { mb, ms } from './table.js';
import { swarmBench } from './swarm.js';

const USAGE =
  'usage: bench.ts [--quick] [--json] [--watch] [--swarm] [--notify] [--runtimes] [--scale [--sizes 10,50,100,200] [--concurrency N]] [--concurrency-sweep [--sizes 50,200] [--levels 2,4,8,16]]\n' +
  '  --quick   N=10 only (targets checked at 10 bottles instead of 60)\n  --json    machine-readable output on stdout\n' +
  '  --watch   watch mode only: file-drop-to-running latency, idle daemon with 20 bottles\n' +
  '  --scale   cold/no-op/change/teardown at each size, beside the raw-API floor of the same run\n' +
  '  --concurrency-sweep  bottled cold converge and teardown at each --concurrency level\n' +
  '  --swarm   backend: swarm on a three-node lab swarm beside the minimal Swarm API calls (N=10, 30, node loss)\n' +
  '  --notify  a pass that sends 10 notifications: no receiver, one that answers, one that never does\n' +
  '  --runtimes  agents under runc and runsc (gVisor) on a lab engine: cold converge of 10, exec, syscalls\n';
const argv = process.argv.slice(2);
const VALUED = new Set(['--sizes', '--concurrency', '--levels']);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--help' || a === '-h') {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (VALUED.has(a)) {
    i++;
    continue;
  }
  if (!['--quick', '--json', '--watch', '--scale', '--concurrency-sweep', '--swarm', '--notify', '--runtimes'].includes(a)) {
    process.stderr.write(`bench: unknown option ${a}\n${USAGE}`);
    process.exit(64);
  }
}
const valueOf = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
const listOf = (flag: string, dflt: number[]) => valueOf(flag)?.split(',').map(Number).filter((n) => n > 0) ?? dflt;
const QUICK = argv.includes('--quick');
const JSON_OUT = argv.includes('--json');
const NOOP_REPEAT = 5;

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);

// ---- cleanup registry: everything created is removed at the end, on failure and on SIGINT/SIGTERM
const cleanups: (() => Promise<void>)[] = [];
/** The engine may be restarting (others share it): give it a while before cleaning up. */
async function waitEngine(ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await docker.ping().then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function cleanupAll(): Promise<void> {
  await waitEngine();
  while (cleanups.length) {
    const c = cleanups.pop()!;
    await c().catch((e: Error) => say(`cleanup: ${e.message}`));
  }
}
/** Direct children of this process (the bottled or docker CLI run in flight), from /proc. */
async function childPids(): Promise<number[]> {
  const tids = await fs.readdir('/proc/self/task').catch(() => [] as string[]);
  const out = new Set<number>();
  for (const t of tids) {
    const c = await fs.readFile(`/proc/self/task/${t}/children`, 'utf8').catch(() => '');
    for (const p of c.split(/\s+/).filter(Boolean)) out.add(Number(p));
  }
  return [...out];
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Stop our own children by pid (they would go on creating), wait for them, then clean up. */
async function interruptAndClean(sig: NodeJS.Signals): Promise<void> {
  const kids = await childPids();
  for (const pid of kids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
  const deadline = Date.now() + 20_000;
  while (kids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await cleanupAll();
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    say(`${sig}: stopping and cleaning up`);
    void interruptAndClean(sig).finally(() => process.exit(130));
  });
}

if (argv.includes('--runtimes')) {
  const { runtimesBench } = await import('./runtimes.js');
  process.stdout.write((await runtimesBench((fn) => cleanups.push(fn))) + '\n');
  await cleanupAll();
  process.exit(0);
}

if (argv.includes('--notify')) {
  const { notifyBench } = await import('./notify.js');
  process.stdout.write((await notifyBench((fn) => cleanups.push(fn))) + '\n');
  await cleanupAll();
  process.exit(0);
}

if (argv.includes('--swarm')) {
  await swarmBench(argv.includes('--json'), (fn) => cleanups.push(fn));
  await cleanupAll();
  process.exit(0);
}

/** Where a no-op pass goes, measured once: at the size the targets are checked at. */
let pieces: NoopPieces | undefined;

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Time bottled's own snapshot (3 list calls, through the proxy) and spec loading, outside the CLI. */
async function noopPieces(w: BenchWorld, proxy: DockerSocketProxy, n: number): Promise<NoopPieces | undefined> {
  try {
    const d = new DockerDriver({ host: proxy.host });
    const src = new DirSource(w.dir);
    const snap: number[] = [];
    const load: number[] = [];
    for (let i = 0; i < 4; i++) {
      snap.push(await timeIt(() => d.snapshot()));
      load.push(await timeIt(() => loadSpecs(src)));
    }
    return { n, snapshotFirstMs: snap[0]!, snapshotWarmMs: median(snap.slice(1)), loadFirstMs: load[0]!, loadWarmMs: median(load.slice(1)) };
  } catch (e) {
    say(`no-op pieces not measured: ${(e as Error).message}`);
    return undefined;
  }
}

async function preflight(): Promise<string> {
  const v = await docker.version().catch((e: Error) => {
    throw new Error(`no Docker Engine (${e.message}): run bash scripts/ensure-engine.sh`);
  });
  for (const img of ['bottled/sidecar:local', 'bottled/busybox:local']) {
    await docker.getImage(img).inspect().catch(() => {
      throw new Error(`image ${img} missing: run bash scripts/build-images.sh (never pulled)`);
    });
  }
  await fs.access(path.join(path.dirname(BIN), '..', 'dist', 'controller', 'cli.js')).catch(() => {
    throw new Error('dist/ missing: run npm run build');
  });
  return `${v.Version} (API ${v.ApiVersion})`;
}

async function countOf(w: BenchWorld): Promise<{ running: number; containers: number; networks: number }> {
  const [c, n] = await Promise.all([w.containers(), w.networks()]);
  return { running: c.filter((x) => x.State === 'running').length, containers: c.length, networks: n.length };
}

async function expectWorld(w: BenchWorld, bottles: number, what: string): Promise<void> {
  const c = await countOf(w);
  if (c.running !== 2 * bottles || c.containers !== 2 * bottles || c.networks !== 2 * bottles) {
    throw new Error(`${what}: expected ${2 * bottles} running containers and ${2 * bottles} networks, found ${JSON.stringify(c)}`);
  }
}

async function expectSignal(w: BenchWorld, bottle: string, generation: number): Promise<void> {
  const ctr = w.name_(bottle, SIDECAR);
  const want = `SIGHUP generation ${generation}`;
  for (let i = 0; i < 20; i++) {
    const r = await dockerExec(ctr, ['cat', '/tmp/signals.log']);
    if (r.out.includes(want)) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${ctr} did not record "${want}"`);
}

/** Section 1 (+ section 3 at N=50): one world, all its passes. */
async function bottledSeries(n: number, pool: string, proxy: DockerSocketProxy, grow: number, rows: Row[]): Promise<void> {
  const w = await new BenchWorld(`bench${n}`, pool).setup();
  const cleanup = () => w.cleanup();
  cleanups.push(cleanup);
  const add = (step: string, m: Measure, count = n) => {
    rows.push({ n: count, step, m });
    say(`N=${count} ${step}: wall ${ms(m.wallMs)} ms, pass ${ms(m.passMs)} ms, ${m.calls} calls, ${mb(m.rssKb)} MB, ${m.executed} actions`);
  };
  const noop = async (count: number) => {
    const runs: Measure[] = [];
    for (let i = 0; i < NOOP_REPEAT; i++) {
      const m = await runBottled(w, proxy);
      if (m.executed !== 0) throw new Error(`no-op pass at ${count} bottles executed ${m.executed} actions`);
      runs.push(m);
    }
    const m = summarize(runs);
    add(`no-op (median of ${NOOP_REPEAT}; best ${ms(m.best!.wallMs)}/${ms(m.best!.passMs)})`, m, count);
  };

  for (let i = 0; i < n; i++) await w.write(`b${i}.yaml`, benchBottle(`b${i}`));
  const cold = await runBottled(w, proxy);
  await expectWorld(w, n, `cold converge of ${n}`);
  add('cold converge', cold);

  await noop(n);
  if (grow === 0 && QUICK) pieces = await noopPieces(w, proxy, n);

  await w.write('b0.yaml', benchBottle('b0', 1));
  const change = await runBottled(w, proxy);
  if (change.executed !== 2) throw new Error(`one-file change executed ${change.executed} actions, expected 2 (rewrite + signal)`);
  await expectSignal(w, 'b0', 1);
  add('one-file change (SIGHUP)', change);

  if (grow > 0) {
    const total = n + grow;
    for (let i = n; i < total; i++) await w.write(`b${i}.yaml`, benchBottle(`b${i}`));
    const up = await runBottled(w, proxy);
    await expectWorld(w, total, `scale up to ${total}`);
    add(`scale up +${grow} (to ${total})`, up, total);
    await noop(total);
    pieces = await noopPieces(w, proxy, total);
    for (let i = n; i < total; i++) await w.rm(`b${i}.yaml`);
    const down = await runBottled(w, proxy);
    await expectWorld(w, n, `scale down to ${n}`);
    add(`scale down -${grow} (to ${n})`, down, n);
  }

  for (let i = 0; i < n; i++) await w.rm(`b${i}.yaml`);
  const teardown = await runBottled(w, proxy, ['--allow-empty', '--max-deletions', 'unlimited']);
  const left = await countOf(w);
  if (left.containers || left.networks) throw new Error(`teardown left ${JSON.stringify(left)}`);
  add('teardown (--allow-empty)', teardown);

  cleanups.splice(cleanups.indexOf(cleanup), 1);
  await w.cleanup();
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const loadAtStart = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  const engine = await preflight();
  const runId = crypto.randomBytes(3).toString('hex');
  const [pool10, pool50, poolFloor, poolCli] = await pickPools(4);
  const proxy = await new DockerSocketProxy().start();
  cleanups.push(() => proxy.stop());
  const baseLabel = `bench-${runId}`;
  cleanups.push(() => cleanupBaseline(`${baseLabel}-floor`), () => cleanupBaseline(`${baseLabel}-cli`));
  say(`run ${runId}: load average ${loadAtStart}, engine ${engine}, ${os.cpus().length} CPUs, node ${process.version}, pools ${pool10} ${pool50} ${poolFloor} ${poolCli}${QUICK ? ' (--quick)' : ''}`);

  // Warm-up (not measured): page cache for bottled's modules, the engine's first container.
  const warmDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-bench-warm-'));
  cleanups.push(() => fs.rm(warmDir, { recursive: true, force: true }));
  await runNode([BIN, 'validate', '--dir', warmDir], process.env);
  const warm = await docker.createContainer({ Image: 'bottled/busybox:local', Labels: { 'bottled-bench.run': `${baseLabel}-floor` } });
  await warm.start();
  await warm.remove({ force: true });

  // Section 2: baselines for the N=10 cold converge.
  // The floor runs twice (before and after bottled's N=10 series, each on a clean engine) and
  // counts as the mean: single samples on a shared 2-core engine vary by tens of percent.
  const floorRuns: BaselineResult[] = [];
  const runFloor = async () => {
    say(`floor #${floorRuns.length + 1}: 10 bottles with dockerode, 4 in parallel`);
    const r = await floor({ proxy, runLabel: `${baseLabel}-floor`, pool: poolFloor!, prefix: `bf${runId}`, n: 10 });
    say(`floor: ${ms(r.wallMs)} ms, ${r.calls} calls`);
    floorRuns.push(r);
  };
  await runFloor();
  say('old launcher: 10 bottles with one docker CLI process per step, in sequence');
  const cli = await oldLauncher({ proxy, runLabel: `${baseLabel}-cli`, pool: poolCli!, prefix: `bc${runId}`, n: 10 });
  say(`old launcher: ${ms(cli.wallMs)} ms, ${cli.calls} calls`);

  // Sections 1 and 3.
  const rows: Row[] = [];
  await bottledSeries(10, pool10!, proxy, 0, rows);
  await runFloor();
  const fl: BaselineResult & { runsMs: number[] } = {
    wallMs: mean(floorRuns.map((r) => r.wallMs)),
    calls: Math.max(...floorRuns.map((r) => r.calls)),
    steps: new Map(),
    runsMs: floorRuns.map((r) => r.wallMs),
  };
  for (const r of floorRuns) for (const [k, v] of r.steps) fl.steps.set(k, [...(fl.steps.get(k) ?? []), ...v]);
  if (!QUICK) await bottledSeries(50, pool50!, proxy, 10, rows);

  await cleanupAll();
  const totalS = (Date.now() - t0) / 1000;
  report({ engine, load: loadAtStart, rows, fl, cli, totalS, pieces, quick: QUICK, json: JSON_OUT });
}

async function scaleMain(sweep: boolean): Promise<void> {
  await preflight();
  const proxy = await new DockerSocketProxy().start();
  cleanups.push(() => proxy.stop());
  const { scaleBench, concurrencySweep } = await import('./scale.js');
  const out = sweep
    ? await concurrencySweep(proxy, listOf('--sizes', [50, 200]), listOf('--levels', [2, 4, 8, 16]), cleanups)
    : await scaleBench(proxy, listOf('--sizes', [10, 50, 100, 200]), Number(valueOf('--concurrency') ?? 4), cleanups);
  await cleanupAll();
  process.stdout.write(out + '\n');
}

try {
  if (argv.includes('--watch')) process.stdout.write((await (await import('./watch.js')).watchBench()) + '\n');
  else if (argv.includes('--scale') || argv.includes('--concurrency-sweep')) await scaleMain(argv.includes('--concurrency-sweep'));
  else await main();
} catch (e) {
  if (interrupted) await new Promise(() => {}); // the signal handler cleans up and exits
  say(`failed: ${(e as Error).stack ?? e}`);
  await cleanupAll();
  process.exit(1);
}
