import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'bottled');
export const docker = new Docker({ version: 'v1.41' } as Docker.DockerOptions);

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** pino lines from stderr, parsed */
  logs: Record<string, unknown>[];
}

/**
 * One isolated bottled world per test: its own --instance, --prefix, state dir, bottles dir and
 * subnet pool, so suites can run in parallel on one engine. `cleanup()` removes what it made.
 */
export class World {
  readonly id = crypto.randomBytes(3).toString('hex');
  readonly instance: string;
  readonly prefix: string;
  readonly pool: string;
  dir = '';
  stateDir = '';
  private base = '';

  constructor(readonly name: string) {
    this.instance = `t-${name}-${this.id}`.slice(0, 31);
    this.prefix = `t${this.id}`;
    // A /20 of its own inside 10.200.0.0/13, picked at random: parallel suites never race for a subnet.
    const n = crypto.randomInt(0, 128);
    this.pool = `10.${200 + (n >> 4)}.${(n & 15) * 16}.0/20`;
  }

  async setup(): Promise<this> {
    this.base = await fs.mkdtemp(path.join(os.tmpdir(), `bottled-${this.name}-`));
    this.dir = path.join(this.base, 'bottles.d');
    this.stateDir = path.join(this.base, 'state');
    await fs.mkdir(this.dir, { recursive: true });
    return this;
  }

  flags(): string[] {
    return ['--dir', this.dir, '--state-dir', this.stateDir, '--instance', this.instance, '--prefix', this.prefix, '--subnet-pool', this.pool];
  }

  async write(rel: string, text: string): Promise<void> {
    const f = path.join(this.dir, rel);
    await fs.mkdir(path.dirname(f), { recursive: true });
    await fs.writeFile(f, text);
  }

  async rm(rel: string): Promise<void> {
    await fs.rm(path.join(this.dir, rel), { force: true, recursive: true });
  }

  /** Run the real CLI (compiled) in a child process. */
  run(args: string[], opts: { env?: NodeJS.ProcessEnv; flags?: boolean } = {}): Promise<RunResult> {
    const full = [BIN, ...args, ...(opts.flags === false ? [] : this.flags())];
    return runNode(full, { ...process.env, LOG_LEVEL: 'debug', ...opts.env });
  }

  reconcile(extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<RunResult> {
    return this.run(['reconcile', '--once', ...extra], { env });
  }

  name_(...parts: string[]): string {
    return [this.prefix, ...parts].join('-');
  }

  async containers(): Promise<Docker.ContainerInfo[]> {
    return docker.listContainers({ all: true, filters: { label: [`bottled.instance=${this.instance}`] } });
  }

  async networks(): Promise<Docker.NetworkInspectInfo[]> {
    return docker.listNetworks({ filters: { label: [`bottled.instance=${this.instance}`] } });
  }

  async cleanup(extraNames: { containers?: string[]; networks?: string[] } = {}): Promise<void> {
    const ctrs = await this.containers();
    await Promise.all(ctrs.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
    for (const n of extraNames.containers ?? []) await docker.getContainer(n).remove({ force: true }).catch(() => {});
    const nets = await this.networks();
    await Promise.all(nets.map((n) => docker.getNetwork(n.Id).remove().catch(() => {})));
    for (const n of extraNames.networks ?? []) await docker.getNetwork(n).remove().catch(() => {});
    if (this.base) await fs.rm(this.base, { recursive: true, force: true });
  }
}

export function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      const logs: Record<string, unknown>[] = [];
      for (const l of stderr.split('\n')) {
        if (!l.startsWith('{')) continue;
        try {
          logs.push(JSON.parse(l));
        } catch {
          /* not a log line */
        }
      }
      resolve({ code, signal, stdout, stderr, logs });
    });
  });
}

/** Run a command in a container and return its output (docker exec). */
export async function dockerExec(container: string, cmd: string[], engine: Docker = docker): Promise<{ code: number; out: string }> {
  const ex = await engine.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((res, rej) => {
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => res());
    stream.on('error', rej);
  });
  const buf = Buffer.concat(chunks);
  const out: Buffer[] = [];
  for (let i = 0; i + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  const info = await ex.inspect();
  return { code: info.ExitCode ?? -1, out: Buffer.concat(out).toString() };
}

/** The pass summary line the CLI logs at the end of `reconcile --once`. */
export function passLog(r: RunResult): Record<string, unknown> | undefined {
  return r.logs.find((l) => l.msg === 'pass finished');
}

export function bottleYaml(name: string, body: string): string {
  return `apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata:\n  name: ${name}\nspec:\n${body.replace(/^/gm, '  ')}\n`;
}

/** A watch-mode daemon in a child process, with its log lines collected. */
export class Daemon {
  readonly logs: Record<string, unknown>[] = [];
  private proc?: import('node:child_process').ChildProcess;
  private exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly world: World,
    private readonly extra: string[] = [],
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  get pid(): number {
    return this.proc!.pid!;
  }

  async start(): Promise<this> {
    this.proc = spawn(process.execPath, [BIN, 'reconcile', ...this.world.flags(), '--log-level', 'debug', ...this.extra], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let buf = '';
    this.proc.stderr!.on('data', (d) => {
      buf += d;
      for (let i; (i = buf.indexOf('\n')) >= 0; ) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.logs.push(JSON.parse(line));
        } catch {
          this.logs.push({ msg: line });
        }
        for (const w of this.waiters.splice(0)) w();
      }
    });
    this.exited = new Promise((res) => this.proc!.on('exit', (code, signal) => res({ code, signal })));
    await this.waitLog((l) => l.msg === 'watching', 60_000);
    return this;
  }

  /** Wait until a log line matches (bounded: a hang fails the test instead of blocking it). */
  async waitLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no matching log line within ${timeoutMs} ms; last: ${JSON.stringify(this.logs.slice(-5))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.proc || this.proc.exitCode !== null) return (await this.exited) ?? { code: null, signal: null };
    this.proc.kill(signal);
    return this.exited!;
  }
}

/** Poll until `fn` returns a truthy value (bounded, so a broken heal fails instead of hanging). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The container's ID while it runs, else false (missing or stopped). */
export async function runningId(name: string, engine: Docker = docker): Promise<string | false> {
  try {
    const i = await engine.getContainer(name).inspect();
    return i.State.Running ? i.Id : false;
  } catch {
    return false;
  }
}
