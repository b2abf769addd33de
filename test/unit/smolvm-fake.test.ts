// Tests of the fake smolvm against the reference (/work/shared/reference/smolvm-cli.md),
// not against the driver. Each test gets a fresh $SMOLVM_DATA_DIR.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import {
  FAKE_SMOLVM,
  crashMachine,
  failNext,
  hangMachine,
  hostReboot,
  makeDataDir,
  readCalls,
  updateKnobs,
  writeKnobs,
} from '../fake-smolvm/knobs.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sm(dir: string | undefined, args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  if (dir === undefined) delete env.SMOLVM_DATA_DIR;
  else env.SMOLVM_DATA_DIR = dir;
  const r = spawnSync(FAKE_SMOLVM, args, { env, input: opts.input ?? '', encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function smAsync(dir: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await execa(FAKE_SMOLVM, args, { env: { ...env, SMOLVM_DATA_DIR: dir }, reject: false, stdin: 'ignore', stripFinalNewline: false });
  return { code: r.exitCode ?? null, stdout: String(r.stdout), stderr: String(r.stderr) };
}

function fresh(): string {
  return makeDataDir('fake-smolvm-test-');
}

function lsJson(dir: string): Array<Record<string, unknown>> {
  const r = sm(dir, ['machine', 'ls', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}
function byName(dir: string, name: string): Record<string, unknown> {
  const m = lsJson(dir).find((x) => x.name === name);
  assert.ok(m, `machine ${name} listed`);
  return m;
}

/** §3: every element has exactly these keys. */
const LS_KEYS = [
  'cmd', 'cpus', 'created_at', 'cuda', 'cuda_fork_pool_size', 'cuda_vram_limit_mib', 'entrypoint', 'ephemeral',
  'forkable', 'forkpoint_held', 'gpu', 'gpu_vram_mib', 'health_cmd', 'health_interval_secs', 'health_retries',
  'health_startup_grace_secs', 'health_timeout_secs', 'image', 'labels', 'memory_mib', 'mounts', 'name', 'network',
  'overlay_gb', 'pid', 'ports', 'restart_count', 'restart_max_retries', 'restart_policy', 'state', 'storage_gb',
];

// ----------------------------------------------------------------------------------------

test('refuses to run without SMOLVM_DATA_DIR (fake-only rule), exit 3', () => {
  const r = sm(undefined, ['machine', 'ls', '--json']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /SMOLVM_DATA_DIR is not set/);
});

test('--version prints 1.9.3; the version knob overrides it', () => {
  const dir = fresh();
  const r = sm(dir, ['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'smolvm 1.9.3\n');
  writeKnobs(dir, { version: '1.7.0' });
  assert.equal(sm(dir, ['--version']).stdout, 'smolvm 1.7.0\n');
});

test('below 1.8.0 there is no --label (exit 2) and no labels key in ls --json (§11)', () => {
  const dir = fresh();
  writeKnobs(dir, { version: '1.7.0' });
  const r = sm(dir, ['machine', 'create', '--name', 'a', '--label', 'k=v']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: unexpected argument '--label' found/);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a']).code, 0);
  const [m] = lsJson(dir);
  assert.ok(m);
  assert.equal('labels' in m, false);
});

test('flag spellings: --memory is a usage error, --mem works (§2.1)', () => {
  const dir = fresh();
  const r = sm(dir, ['machine', 'create', '--name', 'a', '--memory', '512']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.split('\n')[0], "error: unexpected argument '--memory' found");
  assert.match(r.stderr, /a similar argument exists: '--mem'/);
  assert.match(r.stderr, /For more information, try '--help'\.\n$/);
  assert.equal(r.stdout, '');
  assert.equal(lsJson(dir).length, 0, 'nothing created');
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a', '--mem', '512']).code, 0);
  assert.equal(byName(dir, 'a').memory_mib, 512);
});

test('names are flags: a positional name on create/delete is exit 2; delete needs --name (§2, §11)', () => {
  const dir = fresh();
  assert.equal(sm(dir, ['machine', 'create', 'myvm']).code, 2);
  assert.equal(sm(dir, ['machine', 'create', '-n', 'myvm']).code, 0, '-n exists on create');
  const del = sm(dir, ['machine', 'delete', 'myvm', '-f']);
  assert.equal(del.code, 2);
  assert.match(del.stderr, /^error: unexpected argument 'myvm' found/);
  const noName = sm(dir, ['machine', 'delete', '-f']);
  assert.equal(noName.code, 2);
  assert.match(noName.stderr, /the following required arguments were not provided:\n {2}--name <NAME>/);
  assert.equal(sm(dir, ['machine', 'start', '-n', 'myvm']).code, 0, '-n exists on start');
  assert.equal(sm(dir, ['machine', 'status', '-n', 'myvm']).code, 0, '-n exists on status');
  assert.equal(sm(dir, ['machine', 'stop', '-n', 'myvm']).code, 0, '-n exists on stop');
  assert.equal(sm(dir, ['machine', 'rm', '-n', 'myvm', '-f']).code, 0, 'rm alias, -n, -f');
});

test('exec has no -n: only --name (§2, §13)', () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a']);
  sm(dir, ['machine', 'start', '--name', 'a']);
  const r = sm(dir, ['machine', 'exec', '-n', 'a', '--', 'true']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: unexpected argument '-n' found/);
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'true']).code, 0);
  assert.equal(sm(dir, ['machine', 'exec', '--name=a', 'true']).code, 0, '--name=V form; command without --');
  const noCmd = sm(dir, ['machine', 'exec', '--name', 'a']);
  assert.equal(noCmd.code, 2, 'COMMAND is required');
});

test('clap conflicts and value errors are exit 2: --from with --image, --cpus 300, bad port', () => {
  const dir = fresh();
  const f = path.join(dir, 'x.smolmachine');
  fs.writeFileSync(f, 'x');
  const c = sm(dir, ['machine', 'create', '--name', 'a', '--from', f, '--image', 'alpine', '--net']);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /^error: the argument '--from <PATH>' cannot be used with '--image <IMAGE>'/);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a', '--cpus', '300']).code, 2, 'u8 overflow');
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a', '--cpus', 'two']).code, 2);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a', '-p', '0:80']).code, 2, 'port 0');
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a', '--name', 'b']).code, 2, 'repeated --name');
  assert.equal(lsJson(dir).length, 0);
});

test('there is no machine logs / inspect (§2): unrecognized subcommand, exit 2', () => {
  const dir = fresh();
  for (const sub of ['logs', 'inspect']) {
    const r = sm(dir, ['machine', sub, '--name', 'a']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^error: unrecognized subcommand '${sub}'`));
  }
});

test('create: success output, already-exists text, name rules (§2.1, §4, §7)', () => {
  const dir = fresh();
  const r = sm(dir, ['machine', 'create', '--name', 'sbx-1', '--cpus', '2', '--mem', '1024']);
  assert.equal(r.code, 0);
  assert.equal(
    r.stdout,
    "Created machine: sbx-1\n  CPUs: 2, Memory: 1024 MiB\n\nUse 'smolvm machine start --name sbx-1' to start the machine\nThen use 'smolvm machine exec --name sbx-1 -- <command>' to run commands\n",
  );
  const again = sm(dir, ['machine', 'create', '--name', 'sbx-1']);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, "Error: config operation failed: create machine: machine 'sbx-1' already exists or is being created\n");

  const cases: Array<[string, string]> = [
    ['-x', 'machine name must start with a letter or digit (got: "-x")'],
    ['a--b', 'machine name cannot contain consecutive hyphens'],
    ['ab-', 'machine name cannot end with a hyphen (got: "ab-")'],
    ['a.b', "machine name contains invalid character: '.'"],
    ['a/b', 'machine name cannot contain path separators'],
    ['x'.repeat(129), 'machine name too long: 129 characters (max 128)'],
  ];
  for (const [name, reason] of cases) {
    const res = sm(dir, ['machine', 'create', `--name=${name}`]);
    assert.equal(res.code, 1, name);
    assert.equal(res.stderr, `Error: config operation failed: create machine: ${reason}\n`);
  }
  const auto = sm(dir, ['machine', 'create']);
  assert.equal(auto.code, 0);
  assert.match(auto.stdout, /^Created machine: vm-[0-9a-f]{8}\n/);
});

test('create: registry image needs network; refs stored verbatim; local dirs as local-dir: (§2.1)', () => {
  const dir = fresh();
  const r = sm(dir, ['machine', 'create', '--name', 'a', '--image', 'alpine:3.20']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: config operation failed: create machine: image 'alpine:3\.20' must be pulled from a registry, but this machine has no network/);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a', '--image', 'alpine:3.20', '--net']).code, 0);
  assert.equal(byName(dir, 'a').image, 'alpine:3.20');
  assert.equal(byName(dir, 'a').network, true);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'b', '--image', 'ghcr.io/x/y:1', '--allow-cidr', '10.1.2.3']).code, 0);
  assert.equal(byName(dir, 'b').network, true, '--allow-cidr implies --net');
  const rootfs = path.join(dir, 'rootfs-src');
  fs.mkdirSync(rootfs);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'c', '--image', rootfs]).code, 0, 'a local source needs no network');
  assert.equal(byName(dir, 'c').image, `local-dir:${rootfs}`);
});

test('create: labels (last wins, = in value, malformed is exit 1), cpus 0, mem < 64', () => {
  const dir = fresh();
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a', '--label', 'k=1', '--label', 'k=2', '--label', 'q=a=b']).code, 0);
  assert.deepEqual(byName(dir, 'a').labels, { k: '2', q: 'a=b' });
  assert.equal(sm(dir, ['machine', 'create', '--name', 'b', '--label', 'novalue']).code, 1);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'b', '--label', '=v']).code, 1);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'b', '--cpus', '0']).code, 1);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'b', '--mem', '32']).code, 1);
  assert.equal(sm(dir, ['machine', 'create', '--name', 'b', '--secret-env', 'A=X', '--secret-env', 'A=Y']).code, 1, 'duplicate secret key');
  assert.deepEqual(lsJson(dir).map((m) => m.name), ['a']);
});

test('ls --json: [] when empty; exact §3 keys, alphabetical, pretty 2-space; JSON types', () => {
  const dir = fresh();
  const empty = sm(dir, ['machine', 'ls', '--json']);
  assert.equal(empty.stdout.trim(), '[]');
  assert.equal(sm(dir, ['machine', 'ls']).stdout, 'No machines found\n');
  for (const n of ['m1', 'm2', 'm3', 'm4']) sm(dir, ['machine', 'create', '--name', n, '--label', `n=${n}`, '--', 'sleep', 'infinity']);
  const r = sm(dir, ['machine', 'ls', '--json']);
  assert.match(r.stdout, /^\[\n {2}\{\n {4}"cmd": \[/);
  const arr = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.equal(arr.length, 4);
  for (const m of arr) {
    assert.deepEqual(Object.keys(m), LS_KEYS, 'keys in alphabetical order, none missing or extra');
    assert.equal(typeof m.name, 'string');
    assert.equal(m.state, 'created');
    assert.equal(typeof m.cpus, 'number');
    assert.equal(m.cpus, 4, 'default cpus');
    assert.equal(m.memory_mib, 8192, 'default mem');
    assert.equal(m.pid, null);
    assert.equal(typeof m.mounts, 'number');
    assert.equal(typeof m.ports, 'number');
    assert.equal(typeof m.created_at, 'number');
    assert.equal(m.storage_gb, null);
    assert.equal(m.overlay_gb, null);
    assert.equal(m.image, null);
    assert.deepEqual(m.cmd, ['sleep', 'infinity']);
    assert.deepEqual(m.entrypoint, []);
    assert.equal(m.ephemeral, false);
    assert.equal(m.network, false);
    assert.equal(m.restart_policy, 'never');
    assert.deepEqual(m.labels, { n: m.name });
  }
  const text = sm(dir, ['machine', 'ls']).stdout.split('\n');
  assert.match(text[0] ?? '', /^NAME {17}STATE {9}CPUS {5}MEMORY/);
  assert.equal(text[1], '-'.repeat(88));
});

test('status: text and --json forms, and their different not-found texts (§2.5, §4)', () => {
  const dir = fresh();
  const nf = sm(dir, ['machine', 'status', '--name', 'nope']);
  assert.equal(nf.code, 1);
  assert.equal(nf.stderr, 'Error: vm not found: nope\n');
  const nfj = sm(dir, ['machine', 'status', '--name', 'nope', '--json']);
  assert.equal(nfj.code, 1);
  assert.equal(nfj.stderr, "Error: config operation failed: machine status: machine 'nope' not found\n");
  assert.equal(sm(dir, ['machine', 'status']).stdout, "Machine 'default': not running\n");
  sm(dir, ['machine', 'create', '--name', 'a']);
  assert.equal(sm(dir, ['machine', 'status', '--name', 'a']).stdout, "Machine 'a': created\n");
  const j = JSON.parse(sm(dir, ['machine', 'status', '--name', 'a', '--json']).stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(j), LS_KEYS);
  sm(dir, ['machine', 'start', '--name', 'a']);
  assert.match(sm(dir, ['machine', 'status', '--name', 'a']).stdout, /^Machine 'a': running \(PID: \d+\)\n$/);
  sm(dir, ['machine', 'stop', '--name', 'a']);
  const st = sm(dir, ['machine', 'status', '--name', 'a']);
  assert.equal(st.code, 0, 'status exit code does not reflect the state');
  assert.equal(st.stdout, "Machine 'a': stopped\n");
});

test('start/stop: outputs, idempotent exit 0, not found (§2.2, §2.3)', () => {
  const dir = fresh();
  const nf = sm(dir, ['machine', 'start', '--name', 'ghost']);
  assert.equal(nf.code, 1);
  assert.equal(nf.stderr, 'Error: vm not found: ghost\n');
  assert.equal(sm(dir, ['machine', 'stop', '--name', 'ghost']).stderr, 'Error: vm not found: ghost\n');
  sm(dir, ['machine', 'create', '--name', 'a']);
  assert.equal(sm(dir, ['machine', 'stop', '--name', 'a']).stdout, "Machine 'a' is not running (state: created)\n");
  const s1 = sm(dir, ['machine', 'start', '--name', 'a']);
  assert.equal(s1.code, 0);
  assert.equal(s1.stderr, "Starting machine 'a'...\n");
  const pid = /^Machine 'a' running \(PID: (\d+)\)\n$/.exec(s1.stdout)?.[1];
  assert.ok(pid, s1.stdout);
  const m = byName(dir, 'a');
  assert.equal(m.state, 'running');
  assert.equal(m.pid, Number(pid));
  const s2 = sm(dir, ['machine', 'start', '--name', 'a']);
  assert.equal(s2.code, 0);
  assert.equal(s2.stdout, `Machine 'a' already running (PID: ${pid})\n`);
  const t1 = sm(dir, ['machine', 'stop', '--name', 'a']);
  assert.equal(t1.code, 0);
  assert.equal(t1.stdout, "Stopping machine 'a'...\nStopped machine: a\n");
  assert.equal(byName(dir, 'a').pid, null, 'pid cleared on a clean stop');
  const t2 = sm(dir, ['machine', 'stop', '--name', 'a']);
  assert.equal(t2.code, 0);
  assert.equal(t2.stdout, "Machine 'a' is not running (state: stopped)\n");
});

test('exec: no auto-start, exact not-running text, guest exit code passes through (§2.7)', () => {
  const dir = fresh();
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'ghost', '--', 'true']).stderr, 'Error: vm not found: ghost\n');
  sm(dir, ['machine', 'create', '--name', 'a', '-e', 'FOO=bar']);
  const nr = sm(dir, ['machine', 'exec', '--name', 'a', '--', 'true']);
  assert.equal(nr.code, 1);
  assert.equal(nr.stderr, "Error: agent operation failed: connect: machine 'a' is not running. Use 'smolvm machine start --name a' first.\n");
  assert.equal(byName(dir, 'a').state, 'created', 'exec did not start it');
  sm(dir, ['machine', 'start', '--name', 'a']);
  const r = sm(dir, ['machine', 'exec', '--name', 'a', '--', 'sh', '-c', 'echo out $FOO; echo err >&2; exit 7']);
  // `>&2` is not supported by the fake shell: it says so, in the guest (exit 2)
  assert.equal(r.code, 2);
  const ok = sm(dir, ['machine', 'exec', '--name', 'a', '-e', 'X=1', '--', 'sh', '-c', 'echo out $FOO $X; ls /nope 2>/dev/null; exit 7']);
  assert.equal(ok.code, 7);
  assert.equal(ok.stdout, 'out bar 1\n');
  assert.equal(ok.stderr, '');
  const f = sm(dir, ['machine', 'exec', '--name', 'a', '--', 'false']);
  assert.equal(f.code, 1);
  assert.equal(f.stderr, '');
  const missing = sm(dir, ['machine', 'exec', '--name', 'a', '--', 'cat', '/nope']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "cat: can't open '/nope': No such file or directory\n");
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'test', '-d', '/tmp']).code, 0);
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'test', '-f', '/tmp']).code, 1);
});

test('delete without -f: running machine is stopped, prompt on stderr, EOF → Cancelled exit 0 (§2.4)', () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a']);
  sm(dir, ['machine', 'start', '--name', 'a']);
  const r = sm(dir, ['machine', 'delete', '--name', 'a'], { input: '' });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "Stopping machine 'a'...\nCancelled\n");
  assert.equal(r.stderr, "Delete machine 'a'? [y/N] ");
  assert.equal(byName(dir, 'a').state, 'stopped', 'not deleted, but already stopped');
  const no = sm(dir, ['machine', 'delete', '--name', 'a'], { input: 'n\n' });
  assert.equal(no.stdout, 'Cancelled\n');
  const yes = sm(dir, ['machine', 'delete', '--name', 'a'], { input: 'y\n' });
  assert.equal(yes.code, 0);
  assert.match(yes.stdout, /Deleted machine: a\n$/);
  assert.equal(lsJson(dir).length, 0);
});

test('delete -f: stops a running machine, removes data dir then row; unknown is vm not found', () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a']);
  sm(dir, ['machine', 'start', '--name', 'a']);
  const dd = sm(dir, ['machine', 'data-dir', '--name', 'a']).stdout.trim();
  assert.ok(fs.existsSync(dd));
  const r = sm(dir, ['machine', 'delete', '--name', 'a', '-f']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "Stopping machine 'a'...\nCleaning up data directory for vm: a\nDeleted machine: a\n");
  assert.equal(fs.existsSync(dd), false);
  assert.equal(lsJson(dir).length, 0);
  const nf = sm(dir, ['machine', 'delete', '--name', 'a', '-f']);
  assert.equal(nf.code, 1);
  assert.equal(nf.stderr, 'Error: vm not found: a\n');
});

test('cp host→guest then exec cat round-trips; --mode; guest→host; needs running; no parent dirs made', () => {
  const dir = fresh();
  const src = path.join(dir, 'prompt.txt');
  fs.writeFileSync(src, 'You help.\n');
  sm(dir, ['machine', 'create', '--name', 'a']);
  const nr = sm(dir, ['machine', 'cp', src, 'a:/tmp/p.txt']);
  assert.equal(nr.code, 1);
  assert.match(nr.stderr, /is not running/);
  sm(dir, ['machine', 'start', '--name', 'a']);
  assert.equal(sm(dir, ['machine', 'cp', src, 'a:/home/node/p.txt']).code, 1, 'parent missing');
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'mkdir', '-p', '/home/node']).code, 0);
  const cp = sm(dir, ['machine', 'cp', '--mode', '0600', src, 'a:/home/node/p.txt']);
  assert.equal(cp.code, 0, cp.stderr);
  const cat = sm(dir, ['machine', 'exec', '--name', 'a', '--', 'cat', '/home/node/p.txt']);
  assert.equal(cat.code, 0);
  assert.equal(cat.stdout, 'You help.\n');
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'stat', '-c', '%a', '/home/node/p.txt']).stdout, '600\n');
  const back = path.join(dir, 'back.txt');
  assert.equal(sm(dir, ['machine', 'cp', 'a:/home/node/p.txt', back]).code, 0);
  assert.equal(fs.readFileSync(back, 'utf8'), 'You help.\n');
  assert.equal(sm(dir, ['machine', 'cp', src, back]).code, 1, 'neither side is a machine');
  assert.equal(sm(dir, ['machine', 'cp', src, 'ghost:/tmp/x']).stderr, 'Error: vm not found: ghost\n');
  // files survive stop/start (persistent disk)
  sm(dir, ['machine', 'stop', '--name', 'a']);
  sm(dir, ['machine', 'start', '--name', 'a']);
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'cat', '/home/node/p.txt']).stdout, 'You help.\n');
});

test('secret-env: only the reference is stored; the value is read from the environment at start', () => {
  const dir = fresh();
  const secret = 'ghp_SuperSecretValue123';
  const c = sm(dir, ['machine', 'create', '--name', 'a', '--secret-env', 'GH_TOKEN=GH_PAT'], { env: { GH_PAT: secret } });
  assert.equal(c.code, 0);
  for (const f of fs.readdirSync(path.join(dir, 'fake-db'))) {
    assert.ok(!fs.readFileSync(path.join(dir, 'fake-db', f), 'utf8').includes(secret), 'no value in the DB');
  }
  const missing = sm(dir, ['machine', 'start', '--name', 'a']);
  assert.equal(missing.code, 1, 'fail closed when the host variable is unset');
  assert.match(missing.stderr, /GH_PAT/);
  assert.ok(!missing.stderr.includes(secret));
  assert.equal(sm(dir, ['machine', 'start', '--name', 'a'], { env: { GH_PAT: secret } }).code, 0);
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'printenv', 'GH_TOKEN']).stdout, `${secret}\n`);
  const calls = readCalls(dir);
  const create = calls.find((x) => x.argv[1] === 'create');
  assert.deepEqual(create?.secretEnv, { GH_PAT: secret });
  const starts = calls.filter((x) => x.argv[1] === 'start');
  assert.deepEqual(starts.map((s) => s.secretEnv.GH_PAT), [null, secret]);
  for (const x of calls) assert.ok(!x.argv.join(' ').includes(secret));
});

test('calls.jsonl: one line per invocation with argv, exit code and time', () => {
  const dir = fresh();
  sm(dir, ['--version']);
  sm(dir, ['machine', 'start', '--name', 'x']);
  const calls = readCalls(dir);
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[0]?.argv, ['--version']);
  assert.equal(calls[0]?.exitCode, 0);
  assert.deepEqual(calls[1]?.argv, ['machine', 'start', '--name', 'x']);
  assert.equal(calls[1]?.exitCode, 1);
  assert.ok(!Number.isNaN(Date.parse(calls[1]?.ts ?? '')));
});

test('knob failNext: the next N calls of a subcommand fail with the given text, then normal', () => {
  const dir = fresh();
  const lock = 'Error: database operation failed: create machine: database is locked';
  failNext(dir, { subcommand: 'create', times: 2, exitCode: 1, stderr: lock });
  for (let i = 0; i < 2; i++) {
    const r = sm(dir, ['machine', 'create', '--name', 'a']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `${lock}\n`);
  }
  assert.equal(sm(dir, ['machine', 'create', '--name', 'a']).code, 0);
  failNext(dir, { subcommand: 'start', name: 'b', exitCode: 1, stderr: 'Error: x' });
  assert.equal(sm(dir, ['machine', 'start', '--name', 'a']).code, 0, 'name filter');
});

test('knob delayMs slows a subcommand down', () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a']);
  updateKnobs(dir, (k) => {
    k.delayMs = { ls: 400 };
  });
  const t0 = Date.now();
  sm(dir, ['machine', 'ls', '--json']);
  assert.ok(Date.now() - t0 >= 400);
});

test('crash knob: ls shows stopped with a stale pid; start again gives a new pid (§3, §10)', () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a']);
  sm(dir, ['machine', 'start', '--name', 'a']);
  const pid = byName(dir, 'a').pid;
  crashMachine(dir, 'a');
  const m = byName(dir, 'a');
  assert.equal(m.state, 'stopped');
  assert.equal(m.pid, pid, 'stored pid is still there');
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'true']).code, 1, 'exec: not running');
  assert.equal(sm(dir, ['machine', 'stop', '--name', 'a']).stdout, "Machine 'a' is not running (state: stopped)\n");
  const s = sm(dir, ['machine', 'start', '--name', 'a']);
  assert.equal(s.code, 0);
  assert.match(s.stdout, /^Machine 'a' running \(PID: \d+\)\n$/);
  assert.equal(byName(dir, 'a').state, 'running');
  assert.notEqual(byName(dir, 'a').pid, pid);
});

test('host reboot: every running machine reads stopped with its old pid', () => {
  const dir = fresh();
  for (const n of ['a', 'b', 'c']) sm(dir, ['machine', 'create', '--name', n]);
  sm(dir, ['machine', 'start', '--name', 'a']);
  sm(dir, ['machine', 'start', '--name', 'b']);
  hostReboot(dir);
  const ms = lsJson(dir);
  for (const n of ['a', 'b']) {
    const m = ms.find((x) => x.name === n);
    assert.equal(m?.state, 'stopped');
    assert.equal(typeof m?.pid, 'number');
  }
  assert.equal(ms.find((x) => x.name === 'c')?.state, 'created');
});

test('hang knob: ls shows unreachable; exec persists it; start heals it; stop kills the zombie', () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a']);
  sm(dir, ['machine', 'start', '--name', 'a']);
  hangMachine(dir, 'a');
  assert.equal(byName(dir, 'a').state, 'unreachable');
  const e = sm(dir, ['machine', 'exec', '--name', 'a', '--', 'true']);
  assert.equal(e.code, 1);
  assert.equal(e.stderr, "Error: agent operation failed: connect: machine 'a' is not running. Use 'smolvm machine start --name a' first.\n");
  // persisted: stays unreachable even when the agent recovers
  updateKnobs(dir, (k) => {
    delete k.machines;
  });
  assert.equal(byName(dir, 'a').state, 'unreachable');
  const pid = byName(dir, 'a').pid;
  const s = sm(dir, ['machine', 'start', '--name', 'a']);
  assert.equal(s.code, 0);
  assert.match(s.stdout, new RegExp(`^Machine 'a' is unreachable \\(PID ${pid} alive but agent unresponsive\\); cleaning up\\.\nMachine 'a' running \\(PID: \\d+\\)\n$`));
  assert.equal(byName(dir, 'a').state, 'running');
  hangMachine(dir, 'a');
  const st = sm(dir, ['machine', 'stop', '--name', 'a']);
  assert.equal(st.code, 0);
  assert.match(st.stdout, /Stopped machine: a\n$/);
  assert.equal(byName(dir, 'a').state, 'stopped');
});

test('two concurrent starts of one machine: the loser fails on the VM lock (§2.2)', async () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a']);
  writeKnobs(dir, { delayMs: { start: 1200 } });
  const [x, y] = await Promise.all([smAsync(dir, ['machine', 'start', '--name', 'a']), smAsync(dir, ['machine', 'start', '--name', 'a'])]);
  const codes = [x.code, y.code].sort();
  assert.deepEqual(codes, [0, 1]);
  const loser = x.code === 1 ? x : y;
  assert.equal(
    loser.stderr.trim().split('\n').pop(),
    'Error: agent operation failed: start machine: agent operation failed: start agent: another process is already starting or running this VM',
  );
  assert.equal(byName(dir, 'a').state, 'running');
  const again = sm(dir, ['machine', 'start', '--name', 'a']);
  assert.match(again.stdout, /already running/);
});

test('DB lock: a writer that waits longer than the busy timeout fails with database is locked', async () => {
  const dir = fresh();
  writeKnobs(dir, { dbHoldMs: { create: 1500 }, dbBusyTimeoutMs: 150 });
  const [x, y] = await Promise.all([
    smAsync(dir, ['machine', 'create', '--name', 'a']),
    new Promise<Run>((r) => setTimeout(() => r(smAsync(dir, ['machine', 'create', '--name', 'b'])), 300)),
  ]);
  // whichever got the lock first wins; the other waited 150 ms and failed
  const [winner, loser] = x.code === 0 ? [x, y] : [y, x];
  assert.equal(winner.code, 0);
  assert.equal(loser.code, 1);
  assert.equal(loser.stderr, 'Error: database operation failed: create machine: database is locked\n');
  writeKnobs(dir, {});
  assert.equal(lsJson(dir).length, 1);
});

test('init runs once, on the first successful start; a failing init fails start (§2.2, §6)', () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a', '--init', 'echo x >> /root/init.log']);
  sm(dir, ['machine', 'start', '--name', 'a']);
  sm(dir, ['machine', 'stop', '--name', 'a']);
  sm(dir, ['machine', 'start', '--name', 'a']);
  assert.equal(sm(dir, ['machine', 'exec', '--name', 'a', '--', 'cat', '/root/init.log']).stdout, 'x\n');
  sm(dir, ['machine', 'create', '--name', 'b', '--init', 'exit 3']);
  const r = sm(dir, ['machine', 'start', '--name', 'b']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error: agent operation failed: init: init\[0\] failed \(exit 3\)\n$/);
  assert.notEqual(byName(dir, 'b').state, 'running');
});

test('start refuses a host port used by another running machine (§2.2)', () => {
  const dir = fresh();
  sm(dir, ['machine', 'create', '--name', 'a', '-p', '8080:80']);
  sm(dir, ['machine', 'create', '--name', 'b', '-p', '8080:80']);
  assert.equal(sm(dir, ['machine', 'start', '--name', 'a']).code, 0);
  const r = sm(dir, ['machine', 'start', '--name', 'b']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "Error: config operation failed: start machine: host port 8080 is already in use by running machine 'a'\n");
});
