// How a smolvm failure is told apart (exit code + stderr, smolvm-cli.md §1, §4, §10).


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

