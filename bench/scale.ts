/**
 * `npm run bench -- --scale [--sizes 10,50,100,200] [--concurrency 4]`
 * `npm run bench -- --concurrency-sweep [--sizes 50,200] [--levels 2,4,8,16]`
 *
 * For each N, in one run on one engine: the raw-API floor for the same topology (explicit
 * subnets, the same create-time settings, 4 bottles in parallel), then bottled: cold converge,
 * no-op (median of 3), one-file change, teardown. Wall time, Engine API calls counted at the
 * socket, peak RSS. The sweep runs bottled's cold converge and teardown at each --concurrency.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { DockerSocketProxy } from '../test/helpers/socket-proxy.js';
import { cleanupBaseline, floorCold, floorTeardown } from './baselines.js';
import { BenchWorld, benchBottle, pickPools, runBottled, summarize, type Measure } from './lib.js';
import { mb, ms, ratio, table } from './table.js';

export interface ScaleRow {
  n: number;
  concurrency: number;
  floorCold?: number;
  floorTeardown?: number;
  cold: Measure;
  noop?: Measure;
  change?: Measure;
  teardown: Measure;
}

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);

/** Pools of /18 (1024 /28s): enough for 200 bottles of 2 networks, bottled and floor each. */
async function pools(count: number): Promise<string[]> {
  return pickPools(count, 18);
}

async function bottledRun(n: number, pool: string, proxy: DockerSocketProxy, concurrency: number, full: boolean, cleanups: (() => Promise<void>)[]): Promise<ScaleRow> {
  const w = await new BenchWorld(`scale${n}c${concurrency}`, pool).setup();
  const cleanup = () => w.cleanup();
  cleanups.push(cleanup);
  try {
    const conc = ['--concurrency', String(concurrency)];
    for (let i = 0; i < n; i++) await w.write(`b${i}.yaml`, benchBottle(`b${i}`));
    const cold = await runBottled(w, proxy, conc);
    say(`N=${n} c=${concurrency} bottled cold ${ms(cold.wallMs)} ms (pass ${ms(cold.passMs)})`);
    let noop: Measure | undefined;
    let change: Measure | undefined;
    if (full) {
      noop = summarize([await runBottled(w, proxy, conc), await runBottled(w, proxy, conc), await runBottled(w, proxy, conc)]);
      if (noop.executed) throw new Error(`no-op at ${n} executed ${noop.executed}`);
      await w.write('b0.yaml', benchBottle('b0', 1));
      change = await runBottled(w, proxy, conc);
      say(`N=${n} no-op ${ms(noop.wallMs)} ms (pass ${ms(noop.passMs)}, ${noop.calls} calls), change ${ms(change.wallMs)} ms`);
    }
    for (let i = 0; i < n; i++) await w.rm(`b${i}.yaml`);
    const teardown = await runBottled(w, proxy, [...conc, '--allow-empty', '--max-deletions', 'unlimited']);
    say(`N=${n} c=${concurrency} bottled teardown ${ms(teardown.wallMs)} ms`);
    return { n, concurrency, cold, noop, change, teardown };
  } finally {
    cleanups.splice(cleanups.indexOf(cleanup), 1);
    await w.cleanup();
  }
}

async function floorRun(n: number, pool: string, proxy: DockerSocketProxy, concurrency: number): Promise<{ cold: number; teardown: number }> {
  const runLabel = `bench-scale-${crypto.randomBytes(3).toString('hex')}`;
  const prefix = `bs${crypto.randomBytes(2).toString('hex')}`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-bench-floor-'));
  try {
    const ctx = { proxy, runLabel, pool, prefix, n };
    const cold = await floorCold(ctx, dir, concurrency);
    const down = await floorTeardown(ctx, concurrency);
    say(`N=${n} floor cold ${ms(cold.wallMs)} ms, teardown ${ms(down.wallMs)} ms`);
    return { cold: cold.wallMs, teardown: down.wallMs };
  } finally {
    await cleanupBaseline(runLabel);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function scaleBench(proxy: DockerSocketProxy, sizes: number[], concurrency: number, cleanups: (() => Promise<void>)[]): Promise<string> {
  const [pBottled, pFloor] = await pools(2);
  const rows: ScaleRow[] = [];
  for (const n of sizes) {
    const f = await floorRun(n, pFloor!, proxy, 4);
    const r = await bottledRun(n, pBottled!, proxy, concurrency, true, cleanups);
    rows.push({ ...r, floorCold: f.cold, floorTeardown: f.teardown });
  }
  return table(
    `bottled --concurrency ${concurrency} vs the raw-API floor (4 in parallel), same topology, same run (${os.cpus().length} CPUs)`,
    ['N', 'cold ms', 'first action ms', 'floor ms', 'ratio', 'no-op wall ms', 'no-op pass ms', 'no-op calls', 'one-file change ms', 'teardown ms', 'floor ms', 'ratio', 'peak RSS MB'],
    rows.map((r) => [
      String(r.n),
      ms(r.cold.wallMs),
      ms(r.cold.firstActionMs ?? NaN),
      ms(r.floorCold!),
      ratio(r.cold.wallMs, r.floorCold!),
      ms(r.noop!.wallMs),
      ms(r.noop!.passMs),
      String(r.noop!.calls),
      ms(r.change!.wallMs),
      ms(r.teardown.wallMs),
      ms(r.floorTeardown!),
      ratio(r.teardown.wallMs, r.floorTeardown!),
      mb(Math.max(r.cold.rssKb, r.noop!.rssKb, r.teardown.rssKb)),
    ]),
  );
}

export async function concurrencySweep(proxy: DockerSocketProxy, sizes: number[], levels: number[], cleanups: (() => Promise<void>)[]): Promise<string> {
  const [pBottled] = await pools(1);
  const rows: ScaleRow[] = [];
  for (const n of sizes) for (const c of levels) rows.push(await bottledRun(n, pBottled!, proxy, c, false, cleanups));
  return table(
    'bottled cold converge and teardown by --concurrency',
    ['N', 'concurrency', 'cold ms', 'cold ms / bottle', 'teardown ms', 'teardown ms / bottle', 'peak RSS MB'],
    rows.map((r) => [String(r.n), String(r.concurrency), ms(r.cold.wallMs), (r.cold.wallMs / r.n).toFixed(0), ms(r.teardown.wallMs), (r.teardown.wallMs / r.n).toFixed(0), mb(Math.max(r.cold.rssKb, r.teardown.rssKb))]),
  );
}
