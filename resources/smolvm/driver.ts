// smolvm driver: runs the `smolvm` CLI (v1.8+; written against v1.9.3) with execa, never
// through a shell. No policy lives here: the controller decides what to do, this module
// only observes and acts, and says precisely what went wrong.
//
// Contract: /work/shared/reference/smolvm-cli.md ("the reference", § numbers below).
// Things every caller must know:
//   - `machine ls --json` is the only observation; its array order is unstable (sorted
//     here). It does not show env, allow-list, secrets or the network backend (§3): keep
//     a spec hash in a --label to detect drift. Labels cannot be changed after create.
//   - `pid` is the *stored* pid: after a host crash a machine reads `stopped` with a
//     non-null pid (§3, §10). `stalePid` flags that. Start it again; never trust the pid.
//   - exec/cp never auto-start; they fail with "is not running" both for a stopped and for
//     an unreachable (zombie) machine (§2.7). The driver asks `status --json` once to tell
//     the two apart.
//   - `--secret-env GUEST=HOSTVAR` stores only the reference (§2.1). The value is read from
//     smolvm's own environment when the VM launches, so secret values must be given to
//     `start` (every start, including a heal), not only to `create`. They are put in the
//     child's environment only, never in argv.

import path from 'node:path';
import { classifyFailure, isSmolvmOwnFailure, SmolvmError } from './errors.js';
import { buildCreateArgs, compareVersions, ENV_KEY, parseMachine, parseMachineList, parseVersion, sortedEntries } from './parse.js';
import { MIN_SMOLVM_VERSION, type CpOptions, type CreateMachineOptions, type DeleteOptions, type DeleteResult, type ExecOptions, type ExecResult, type MachineObserved, type RetryPolicy, type SmolvmDriverOptions, type StartOptions, type StartResult, type StopResult } from './types.js';

export * from './errors.js';
export * from './parse.js';
export * from './types.js';

// ---------------------------------------------------------------------------------------
// public types
// ---------------------------------------------------------------------------------------
function assertNoSecretInArgv(args: readonly string[], secretValues: Record<string, string> | undefined): void {
  if (!secretValues) return;
  for (const v of Object.values(secretValues)) {
    // Very short values would match by accident; they are not credentials anyway.
    if (v.length < 6) continue;
    if (args.some((a) => a.includes(v))) {
      throw new SmolvmError('usage', 'refusing to run smolvm: a secret value would appear in its arguments');
    }
  }
}


// ---------------------------------------------------------------------------------------
// the driver
// ---------------------------------------------------------------------------------------

interface RawResult {
  exitCode?: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  signal?: string;
}

interface RunOptions {
  secretValues?: Record<string, string> | undefined;
  timeoutMs?: number | undefined;
  machine?: string | undefined;
}

export class SmolvmDriver {
  readonly bin: string;
  /** number of smolvm processes started (tests, bench) */
  callCount = 0;

  private readonly env: NodeJS.ProcessEnv;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onCall: ((args: readonly string[]) => void) | undefined;
  private versionPromise: Promise<string> | undefined;
  private readonly nameQueues = new Map<string, Promise<unknown>>();

  constructor(opts: SmolvmDriverOptions = {}) {
    this.bin = opts.bin ?? 'smolvm';
    this.env = opts.env ?? process.env;
    this.timeoutMs = opts.timeoutMs ?? 300_000;
    this.retry = { attempts: 5, baseMs: 250, maxMs: 4000, ...opts.retry };
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.onCall = opts.onCall;
  }

  // ----- version -------------------------------------------------------------------------

  /** `smolvm --version`, run once and cached (a failure is not cached). */
  version(): Promise<string> {
    this.versionPromise ??= (async () => {
      const args = ['--version'];
      const r = await this.run(args, {});
      if (r.exitCode !== 0) throw this.toError(args, r, undefined);
      const v = parseVersion(r.stdout);
      if (!v) {
        throw new SmolvmError('unsupported', `cannot read a version from \`${this.bin} --version\`: ${JSON.stringify(r.stdout.trim())}`, {
          args,
          stderr: r.stderr,
        });
      }
      return v.join('.');
    })();
    this.versionPromise.catch(() => {
      this.versionPromise = undefined;
    });
    return this.versionPromise;
  }

  /** Throws 'unsupported' below 1.8.0 (no `machine create --label`, §11). */
  async assertSupported(): Promise<string> {
    const v = await this.version();
    if (compareVersions(v, MIN_SMOLVM_VERSION) < 0) {
      throw new SmolvmError(
        'unsupported',
        `smolvm ${v} at '${this.bin}' is too old: bottled needs smolvm >= ${MIN_SMOLVM_VERSION} ` +
          `(\`machine create --label\`, which bottled uses to mark what it owns, arrived in v1.8.0). ` +
          `Upgrade smolvm or point --smolvm PATH at a newer one.`,
        { args: ['--version'] },
      );
    }
    return v;
  }

  // ----- observe -------------------------------------------------------------------------

  /** `machine ls --json`, sorted by name. */
  async list(opts: { timeoutMs?: number } = {}): Promise<MachineObserved[]> {
    const args = ['machine', 'ls', '--json'];
    return this.withRetry(async () => {
      const r = await this.run(args, { timeoutMs: opts.timeoutMs });
      if (r.exitCode !== 0) throw this.toError(args, r, undefined);
      return parseMachineList(r.stdout);
    });
  }

  /** `machine status --name N --json`; null when there is no such machine. */
  async status(name: string, opts: { timeoutMs?: number } = {}): Promise<MachineObserved | null> {
    const args = ['machine', 'status', '--name', name, '--json'];
    return this.withRetry(async () => {
      const r = await this.run(args, { timeoutMs: opts.timeoutMs, machine: name });
      if (r.exitCode !== 0) {
        const e = this.toError(args, r, name);
        if (e.kind === 'not-found') return null;
        throw e;
      }
      let data: unknown;
      try {
        data = JSON.parse(r.stdout);
      } catch (err) {
        throw new SmolvmError('failed', `smolvm machine status --json printed invalid JSON`, { args, machine: name, cause: err });
      }
      const m = parseMachine(data);
      if (!m) throw new SmolvmError('failed', `smolvm machine status --json printed no machine`, { args, machine: name });
      return m;
    });
  }

  // ----- lifecycle -----------------------------------------------------------------------

  /** `machine create` with exact v1.9.3 flags (§2.1). Secret values only in the env. */
  async create(opts: CreateMachineOptions): Promise<void> {
    const args = buildCreateArgs(opts);
    await this.assertSupported();
    await this.serialize(opts.name, () =>
      this.withRetry(async () => {
        const r = await this.run(args, { secretValues: opts.secretValues, timeoutMs: opts.timeoutMs, machine: opts.name });
        if (r.exitCode !== 0) throw this.toError(args, r, opts.name);
      }),
    );
  }

  /**
   * `machine start --name N` (§2.2). Serialized per name in this process (§10: concurrent
   * starts of one VM fail on its flock). "Already running" is success; an unreachable
   * machine is healed by smolvm itself (zombie killed, fresh start). Pass the secret
   * values of the machine's `--secret-env` references: smolvm reads them at launch.
   */
  async start(name: string, opts: StartOptions = {}): Promise<StartResult> {
    const args = ['machine', 'start', '--name', name];
    return this.serialize(name, () =>
      this.withRetry(async () => {
        const r = await this.run(args, { secretValues: opts.secretValues, timeoutMs: opts.timeoutMs, machine: name });
        if (r.exitCode !== 0) throw this.toError(args, r, name);
        const already = /already running \(PID: (\d+)\)/.exec(r.stdout);
        if (already) return { alreadyRunning: true, recoveredUnreachable: false, pid: Number(already[1]) };
        const running = /running \(PID: (\d+)\)/.exec(r.stdout);
        const res: StartResult = { alreadyRunning: false, recoveredUnreachable: /is unreachable \(PID/.test(r.stdout) };
        if (running) res.pid = Number(running[1]);
        return res;
      }),
    );
  }

  /** `machine stop --name N` (§2.3). "Is not running" is success (`wasRunning: false`). */
  async stop(name: string, opts: { timeoutMs?: number } = {}): Promise<StopResult> {
    const args = ['machine', 'stop', '--name', name];
    return this.serialize(name, () =>
      this.withRetry(async () => {
        const r = await this.run(args, { timeoutMs: opts.timeoutMs, machine: name });
        if (r.exitCode !== 0) throw this.toError(args, r, name);
        const not = /is not running \(state: ([^)]*)\)/.exec(r.stdout);
        if (not) return { wasRunning: false, state: not[1] ?? '' };
        return { wasRunning: true };
      }),
    );
  }

  /**
   * `machine delete --name N -f` (§2.4). Always `-f`: without it a non-TTY delete prints
   * "Cancelled" and exits 0 without deleting. A running machine is stopped first by smolvm.
   */
  async delete(name: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const args = ['machine', 'delete', '--name', name, '-f'];
    return this.serialize(name, () =>
      this.withRetry(async () => {
        const r = await this.run(args, { timeoutMs: opts.timeoutMs, machine: name });
        if (r.exitCode !== 0) {
          const e = this.toError(args, r, name);
          if (e.kind === 'not-found' && (opts.missingOk ?? true)) return { deleted: false };
          throw e;
        }
        if (/^Cancelled$/m.test(r.stdout)) {
          throw new SmolvmError('failed', `smolvm did not delete '${name}': it asked for confirmation despite -f and cancelled`, {
            args,
            machine: name,
            exitCode: 0,
            stderr: r.stderr,
          });
        }
        return { deleted: true };
      }),
    );
  }

  // ----- inside the machine --------------------------------------------------------------

  /**
   * `machine exec --name N -- CMD…` (§2.7). Resolves with the guest's exit code and output;
   * throws only for smolvm's own failures (not found, not running, unreachable, usage…).
   * Never auto-starts.
   */
  async exec(name: string, command: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (command.length === 0) throw new SmolvmError('usage', 'exec needs a command', { machine: name });
    const args = ['machine', 'exec', '--name', name];
    if (opts.workdir !== undefined) args.push('--workdir', opts.workdir);
    for (const [k, v] of sortedEntries(opts.env ?? {})) {
      if (!ENV_KEY.test(k)) throw new SmolvmError('usage', `invalid env key ${JSON.stringify(k)}`, { machine: name });
      args.push('-e', `${k}=${v}`);
    }
    for (const [g, h] of sortedEntries(opts.secretEnv ?? {})) {
      if (!ENV_KEY.test(g) || !ENV_KEY.test(h)) throw new SmolvmError('usage', `invalid secret-env entry for ${JSON.stringify(g)}`, { machine: name });
      args.push('--secret-env', `${g}=${h}`);
    }
    if (opts.guestTimeoutSec !== undefined) {
      if (!(opts.guestTimeoutSec > 0)) throw new SmolvmError('usage', 'guestTimeoutSec must be > 0', { machine: name });
      args.push('--timeout', `${Math.ceil(opts.guestTimeoutSec)}s`);
    }
    args.push('--', ...command);
    return this.withRetry(async () => {
      const r = await this.run(args, { secretValues: opts.secretValues, timeoutMs: opts.timeoutMs, machine: name });
      if (r.exitCode === undefined || r.timedOut) throw this.toError(args, r, name);
      if (isSmolvmOwnFailure(r.exitCode, r.stderr)) {
        throw await this.refineNotRunning(this.toError(args, r, name), name);
      }
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    });
  }

  /** Upload: `machine cp HOST NAME:/GUEST` (§2.8). The machine must be running. */
  async cp(name: string, hostPath: string, guestPath: string, opts: CpOptions = {}): Promise<void> {
    if (!guestPath.startsWith('/')) throw new SmolvmError('usage', `guest path must be absolute: ${guestPath}`, { machine: name });
    const args = ['machine', 'cp'];
    if (opts.mode !== undefined) {
      const mode = typeof opts.mode === 'number' ? opts.mode.toString(8).padStart(4, '0') : opts.mode;
      if (!/^[0-7]{3,4}$/.test(mode)) throw new SmolvmError('usage', `invalid mode ${JSON.stringify(opts.mode)}`, { machine: name });
      args.push('--mode', mode);
    }
    if (opts.uid !== undefined) args.push('--uid', String(opts.uid));
    if (opts.gid !== undefined) args.push('--gid', String(opts.gid));
    // An absolute host path can never be read as `NAME:path`.
    args.push(path.resolve(hostPath), `${name}:${guestPath}`);
    await this.copy(args, name, opts.timeoutMs);
  }

  /** Download: `machine cp NAME:/GUEST HOST`. */
  async copyFromGuest(name: string, guestPath: string, hostPath: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    if (!guestPath.startsWith('/')) throw new SmolvmError('usage', `guest path must be absolute: ${guestPath}`, { machine: name });
    await this.copy(['machine', 'cp', `${name}:${guestPath}`, path.resolve(hostPath)], name, opts.timeoutMs);
  }

  // ----- internals -----------------------------------------------------------------------

  private async copy(args: string[], name: string, timeoutMs: number | undefined): Promise<void> {
    await this.withRetry(async () => {
      const r = await this.run(args, { timeoutMs, machine: name });
      if (r.exitCode !== 0) throw await this.refineNotRunning(this.toError(args, r, name), name);
    });
  }

  /**
   * exec/cp print the same "is not running" error for a stopped machine and for a zombie
   * whose agent does not answer (which smolvm then persists as `unreachable`, §2.7, §3).
   * One `status --json` tells them apart.
   */
  private async refineNotRunning(e: SmolvmError, name: string): Promise<SmolvmError> {
    if (e.kind !== 'not-running') return e;
    let st: MachineObserved | null;
    try {
      st = await this.status(name);
    } catch {
      return e;
    }
    if (st?.state === 'unreachable') {
      return new SmolvmError('unreachable', `smolvm machine '${name}' is unreachable (VMM alive, agent not answering); stop and start it to heal`, {
        args: e.args,
        machine: name,
        stderr: e.stderr,
        ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
      });
    }
    return e;
  }

  /** Chain operations on one machine name (starts must not overlap, §10). */
  private serialize<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.nameQueues.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.nameQueues.set(name, tail);
    void tail.then(() => {
      if (this.nameQueues.get(name) === tail) this.nameQueues.delete(name);
    });
    return next;
  }

  /** Retry DB-lock (and concurrent-start) failures with bounded exponential backoff. */
  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof SmolvmError) || !e.retryable || attempt >= this.retry.attempts) throw e;
        const pause = Math.min(this.retry.maxMs, this.retry.baseMs * 2 ** (attempt - 1));
        await this.sleep(pause);
      }
    }
  }

  private async run(args: string[], o: RunOptions): Promise<RawResult> {
    assertNoSecretInArgv(args, o.secretValues);
    this.callCount++;
    this.onCall?.(args);
    const env: Record<string, string | undefined> = { ...this.env, ...(o.secretValues ?? {}) };
    // execa loads on first use: most passes never run smolvm.
    const { execa } = await import('execa');
    const r = await execa(this.bin, args, {
      reject: false,
      env,
      extendEnv: false,
      stdin: 'ignore', // non-TTY, EOF: no prompt can ever wait for an answer
      timeout: o.timeoutMs ?? this.timeoutMs,
      forceKillAfterDelay: 2000,
      stripFinalNewline: false,
    });
    const code = (r as { code?: unknown }).code;
    if (r.failed && r.exitCode === undefined && (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR')) {
      throw new SmolvmError(
        'missing-binary',
        code === 'EACCES'
          ? `smolvm binary '${this.bin}' is not executable. Fix its permissions or pass --smolvm PATH.`
          : `smolvm binary '${this.bin}' was not found${this.bin.includes('/') ? '' : ' on PATH'}. Install smolvm or pass --smolvm PATH.`,
        { args, ...(o.machine !== undefined ? { machine: o.machine } : {}) },
      );
    }
    const res: RawResult = {
      stdout: typeof r.stdout === 'string' ? r.stdout : '',
      stderr: typeof r.stderr === 'string' ? r.stderr : '',
      timedOut: r.timedOut,
    };
    if (r.exitCode !== undefined) res.exitCode = r.exitCode;
    if (r.signal) res.signal = r.signal;
    return res;
  }

  private toError(args: readonly string[], r: RawResult, machine: string | undefined): SmolvmError {
    const details = {
      args,
      stderr: r.stderr,
      timedOut: r.timedOut,
      ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
      ...(machine !== undefined ? { machine } : {}),
    };
    const cmd = `smolvm ${args.slice(0, 2).join(' ')}${machine !== undefined ? ` (${machine})` : ''}`;
    if (r.timedOut) return new SmolvmError('failed', `${cmd} timed out`, details);
    if (r.exitCode === undefined) return new SmolvmError('failed', `${cmd} was killed${r.signal ? ` by ${r.signal}` : ''}`, details);
    const c = classifyFailure(r.exitCode, r.stderr);
    if (c) return new SmolvmError(c.kind, `${cmd} failed: ${c.detail}`, { ...details, retryable: c.retryable });
    const tail = r.stderr.trim().split('\n').slice(-3).join(' | ');
    return new SmolvmError('failed', `${cmd} exited ${r.exitCode}${tail ? `: ${tail}` : ''}`, details);
  }
}

