import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { execa } from 'execa';
import pLimit from 'p-limit';
import { docker } from '../test/helpers/harness.js';
import type { DockerSocketProxy } from '../test/helpers/socket-proxy.js';
import { ALIASES, SIDECAR, SIGNAL_FILE, nthSubnet28 } from './lib.js';

export interface BaselineResult {
  wallMs: number;
  calls: number;
  /** per-step durations (ms) */
  steps: Map<string, number[]>;
}

export interface BaselineCtx {
  proxy: DockerSocketProxy;
  /** label value that marks everything a baseline creates (for cleanup) */
  runLabel: string;
  /** a /20 of its own for the /28 subnets */
  pool: string;
  /** resource name prefix */
  prefix: string;
  n: number;
}

const LABEL = 'bottled-bench.run';

interface BottleNames {
  net: string;
  egress: string;
  sidecar: string;
  agent: string;
  file: string;
  netSub: { subnet: string; gateway: string };
  egressSub: { subnet: string; gateway: string };
}

async function prepare(ctx: BaselineCtx, dir: string): Promise<BottleNames[]> {
  const out: BottleNames[] = [];
  for (let i = 0; i < ctx.n; i++) {
    const b = `${ctx.prefix}-b${i}`;
    const file = path.join(dir, `b${i}`, 'reload.conf');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, 'generation 0\n', { mode: 0o644 });
    out.push({
      net: `${b}-net`,
      egress: `${b}-egress`,
      sidecar: `${b}-${SIDECAR}`,
      agent: b,
      file,
      netSub: nthSubnet28(ctx.pool, 2 * i),
      egressSub: nthSubnet28(ctx.pool, 2 * i + 1),
    });
  }
  return out;
}

function record(steps: Map<string, number[]>, key: string, ms: number): void {
  const a = steps.get(key) ?? [];
  a.push(ms);
  steps.set(key, a);
}

async function timed<T>(steps: Map<string, number[]>, key: string, fn: () => Promise<T>): Promise<T> {
  const t = performance.now();
  const r = await fn();
  record(steps, key, performance.now() - t);
  return r;
}

/**
 * The floor: the minimal Engine API calls, straight from dockerode, for the same topology and
 * the same create-time configuration as bottled (labels, restart policy, bind-mounted file,
 * internal bottle network with inhibit_ipv4, explicit /28 subnets). 7 calls a bottle, steps of a
 * bottle in sequence, 4 bottles in parallel (bottled's default --concurrency).
 */
export async function floor(ctx: BaselineCtx, concurrency = 4): Promise<BaselineResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-bench-floor-'));
  try {
    return await floorCold(ctx, dir, concurrency);
  } finally {
    await cleanupBaseline(ctx.runLabel);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The floor's cold converge into `dir` (bind-mount sources), leaving everything in place. */
export async function floorCold(ctx: BaselineCtx, dir: string, concurrency = 4): Promise<BaselineResult> {
  {
    const bottles = await prepare(ctx, dir);
    const d = new Docker({ socketPath: ctx.proxy.socketPath, version: 'v1.41' } as Docker.DockerOptions);
    const labels = { [LABEL]: ctx.runLabel };
    const steps = new Map<string, number[]>();
    const limit = pLimit(concurrency);
    ctx.proxy.reset();
    const t0 = performance.now();
    await Promise.all(
      bottles.map((b) =>
        limit(async () => {
          await timed(steps, 'create bottle net', () =>
            d.createNetwork({
              Name: b.net,
              Driver: 'bridge',
              CheckDuplicate: true,
              Internal: true,
              Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' },
              Labels: labels,
              IPAM: { Driver: 'default', Config: [{ Subnet: b.netSub.subnet, Gateway: b.netSub.gateway }] },
            }),
          );
          await timed(steps, 'create egress net', () =>
            d.createNetwork({
              Name: b.egress,
              Driver: 'bridge',
              CheckDuplicate: true,
              Internal: false,
              Options: {},
              Labels: labels,
              IPAM: { Driver: 'default', Config: [{ Subnet: b.egressSub.subnet, Gateway: b.egressSub.gateway }] },
            }),
          );
          await timed(steps, 'create sidecar', () =>
            d.createContainer({
              name: b.sidecar,
              Image: 'bottled/sidecar:local',
              Env: [`WATCH_FILE=${SIGNAL_FILE}`],
              Labels: labels,
              StopSignal: 'SIGTERM',
              HostConfig: { Init: true, RestartPolicy: { Name: 'always' }, Binds: [`${b.file}:${SIGNAL_FILE}:ro`] },
              NetworkingConfig: { EndpointsConfig: { [b.net]: { Aliases: ALIASES } } },
            }),
          );
          await timed(steps, 'connect sidecar', () => d.getNetwork(b.egress).connect({ Container: b.sidecar, EndpointConfig: { Aliases: [SIDECAR] } }));
          await timed(steps, 'start sidecar', () => d.getContainer(b.sidecar).start());
          await timed(steps, 'create agent', () =>
            d.createContainer({
              name: b.agent,
              Image: 'bottled/busybox:local',
              Env: [],
              Labels: labels,
              StopSignal: 'SIGTERM',
              HostConfig: { Init: true, RestartPolicy: { Name: 'always' }, Binds: [] },
              NetworkingConfig: { EndpointsConfig: { [b.net]: { Aliases: [] } } },
            }),
          );
          await timed(steps, 'start agent', () => d.getContainer(b.agent).start());
        }),
      ),
    );
    const wallMs = performance.now() - t0;
    return { wallMs, calls: ctx.proxy.requests.length, steps };
  }
}

/**
 * The floor's teardown: per bottle, remove (force) the agent and the sidecar, then its two
 * networks, bottles `concurrency` at a time: 4 calls a bottle, the minimum for the topology.
 */
export async function floorTeardown(ctx: BaselineCtx, concurrency = 4): Promise<BaselineResult> {
  const d = new Docker({ socketPath: ctx.proxy.socketPath, version: 'v1.41' } as Docker.DockerOptions);
  const limit = pLimit(concurrency);
  const steps = new Map<string, number[]>();
  ctx.proxy.reset();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: ctx.n }, (_, i) => `${ctx.prefix}-b${i}`).map((b) =>
      limit(async () => {
        await timed(steps, 'remove agent', () => d.getContainer(b).remove({ force: true }));
        await timed(steps, 'remove sidecar', () => d.getContainer(`${b}-${SIDECAR}`).remove({ force: true }));
        await timed(steps, 'remove bottle net', () => d.getNetwork(`${b}-net`).remove());
        await timed(steps, 'remove egress net', () => d.getNetwork(`${b}-egress`).remove());
      }),
    ),
  );
  return { wallMs: performance.now() - t0, calls: ctx.proxy.requests.length, steps };
}

/**
 * The old launcher: one `docker` CLI process per step, strictly in sequence (network create x2,
 * create, network connect, start, create, start per bottle), through the same proxy.
 */
export async function oldLauncher(ctx: BaselineCtx): Promise<BaselineResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-bench-cli-'));
  try {
    const bottles = await prepare(ctx, dir);
    const env = { ...process.env, DOCKER_HOST: ctx.proxy.host };
    const steps = new Map<string, number[]>();
    const cli = (key: string, args: string[]) => timed(steps, key, () => execa('docker', args, { env, stdin: 'ignore' }));
    const label = ['--label', `${LABEL}=${ctx.runLabel}`];
    ctx.proxy.reset();
    const t0 = performance.now();
    for (const b of bottles) {
      await cli('create bottle net', ['network', 'create', '--internal', '-o', 'com.docker.network.bridge.inhibit_ipv4=true', '--subnet', b.netSub.subnet, '--gateway', b.netSub.gateway, ...label, b.net]);
      await cli('create egress net', ['network', 'create', '--subnet', b.egressSub.subnet, '--gateway', b.egressSub.gateway, ...label, b.egress]);
      await cli('create sidecar', [
        'create', '--name', b.sidecar, '--network', b.net, ...ALIASES.flatMap((a) => ['--network-alias', a]),
        '--restart', 'unless-stopped', '-v', `${b.file}:${SIGNAL_FILE}:ro`, '-e', `WATCH_FILE=${SIGNAL_FILE}`, ...label, 'bottled/sidecar:local',
      ]);
      await cli('connect sidecar', ['network', 'connect', '--alias', SIDECAR, b.egress, b.sidecar]);
      await cli('start sidecar', ['start', b.sidecar]);
      await cli('create agent', ['create', '--name', b.agent, '--network', b.net, '--restart', 'unless-stopped', ...label, 'bottled/busybox:local']);
      await cli('start agent', ['start', b.agent]);
    }
    const wallMs = performance.now() - t0;
    return { wallMs, calls: ctx.proxy.requests.length, steps };
  } finally {
    await cleanupBaseline(ctx.runLabel);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Remove every container, then every network, carrying this run's label (not timed). */
export async function cleanupBaseline(runLabel: string): Promise<void> {
  const filters = { label: [`${LABEL}=${runLabel}`] };
  const ctrs = await docker.listContainers({ all: true, filters });
  await Promise.all(ctrs.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  const nets = await docker.listNetworks({ filters });
  await Promise.all(nets.map((n) => docker.getNetwork(n.Id).remove().catch(() => {})));
}
