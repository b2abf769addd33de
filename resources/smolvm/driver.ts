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

// ---------------------------------------------------------------------------------------
// public types
// ---------------------------------------------------------------------------------------

/** §3 state values (`frozen` only for fork bases), plus `unknown` for anything newer. */
export type MachineState = 'created' | 'running' | 'stopped' | 'failed' | 'unreachable' | 'frozen' | 'unknown';

export const KNOWN_STATES: readonly MachineState[] = ['created', 'running', 'stopped', 'failed', 'unreachable', 'frozen'];

/** Oldest smolvm this driver accepts: `machine create --label` arrived in v1.8.0 (§11). */
export const MIN_SMOLVM_VERSION = '1.8.0';

export interface MachineObserved {
  name: string;
  /** normalized state; an unrecognized value becomes `unknown` (never ready) */
  state: MachineState;
  /** the state string exactly as smolvm printed it */
  rawState: string;
  /** state === 'running' */
  ready: boolean;
  /** the *stored* pid; may be stale (see `stalePid`) */
  pid?: number;
  /** a pid is recorded but the machine is not running: a crash or host reboot (§3, §10) */
  stalePid: boolean;
  labels: Record<string, string>;
  /** false when the JSON had no `labels` key (smolvm < 1.8.0) */
  hasLabels: boolean;
  cpus?: number;
  memMiB?: number;
  /** registry ref verbatim, `local:<hash>`, `local-dir:<path>`, or null (§3) */
  image?: string | null;
  /** the stored `--net` flag, not the effective backend */
  network?: boolean;
  /** counts only: smolvm does not show the mappings */
  ports?: number;
  mounts?: number;
  /** Unix seconds */
  createdAt?: number;
  ephemeral?: boolean;
  entrypoint?: string[];
  cmd?: string[];
  /** the element as parsed from JSON, for anything not lifted above */
  raw: unknown;
}

export type SmolvmErrorKind =
  | 'not-found'
  | 'already-exists'
  | 'not-running'
  | 'unreachable'
  | 'db-locked'
  | 'usage'
  | 'unsupported'
  | 'missing-binary'
  | 'failed';

export class SmolvmError extends Error {
  override readonly name = 'SmolvmError';
  readonly kind: SmolvmErrorKind;
  /** smolvm's exit code; undefined when it never ran or was killed */
  readonly exitCode?: number;
  /** smolvm's stderr (never contains secret values: those are not in argv) */
  readonly stderr: string;
  /** the smolvm arguments (no secret values by construction) */
  readonly args: readonly string[];
  readonly machine?: string;
  readonly timedOut: boolean;
  /** a lock conflict that is worth retrying after a pause */
  readonly retryable: boolean;

  constructor(
    kind: SmolvmErrorKind,
    message: string,
    details: {
      exitCode?: number;
      stderr?: string;
      args?: readonly string[];
      machine?: string;
      timedOut?: boolean;
      retryable?: boolean;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.kind = kind;
    if (details.exitCode !== undefined) this.exitCode = details.exitCode;
    this.stderr = details.stderr ?? '';
    this.args = details.args ?? [];
    if (details.machine !== undefined) this.machine = details.machine;
    this.timedOut = details.timedOut ?? false;
    this.retryable = details.retryable ?? kind === 'db-locked';
  }
}

export interface RetryPolicy {
  /** total attempts for a retryable failure (DB lock, concurrent start); default 5 */
  attempts: number;
  /** first pause; doubles each time; default 250 */
  baseMs: number;
  /** pause ceiling; default 4000 */
  maxMs: number;
}

export interface SmolvmDriverOptions {
  /** path of the smolvm binary (the `--smolvm PATH` flag); default `smolvm` on PATH */
  bin?: string;
  /** environment for every smolvm process; default process.env */
  env?: NodeJS.ProcessEnv;
  /** per call; default 300000 (a first start pulls an image) */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** injectable for tests */
  sleep?: (ms: number) => Promise<void>;
  /** called with the arguments of every smolvm process started */
  onCall?: (args: readonly string[]) => void;
}

export interface CreateMachineOptions {
  name: string;
  /** registry ref or local path for `--image`; exclusive with `from` */
  image?: string;
  /** a `.smolmachine` for `--from`; exclusive with `image` */
  from?: string;
  net: boolean;
  allowCidrs: string[];
  env: Record<string, string>;
  /** GUEST -> HOSTVAR (a variable name in smolvm's environment) */
  secretEnv: Record<string, string>;
  /** HOSTVAR -> value, put ONLY in the child's environment */
  secretValues?: Record<string, string>;
  cpus?: number;
  memMiB?: number;
  labels: Record<string, string>;
  /** workload, passed after `--` */
  command?: string[];
  timeoutMs?: number;
}

export interface StartOptions {
  /** HOSTVAR -> value for the machine's `--secret-env` references (read at launch) */
  secretValues?: Record<string, string>;
  timeoutMs?: number;
}

export interface StartResult {
  /** it was running already (exit 0, "already running", §2.2) */
  alreadyRunning: boolean;
  /** smolvm found it unreachable, killed the zombie and started it afresh (§2.2) */
  recoveredUnreachable: boolean;
  pid?: number;
}

export interface StopResult {
  /** false: it was not running (exit 0, "is not running (state: …)", §2.3) */
  wasRunning: boolean;
  /** the state smolvm reported when it was not running */
  state?: string;
}

export interface DeleteOptions {
  /** treat "vm not found" as success; default true (the goal, absence, is reached) */
  missingOk?: boolean;
  timeoutMs?: number;
}

export interface DeleteResult {
  deleted: boolean;
}

export interface ExecOptions {
  env?: Record<string, string>;
  workdir?: string;
  /** GUEST -> HOSTVAR, resolved by smolvm from its environment */
  secretEnv?: Record<string, string>;
  /** HOSTVAR -> value, put only in the child's environment */
  secretValues?: Record<string, string>;
  /** smolvm's own `--timeout` for the guest command, in seconds */
  guestTimeoutSec?: number;
  /** how long to wait for the smolvm process */
  timeoutMs?: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CpOptions {
  /** file mode, e.g. 0o600 or '0600' */
  mode?: number | string;
  uid?: number;
  gid?: number;
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------------------
// pure helpers (exported for tests)
// ---------------------------------------------------------------------------------------

export function parseVersion(text: string): [number, number, number] | null {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a) ?? [0, 0, 0];
  const y = parseVersion(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strArray = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** One `ls --json` / `status --json` element → MachineObserved (null if it has no name). */
export function parseMachine(raw: unknown): MachineObserved | null {
  if (!isRecord(raw) || typeof raw.name !== 'string') return null;
  const rawState = typeof raw.state === 'string' ? raw.state : '';
  const state: MachineState = (KNOWN_STATES as readonly string[]).includes(rawState) ? (rawState as MachineState) : 'unknown';
  const labels: Record<string, string> = {};
  if (isRecord(raw.labels)) {
    for (const [k, v] of Object.entries(raw.labels)) if (typeof v === 'string') labels[k] = v;
  }
  const pid = num(raw.pid);
  const m: MachineObserved = {
    name: raw.name,
    state,
    rawState,
    ready: state === 'running',
    stalePid: pid !== undefined && state !== 'running' && state !== 'unreachable' && state !== 'frozen',
    labels,
    hasLabels: isRecord(raw.labels),
    raw,
  };
  if (pid !== undefined) m.pid = pid;
  const cpus = num(raw.cpus);
  if (cpus !== undefined) m.cpus = cpus;
  const mem = num(raw.memory_mib);
  if (mem !== undefined) m.memMiB = mem;
  if (typeof raw.image === 'string' || raw.image === null) m.image = raw.image;
  if (typeof raw.network === 'boolean') m.network = raw.network;
  const ports = num(raw.ports);
  if (ports !== undefined) m.ports = ports;
  const mounts = num(raw.mounts);
  if (mounts !== undefined) m.mounts = mounts;
  const createdAt = num(raw.created_at);
  if (createdAt !== undefined) m.createdAt = createdAt;
  if (typeof raw.ephemeral === 'boolean') m.ephemeral = raw.ephemeral;
  const entrypoint = strArray(raw.entrypoint);
  if (entrypoint) m.entrypoint = entrypoint;
  const cmd = strArray(raw.cmd);
  if (cmd) m.cmd = cmd;
  return m;
}

/** `ls --json` output → machines sorted by name. Throws 'failed' on malformed JSON. */
export function parseMachineList(stdout: string): MachineObserved[] {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch (e) {
    throw new SmolvmError('failed', `smolvm machine ls --json printed invalid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!Array.isArray(data)) throw new SmolvmError('failed', 'smolvm machine ls --json did not print a JSON array');
  const out: MachineObserved[] = [];
  for (const el of data) {
    const m = parseMachine(el);
    if (m) out.push(m);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The `Error: …` line smolvm printed (the last one; tracing warnings may come first). */
function errorLine(stderr: string): string | undefined {
  const lines = stderr.split('\n').filter((l) => l.startsWith('Error: '));
  return lines[lines.length - 1];
}

/** A clap usage error (§1): exit 2 and `error: …` on stderr. */
function isClapError(exitCode: number | undefined, stderr: string): boolean {
  return exitCode === 2 && /^error: /m.test(stderr);
}

/**
 * For exec, whose exit code is the guest's (§1): is this stderr smolvm's own failure
 * rather than the guest command's? A clap error ends with clap's hint; a smolvm error is
 * a final `Error: <Display>` line with one of the error prefixes of §1.
 */
export function isSmolvmOwnFailure(exitCode: number | undefined, stderr: string): boolean {
  if (exitCode === 2) return isClapError(exitCode, stderr) && stderr.includes("For more information, try '--help'");
  if (exitCode !== 1) return false;
  const last = stderr.trimEnd().split('\n').pop() ?? '';
  return /^Error: (vm not found: |invalid vm state: |(config|agent|database|mount|storage|io) operation failed: |database not available: |kvm (not available|permission denied): )/.test(
    last,
  );
}

/**
 * Map a failed smolvm call to an error kind from exit code + stderr (§1, §4, §10). Returns
 * null when the output is not one of smolvm's own failures (matters for exec, whose exit
 * code is the guest's).
 */
export function classifyFailure(
  exitCode: number | undefined,
  stderr: string,
): { kind: SmolvmErrorKind; retryable: boolean; detail: string } | null {
  if (isClapError(exitCode, stderr)) {
    const first = stderr.split('\n').find((l) => l.startsWith('error: ')) ?? 'usage error';
    return { kind: 'usage', retryable: false, detail: first };
  }
  const line = errorLine(stderr);
  if (exitCode !== 1 || line === undefined) return null;
  const msg = line.slice('Error: '.length);
  // DB lock: SQLite busy after the 15 s busy_timeout ("database is locked"), or the older
  // single-writer text of #178 ("database not available: … Cannot acquire lock.").
  if (/database is locked|database not available|Cannot acquire lock|database operation failed: .*busy/i.test(msg)) {
    return { kind: 'db-locked', retryable: true, detail: msg };
  }
  if (/^vm not found: /.test(msg)) return { kind: 'not-found', retryable: false, detail: msg };
  // status --json and update use a different text for a missing machine (§2.5, §2.9).
  if (/^config operation failed: (machine status|update): machine '.*' not found$/.test(msg)) {
    return { kind: 'not-found', retryable: false, detail: msg };
  }
  if (/^config operation failed: create machine: machine '.*' already exists/.test(msg)) {
    return { kind: 'already-exists', retryable: false, detail: msg };
  }
  if (/^agent operation failed: connect: machine '.*' is not running\./.test(msg)) {
    return { kind: 'not-running', retryable: false, detail: msg };
  }
  // Two processes starting the same VM: the loser fails on the per-VM flock (§2.2).
  if (/another process is already starting or running this VM/.test(msg)) {
    return { kind: 'failed', retryable: true, detail: msg };
  }
  return { kind: 'failed', retryable: false, detail: msg };
}

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

const ENV_KEY = /^[^=\0]+$/;

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

function sortedEntries(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The exact `machine create` argv (exported for tests). Contains no secret values. */
export function buildCreateArgs(opts: CreateMachineOptions): string[] {
  const bad = (msg: string) => new SmolvmError('usage', `invalid create options for '${opts.name}': ${msg}`, { machine: opts.name });
  if (!opts.name) throw bad('name is required');
  if (opts.image !== undefined && opts.from !== undefined) throw bad('image and from are exclusive');
  const args = ['machine', 'create', '--name', opts.name];
  if (opts.from !== undefined) args.push('--from', opts.from);
  else if (opts.image !== undefined) args.push('--image', opts.image);
  if (opts.net) args.push('--net');
  for (const c of opts.allowCidrs) {
    if (!c || c.startsWith('-')) throw bad(`invalid CIDR ${JSON.stringify(c)}`);
    args.push('--allow-cidr', c);
  }
  for (const [k, v] of sortedEntries(opts.env)) {
    if (!ENV_KEY.test(k)) throw bad(`invalid env key ${JSON.stringify(k)}`);
    args.push('-e', `${k}=${v}`);
  }
  for (const [g, h] of sortedEntries(opts.secretEnv)) {
    if (!ENV_KEY.test(g) || !ENV_KEY.test(h)) throw bad(`invalid secretEnv entry for ${JSON.stringify(g)}`);
    args.push('--secret-env', `${g}=${h}`);
  }
  if (opts.cpus !== undefined) {
    if (!Number.isInteger(opts.cpus) || opts.cpus < 1 || opts.cpus > 255) throw bad(`cpus must be an integer 1..255`);
    args.push('--cpus', String(opts.cpus));
  }
  if (opts.memMiB !== undefined) {
    if (!Number.isInteger(opts.memMiB) || opts.memMiB < 64) throw bad(`memMiB must be an integer >= 64`);
    args.push('--mem', String(opts.memMiB));
  }
  for (const [k, v] of sortedEntries(opts.labels)) {
    if (!ENV_KEY.test(k)) throw bad(`invalid label key ${JSON.stringify(k)}`);
    args.push('--label', `${k}=${v}`);
  }
  if (opts.command && opts.command.length) args.push('--', ...opts.command);
  return args;
}
