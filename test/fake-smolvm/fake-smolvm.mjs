// FAKE smolvm v1.9.3 — a test double for `resources/smolvm/driver.ts`.
//
// It follows /work/shared/reference/smolvm-cli.md (the contract of the real CLI; "the
// reference" below, with § numbers). It is NOT shaped after the driver. Where the reference
// is silent or says UNVERIFIED, the choice made here is marked `CHOICE:` with its reason.
//
// Everything that is not part of smolvm is marked FAKE-ONLY:
//   - $SMOLVM_DATA_DIR is required (the real one only uses it to move HOME, §7).
//   - $SMOLVM_DATA_DIR/knobs.json (test knobs, see README.md) and calls.jsonl (call log).
//   - Exit code 3 for problems of the fake itself (missing data dir, unimplemented
//     subcommand, unsupported guest shell syntax is exit 2 *inside the guest* instead).
//
// Layout under $SMOLVM_DATA_DIR:
//   fake-db/<name>.json             one DB record per machine (the real DB is SQLite, §7)
//   fake-db/.lock                   the DB write lock (real: SQLite busy_timeout 15 s)
//   .cache/smolvm/vms/<hash16>/     per-VM data dir (same place as the real one with
//                                   SMOLVM_DATA_DIR=<root>, §7): name, vm.lock, rootfs/
//                                   (the guest filesystem), fake-runtime.json
//   knobs.json, knobs.lock          FAKE-ONLY test knobs
//   calls.jsonl                     FAKE-ONLY: one line per invocation

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const REAL_VERSION = '1.9.3';
const FAKE_EXIT = 3; // FAKE-ONLY exit code for problems of the fake itself
const DEFAULT_CPUS = 4; // §2.1
const DEFAULT_MEM = 8192; // §2.1
const DB_BUSY_TIMEOUT_MS = 15000; // §7 BUSY_TIMEOUT

// ---------------------------------------------------------------------------------------
// errors and output
// ---------------------------------------------------------------------------------------

/** clap usage error: `error: ...` on stderr, exit 2 (§1). */
class UsageError extends Error {
  constructor(message, opts = {}) {
    super(message);
    this.tip = opts.tip; // e.g. "a similar argument exists: '--mem'"
    this.usage = opts.usage; // usage line, printed like clap does
  }
}
/** smolvm::Error: `Error: <Display>` on stderr, exit 1 (§1). */
class SmolError extends Error {}
/** FAKE-ONLY: the fake cannot do this. */
class FakeProblem extends Error {}

const cfgErr = (op, reason) => new SmolError(`config operation failed: ${op}: ${reason}`);
const agentErr = (op, reason) => new SmolError(`agent operation failed: ${op}: ${reason}`);
const notFound = (name) => new SmolError(`vm not found: ${name}`);
const notRunningErr = (name) =>
  agentErr('connect', `machine '${name}' is not running. Use 'smolvm machine start --name ${name}' first.`);

const out = [];
const err = [];
const print = (s) => out.push(Buffer.isBuffer(s) ? s : Buffer.from(s + '\n'));
const eprint = (s) => err.push(Buffer.isBuffer(s) ? s : Buffer.from(s + '\n'));
function flush() {
  // Synchronous writes: the fake exits right after and must not lose output.
  if (out.length) fs.writeSync(1, Buffer.concat(out.splice(0)));
  if (err.length) fs.writeSync(2, Buffer.concat(err.splice(0)));
}

function sleepMs(ms) {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// ---------------------------------------------------------------------------------------
// paths, knobs, call log
// ---------------------------------------------------------------------------------------

let ROOT = '';
let DB_DIR = '';
let VMS_DIR = '';

function vmDir(name) {
  // §7: first 8 bytes of SHA-256(name) as hex.
  const h = crypto.createHash('sha256').update(name).digest('hex').slice(0, 16);
  return path.join(VMS_DIR, h);
}

function readJson(file, fallback) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e && e.code === 'ENOENT') return fallback;
    throw e;
  }
}
function writeJsonAtomic(file, value) {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * Exclusive lock file holding the owner's pid; a lock whose owner is dead is stale
 * (like a flock that the kernel released when its holder died).
 * Returns a release function, or null when still busy after `timeoutMs`.
 */
function acquireLockFile(file, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let holder = NaN;
    try {
      holder = Number(fs.readFileSync(file, 'utf8'));
    } catch {
      continue; // released between open and read
    }
    if (holder && !pidAlive(holder)) {
      try {
        fs.unlinkSync(file); // stale: its holder died
      } catch {
        /* someone else cleaned it */
      }
      continue;
    }
    if (Date.now() >= deadline) return null;
    sleepMs(5 + Math.floor(Math.random() * 15));
  }
}

/** FAKE-ONLY knobs (README.md). Read once per invocation. */
let KNOBS = {};
function loadKnobs() {
  try {
    KNOBS = readJson(path.join(ROOT, 'knobs.json'), {}) ?? {};
  } catch (e) {
    throw new FakeProblem(`cannot parse ${path.join(ROOT, 'knobs.json')}: ${e.message}`);
  }
}
/** Read-modify-write knobs.json under its own lock (not the DB lock). */
function updateKnobs(fn) {
  const release = acquireLockFile(path.join(ROOT, 'knobs.lock'), 10000);
  if (!release) throw new FakeProblem('knobs.lock busy for 10 s');
  try {
    const k = readJson(path.join(ROOT, 'knobs.json'), {}) ?? {};
    const changed = fn(k);
    if (changed) writeJsonAtomic(path.join(ROOT, 'knobs.json'), k);
    KNOBS = k;
  } finally {
    release();
  }
}
const fakeVersion = () => (typeof KNOBS.version === 'string' ? KNOBS.version : REAL_VERSION);
function versionAtLeast(v) {
  const a = fakeVersion().split('.').map(Number);
  const b = v.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) > (b[i] || 0);
  }
  return true;
}
function knobFor(map, sub) {
  if (!map || typeof map !== 'object') return 0;
  const v = map[sub] ?? map['*'];
  return typeof v === 'number' ? v : 0;
}
/** What the world knows about a machine's VMM process (FAKE-ONLY knob `machines`). */
const vmmKnob = (name) => KNOBS.machines?.[name]?.vmm; // 'dead' | 'hung' | undefined
/** A new VMM process replaced (or killed) the old one: the knob no longer applies. */
function clearVmmKnob(name) {
  if (!KNOBS.machines?.[name]) return;
  updateKnobs((k) => {
    if (!k.machines?.[name]) return false;
    delete k.machines[name];
    return true;
  });
}

const CALL = { argv: [], secretEnv: {}, started: Date.now() };
function recordSecretEnvRefs(pairs) {
  // FAKE-ONLY: record the values the fake sees in its own environment for each HOSTVAR,
  // so tests can check that a secret arrived through the environment (and not argv).
  for (const hostVar of pairs) {
    CALL.secretEnv[hostVar] = process.env[hostVar] ?? null;
  }
}
function appendCallLog(exitCode) {
  if (!ROOT) return;
  const line = {
    ts: new Date(CALL.started).toISOString(),
    pid: process.pid,
    argv: CALL.argv,
    secretEnv: CALL.secretEnv,
    exitCode,
    durationMs: Date.now() - CALL.started,
  };
  try {
    fs.appendFileSync(path.join(ROOT, 'calls.jsonl'), JSON.stringify(line) + '\n');
  } catch {
    /* the data dir may have been removed by the test */
  }
}

// ---------------------------------------------------------------------------------------
// "database"
// ---------------------------------------------------------------------------------------

const NAME_SAFE = /^[A-Za-z0-9_-]{1,128}$/;
const recordPath = (name) => path.join(DB_DIR, `${name}.json`);

function getRecord(name) {
  if (!NAME_SAFE.test(name)) return null; // cannot exist: create validates names (§7)
  return readJson(recordPath(name), null);
}
function allRecords() {
  let files = [];
  try {
    files = fs.readdirSync(DB_DIR);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  const recs = [];
  for (const f of files) {
    if (!f.endsWith('.json')) continue;
    const r = readJson(path.join(DB_DIR, f), null);
    if (r) recs.push(r);
  }
  return recs;
}

/**
 * A write transaction. The real DB is SQLite in WAL mode with a 15 s busy_timeout (§7,
 * §10 #178): writers wait up to 15 s for each other, readers never wait. When the wait
 * runs out the error is (CHOICE, inferred: rusqlite's SQLITE_BUSY Display wrapped in
 * `Error::Database`) `database operation failed: <op>: database is locked`.
 */
function withDb(op, sub, fn) {
  fs.mkdirSync(DB_DIR, { recursive: true });
  const timeout = typeof KNOBS.dbBusyTimeoutMs === 'number' ? KNOBS.dbBusyTimeoutMs : DB_BUSY_TIMEOUT_MS;
  const release = acquireLockFile(path.join(DB_DIR, '.lock'), timeout);
  if (!release) throw new SmolError(`database operation failed: ${op}: database is locked`);
  try {
    sleepMs(knobFor(KNOBS.dbHoldMs, sub)); // FAKE-ONLY: simulate a long transaction
    return fn();
  } finally {
    release();
  }
}
function putRecord(rec) {
  writeJsonAtomic(recordPath(rec.name), rec);
}

/**
 * §3 state resolution: a stored state other than `running` is returned as is (this
 * includes a *persisted* `unreachable`). A stored `running` is probed: PID alive and
 * ping ok → running; PID alive, no ping → unreachable; PID dead → stopped (the stored pid
 * stays: "stale pid after a crash"). `frozen` needs fork bases, which the fake lacks.
 */
function resolveState(rec) {
  if (rec.state !== 'running') return rec.state;
  const vmm = vmmKnob(rec.name);
  if (vmm === 'dead') return 'stopped';
  if (vmm === 'hung') return 'unreachable';
  return 'running';
}
/** Is the VMM process alive (for stop/delete/start decisions)? */
function vmmAlive(rec) {
  if (rec.state !== 'running' && rec.state !== 'unreachable') return false;
  return vmmKnob(rec.name) !== 'dead';
}

/** §3: the `ls --json` / `status --json` element. Keys are emitted alphabetically. */
function machineJson(rec) {
  const o = {
    cmd: rec.cmd ?? [],
    cpus: rec.cpus,
    created_at: rec.created_at,
    cuda: false,
    cuda_fork_pool_size: null,
    cuda_vram_limit_mib: null,
    entrypoint: rec.entrypoint ?? [],
    ephemeral: false,
    forkable: false,
    forkpoint_held: false,
    gpu: !!rec.gpu,
    gpu_vram_mib: rec.gpu_vram_mib ?? null,
    health_cmd: null,
    health_interval_secs: null,
    health_retries: null,
    health_startup_grace_secs: null,
    health_timeout_secs: null,
    image: rec.image ?? null,
    labels: rec.labels ?? {},
    memory_mib: rec.mem,
    mounts: (rec.mounts ?? []).length,
    name: rec.name,
    network: !!rec.network,
    overlay_gb: rec.overlay_gb ?? null,
    pid: rec.pid ?? null,
    ports: (rec.ports ?? []).length,
    restart_count: 0,
    restart_max_retries: 0,
    restart_policy: 'never',
    state: resolveState(rec),
    storage_gb: rec.storage_gb ?? null,
  };
  // §11: `labels` arrived with --label in v1.8.0. CHOICE: for an older version knob only
  // `labels` is dropped (the reference does not say when the cuda/fork keys arrived).
  if (!versionAtLeast('1.8.0')) delete o.labels;
  const sorted = {};
  for (const k of Object.keys(o).sort()) sorted[k] = o[k];
  return sorted;
}

// ---------------------------------------------------------------------------------------
// a small clap
// ---------------------------------------------------------------------------------------

// Flag spec: { long, short?, value?: VALUE_NAME (absent → bool), multi?, since?, required? }
// Value names follow the reference's flag tables (clap's exact value names are not given).

function similar(a, b) {
  if (a.startsWith(b) || b.startsWith(a)) return true;
  // small edit distance
  const m = a.length;
  const n = b.length;
  if (Math.abs(m - n) > 2) return false;
  const d = Array.from({ length: m + 1 }, (_, i) => [i, ...Array(n).fill(0)]);
  for (let j = 1; j <= n; j++) d[0][j] = j;
  for (let i = 1; i <= m; i++)
    for (let j = 1; j <= n; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[m][n] <= 2;
}

const flagDisplay = (f) => (f.value ? `--${f.long} <${f.value}>` : `--${f.long}`);

/**
 * Parse `args` against `spec`:
 *   spec.flags: Flag[]
 *   spec.positionals: string[] — named positionals (all required), e.g. cp SRC DST
 *   spec.trailing: 'last' (only after `--`, clap `last = true`) | 'var' (first positional
 *                  and everything after it, with or without `--`) | undefined
 *   spec.trailingRequired: boolean
 *   spec.conflicts: [longA, longB][]
 */
function parseArgs(args, spec) {
  const flags = spec.flags.filter((f) => !f.since || versionAtLeast(f.since));
  const byLong = new Map(flags.map((f) => [f.long, f]));
  const byShort = new Map(flags.filter((f) => f.short).map((f) => [f.short, f]));
  const res = { _pos: [], _trail: [], _seen: new Set() };
  const usage = spec.usage;

  const set = (f, v) => {
    if (res._seen.has(f.long) && !f.multi) {
      throw new UsageError(`the argument '${flagDisplay(f)}' cannot be used multiple times`, { usage });
    }
    res._seen.add(f.long);
    if (f.multi) (res[f.long] ??= []).push(v);
    else res[f.long] = v;
  };
  const unexpected = (a) => {
    let tip;
    if (a.startsWith('--')) {
      const cand = flags.find((f) => similar(a.slice(2).split('=')[0], f.long));
      if (cand) tip = `a similar argument exists: '--${cand.long}'`;
    } else if (!a.startsWith('-') && spec.trailing === 'last') {
      tip = `to pass '${a}' as a value, use '-- ${a}'`;
    }
    return new UsageError(`unexpected argument '${a}' found`, { tip, usage });
  };

  let i = 0;
  while (i < args.length) {
    const a = args[i];
    if (a === '--') {
      if (!spec.trailing) throw unexpected(a);
      res._trail.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const long = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (long === 'help') {
        res._help = true;
        i++;
        continue;
      }
      const f = byLong.get(long);
      if (!f) throw unexpected(a);
      if (!f.value) {
        if (eq > 0) throw new UsageError(`unexpected value '${a.slice(eq + 1)}' for '${flagDisplay(f)}' found; no more were expected`, { usage });
        set(f, true);
        i++;
        continue;
      }
      let v;
      if (eq > 0) v = a.slice(eq + 1);
      else {
        v = args[i + 1];
        if (v === undefined || (v.startsWith('-') && v.length > 1 && !/^-\d/.test(v))) {
          throw new UsageError(`a value is required for '${flagDisplay(f)}' but none was supplied`, { usage });
        }
        i++;
      }
      set(f, v);
      i++;
      continue;
    }
    if (a.startsWith('-') && a.length > 1 && a !== '-') {
      // short flag(s): -f, -fv, -n NAME, -nNAME, -n=NAME
      let j = 1;
      while (j < a.length) {
        const c = a[j];
        if (c === 'h') {
          res._help = true;
          j++;
          continue;
        }
        const f = byShort.get(c);
        if (!f) throw unexpected(j === 1 ? a : `-${c}`);
        if (!f.value) {
          set(f, true);
          j++;
          continue;
        }
        let v = a.slice(j + 1);
        if (v.startsWith('=')) v = v.slice(1);
        if (v === '') {
          v = args[i + 1];
          if (v === undefined || (v.startsWith('-') && v.length > 1 && !/^-\d/.test(v))) {
            throw new UsageError(`a value is required for '-${c} <${f.value}>' but none was supplied`, { usage });
          }
          i++;
        }
        set(f, v);
        break;
      }
      i++;
      continue;
    }
    // positional
    if (res._pos.length < (spec.positionals?.length ?? 0)) {
      res._pos.push(a);
      i++;
      continue;
    }
    if (spec.trailing === 'var') {
      res._trail.push(...args.slice(i));
      break;
    }
    throw unexpected(a);
  }
  if (res._help) return res;

  const missing = [];
  for (const f of flags) if (f.required && !res._seen.has(f.long)) missing.push(flagDisplay(f));
  (spec.positionals ?? []).forEach((p, k) => {
    if (res._pos.length <= k) missing.push(`<${p}>`);
  });
  if (spec.trailingRequired && res._trail.length === 0) missing.push(`<${spec.trailingName ?? 'COMMAND'}>...`);
  if (missing.length) {
    throw new UsageError(`the following required arguments were not provided:\n  ${missing.join('\n  ')}`, { usage });
  }
  for (const [x, y] of spec.conflicts ?? []) {
    if (res._seen.has(x) && res._seen.has(y)) {
      throw new UsageError(`the argument '${flagDisplay(byLong.get(x))}' cannot be used with '${flagDisplay(byLong.get(y))}'`, { usage });
    }
  }
  return res;
}

function parseUint(flagLabel, v, max) {
  // clap value_parser!(u8/u32/u64): a parse failure is a usage error (exit 2, §1).
  if (!/^\d+$/.test(v)) {
    throw new UsageError(`invalid value '${v}' for '${flagLabel}': invalid digit found in string`);
  }
  const n = Number(v);
  if (n > max) throw new UsageError(`invalid value '${v}' for '${flagLabel}': ${v} is not in 0..=${max}`);
  return n;
}

function parsePort(v) {
  // §2.1 `-p HOST:GUEST` or `PORT`; port 0 and bad syntax are clap errors (§1).
  const bad = (why) => new UsageError(`invalid value '${v}' for '--port <HOST:GUEST>': ${why}`);
  const parts = v.split(':');
  if (parts.length > 2 || parts.some((p) => !/^\d+$/.test(p))) throw bad('invalid port mapping format');
  const nums = parts.map(Number);
  if (nums.some((n) => n === 0)) throw bad('port 0 is not allowed');
  if (nums.some((n) => n > 65535)) throw bad('port out of range');
  return nums.length === 1 ? [nums[0], nums[0]] : [nums[0], nums[1]];
}

// ---------------------------------------------------------------------------------------
// validation helpers (§2.1, §7)
// ---------------------------------------------------------------------------------------

function validateName(name) {
  const label = 'machine name';
  if (name.length === 0) return `${label} cannot be empty`;
  if (Buffer.byteLength(name) > 128) return `${label} too long: ${Buffer.byteLength(name)} characters (max 128)`;
  if (name.includes('/') || name.includes('\\')) return `${label} cannot contain path separators`;
  if (!/^[A-Za-z0-9]/.test(name)) return `${label} must start with a letter or digit (got: "${name}")`;
  for (const c of name) if (!/[A-Za-z0-9_-]/.test(c)) return `${label} contains invalid character: '${c}'`;
  if (name.includes('--')) return `${label} cannot contain consecutive hyphens`;
  if (name.endsWith('-')) return `${label} cannot end with a hyphen (got: "${name}")`;
  return null;
}

function parseLabels(list) {
  // util::parse_labels: empty key or no `=` → error; `=` allowed in the value; last wins.
  // CHOICE (text UNVERIFIED): the reason strings below are the fake's.
  const labels = {};
  for (const l of list ?? []) {
    const eq = l.indexOf('=');
    if (eq < 0) throw cfgErr('create machine', `invalid label '${l}': expected KEY=VALUE`);
    const k = l.slice(0, eq);
    if (!k) throw cfgErr('create machine', `invalid label '${l}': key cannot be empty`);
    labels[k] = l.slice(eq + 1);
  }
  return labels;
}

function parseEnvList(list) {
  // util::parse_env_list: KEY=VALUE; a bare KEY copies the host's value; malformed
  // entries are silently dropped (§2.1). CHOICE: an unset bare KEY is dropped too.
  const env = {};
  for (const e of list ?? []) {
    const eq = e.indexOf('=');
    if (eq === 0) continue;
    if (eq < 0) {
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(e) && process.env[e] !== undefined) env[e] = process.env[e];
      continue;
    }
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return env;
}

function parseSecretRefs(list, op, { absolute } = {}) {
  // `--secret-env GUEST=HOSTVAR` / `--secret-file GUEST=/abs/path`. Only the reference is
  // stored (§2.1). Duplicate key → error. CHOICE (texts UNVERIFIED): messages are the fake's.
  const refs = {};
  for (const s of list ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0 || eq === s.length - 1) throw cfgErr(op, `invalid secret '${s}': expected GUEST=${absolute ? '/abs/path' : 'HOSTVAR'}`);
    const k = s.slice(0, eq);
    const v = s.slice(eq + 1);
    if (k in refs) throw cfgErr(op, `duplicate secret '${k}'`);
    if (absolute && !v.startsWith('/')) throw cfgErr(op, `secret file for '${k}' must be an absolute path: ${v}`);
    refs[k] = v;
  }
  return refs;
}

function isLocalImage(img) {
  return img === '-' || img.startsWith('/') || img.startsWith('./') || img.startsWith('../') || img === '.';
}

// ---------------------------------------------------------------------------------------
// machine create (§2.1)
// ---------------------------------------------------------------------------------------

const CREATE_SPEC = {
  usage: 'smolvm machine create [OPTIONS] [-- <COMMAND>...]',
  trailing: 'last',
  flags: [
    { long: 'name', short: 'n', value: 'NAME' },
    { long: 'label', value: 'KEY=VALUE', multi: true, since: '1.8.0' },
    { long: 'image', short: 'I', value: 'IMAGE' },
    { long: 'max-image-size', value: 'SIZE' },
    { long: 'cpus', value: 'N' },
    { long: 'mem', value: 'MiB' },
    { long: 'storage', value: 'GiB' },
    { long: 'overlay', value: 'GiB' },
    { long: 'volume', short: 'v', value: 'HOST:GUEST[:ro]', multi: true },
    { long: 'port', short: 'p', value: 'HOST:GUEST', multi: true },
    { long: 'net' },
    { long: 'net-backend', value: 'BACKEND' },
    { long: 'dns', value: 'IP' },
    { long: 'network', value: 'NAME' },
    { long: 'allow-cidr', value: 'CIDR', multi: true },
    { long: 'allow-host', value: 'HOSTNAME', multi: true },
    { long: 'outbound-localhost-only' },
    { long: 'gpu' },
    { long: 'gpu-vram', value: 'MiB' },
    { long: 'rosetta' },
    { long: 'expose-socket', value: 'GUEST[:HOST]', multi: true },
    { long: 'mount-socket', value: 'HOST:GUEST', multi: true },
    { long: 'init', value: 'COMMAND', multi: true },
    { long: 'env', short: 'e', value: 'KEY=VALUE', multi: true },
    { long: 'workdir', short: 'w', value: 'DIR' },
    { long: 'ssh-agent' },
    { long: 'cuda' },
    { long: 'auto-graph' },
    { long: 'docker-socket' },
    { long: 'secret-env', value: 'GUEST=HOSTVAR', multi: true },
    { long: 'secret-file', value: 'GUEST=/abs/path', multi: true },
    { long: 'smolfile', short: 's', value: 'PATH' },
    { long: 'from', value: 'PATH' },
  ],
  conflicts: [
    ['from', 'image'],
    ['from', 'smolfile'],
  ],
};

function cmdCreate(args) {
  const a = parseArgs(args, CREATE_SPEC);
  if (a._help) return help(CREATE_SPEC);
  recordSecretEnvRefs(Object.values(parseSecretRefsLoose(a['secret-env'])));

  const cpusRaw = a.cpus !== undefined ? parseUint('--cpus <N>', a.cpus, 255) : DEFAULT_CPUS;
  const mem = a.mem !== undefined ? parseUint('--mem <MiB>', a.mem, 4294967295) : DEFAULT_MEM;
  const storage = a.storage !== undefined ? parseUint('--storage <GiB>', a.storage, Number.MAX_SAFE_INTEGER) : null;
  const overlay = a.overlay !== undefined ? parseUint('--overlay <GiB>', a.overlay, Number.MAX_SAFE_INTEGER) : null;
  const gpuVram = a['gpu-vram'] !== undefined ? parseUint('--gpu-vram <MiB>', a['gpu-vram'], 4294967295) : null;
  const ports = (a.port ?? []).map(parsePort);
  const backend = a['net-backend'];
  if (backend !== undefined && backend !== 'tsi' && backend !== 'virtio-net') {
    throw new UsageError(`invalid value '${backend}' for '--net-backend <BACKEND>'\n  [possible values: tsi, virtio-net]`);
  }
  if (a.smolfile !== undefined) throw new FakeProblem('the fake does not implement Smolfiles (-s/--smolfile)');

  // --- create-time validation (vm_common::build_vm_record), exit 1 ---
  const op = 'create machine';
  const name = a.name ?? `vm-${crypto.randomBytes(4).toString('hex')}`;
  const bad = validateName(name);
  if (bad) throw cfgErr(op, bad);
  // CHOICE (texts UNVERIFIED): resource messages are the fake's.
  if (cpusRaw === 0) throw cfgErr(op, 'cpus must be at least 1');
  let cpus = cpusRaw;
  if (cpus > 16) {
    eprint(`WARN smolvm: requested ${cpus} vCPUs exceeds the maximum of 16; clamping to 16`);
    cpus = 16; // CHOICE: the stored value is the clamped one ("a warning says it is clamped")
  }
  if (mem < 64) throw cfgErr(op, `memory must be at least 64 MiB (got ${mem})`);
  if (storage === 0) throw cfgErr(op, 'storage size must be greater than 0');
  if (overlay === 0) throw cfgErr(op, 'overlay size must be greater than 0');
  if (gpuVram === 0) throw cfgErr(op, 'gpu vram must be greater than 0');
  const labels = parseLabels(a.label);
  const env = parseEnvList(a.env);
  const secretEnv = parseSecretRefs(a['secret-env'], op);
  const secretFile = parseSecretRefs(a['secret-file'], op, { absolute: true });
  for (const k of Object.keys(secretFile)) if (k in secretEnv) throw cfgErr(op, `duplicate secret '${k}'`);

  const seenHost = new Set();
  for (const [h] of ports) {
    if (seenHost.has(h)) throw cfgErr(op, `duplicate host port ${h}`);
    seenHost.add(h);
  }
  const mounts = [];
  const seenGuest = new Set();
  for (const v of a.volume ?? []) {
    const parts = v.split(':');
    const ro = parts.length === 3 && parts[2] === 'ro';
    if (parts.length < 2 || parts.length > 3 || (parts.length === 3 && !ro)) {
      throw new SmolError(`mount operation failed: parse volume: invalid volume '${v}': expected HOST:GUEST[:ro]`);
    }
    const [host, guest] = parts;
    if (!fs.existsSync(host)) throw new SmolError(`mount operation failed: parse volume: host path does not exist: ${host}`);
    if (!guest.startsWith('/')) throw new SmolError(`mount operation failed: parse volume: guest path must be absolute: ${guest}`);
    if (seenGuest.has(guest)) throw new SmolError(`mount operation failed: parse volume: duplicate guest path: ${guest}`);
    seenGuest.add(guest);
    mounts.push([path.resolve(host), guest, ro]);
  }

  const allowCidrs = (a['allow-cidr'] ?? []).map((c) => {
    // bare IP → /32 (IPv6 → /128)
    if (c.includes('/')) return c;
    return c.includes(':') ? `${c}/128` : `${c}/32`;
  });
  for (const c of allowCidrs) {
    if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(c)) throw cfgErr(op, `invalid CIDR '${c}'`);
  }
  const egress = allowCidrs.length > 0 || (a['allow-host'] ?? []).length > 0 || !!a['outbound-localhost-only'];
  // `--allow-cidr`, `--allow-host`, `--outbound-localhost-only`, `--dns`, `--network` imply --net (§2.1).
  const network = !!a.net || egress || a.dns !== undefined || a.network !== undefined;
  if (a['outbound-localhost-only']) allowCidrs.push('127.0.0.0/8', '::1/128');
  // §9 backend rules
  if (backend === 'tsi' && (ports.length || egress || a.network !== undefined)) {
    if (ports.length) throw cfgErr(op, 'published ports require the virtio-net backend (TSI is outbound-only); drop --net-backend tsi');
    throw cfgErr(op, 'egress policy (--allow-cidr/--allow-host/--outbound-localhost-only) requires the virtio-net backend; TSI does not enforce it');
  }
  if (backend === 'virtio-net' && !network && !ports.length) throw cfgErr(op, '--net-backend virtio-net requires --net');

  let image = null;
  let fromPath = null;
  if (a.image !== undefined) {
    if (isLocalImage(a.image)) {
      // Local sources are stored as local:<hash> / local-dir:<abs path> (§2.1).
      if (a.image === '-') {
        const data = fs.readFileSync(0);
        image = `local:${crypto.createHash('sha256').update(data).digest('hex')}`;
      } else {
        let st;
        try {
          st = fs.statSync(a.image);
        } catch {
          throw cfgErr(op, `image source '${a.image}' does not exist`); // CHOICE: text UNVERIFIED
        }
        image = st.isDirectory()
          ? `local-dir:${path.resolve(a.image)}`
          : `local:${crypto.createHash('sha256').update(fs.readFileSync(a.image)).digest('hex')}`;
      }
    } else {
      // A registry ref is stored verbatim; a registry image with no network is rejected.
      // `-p` also counts as network intent here ("create --image alpine needs --net, -p or
      // an egress flag", §2.1). The tail after "no network, " is elided in the reference.
      if (!network && ports.length === 0) {
        throw cfgErr(op, `image '${a.image}' must be pulled from a registry, but this machine has no network, so the guest cannot fetch it (add --net)`);
      }
      image = a.image;
    }
  }
  if (a.from !== undefined) {
    if (!fs.existsSync(a.from)) throw cfgErr(op, `artifact '${a.from}' does not exist`); // CHOICE: text UNVERIFIED
    fromPath = path.resolve(a.from);
  }

  // Atomic create reservation (§10 #178): check-and-insert inside one DB transaction.
  withDb(op, 'create', () => {
    if (getRecord(name)) throw cfgErr(op, `machine '${name}' already exists or is being created`);
    const rec = {
      name,
      state: 'created',
      pid: null,
      pid_start_time: null,
      cpus,
      mem,
      mounts,
      ports,
      network,
      network_backend: backend ?? null,
      allowed_cidrs: allowCidrs.length ? allowCidrs : null,
      allow_hosts: a['allow-host'] ?? null,
      dns: a.dns ?? null,
      image,
      source_smolmachine: fromPath,
      // CHOICE: a trailing `-- CMD...` is stored as `cmd`; `entrypoint` stays empty until
      // the (not simulated) OCI config fills it.
      entrypoint: [],
      cmd: a._trail,
      env,
      secret_env: secretEnv,
      secret_files: secretFile,
      init: a.init ?? [],
      init_completed: false,
      workdir: a.workdir ?? null,
      storage_gb: storage,
      overlay_gb: overlay,
      gpu: !!a.gpu,
      gpu_vram_mib: gpuVram,
      labels,
      created_at: Math.floor(Date.now() / 1000),
    };
    putRecord(rec);
  });

  if (fromPath) print('Extracting .smolmachine assets...');
  print(`Created machine: ${name}`);
  print(`  CPUs: ${cpus}, Memory: ${mem} MiB`);
  if (mounts.length) print(`  Mounts: ${mounts.length}`);
  if (ports.length) print(`  Ports: ${ports.length}`);
  if ((a.init ?? []).length) print(`  Init commands: ${a.init.length}`);
  print('');
  print(`Use 'smolvm machine start --name ${name}' to start the machine`);
  print(`Then use 'smolvm machine exec --name ${name} -- <command>' to run commands`);
  return 0;
}

/** For the call log only: never throws, even on malformed input. */
function parseSecretRefsLoose(list) {
  const refs = {};
  for (const s of list ?? []) {
    const eq = s.indexOf('=');
    if (eq > 0) refs[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return refs;
}

// ---------------------------------------------------------------------------------------
// guest filesystem and runtime
// ---------------------------------------------------------------------------------------

const rootfsOf = (name) => path.join(vmDir(name), 'rootfs');
const runtimePath = (name) => path.join(vmDir(name), 'fake-runtime.json');

function ensureVmDir(name) {
  const d = vmDir(name);
  fs.mkdirSync(d, { recursive: true });
  const owner = path.join(d, 'name');
  if (fs.existsSync(owner)) {
    const o = fs.readFileSync(owner, 'utf8');
    if (o !== name) throw new SmolError(`storage operation failed: vm dir: data dir ${d} belongs to '${o}' (hash collision)`);
  } else fs.writeFileSync(owner, name);
  const root = rootfsOf(name);
  if (!fs.existsSync(root)) {
    // A minimal Alpine-like skeleton; directories only.
    for (const p of ['bin', 'dev', 'etc', 'home', 'root', 'run', 'sbin', 'tmp', 'usr/bin', 'usr/local/bin', 'var/log']) {
      fs.mkdirSync(path.join(root, p), { recursive: true });
    }
    fs.writeFileSync(path.join(root, 'etc', 'hostname'), `${name}\n`);
  }
  return d;
}

// ---------------------------------------------------------------------------------------
// machine start (§2.2)
// ---------------------------------------------------------------------------------------

const START_SPEC = {
  usage: 'smolvm machine start [OPTIONS]',
  flags: [
    { long: 'name', short: 'n', value: 'NAME' },
    { long: 'forkable' },
    { long: 'fork-pool-size', value: 'N' },
    { long: 'cuda-vram-limit-mib', value: 'MIB' },
    { long: 'proxy', value: 'URL' },
    { long: 'no-proxy', value: 'LIST' },
  ],
};

function newPid() {
  return crypto.randomInt(20000, 4000000);
}

function cmdStart(args) {
  const a = parseArgs(args, START_SPEC);
  if (a._help) return help(START_SPEC);
  if (a['cuda-vram-limit-mib'] !== undefined && a['fork-pool-size'] === undefined) {
    throw new UsageError("the following required arguments were not provided:\n  --fork-pool-size <N>", { usage: START_SPEC.usage });
  }
  if (a.forkable || a['fork-pool-size'] !== undefined) throw new FakeProblem('the fake does not implement forkable machines');
  let name = a.name;
  let rec;
  if (name === undefined) {
    name = 'default';
    rec = getRecord(name);
    if (!rec) {
      // §2.2: no --name and no `default` record → create and start a default machine.
      withDb('start machine', 'start', () => {
        if (!getRecord(name)) {
          putRecord({
            name, state: 'created', pid: null, pid_start_time: null, cpus: DEFAULT_CPUS, mem: DEFAULT_MEM,
            mounts: [], ports: [], network: false, network_backend: null, allowed_cidrs: null, allow_hosts: null,
            dns: null, image: null, source_smolmachine: null, entrypoint: [], cmd: [], env: {}, secret_env: {},
            secret_files: {}, init: [], init_completed: false, workdir: null, storage_gb: null, overlay_gb: null,
            gpu: false, gpu_vram_mib: null, labels: {}, created_at: Math.floor(Date.now() / 1000),
          });
        }
      });
      rec = getRecord(name);
    }
  } else {
    rec = getRecord(name);
  }
  if (!rec) throw notFound(name);
  recordSecretEnvRefs(Object.values(rec.secret_env ?? {}));

  let state = resolveState(rec);
  if (state === 'running') {
    print(`Machine '${name}' already running (PID: ${rec.pid})`);
    return 0;
  }
  if (state === 'unreachable') {
    // §2.2: kill the zombie VMM, then a fresh start.
    print(`Machine '${name}' is unreachable (PID ${rec.pid ?? 0} alive but agent unresponsive); cleaning up.`);
    withDb('start machine', 'start', () => {
      const r = getRecord(name);
      if (r) putRecord({ ...r, state: 'stopped', pid: null, pid_start_time: null });
    });
    clearVmmKnob(name);
    rec = getRecord(name);
    if (!rec) throw notFound(name);
    state = 'stopped';
  }

  // Host port already used by another *running* machine.
  for (const other of allRecords()) {
    if (other.name === name || resolveState(other) !== 'running') continue;
    for (const [h] of rec.ports ?? []) {
      if ((other.ports ?? []).some(([oh]) => oh === h)) {
        throw cfgErr('start machine', `host port ${h} is already in use by running machine '${other.name}'`);
      }
    }
  }

  const dir = ensureVmDir(name);
  // Per-VM flock `<data dir>/vm.lock` held by whoever starts or runs the VM. The loser of
  // two concurrent starts fails (§2.2; the nesting of the message is inferred there).
  const lockBusy = () =>
    agentErr('start machine', "agent operation failed: start agent: another process is already starting or running this VM");
  const release = acquireLockFile(path.join(dir, 'vm.lock'), 0);
  if (!release) throw lockBusy();
  try {
    // The running VMM also holds the flock: re-check after taking it.
    const fresh = getRecord(name);
    if (!fresh) throw notFound(name);
    if (vmmAlive(fresh)) throw lockBusy();
    rec = fresh;

    if (KNOBS.noKvm) {
      // §4: exact wrapping inferred in the reference.
      throw agentErr('start machine', 'kvm not available: KVM not available. Ensure KVM kernel module is loaded. Try: sudo usermod -aG kvm $USER');
    }

    // Secrets: only references are stored (§2.1); their values are read from the host
    // environment when the VM launches. CHOICE (UNVERIFIED: the reference does not say what
    // a missing host variable does): fail closed instead of starting without the secret.
    const secretValues = {};
    for (const [guest, hostVar] of Object.entries(rec.secret_env ?? {})) {
      const v = process.env[hostVar];
      if (v === undefined) {
        throw cfgErr('start machine', `secret '${guest}' references host environment variable '${hostVar}', which is not set`);
      }
      secretValues[guest] = v;
    }
    for (const [guest, file] of Object.entries(rec.secret_files ?? {})) {
      try {
        secretValues[guest] = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw cfgErr('start machine', `secret '${guest}' file '${file}' cannot be read: ${e.code ?? e.message}`);
      }
    }

    const bits = [];
    if ((rec.mounts ?? []).length) bits.push(` with ${rec.mounts.length} mount(s)`);
    if ((rec.ports ?? []).length) bits.push(`${bits.length ? ' and' : ' with'} ${rec.ports.length} port mapping(s)`);
    eprint(`Starting machine '${name}'${bits.join('')}...`);
    sleepMs(knobFor(KNOBS.delayMs, 'start')); // FAKE-ONLY: boot time, while holding vm.lock

    const guestEnv = { ...(rec.env ?? {}), ...secretValues };
    if (!rec.init_completed) {
      if (rec.image && !rec.image.startsWith('local')) eprint(`Pulling ${rec.image}...`);
      // §6: init runs once, on the first successful start.
      if ((rec.init ?? []).length) print(`Running ${rec.init.length} init command(s)...`);
      for (const [i, cmd] of (rec.init ?? []).entries()) {
        const r = runGuest(name, guestEnv, rec.workdir ?? '/', ['sh', '-c', cmd], Buffer.alloc(0));
        if (r.code !== 0) {
          const so = r.stdout.toString().trim();
          const se = r.stderr.toString().trim();
          const suffix = so && se ? `: ${se}; stdout: ${so}` : so ? `: ${so}` : se ? `: ${se}` : '';
          // The VM is stopped again and the command exits 1 (§2.2).
          throw agentErr('init', `init[${i}] failed (exit ${r.code})${suffix}`);
        }
      }
    }

    const pid = newPid();
    withDb('start machine', 'start', () => {
      const r = getRecord(name);
      if (!r) throw notFound(name);
      putRecord({ ...r, state: 'running', pid, pid_start_time: Date.now(), init_completed: true });
    });
    // FAKE-ONLY "VM memory": the environment the guest got at launch.
    writeJsonAtomic(runtimePath(name), { pid, env: guestEnv, workload: [...(rec.entrypoint ?? []), ...(rec.cmd ?? [])] });
    clearVmmKnob(name); // a new VMM process
    print(`Machine '${name}' running (PID: ${pid})`);
    return 0;
  } finally {
    release();
  }
}

// ---------------------------------------------------------------------------------------
// machine stop (§2.3)
// ---------------------------------------------------------------------------------------

const STOP_SPEC = { usage: 'smolvm machine stop [OPTIONS]', flags: [{ long: 'name', short: 'n', value: 'NAME' }] };

function stopRunning(name, rec) {
  // SIGTERM (3 s) then SIGKILL (3 s); the record becomes Stopped with pid=null.
  sleepMs(knobFor(KNOBS.delayMs, 'stop'));
  withDb('stop machine', 'stop', () => {
    const r = getRecord(name);
    if (r) putRecord({ ...r, state: 'stopped', pid: null, pid_start_time: null });
  });
  try {
    fs.unlinkSync(runtimePath(name));
  } catch {
    /* none */
  }
  clearVmmKnob(name);
  void rec;
}

function cmdStop(args) {
  const a = parseArgs(args, STOP_SPEC);
  if (a._help) return help(STOP_SPEC);
  const name = a.name ?? 'default';
  const rec = getRecord(name);
  if (!rec) throw notFound(name);
  const state = resolveState(rec);
  if (state === 'running') {
    print(`Stopping machine '${name}'...`);
    stopRunning(name, rec);
    print(`Stopped machine: ${name}`);
    return 0;
  }
  if (state === 'unreachable') {
    // Zombie killed.
    stopRunning(name, rec);
    print(`Stopped machine: ${name}`);
    return 0;
  }
  // Already stopped, created or failed: exit 0. CHOICE (UNVERIFIED): a crashed machine
  // (stored running, dead pid, shown as stopped) keeps its stale record here; the reference
  // only says this path kills an orphaned _boot-vm.
  print(`Machine '${name}' is not running (state: ${state})`);
  return 0;
}

// ---------------------------------------------------------------------------------------
// machine delete / rm (§2.4)
// ---------------------------------------------------------------------------------------

const DELETE_SPEC = {
  usage: 'smolvm machine delete [OPTIONS] --name <NAME>',
  flags: [
    { long: 'name', short: 'n', value: 'NAME', required: true },
    { long: 'force', short: 'f' },
    { long: 'cascade' },
  ],
};

function readAnswerLine() {
  // Read one line from stdin; EOF or an unreadable stdin counts as no answer.
  const buf = Buffer.alloc(1);
  let line = '';
  for (;;) {
    let n = 0;
    try {
      n = fs.readSync(0, buf, 0, 1, null);
    } catch (e) {
      if (e.code === 'EAGAIN') {
        sleepMs(10);
        continue;
      }
      return line;
    }
    if (n === 0) return line;
    const c = buf.toString('utf8');
    if (c === '\n') return line;
    line += c;
  }
}

function cmdDelete(args) {
  const a = parseArgs(args, DELETE_SPEC);
  if (a._help) return help(DELETE_SPEC);
  const name = a.name;
  let rec = getRecord(name);
  if (!rec) throw notFound(name);
  // A running machine is stopped first; no -f is needed for that.
  if (vmmAlive(rec)) {
    print(`Stopping machine '${name}'...`);
    stopRunning(name, rec);
  }
  if (!a.force && !a.cascade) {
    // Without -f: prompt on stderr, read stdin. Anything but y/yes — including EOF from a
    // non-TTY stdin — prints Cancelled and exits 0 without deleting (v1.9.3; PR #1333
    // changes this after the snapshot).
    err.push(Buffer.from(`Delete machine '${name}'? [y/N] `)); // no newline: a prompt
    flush();
    const ans = readAnswerLine().trim().toLowerCase();
    if (ans !== 'y' && ans !== 'yes') {
      print('Cancelled');
      return 0;
    }
  }
  // The data dir is removed before the DB row (§2.4).
  const dir = vmDir(name);
  if (fs.existsSync(dir)) {
    print(`Cleaning up data directory for vm: ${name}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  withDb('delete machine', 'delete', () => {
    rec = getRecord(name);
    if (!rec) throw notFound(name);
    fs.rmSync(recordPath(name), { force: true });
  });
  clearVmmKnob(name);
  print(`Deleted machine: ${name}`);
  return 0;
}

// ---------------------------------------------------------------------------------------
// machine status (§2.5), ls (§2.6), data-dir (§2.9)
// ---------------------------------------------------------------------------------------

const STATUS_SPEC = {
  usage: 'smolvm machine status [OPTIONS]',
  flags: [
    { long: 'name', short: 'n', value: 'NAME' },
    { long: 'json' },
  ],
};

function cmdStatus(args) {
  const a = parseArgs(args, STATUS_SPEC);
  if (a._help) return help(STATUS_SPEC);
  if (a.json) {
    const name = a.name ?? 'default';
    const rec = getRecord(name);
    if (!rec) throw cfgErr('machine status', `machine '${name}' not found`);
    print(JSON.stringify(machineJson(rec), null, 2));
    return 0;
  }
  if (a.name === undefined) {
    // Not resolved against the DB (§2.5).
    const rec = getRecord('default');
    if (rec && resolveState(rec) === 'running') print(`Machine 'default': running (PID: ${rec.pid})`);
    else print("Machine 'default': not running");
    return 0;
  }
  const rec = getRecord(a.name);
  if (!rec) throw notFound(a.name);
  const st = resolveState(rec);
  print(st === 'running' ? `Machine '${a.name}': running (PID: ${rec.pid})` : `Machine '${a.name}': ${st}`);
  return 0;
}

const LS_SPEC = {
  usage: 'smolvm machine ls [OPTIONS]',
  flags: [
    { long: 'verbose', short: 'v' },
    { long: 'json' },
  ],
};

function cmdLs(args) {
  const a = parseArgs(args, LS_SPEC);
  if (a._help) return help(LS_SPEC);
  sleepMs(knobFor(KNOBS.delayMs, 'ls'));
  // Array order is not stable in the real CLI (HashMap, §3): the fake uses a hash order
  // that is deterministic but not sorted, to catch clients that forget to sort.
  const hashKey = (n) => crypto.createHash('sha256').update(n).digest('hex');
  const recs = allRecords().sort((x, y) => (hashKey(x.name) < hashKey(y.name) ? -1 : 1));
  if (a.json) {
    print(JSON.stringify(recs.map(machineJson), null, 2));
    return 0;
  }
  if (!recs.length) {
    print('No machines found');
    return 0;
  }
  const pad = (s, n, right) => (right ? String(s).padStart(n) : String(s).padEnd(n));
  print(`${pad('NAME', 20)} ${pad('STATE', 12)} ${pad('CPUS', 5, 1)} ${pad('MEMORY', 10, 1)} ${pad('MOUNTS', 7, 1)} ${pad('PORTS', 7, 1)} ${pad('STORAGE', 8, 1)} ${pad('OVERLAY', 8, 1)}`);
  print('-'.repeat(88));
  for (const r of recs) {
    const n = r.name.length > 18 ? `${r.name.slice(0, 15)}...` : r.name;
    print(
      `${pad(n, 20)} ${pad(resolveState(r), 12)} ${pad(r.cpus, 5, 1)} ${pad(`${r.mem} MiB`, 10, 1)} ${pad((r.mounts ?? []).length, 7, 1)} ${pad((r.ports ?? []).length, 7, 1)} ${pad(`${r.storage_gb ?? 20} GiB`, 8, 1)} ${pad(`${r.overlay_gb ?? 10} GiB`, 8, 1)}`,
    );
  }
  return 0;
}

const DATADIR_SPEC = {
  usage: 'smolvm machine data-dir --name <NAME>',
  flags: [{ long: 'name', short: 'n', value: 'NAME', required: true }],
};
function cmdDataDir(args) {
  const a = parseArgs(args, DATADIR_SPEC);
  if (a._help) return help(DATADIR_SPEC);
  if (!getRecord(a.name)) throw notFound(a.name);
  print(vmDir(a.name));
  return 0;
}

// ---------------------------------------------------------------------------------------
// exec (§2.7) and cp (§2.8)
// ---------------------------------------------------------------------------------------

const EXEC_SPEC = {
  usage: 'smolvm machine exec [OPTIONS] [--] <COMMAND>...',
  trailing: 'var',
  trailingRequired: true,
  flags: [
    { long: 'name', value: 'NAME' }, // long only: there is no -n on exec (§2)
    { long: 'workdir', short: 'w', value: 'DIR' },
    { long: 'env', short: 'e', value: 'KEY=VALUE', multi: true },
    { long: 'secret-env', value: 'GUEST=HOSTVAR', multi: true },
    { long: 'secret-file', value: 'GUEST=/abs/path', multi: true },
    { long: 'timeout', value: 'DURATION' },
    { long: 'interactive', short: 'i' },
    { long: 'tty', short: 't' },
    { long: 'stream' },
    { long: 'detach', short: 'd' },
  ],
  conflicts: [
    ['detach', 'interactive'],
    ['detach', 'tty'],
    ['detach', 'stream'],
  ],
};

function parseDuration(v) {
  // humantime: 30s, 5m, 1h, 500ms, "1m 30s"; must be > 0.
  const units = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, sec: 1000, m: 60000, min: 60000, h: 3600000, d: 86400000 };
  const parts = v.trim().split(/\s+/);
  let total = 0;
  for (const p of parts) {
    const m = /^(\d+)([a-z]+)$/.exec(p);
    if (!m || !(m[2] in units)) throw new UsageError(`invalid value '${v}' for '--timeout <DURATION>': invalid duration`);
    total += Number(m[1]) * units[m[2]];
  }
  if (total <= 0) throw new UsageError(`invalid value '${v}' for '--timeout <DURATION>': timeout must be greater than 0`);
  return total;
}

/**
 * The connect step shared by exec and cp (vm_common::ensure_running_and_connect): no
 * auto-start. When the PID is alive but the agent does not answer, the record is persisted
 * as `unreachable` and the same "is not running" error is returned (§2.7, §3).
 */
function connect(name) {
  const rec = getRecord(name);
  if (!rec) throw notFound(name);
  const alive = vmmAlive(rec);
  const hung = vmmKnob(name) === 'hung';
  if (!alive || hung) {
    if (alive && hung && rec.state === 'running') {
      try {
        withDb('mark unreachable', 'exec', () => {
          const r = getRecord(name);
          if (r && r.state === 'running') putRecord({ ...r, state: 'unreachable' });
        });
      } catch {
        /* best effort, like the real one */
      }
    }
    throw notRunningErr(name);
  }
  return rec;
}

function cmdExec(args) {
  const a = parseArgs(args, EXEC_SPEC);
  if (a._help) return help(EXEC_SPEC);
  const secretRefs = parseSecretRefsLoose(a['secret-env']);
  recordSecretEnvRefs(Object.values(secretRefs));
  if (a.timeout !== undefined) parseDuration(a.timeout);
  const name = a.name ?? 'default';
  sleepMs(knobFor(KNOBS.delayMs, 'exec'));
  if (a.name === undefined && !getRecord(name)) {
    // No --name: the default manager is used without a DB lookup (vm_common::ensure_running_and_connect).
    throw agentErr('connect', "machine 'default' is not running. Use 'smolvm machine start' first.");
  }
  const rec = connect(name);
  const refs = parseSecretRefs(a['secret-env'], 'exec');
  const fileRefs = parseSecretRefs(a['secret-file'], 'exec', { absolute: true });
  const secretVals = {};
  for (const [g, h] of Object.entries(refs)) {
    const v = process.env[h];
    if (v === undefined) throw cfgErr('exec', `secret '${g}' references host environment variable '${h}', which is not set`);
    secretVals[g] = v;
  }
  for (const [g, f] of Object.entries(fileRefs)) secretVals[g] = fs.readFileSync(f, 'utf8');
  const runtime = readJson(runtimePath(name), { env: rec.env ?? {} });
  // CHOICE (UNVERIFIED): exec sees the machine env (-e at create and the secrets resolved
  // at start) plus its own -e / --secret-env. The reference does not say whether `machine
  // exec` inherits the create-time env.
  const env = { ...(runtime.env ?? {}), ...parseEnvList(a.env), ...secretVals };
  const cwd = a.workdir ?? rec.workdir ?? '/';
  const stdin = a.interactive ? fs.readFileSync(0) : Buffer.alloc(0);
  const r = runGuest(name, env, cwd, a._trail, stdin);
  if (a.detach) {
    print(String(newPid()));
    return 0;
  }
  out.push(r.stdout);
  err.push(r.stderr);
  return r.code; // the guest command's exit code (§1)
}

const CP_SPEC = {
  usage: 'smolvm machine cp [OPTIONS] <SRC> <DST>',
  positionals: ['SRC', 'DST'],
  flags: [
    { long: 'mode', value: 'OCTAL' },
    { long: 'uid', value: 'UID' },
    { long: 'gid', value: 'GID' },
  ],
};

/** `NAME:/path` → {name, path}; the name is split at the first `:` (§2.8).
 * CHOICE: a side counts as a machine path only when the part before the first `:` is a
 * non-empty string without `/` (so `/tmp/a:b` and `./a:b` stay host paths). */
function machineRef(s) {
  const i = s.indexOf(':');
  if (i <= 0) return null;
  const name = s.slice(0, i);
  if (name.includes('/') || name.includes('\\')) return null;
  return { name, path: s.slice(i + 1) };
}

function guestHostPath(name, guestPath, cwd = '/') {
  const p = path.posix.resolve(cwd, guestPath);
  return path.join(rootfsOf(name), p);
}

function cmdCp(args) {
  const a = parseArgs(args, CP_SPEC);
  if (a._help) return help(CP_SPEC);
  const [src, dst] = a._pos;
  const s = machineRef(src);
  const d = machineRef(dst);
  // CHOICE (texts UNVERIFIED): the reference only says "exactly one side is machine:path".
  if ((s && d) || (!s && !d)) throw cfgErr('cp', 'exactly one of SRC and DST must be a machine path (NAME:/path)');
  const mode = a.mode !== undefined ? a.mode : undefined;
  if (mode !== undefined && !/^[0-7]{3,4}$/.test(mode)) throw new UsageError(`invalid value '${mode}' for '--mode <OCTAL>': invalid octal mode`);
  const uid = a.uid !== undefined ? parseUint('--uid <UID>', a.uid, 4294967295) : undefined;
  const gid = a.gid !== undefined ? parseUint('--gid <GID>', a.gid, 4294967295) : undefined;
  sleepMs(knobFor(KNOBS.delayMs, 'cp'));
  if (d) {
    connect(d.name);
    let data;
    try {
      data = fs.readFileSync(src);
    } catch (e) {
      throw new SmolError(`io operation failed: ${src}: ${e.code === 'ENOENT' ? 'No such file or directory (os error 2)' : e.message}`);
    }
    if (data.length > 4 * 1024 * 1024 * 1024) throw agentErr('cp', 'file larger than 4 GiB');
    const target = guestHostPath(d.name, d.path);
    // CHOICE (UNVERIFIED): the upload does not create missing parent directories (the
    // conservative reading; a client creates them with `exec mkdir -p` first).
    if (!fs.existsSync(path.dirname(target)) || !fs.statSync(path.dirname(target)).isDirectory()) {
      throw agentErr('write file', `${path.posix.resolve('/', d.path)}: No such file or directory (os error 2)`);
    }
    if (fs.existsSync(target) && fs.statSync(target).isDirectory()) {
      throw agentErr('write file', `${path.posix.resolve('/', d.path)}: Is a directory (os error 21)`);
    }
    // Written atomically on the guest side.
    const tmp = `${target}.smolvm-cp-${process.pid}`;
    fs.writeFileSync(tmp, data);
    fs.chmodSync(tmp, mode !== undefined ? parseInt(mode, 8) : 0o644);
    fs.renameSync(tmp, target);
    if (uid !== undefined || gid !== undefined) setOwner(d.name, path.posix.resolve('/', d.path), uid, gid);
    return 0;
  }
  // download
  if (mode !== undefined || uid !== undefined || gid !== undefined) {
    throw cfgErr('cp', '--mode, --uid and --gid apply to uploads only');
  }
  connect(s.name);
  const from = guestHostPath(s.name, s.path);
  let data;
  try {
    data = fs.readFileSync(from);
  } catch {
    throw agentErr('read file', `${path.posix.resolve('/', s.path)}: No such file or directory (os error 2)`);
  }
  fs.writeFileSync(dst, data);
  return 0;
}

function ownersPath(name) {
  return path.join(vmDir(name), 'fake-owners.json');
}
function setOwner(name, guestPath, uid, gid) {
  const o = readJson(ownersPath(name), {});
  o[guestPath] = { uid: uid ?? o[guestPath]?.uid ?? 0, gid: gid ?? o[guestPath]?.gid ?? 0 };
  writeJsonAtomic(ownersPath(name), o);
}

// ---------------------------------------------------------------------------------------
// the guest: a tiny busybox-like shell over rootfs/
// ---------------------------------------------------------------------------------------
// Supported: true false : echo [-n] cat ls [-a] [-l→names] test/[ (-e -f -d -s -z -n = !=)
// touch mkdir [-p] rm [-r] [-f] cp mv printenv env pwd cd export exit sleep stat -c chmod
// id [-u|-g] whoami sh|ash -c "script" with ; && || > >> 2> 2>&1, quotes, $VAR ${VAR} $?.
// No pipes, globs, loops or conditionals (they exit 2 with a clear "fake sh" message).

const GUEST_BASE_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
};

function runGuest(name, env, cwd, argv, stdin) {
  const ctx = {
    name,
    root: rootfsOf(name),
    env: { ...GUEST_BASE_ENV, ...env },
    cwd: path.posix.resolve('/', cwd),
    stdin,
    last: 0,
  };
  const io = { out: [], err: [] };
  let code;
  try {
    code = runCommand(ctx, argv, io);
  } catch (e) {
    if (e instanceof ShellExit) code = e.code;
    else throw e;
  }
  return { code, stdout: Buffer.concat(io.out), stderr: Buffer.concat(io.err) };
}

class ShellExit extends Error {
  constructor(code) {
    super(`exit ${code}`);
    this.code = code;
  }
}

function hp(ctx, p) {
  return path.join(ctx.root, path.posix.resolve(ctx.cwd, p));
}
function statOrNull(file) {
  try {
    return fs.statSync(file);
  } catch {
    return null;
  }
}
const w = (io, s) => io.out.push(Buffer.isBuffer(s) ? s : Buffer.from(s));
const we = (io, s) => io.err.push(Buffer.from(s));

const BUILTINS = {
  true: () => 0,
  ':': () => 0,
  false: () => 1,
  echo(ctx, args, io) {
    let nl = true;
    if (args[0] === '-n') {
      nl = false;
      args = args.slice(1);
    }
    w(io, args.join(' ') + (nl ? '\n' : ''));
    return 0;
  },
  cat(ctx, args, io) {
    if (!args.length) {
      w(io, ctx.stdin);
      return 0;
    }
    let rc = 0;
    for (const f of args) {
      const st = statOrNull(hp(ctx, f));
      if (!st) {
        we(io, `cat: can't open '${f}': No such file or directory\n`);
        rc = 1;
      } else if (st.isDirectory()) {
        we(io, `cat: read error: Is a directory\n`);
        rc = 1;
      } else w(io, fs.readFileSync(hp(ctx, f)));
    }
    return rc;
  },
  ls(ctx, args, io) {
    const all = args.some((x) => /^-[a-zA-Z]*a/.test(x));
    const targets = args.filter((x) => !x.startsWith('-'));
    if (!targets.length) targets.push('.');
    let rc = 0;
    for (const t of targets) {
      const st = statOrNull(hp(ctx, t));
      if (!st) {
        we(io, `ls: ${t}: No such file or directory\n`);
        rc = 1;
        continue;
      }
      if (!st.isDirectory()) {
        w(io, `${t}\n`);
        continue;
      }
      const names = fs.readdirSync(hp(ctx, t)).filter((n) => all || !n.startsWith('.')).sort();
      for (const n of names) w(io, `${n}\n`);
    }
    return rc;
  },
  test(ctx, args, io) {
    void io;
    const t = (x) => (x ? 0 : 1);
    let neg = false;
    if (args[0] === '!') {
      neg = true;
      args = args.slice(1);
    }
    let r;
    if (args.length === 0) r = 1;
    else if (args.length === 1) r = t(args[0] !== '');
    else if (args.length === 2) {
      const [op, x] = args;
      const st = () => statOrNull(hp(ctx, x));
      if (op === '-e') r = t(!!st());
      else if (op === '-f') r = t(!!st()?.isFile());
      else if (op === '-d') r = t(!!st()?.isDirectory());
      else if (op === '-s') r = t((st()?.size ?? 0) > 0);
      else if (op === '-z') r = t(x === '');
      else if (op === '-n') r = t(x !== '');
      else return 2;
    } else if (args.length === 3) {
      const [x, op, y] = args;
      if (op === '=' || op === '==') r = t(x === y);
      else if (op === '!=') r = t(x !== y);
      else if (op === '-eq') r = t(Number(x) === Number(y));
      else if (op === '-ne') r = t(Number(x) !== Number(y));
      else return 2;
    } else return 2;
    return neg ? 1 - r : r;
  },
  '['(ctx, args, io) {
    if (args[args.length - 1] !== ']') {
      we(io, '[: missing ]\n');
      return 2;
    }
    return BUILTINS.test(ctx, args.slice(0, -1), io);
  },
  touch(ctx, args, io) {
    let rc = 0;
    for (const f of args.filter((x) => !x.startsWith('-'))) {
      const file = hp(ctx, f);
      if (!statOrNull(path.dirname(file))?.isDirectory()) {
        we(io, `touch: ${f}: No such file or directory\n`);
        rc = 1;
        continue;
      }
      if (statOrNull(file)) {
        const now = new Date();
        fs.utimesSync(file, now, now);
      } else fs.writeFileSync(file, '');
    }
    return rc;
  },
  mkdir(ctx, args, io) {
    const p = args.includes('-p');
    let rc = 0;
    for (const d of args.filter((x) => !x.startsWith('-'))) {
      const dir = hp(ctx, d);
      if (p) {
        if (statOrNull(dir) && !statOrNull(dir).isDirectory()) {
          we(io, `mkdir: can't create directory '${d}': File exists\n`);
          rc = 1;
        } else fs.mkdirSync(dir, { recursive: true });
        continue;
      }
      if (statOrNull(dir)) {
        we(io, `mkdir: can't create directory '${d}': File exists\n`);
        rc = 1;
      } else if (!statOrNull(path.dirname(dir))?.isDirectory()) {
        we(io, `mkdir: can't create directory '${d}': No such file or directory\n`);
        rc = 1;
      } else fs.mkdirSync(dir);
    }
    return rc;
  },
  rm(ctx, args, io) {
    const flags = args.filter((x) => x.startsWith('-')).join('');
    const rec = /r|R/.test(flags);
    const force = flags.includes('f');
    let rc = 0;
    for (const f of args.filter((x) => !x.startsWith('-'))) {
      const file = hp(ctx, f);
      const st = statOrNull(file);
      if (!st) {
        if (!force) {
          we(io, `rm: can't remove '${f}': No such file or directory\n`);
          rc = 1;
        }
        continue;
      }
      if (st.isDirectory() && !rec) {
        we(io, `rm: '${f}' is a directory\n`);
        rc = 1;
        continue;
      }
      fs.rmSync(file, { recursive: true, force: true });
    }
    return rc;
  },
  cp(ctx, args, io) {
    const [a, b] = args.filter((x) => !x.startsWith('-'));
    if (!a || !b) {
      we(io, 'cp: missing file operand\n');
      return 1;
    }
    if (!statOrNull(hp(ctx, a))?.isFile()) {
      we(io, `cp: can't stat '${a}': No such file or directory\n`);
      return 1;
    }
    let dest = hp(ctx, b);
    if (statOrNull(dest)?.isDirectory()) dest = path.join(dest, path.basename(a));
    fs.copyFileSync(hp(ctx, a), dest);
    return 0;
  },
  mv(ctx, args, io) {
    const [a, b] = args.filter((x) => !x.startsWith('-'));
    if (!a || !b || !statOrNull(hp(ctx, a))) {
      we(io, `mv: can't rename '${a}': No such file or directory\n`);
      return 1;
    }
    let dest = hp(ctx, b);
    if (statOrNull(dest)?.isDirectory()) dest = path.join(dest, path.basename(a));
    fs.renameSync(hp(ctx, a), dest);
    return 0;
  },
  printenv(ctx, args, io) {
    if (!args.length) return BUILTINS.env(ctx, args, io);
    let rc = 0;
    for (const k of args) {
      if (k in ctx.env) w(io, `${ctx.env[k]}\n`);
      else rc = 1;
    }
    return rc;
  },
  env(ctx, args, io) {
    if (args.length) {
      // env K=V cmd...
      const local = { ...ctx.env };
      let i = 0;
      while (i < args.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(args[i])) {
        const eq = args[i].indexOf('=');
        local[args[i].slice(0, eq)] = args[i].slice(eq + 1);
        i++;
      }
      if (i < args.length) return runCommand({ ...ctx, env: local }, args.slice(i), io);
      ctx = { ...ctx, env: local };
    }
    for (const k of Object.keys(ctx.env).sort()) w(io, `${k}=${ctx.env[k]}\n`);
    return 0;
  },
  pwd(ctx, args, io) {
    w(io, `${ctx.cwd}\n`);
    return 0;
  },
  cd(ctx, args, io) {
    const target = path.posix.resolve(ctx.cwd, args[0] ?? ctx.env.HOME ?? '/');
    if (!statOrNull(path.join(ctx.root, target))?.isDirectory()) {
      we(io, `sh: cd: can't cd to ${args[0]}: No such file or directory\n`);
      return 2;
    }
    ctx.cwd = target;
    return 0;
  },
  export(ctx, args) {
    for (const x of args) {
      const eq = x.indexOf('=');
      if (eq > 0) ctx.env[x.slice(0, eq)] = x.slice(eq + 1);
    }
    return 0;
  },
  exit(ctx, args) {
    throw new ShellExit(args.length ? Number(args[0]) & 255 : ctx.last);
  },
  sleep(ctx, args) {
    sleepMs(Math.round(Number(args[0] ?? 0) * 1000));
    return 0;
  },
  stat(ctx, args, io) {
    // stat -c FORMAT FILE (%a mode, %s size, %u uid, %g gid, %n name, %F type)
    const ci = args.indexOf('-c');
    const fmt = ci >= 0 ? args[ci + 1] : '%n';
    const files = args.filter((x, i) => !x.startsWith('-') && !(ci >= 0 && i === ci + 1));
    let rc = 0;
    const owners = readJson(ownersPath(ctx.name), {});
    for (const f of files) {
      const st = statOrNull(hp(ctx, f));
      if (!st) {
        we(io, `stat: can't stat '${f}': No such file or directory\n`);
        rc = 1;
        continue;
      }
      const own = owners[path.posix.resolve(ctx.cwd, f)] ?? { uid: 0, gid: 0 };
      const line = fmt
        .replace(/%a/g, (st.mode & 0o7777).toString(8))
        .replace(/%s/g, String(st.size))
        .replace(/%u/g, String(own.uid))
        .replace(/%g/g, String(own.gid))
        .replace(/%n/g, f)
        .replace(/%F/g, st.isDirectory() ? 'directory' : 'regular file');
      w(io, `${line}\n`);
    }
    return rc;
  },
  chmod(ctx, args, io) {
    const [mode, ...files] = args;
    if (!/^[0-7]{3,4}$/.test(mode ?? '')) {
      we(io, `chmod: invalid mode '${mode}' (the fake supports octal modes only)\n`);
      return 1;
    }
    let rc = 0;
    for (const f of files) {
      if (!statOrNull(hp(ctx, f))) {
        we(io, `chmod: ${f}: No such file or directory\n`);
        rc = 1;
      } else fs.chmodSync(hp(ctx, f), parseInt(mode, 8));
    }
    return rc;
  },
  id(ctx, args, io) {
    if (args.includes('-u') || args.includes('-g')) w(io, '0\n');
    else w(io, 'uid=0(root) gid=0(root) groups=0(root)\n');
    return 0;
  },
  whoami(ctx, args, io) {
    w(io, 'root\n');
    return 0;
  },
  sh(ctx, args, io) {
    if (args[0] !== '-c' || args[1] === undefined) {
      we(io, 'sh: the fake guest shell only supports `sh -c SCRIPT`\n');
      return 2;
    }
    return runScript({ ...ctx, env: { ...ctx.env } }, args[1], io);
  },
};
BUILTINS.ash = BUILTINS.sh;

function runCommand(ctx, argv, io) {
  if (!argv.length) return 0;
  const cmd = argv[0].includes('/') ? path.posix.basename(argv[0]) : argv[0];
  const fn = BUILTINS[cmd];
  if (!fn) {
    we(io, `sh: ${argv[0]}: not found\n`);
    return 127;
  }
  return fn(ctx, argv.slice(1), io);
}

/** Tokenize a shell script: words (with quote info) and operators. */
function tokenize(src) {
  const toks = [];
  let i = 0;
  let word = null; // array of {q, s}
  const pushSeg = (q, s) => {
    word ??= [];
    word.push({ q, s });
  };
  const endWord = () => {
    if (word) toks.push({ t: 'w', segs: word });
    word = null;
  };
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t') {
      endWord();
      i++;
    } else if (c === '\n' || c === ';') {
      endWord();
      toks.push({ t: 'op', v: ';' });
      i++;
    } else if (c === '#' && !word) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (src.startsWith('&&', i) || src.startsWith('||', i)) {
      endWord();
      toks.push({ t: 'op', v: src.slice(i, i + 2) });
      i += 2;
    } else if (c === '|' || c === '&' || c === '(' || c === ')' || c === '`' || c === '<') {
      throw new ShellUnsupported(`'${c}'`);
    } else if (src.startsWith('2>&1', i) && !word) {
      toks.push({ t: 'redir', v: '2>&1' });
      i += 4;
    } else if ((src.startsWith('2>>', i) || src.startsWith('2>', i)) && !word) {
      const v = src.startsWith('2>>', i) ? '2>>' : '2>';
      toks.push({ t: 'redir', v });
      i += v.length;
    } else if (c === '>') {
      endWord();
      const v = src.startsWith('>>', i) ? '>>' : '>';
      toks.push({ t: 'redir', v });
      i += v.length;
    } else if (c === "'") {
      const j = src.indexOf("'", i + 1);
      if (j < 0) throw new ShellUnsupported('unterminated quote');
      pushSeg('single', src.slice(i + 1, j));
      i = j + 1;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\' && j + 1 < src.length && '"\\$`'.includes(src[j + 1])) {
          s += src[j] + src[j + 1]; // keep the escape for expansion
          j += 2;
        } else s += src[j++];
      }
      if (j >= src.length) throw new ShellUnsupported('unterminated quote');
      pushSeg('double', s);
      i = j + 1;
    } else if (c === '\\') {
      pushSeg('single', src[i + 1] ?? '');
      i += 2;
    } else {
      let j = i;
      while (j < src.length && !" \t\n;&|'\"<>()`\\".includes(src[j])) j++;
      pushSeg('none', src.slice(i, j));
      i = j;
    }
  }
  endWord();
  return toks;
}

class ShellUnsupported extends Error {}

function expandSeg(ctx, seg) {
  if (seg.q === 'single') return seg.s;
  let s = seg.s.replace(/\$(\?|\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)/g, (m, v) => {
    if (v === '?') return String(ctx.last);
    const k = v.startsWith('{') ? v.slice(1, -1) : v;
    return ctx.env[k] ?? '';
  });
  if (seg.q === 'double') s = s.replace(/\\(["\\$`])/g, '$1');
  return s;
}
const expandWord = (ctx, segs) => segs.map((x) => expandSeg(ctx, x)).join('');

const RESERVED = new Set(['if', 'then', 'else', 'elif', 'fi', 'for', 'while', 'until', 'do', 'done', 'case', 'esac', 'function']);

function runScript(ctx, src, io) {
  let toks;
  try {
    toks = tokenize(src);
  } catch (e) {
    if (e instanceof ShellUnsupported) {
      we(io, `sh: fake guest shell: unsupported syntax ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  // split into [ {op-before, tokens} ]
  const cmds = [];
  let cur = { op: ';', toks: [] };
  for (const t of toks) {
    if (t.t === 'op') {
      cmds.push(cur);
      cur = { op: t.v, toks: [] };
    } else cur.toks.push(t);
  }
  cmds.push(cur);
  let last = 0;
  for (const c of cmds) {
    if (!c.toks.length) continue;
    if (c.op === '&&' && last !== 0) continue;
    if (c.op === '||' && last === 0) continue;
    last = runSimple(ctx, c.toks, io);
    ctx.last = last;
  }
  return last;
}

function runSimple(ctx, toks, io) {
  const words = [];
  const redirs = [];
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.t === 'redir') {
      if (t.v === '2>&1') redirs.push({ v: t.v });
      else {
        const target = toks[i + 1];
        if (!target || target.t !== 'w') {
          we(io, 'sh: syntax error: redirection without a target\n');
          return 2;
        }
        redirs.push({ v: t.v, file: expandWord(ctx, target.segs) });
        i++;
      }
    } else words.push(expandWord(ctx, t.segs));
  }
  if (words.length && RESERVED.has(words[0])) {
    we(io, `sh: fake guest shell: unsupported syntax '${words[0]}'\n`);
    return 2;
  }
  // leading VAR=value assignments
  const assigns = {};
  while (words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) {
    const x = words.shift();
    const eq = x.indexOf('=');
    assigns[x.slice(0, eq)] = x.slice(eq + 1);
  }
  if (!words.length) {
    Object.assign(ctx.env, assigns);
    return 0;
  }
  const sub = { out: [], err: [] };
  const cctx = Object.keys(assigns).length ? { ...ctx, env: { ...ctx.env, ...assigns } } : ctx;
  let code;
  try {
    code = runCommand(cctx, words, sub);
  } finally {
    if (cctx !== ctx) ctx.cwd = cctx.cwd;
  }
  let outDest = io.out;
  let errDest = io.err;
  let errToOut = false;
  const writeFile = (file, bufs, append) => {
    if (file === '/dev/null') return true;
    const f = hp(ctx, file);
    if (!statOrNull(path.dirname(f))?.isDirectory()) {
      we(io, `sh: can't create ${file}: nonexistent directory\n`);
      return false;
    }
    (append ? fs.appendFileSync : fs.writeFileSync)(f, Buffer.concat(bufs));
    return true;
  };
  for (const r of redirs) {
    if (r.v === '2>&1') errToOut = true;
  }
  if (errToOut) {
    sub.out.push(...sub.err);
    sub.err = [];
  }
  for (const r of redirs) {
    if (r.v === '>' || r.v === '>>') {
      if (!writeFile(r.file, sub.out, r.v === '>>')) return 1;
      outDest = null;
    } else if (r.v === '2>' || r.v === '2>>') {
      if (!writeFile(r.file, sub.err, r.v === '2>>')) return 1;
      errDest = null;
    }
  }
  if (outDest) outDest.push(...sub.out);
  if (errDest) errDest.push(...sub.err);
  return code;
}

// ---------------------------------------------------------------------------------------
// dispatch
// ---------------------------------------------------------------------------------------

function help(spec) {
  print(`FAKE smolvm ${fakeVersion()} (test double)\n\nUsage: ${spec.usage}\n\nOptions:`);
  for (const f of spec.flags) print(`  ${f.short ? `-${f.short}, ` : '    '}${flagDisplay(f)}`);
  return 0;
}

const MACHINE_CMDS = {
  create: cmdCreate,
  start: cmdStart,
  stop: cmdStop,
  delete: cmdDelete,
  status: cmdStatus,
  ls: cmdLs,
  exec: cmdExec,
  cp: cmdCp,
  'data-dir': cmdDataDir,
};
const ALIASES = { rm: 'delete', list: 'ls', sh: 'shell' };
// Real subcommands the fake does not implement (FAKE-ONLY exit 3, never mistaken for 0/1/2).
const NOT_IMPLEMENTED = new Set(['run', 'fork', 'fork-release', 'egress-events', 'update', 'images', 'prune', 'shell', 'monitor', 'resize', 'network-test']);

/** FAKE-ONLY: knobs.failNext — fail the next call(s) of a subcommand. */
function takeFailure(sub, args) {
  const list = KNOBS.failNext;
  if (!Array.isArray(list) || list.length === 0) return null;
  const nameIdx = args.findIndex((x) => x === '--name' || x === '-n');
  const name = nameIdx >= 0 ? args[nameIdx + 1] : undefined;
  let hit = null;
  updateKnobs((k) => {
    const l = Array.isArray(k.failNext) ? k.failNext : [];
    const i = l.findIndex((f) => (f.subcommand === sub || f.subcommand === '*') && (f.name === undefined || f.name === name));
    if (i < 0) return false;
    hit = { ...l[i] };
    const times = typeof l[i].times === 'number' ? l[i].times : 1;
    if (times <= 1) l.splice(i, 1);
    else l[i].times = times - 1;
    k.failNext = l;
    return true;
  });
  return hit;
}

function dispatch(argv) {
  if (argv.length === 0) {
    throw new UsageError("'smolvm' requires a subcommand but one was not provided\n  [subcommands: machine, serve, pack, config, help]", { usage: 'smolvm <COMMAND>' });
  }
  const [top, ...rest] = argv;
  if (top === '--version' || top === '-V') {
    const f = takeFailure('--version', rest);
    if (f) return applyFailure(f);
    print(`smolvm ${fakeVersion()}`);
    return 0;
  }
  if (top === '--help' || top === '-h' || top === 'help') {
    print(`FAKE smolvm ${fakeVersion()} (test double; see test/fake-smolvm/README.md)\n\nUsage: smolvm <COMMAND>\n\nCommands:\n  machine  (alias: vm)\n  serve\n  pack\n  config`);
    return 0;
  }
  if (top === 'serve' || top === 'pack' || top === 'config') throw new FakeProblem(`'smolvm ${top}' is not implemented by the fake`);
  if (top !== 'machine' && top !== 'vm') {
    if (top.startsWith('-')) throw new UsageError(`unexpected argument '${top}' found`, { usage: 'smolvm <COMMAND>' });
    throw new UsageError(`unrecognized subcommand '${top}'`, { usage: 'smolvm <COMMAND>' });
  }
  if (rest.length === 0) {
    throw new UsageError("'smolvm machine' requires a subcommand but one was not provided", { usage: 'smolvm machine <COMMAND>' });
  }
  const [subRaw, ...args] = rest;
  if (subRaw === '--help' || subRaw === '-h') {
    print(`Usage: smolvm machine <COMMAND>\n\nCommands: ${Object.keys(MACHINE_CMDS).join(', ')} (fake)`);
    return 0;
  }
  const sub = ALIASES[subRaw] ?? subRaw;
  if (NOT_IMPLEMENTED.has(sub)) throw new FakeProblem(`'smolvm machine ${sub}' is not implemented by the fake`);
  const fn = MACHINE_CMDS[sub];
  if (!fn) {
    const tip = Object.keys(MACHINE_CMDS).find((c) => similar(subRaw, c));
    throw new UsageError(`unrecognized subcommand '${subRaw}'`, { tip: tip ? `a similar subcommand exists: '${tip}'` : undefined, usage: 'smolvm machine <COMMAND>' });
  }
  const failure = takeFailure(sub, args);
  if (failure) {
    sleepMs(typeof failure.delayMs === 'number' ? failure.delayMs : 0);
    return applyFailure(failure);
  }
  if (sub !== 'start' && sub !== 'ls' && sub !== 'exec' && sub !== 'cp' && sub !== 'stop') {
    sleepMs(knobFor(KNOBS.delayMs, sub)); // start/stop/ls/exec/cp apply it at their own point
  }
  return fn(args);
}

function applyFailure(f) {
  if (f.stdout) out.push(Buffer.from(f.stdout.endsWith('\n') ? f.stdout : f.stdout + '\n'));
  if (f.stderr) err.push(Buffer.from(f.stderr.endsWith('\n') ? f.stderr : f.stderr + '\n'));
  return typeof f.exitCode === 'number' ? f.exitCode : 1;
}

export function main(argv) {
  CALL.argv = argv;
  let code;
  try {
    const dataDir = process.env.SMOLVM_DATA_DIR;
    if (!dataDir) {
      throw new FakeProblem('SMOLVM_DATA_DIR is not set. This fake smolvm keeps all of its state there and refuses to run without it.');
    }
    ROOT = path.resolve(dataDir);
    fs.mkdirSync(ROOT, { recursive: true });
    DB_DIR = path.join(ROOT, 'fake-db');
    VMS_DIR = path.join(ROOT, '.cache', 'smolvm', 'vms');
    loadKnobs();
    code = dispatch(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      let msg = `error: ${e.message}\n`;
      if (e.tip) msg += `\n  tip: ${e.tip}\n`;
      if (e.usage) msg += `\nUsage: ${e.usage}\n`;
      msg += `\nFor more information, try '--help'.\n`;
      err.push(Buffer.from(msg));
      code = 2;
    } else if (e instanceof SmolError) {
      err.push(Buffer.from(`Error: ${e.message}\n`));
      code = 1;
    } else if (e instanceof FakeProblem) {
      err.push(Buffer.from(`fake-smolvm: ${e.message}\n`));
      code = FAKE_EXIT;
    } else {
      err.push(Buffer.from(`fake-smolvm: internal error: ${e && e.stack ? e.stack : e}\n`));
      code = 70;
    }
  }
  flush();
  appendCallLog(code);
  process.exitCode = code;
}
