// The smolvm CLI's data: machine states and records, the driver's option types. See driver.ts for the contract.


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

