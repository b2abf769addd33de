// SmolvmDriver against the fake smolvm (test/fake-smolvm). Fresh $SMOLVM_DATA_DIR per test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  SmolvmDriver,
  SmolvmError,
  buildCreateArgs,
  classifyFailure,
  isSmolvmOwnFailure,
  parseMachine,
  parseMachineList,
  type CreateMachineOptions,
  type SmolvmErrorKind,
} from '../../resources/smolvm/driver.js';
import {
  FAKE_SMOLVM,
  crashMachine,
  failNext,
  hangMachine,
  hostReboot,
  makeDataDir,
  readCalls,
  writeKnobs,
} from '../fake-smolvm/knobs.js';

const LOCKED = 'Error: database operation failed: create machine: database is locked';

function setup(opts: { sleeps?: number[]; env?: Record<string, string> } = {}) {
  const dir = makeDataDir('smolvm-driver-test-');
  const sleeps = opts.sleeps ?? [];
  const driver = new SmolvmDriver({
    bin: FAKE_SMOLVM,
    env: { ...process.env, SMOLVM_DATA_DIR: dir, ...opts.env },
    timeoutMs: 20_000,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
  return { dir, driver, sleeps };
}

function base(name: string, extra: Partial<CreateMachineOptions> = {}): CreateMachineOptions {
  return { name, net: false, allowCidrs: [], env: {}, secretEnv: {}, labels: {}, ...extra };
}

async function rejectsKind(p: Promise<unknown>, kind: SmolvmErrorKind): Promise<SmolvmError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SmolvmError, `expected SmolvmError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    return e;
  }
  assert.fail(`expected a SmolvmError of kind ${kind}`);
}

// ---------------------------------------------------------------------------------------

test('version: runs --version once and caches it; assertSupported accepts 1.9.3', async () => {
  const { driver, dir } = setup();
  assert.equal(await driver.version(), '1.9.3');
  assert.equal(await driver.version(), '1.9.3');
  assert.equal(await driver.assertSupported(), '1.9.3');
  assert.equal(driver.callCount, 1);
  assert.equal(readCalls(dir).filter((c) => c.argv[0] === '--version').length, 1);
});

test('version: below 1.8 is refused (unsupported) and create never runs', async () => {
  const { driver, dir } = setup();
  writeKnobs(dir, { version: '1.7.0' });
  const e = await rejectsKind(driver.assertSupported(), 'unsupported');
  assert.match(e.message, /1\.7\.0.*>= 1\.8\.0.*--label/s);
  await rejectsKind(driver.create(base('a', { labels: { k: 'v' } })), 'unsupported');
  assert.equal(readCalls(dir).filter((c) => c.argv[1] === 'create').length, 0);
});

test('missing binary: kind missing-binary, message names --smolvm PATH', async () => {
  const dir = makeDataDir();
  const d = new SmolvmDriver({ bin: path.join(dir, 'no-such-smolvm'), env: { ...process.env, SMOLVM_DATA_DIR: dir } });
  const e = await rejectsKind(d.list(), 'missing-binary');
  assert.match(e.message, /--smolvm PATH/);
  const d2 = new SmolvmDriver({ bin: 'smolvm-definitely-not-on-path', env: { PATH: '/nonexistent' } });
  const e2 = await rejectsKind(d2.version(), 'missing-binary');
  assert.match(e2.message, /not found on PATH.*--smolvm PATH/);
});

test('create: exact flags; secret value only in the environment, never in argv', async () => {
  const secret = 'ghp_VerySecretToken_42';
  const { driver, dir } = setup();
  const opts: CreateMachineOptions = {
    name: 'bottle-impl',
    image: 'ghcr.io/acme/agent:1',
    net: true,
    allowCidrs: ['192.168.211.2/32', '127.0.0.1/32'],
    env: { HTTPS_PROXY: 'http://127.0.0.1:1234', NO_PROXY: 'localhost' },
    secretEnv: { GH_TOKEN: 'GH_PAT' },
    secretValues: { GH_PAT: secret },
    cpus: 2,
    memMiB: 2048,
    labels: { 'bottled.managed-by': 'bottled', 'bottled.instance': 'default', 'bottled.spec-hash': 'abc=def' },
    command: ['sleep', 'infinity'],
  };
  await driver.create(opts);
  const create = readCalls(dir).find((c) => c.argv[1] === 'create');
  assert.ok(create);
  assert.deepEqual(create.argv, [
    'machine', 'create', '--name', 'bottle-impl', '--image', 'ghcr.io/acme/agent:1', '--net',
    '--allow-cidr', '192.168.211.2/32', '--allow-cidr', '127.0.0.1/32',
    '-e', 'HTTPS_PROXY=http://127.0.0.1:1234', '-e', 'NO_PROXY=localhost',
    '--secret-env', 'GH_TOKEN=GH_PAT', '--cpus', '2', '--mem', '2048',
    '--label', 'bottled.instance=default', '--label', 'bottled.managed-by=bottled', '--label', 'bottled.spec-hash=abc=def',
    '--', 'sleep', 'infinity',
  ]);
  assert.deepEqual(create.secretEnv, { GH_PAT: secret }, 'the fake saw the value in its environment');
  for (const c of readCalls(dir)) assert.ok(!JSON.stringify(c.argv).includes(secret));

  const [m] = await driver.list();
  assert.ok(m);
  assert.equal(m.name, 'bottle-impl');
  assert.equal(m.state, 'created');
  assert.equal(m.ready, false);
  assert.deepEqual(m.labels, opts.labels);
  assert.equal(m.cpus, 2);
  assert.equal(m.memMiB, 2048);
  assert.equal(m.image, 'ghcr.io/acme/agent:1');
  assert.equal(m.network, true);
  assert.deepEqual(m.cmd, ['sleep', 'infinity']);
  assert.equal(m.hasLabels, true);

  // The secret reaches the guest at start, from the start call's environment.
  await rejectsKind(driver.start('bottle-impl'), 'failed');
  await driver.start('bottle-impl', { secretValues: { GH_PAT: secret } });
  const r = await driver.exec('bottle-impl', ['printenv', 'GH_TOKEN']);
  assert.deepEqual(r, { exitCode: 0, stdout: `${secret}\n`, stderr: '' });
  const env = await driver.exec('bottle-impl', ['printenv', 'HTTPS_PROXY']);
  assert.equal(env.stdout, 'http://127.0.0.1:1234\n');
});

test('create: --from, and client-side refusals that never spawn smolvm', async () => {
  const { driver, dir } = setup();
  const art = path.join(dir, 'agent.smolmachine');
  fs.writeFileSync(art, 'pack');
  await driver.create(base('a', { from: art, net: true }));
  assert.deepEqual(readCalls(dir).find((c) => c.argv[1] === 'create')?.argv, ['machine', 'create', '--name', 'a', '--from', art, '--net']);
  const before = driver.callCount;
  await rejectsKind(driver.create(base('b', { from: art, image: 'alpine' })), 'usage');
  await rejectsKind(driver.create(base('b', { env: { 'A=B': 'x' } })), 'usage');
  // a secret value that would leak into argv (here through a plain env value)
  await rejectsKind(driver.create(base('b', { env: { X: 'token-123456' }, secretValues: { T: 'token-123456' } })), 'usage');
  assert.equal(driver.callCount, before);
  assert.deepEqual(buildCreateArgs(base('c', { memMiB: 64 })), ['machine', 'create', '--name', 'c', '--mem', '64']);
});

test('list: sorted by name, labels parsed; unknown states are not ready; unknown fields ignored', async () => {
  const { driver } = setup();
  for (const n of ['zeta', 'alpha', 'mid', 'beta']) await driver.create(base(n, { labels: { n } }));
  const ms = await driver.list();
  assert.deepEqual(ms.map((m) => m.name), ['alpha', 'beta', 'mid', 'zeta']);
  assert.deepEqual(ms.map((m) => m.labels.n), ['alpha', 'beta', 'mid', 'zeta']);
  assert.ok(ms.every((m) => m.pid === undefined && !m.stalePid));

  const odd = parseMachine({ name: 'x', state: 'hibernating', pid: 7, labels: { a: 'b', bad: 1 }, future_field: { deep: true } });
  assert.ok(odd);
  assert.equal(odd.state, 'unknown');
  assert.equal(odd.rawState, 'hibernating');
  assert.equal(odd.ready, false);
  assert.deepEqual(odd.labels, { a: 'b' });
  const old = parseMachine({ name: 'y', state: 'running', pid: 9 });
  assert.equal(old?.hasLabels, false);
  assert.deepEqual(old?.labels, {});
  assert.deepEqual(parseMachineList('[{"name":"b","state":"frozen"},{"nope":1},{"name":"a","state":"failed"}]').map((m) => [m.name, m.state]), [
    ['a', 'failed'],
    ['b', 'frozen'],
  ]);
  assert.throws(() => parseMachineList('not json'), (e: unknown) => e instanceof SmolvmError && e.kind === 'failed');
});

test('start/stop/delete: idempotent outcomes; delete always uses -f', async () => {
  const { driver, dir } = setup();
  await driver.create(base('a'));
  assert.deepEqual(await driver.stop('a'), { wasRunning: false, state: 'created' });
  const s1 = await driver.start('a');
  assert.equal(s1.alreadyRunning, false);
  assert.equal(typeof s1.pid, 'number');
  const s2 = await driver.start('a');
  assert.equal(s2.alreadyRunning, true);
  assert.equal(s2.pid, s1.pid);
  const [m] = await driver.list();
  assert.equal(m?.state, 'running');
  assert.equal(m?.ready, true);
  assert.equal(m?.pid, s1.pid);
  assert.deepEqual(await driver.stop('a'), { wasRunning: true });
  assert.deepEqual(await driver.stop('a'), { wasRunning: false, state: 'stopped' });
  await driver.start('a');
  assert.deepEqual(await driver.delete('a'), { deleted: true }, 'running machine deleted (smolvm stops it first)');
  assert.deepEqual(await driver.list(), []);
  assert.deepEqual(await driver.delete('a'), { deleted: false }, 'already gone');
  await rejectsKind(driver.delete('a', { missingOk: false }), 'not-found');
  const deletes = readCalls(dir).filter((c) => c.argv[1] === 'delete');
  assert.ok(deletes.every((c) => c.argv.includes('-f')));
});

test('error mapping: not-found, already-exists, not-running, usage, failed', async () => {
  const { driver } = setup();
  await rejectsKind(driver.start('ghost'), 'not-found');
  await rejectsKind(driver.stop('ghost'), 'not-found');
  await rejectsKind(driver.exec('ghost', ['true']), 'not-found');
  await rejectsKind(driver.cp('ghost', '/etc/hostname', '/tmp/x'), 'not-found');
  assert.equal(await driver.status('ghost'), null);
  await driver.create(base('a'));
  const dup = await rejectsKind(driver.create(base('a')), 'already-exists');
  assert.equal(dup.exitCode, 1);
  assert.match(dup.stderr, /already exists or is being created/);
  await rejectsKind(driver.exec('a', ['true']), 'not-running');
  await rejectsKind(driver.cp('a', '/etc/hostname', '/tmp/x'), 'not-running');
  // a name the CLI reads as a flag: clap usage error, exit 2
  const u = await rejectsKind(driver.start('-weird'), 'usage');
  assert.equal(u.exitCode, 2);
  await rejectsKind(driver.exec('-weird', ['true']), 'usage');
  // a registry image with no network is a domain error smolvm rejects
  const f = await rejectsKind(driver.create(base('b', { image: 'alpine' })), 'failed');
  assert.match(f.message, /must be pulled from a registry/);
});

test('error mapping: unreachable (exec/cp on a hung agent), and list shows it', async () => {
  const { driver, dir } = setup();
  await driver.create(base('a'));
  await driver.start('a');
  hangMachine(dir, 'a');
  const [m] = await driver.list();
  assert.equal(m?.state, 'unreachable');
  assert.equal(m?.ready, false);
  assert.equal(m?.stalePid, false);
  const e = await rejectsKind(driver.exec('a', ['true']), 'unreachable');
  assert.match(e.message, /stop and start/);
  await rejectsKind(driver.cp('a', '/etc/hostname', '/tmp/x'), 'unreachable');
  // healing: stop (kills the zombie) then start, as the reference advises
  assert.deepEqual(await driver.stop('a'), { wasRunning: true });
  const s = await driver.start('a');
  assert.equal(s.alreadyRunning, false);
  assert.equal((await driver.exec('a', ['true'])).exitCode, 0);
  // start alone also heals (smolvm kills the zombie and starts afresh)
  hangMachine(dir, 'a');
  const s2 = await driver.start('a');
  assert.equal(s2.recoveredUnreachable, true);
  assert.equal((await driver.list())[0]?.state, 'running');
});

test('crash: list shows stopped with a stale pid; start brings it back with a new pid', async () => {
  const { driver, dir } = setup();
  await driver.create(base('a'));
  await driver.create(base('b'));
  const { pid } = await driver.start('a');
  await driver.start('b');
  crashMachine(dir, 'a');
  let [a, b] = await driver.list();
  assert.equal(a?.state, 'stopped');
  assert.equal(a?.pid, pid);
  assert.equal(a?.stalePid, true);
  assert.equal(a?.ready, false);
  assert.equal(b?.state, 'running');
  await rejectsKind(driver.exec('a', ['true']), 'not-running');
  const s = await driver.start('a');
  assert.equal(s.alreadyRunning, false);
  assert.notEqual(s.pid, pid);
  hostReboot(dir);
  [a, b] = await driver.list();
  assert.ok(a?.stalePid && b?.stalePid);
  assert.deepEqual([a?.state, b?.state], ['stopped', 'stopped']);
});

test('DB lock: retried with backoff, then succeeds', async () => {
  const { driver, dir, sleeps } = setup();
  failNext(dir, { subcommand: 'create', times: 2, exitCode: 1, stderr: LOCKED });
  await driver.create(base('a'));
  assert.deepEqual(sleeps, [250, 500]);
  assert.equal(readCalls(dir).filter((c) => c.argv[1] === 'create').length, 3);
  assert.equal((await driver.list()).length, 1);
  // the older text (#178) is recognized too
  failNext(dir, { subcommand: 'ls', exitCode: 1, stderr: 'Error: database not available: Database already open. Cannot acquire lock.' });
  assert.equal((await driver.list()).length, 1);
});

test('DB lock: bounded; gives up with kind db-locked', async () => {
  const { driver, dir, sleeps } = setup();
  failNext(dir, { subcommand: 'ls', times: 10, exitCode: 1, stderr: LOCKED });
  const e = await rejectsKind(driver.list(), 'db-locked');
  assert.equal(e.retryable, true);
  assert.deepEqual(sleeps, [250, 500, 1000, 2000]);
  assert.equal(readCalls(dir).filter((c) => c.argv[1] === 'ls').length, 5);
});

test('DB lock: real contention in the fake is absorbed by the retry', async () => {
  const { driver, dir } = setup();
  writeKnobs(dir, { dbHoldMs: { create: 400 }, dbBusyTimeoutMs: 50 });
  // separate drivers (as separate processes would be), with real pauses between retries
  const env = { ...process.env, SMOLVM_DATA_DIR: dir };
  const [one, two, three] = [1, 2, 3].map(() => new SmolvmDriver({ bin: FAKE_SMOLVM, env, retry: { baseMs: 300, attempts: 6 } }));
  assert.ok(one && two && three);
  await Promise.all([one.create(base('a')), two.create(base('b')), three.create(base('c'))]);
  assert.deepEqual((await driver.list()).map((m) => m.name), ['a', 'b', 'c']);
  assert.ok(readCalls(dir).some((c) => c.argv[1] === 'create' && c.exitCode === 1), 'some create hit the lock');
});

test('starts are serialized per name inside one driver', async () => {
  const { driver, dir } = setup();
  await driver.create(base('a'));
  await driver.create(base('b'));
  writeKnobs(dir, { delayMs: { start: 300 } });
  const [x, y, z] = await Promise.all([driver.start('a'), driver.start('a'), driver.start('b')]);
  assert.equal(x.alreadyRunning, false);
  assert.equal(y.alreadyRunning, true);
  assert.equal(z.alreadyRunning, false);
  const starts = readCalls(dir).filter((c) => c.argv[1] === 'start' && c.argv[3] === 'a');
  assert.equal(starts.length, 2);
  assert.ok(starts.every((c) => c.exitCode === 0), 'no start lost the VM lock');
  const [s1, s2] = starts.map((c) => ({ from: Date.parse(c.ts), to: Date.parse(c.ts) + c.durationMs })).sort((p, q) => p.from - q.from);
  assert.ok(s1 && s2 && s2.from >= s1.to - 5, 'the two starts of a did not overlap');
});

test('a start that loses the VM lock to another process is retried and ends as already running', async () => {
  const { driver, dir } = setup();
  await driver.create(base('a'));
  writeKnobs(dir, { delayMs: { start: 1000 } });
  // two drivers = two processes' worth of callers; real pauses between retries here
  const env = { ...process.env, SMOLVM_DATA_DIR: dir };
  const one = new SmolvmDriver({ bin: FAKE_SMOLVM, env, retry: { baseMs: 300 } });
  const two = new SmolvmDriver({ bin: FAKE_SMOLVM, env, retry: { baseMs: 300 } });
  const [x, y] = await Promise.all([one.start('a'), two.start('a')]);
  assert.equal([x.alreadyRunning, y.alreadyRunning].filter(Boolean).length, 1);
  assert.ok(readCalls(dir).some((c) => c.argv[1] === 'start' && c.exitCode === 1), 'one start lost the VM lock first');
});

test('exec: guest exit codes and output are returned, not thrown', async () => {
  const { driver } = setup();
  await driver.create(base('a', { env: { GREETING: 'hi' } }));
  await driver.start('a');
  const r = await driver.exec('a', ['sh', '-c', 'echo $GREETING $EXTRA; exit 7'], { env: { EXTRA: 'there' } });
  assert.deepEqual(r, { exitCode: 7, stdout: 'hi there\n', stderr: '' });
  const g = await driver.exec('a', ['sh', '-c', 'echo "Error: vm not found: lookalike" 2>/dev/null; exit 1']);
  assert.equal(g.exitCode, 1);
  const f = await driver.exec('a', ['cat', '/nope']);
  assert.equal(f.exitCode, 1);
  assert.match(f.stderr, /No such file/);
  const w = await driver.exec('a', ['pwd'], { workdir: '/tmp' });
  assert.equal(w.stdout, '/tmp\n');
});

test('cp then exec cat round-trips; mode; copyFromGuest', async () => {
  const { driver, dir } = setup();
  const src = path.join(dir, 'routes.yaml');
  fs.writeFileSync(src, 'routes: []\n');
  await driver.create(base('a'));
  await driver.start('a');
  assert.equal((await driver.exec('a', ['mkdir', '-p', '/app'])).exitCode, 0);
  await driver.cp('a', src, '/app/routes.yaml', { mode: 0o600 });
  assert.equal((await driver.exec('a', ['cat', '/app/routes.yaml'])).stdout, 'routes: []\n');
  assert.equal((await driver.exec('a', ['stat', '-c', '%a', '/app/routes.yaml'])).stdout, '600\n');
  const cpCall = readCalls(dir).find((c) => c.argv[1] === 'cp');
  assert.deepEqual(cpCall?.argv, ['machine', 'cp', '--mode', '0600', src, 'a:/app/routes.yaml']);
  const back = path.join(dir, 'back.yaml');
  await driver.copyFromGuest('a', '/app/routes.yaml', back);
  assert.equal(fs.readFileSync(back, 'utf8'), 'routes: []\n');
  await rejectsKind(driver.cp('a', src, 'relative/path'), 'usage');
  // no parent directory in the guest: smolvm's error, kind failed
  await rejectsKind(driver.cp('a', src, '/no/such/dir/x'), 'failed');
});

test('failed: other smolvm errors (e.g. no KVM at start) keep the stderr line', async () => {
  const { driver, dir } = setup();
  await driver.create(base('a'));
  writeKnobs(dir, { noKvm: true });
  const e = await rejectsKind(driver.start('a'), 'failed');
  assert.match(e.message, /kvm not available/);
  assert.equal(e.exitCode, 1);
});

test('classifyFailure / isSmolvmOwnFailure: pure mapping from exit code + stderr', () => {
  const k = (code: number, stderr: string) => classifyFailure(code, stderr)?.kind;
  assert.equal(k(2, "error: unexpected argument '--memory' found\n\nFor more information, try '--help'.\n"), 'usage');
  assert.equal(k(1, 'Error: vm not found: a\n'), 'not-found');
  assert.equal(k(1, "Error: config operation failed: machine status: machine 'a' not found\n"), 'not-found');
  assert.equal(k(1, "Error: config operation failed: create machine: machine 'a' already exists or is being created\n"), 'already-exists');
  assert.equal(k(1, "Error: config operation failed: create machine: machine 'a' already exists\n"), 'already-exists', 'v0.8 text');
  assert.equal(k(1, "Error: agent operation failed: connect: machine 'a' is not running. Use 'smolvm machine start --name a' first.\n"), 'not-running');
  assert.equal(k(1, ' WARN smolvm: something\nError: database operation failed: list: database is locked\n'), 'db-locked');
  assert.equal(k(1, 'Error: database not available: Database already open. Cannot acquire lock.\n'), 'db-locked');
  const contention = classifyFailure(1, 'Error: agent operation failed: start machine: agent operation failed: start agent: another process is already starting or running this VM\n');
  assert.deepEqual([contention?.kind, contention?.retryable], ['failed', true]);
  assert.equal(k(1, 'Error: kvm not available: no /dev/kvm\n'), 'failed');
  assert.equal(classifyFailure(1, 'some guest output\n'), null);
  assert.equal(isSmolvmOwnFailure(1, 'Error: vm not found: a\n'), true);
  assert.equal(isSmolvmOwnFailure(1, 'Error: ENOENT: no such file\n'), false, 'a guest program printing Error:');
  assert.equal(isSmolvmOwnFailure(2, 'error: something in the guest\n'), false);
  assert.equal(isSmolvmOwnFailure(7, 'Error: vm not found: a\n'), false);
});
