import { performance } from 'node:perf_hooks';
import { overlaps } from '../controller/subnets.js';
import { World, bottleYaml, docker, passLog, type RunResult } from '../test/helpers/harness.js';
import type { DockerSocketProxy } from '../test/helpers/socket-proxy.js';

/** Path of the signal file inside the sidecar, and the sidecar's component name. */
export const SIGNAL_FILE = '/etc/bench/reload.conf';
export const SIDECAR = 'proxy';
export const ALIASES = ['egress', 'proxy'];

/** The benchmark topology: bottle network + egress network, one sidecar with a SIGHUP file, one agent. */
export function benchBottle(name: string, generation = 0): string {
  return bottleYaml(
    name,
    `sidecars:
  - name: ${SIDECAR}
    image: bottled/sidecar:local
    aliases: [${ALIASES.join(', ')}]
    egress: true
    env: {WATCH_FILE: ${SIGNAL_FILE}}
    files:
      - path: ${SIGNAL_FILE}
        content: "generation ${generation}\\n"
        onChange: {signal: SIGHUP}
agent:
  image: bottled/busybox:local`,
  );
}

/** A World whose subnet pool is chosen by the bench (outside the ranges the test suites use). */
export class BenchWorld extends World {
  constructor(
    name: string,
    readonly benchPool: string,
  ) {
    super(name);
  }

  override flags(): string[] {
    const f = super.flags();
    f[f.indexOf('--subnet-pool') + 1] = this.benchPool;
    return f;
  }
}

export interface Measure {
  /** wall time of the whole `bottled reconcile --once` process (spawn to exit) */
  wallMs: number;
  /** what the pass logs (`passMs`) */
  passMs: number;
  /** Engine API requests counted at the socket by the proxy */
  calls: number;
  /** what bottled counts itself (`dockerCalls`) */
  selfCalls: number;
  /** peak RSS of the child (`maxRssKb` from its log line) */
  rssKb: number;
  executed: number;
  bottles: number;
  /** per-step durations derived from the action log lines (ms), keyed by step */
  steps: Map<string, number[]>;
  run: RunResult;
  /** for repeated passes: the fastest sample (noise on a shared engine only ever adds time) */
  best?: { wallMs: number; passMs: number };
  /** from spawning the process to its first completed action (how soon work starts) */
  firstActionMs?: number;
}

/** Run one `bottled reconcile --once` through the proxy and measure it. Throws unless it exits 0. */
export async function runBottled(w: World, proxy: DockerSocketProxy, extra: string[] = []): Promise<Measure> {
  proxy.reset();
  const spawnedAt = Date.now();
  const t0 = performance.now();
  const run = await w.run(['reconcile', '--once', '--docker-host', proxy.host, ...extra], { env: { LOG_LEVEL: 'info' } });
  const wallMs = performance.now() - t0;
  const calls = proxy.requests.length;
  const p = passLog(run);
  if (run.code !== 0 || !p) {
    const why = run.code !== 0 ? `exited ${run.code ?? run.signal}` : 'logged no "pass finished" line';
    throw new Error(`bottled reconcile --once ${extra.join(' ')} ${why}:\n${run.stderr.slice(-3000)}`);
  }
  return {
    wallMs,
    passMs: Number(p.passMs),
    calls,
    selfCalls: Number(p.dockerCalls),
    rssKb: Number(p.maxRssKb),
    executed: Number(p.executed),
    bottles: Number(p.bottles),
    steps: stepDurations(run.logs),
    run,
    firstActionMs: firstAction(run.logs, spawnedAt),
  };
}

function firstAction(logs: Record<string, unknown>[], spawnedAt: number): number | undefined {
  const l = logs.find((x) => typeof x.action === 'string' && typeof x.time === 'number' && x.level === 30);
  return l ? (l.time as number) - spawnedAt : undefined;
}

/** Classify a resource of the bench topology for the per-step breakdown. */
export function stepKey(verb: string, type: string, name: string): string {
  if (type === 'network') return `${verb} ${name.endsWith('-egress') ? 'egress net' : 'bottle net'}`;
  if (type === 'container') return `${verb} ${name.endsWith(`-${SIDECAR}`) ? 'sidecar' : 'agent'}`;
  return `${verb} ${type}`;
}

/**
 * Per-step durations from the info lines bottled logs after each completed action: within one
 * bottle actions run in sequence, so the gap between two consecutive lines of a bottle is the
 * later step (API call + bottled's own inventory/event writes + readiness waits). The first
 * step of each bottle has no reference point (queue wait) and is left out.
 */
export function stepDurations(logs: Record<string, unknown>[]): Map<string, number[]> {
  const last = new Map<string, number>();
  const out = new Map<string, number[]>();
  for (const l of logs) {
    if (typeof l.bottle !== 'string' || typeof l.action !== 'string' || typeof l.resource !== 'string' || typeof l.time !== 'number') continue;
    if (typeof l.msg !== 'string' || l.msg.endsWith(' failed') || l.level !== 30) continue;
    const [verb, type] = l.msg.split(' ');
    const prev = last.get(l.bottle);
    last.set(l.bottle, l.time);
    if (prev === undefined || !verb || !type) continue;
    const k = stepKey(verb, type, l.resource);
    const arr = out.get(k) ?? [];
    arr.push(l.time - prev);
    out.set(k, arr);
  }
  return out;
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Median-by-wall of several measures of the same pass, with the worst call count and RSS. */
export function summarize(ms: Measure[]): Measure {
  const byWall = [...ms].sort((a, b) => a.wallMs - b.wallMs);
  const mid = byWall[byWall.length >> 1]!;
  return {
    ...mid,
    wallMs: median(ms.map((m) => m.wallMs)),
    passMs: median(ms.map((m) => m.passMs)),
    calls: Math.max(...ms.map((m) => m.calls)),
    selfCalls: Math.max(...ms.map((m) => m.selfCalls)),
    rssKb: Math.max(...ms.map((m) => m.rssKb)),
    best: { wallMs: Math.min(...ms.map((m) => m.wallMs)), passMs: Math.min(...ms.map((m) => m.passMs)) },
  };
}

/**
 * A /16 inside 10.216.0.0/13 that no existing Docker network overlaps (the test suites use
 * 10.200.0.0/13), carved into /20s: one per world and baseline.
 */
export async function pickPools(count: number, prefix = 20): Promise<string[]> {
  const used = (await docker.listNetworks()).flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => !!s));
  const start = Math.floor(Math.random() * 8);
  for (let k = 0; k < 8; k++) {
    const second = 216 + ((start + k) % 8);
    const block = `10.${second}.0.0/16`;
    if (used.some((u) => overlaps(u, block))) continue;
    const step = 2 ** (24 - prefix); // third octets per pool
    if (count * step > 256) throw new Error(`${count} pools of /${prefix} do not fit a /16`);
    return Array.from({ length: count }, (_, i) => `10.${second}.${i * step}.0/${prefix}`);
  }
  throw new Error('no free /16 in 10.216.0.0/13 for the bench');
}

/** The i-th /28 of a pool (and its gateway). */
export function nthSubnet28(pool: string, i: number): { subnet: string; gateway: string } {
  const [addr] = pool.split('/');
  const o = addr!.split('.').map(Number);
  const base = ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]! + i * 16;
  const ip = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
  return { subnet: `${ip(base)}/28`, gateway: ip(base + 1) };
}
