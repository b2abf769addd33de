import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BIN, World, docker, passLog } from '../helpers/harness.js';
import { FAKE_SMOLVM, crashMachine, hangMachine, makeDataDir, readCalls } from '../fake-smolvm/knobs.js';

/**
 * The smolvm backend against the fake smolvm (it follows smolvm-cli.md: flags, JSON, exit
 * codes) and the real Docker Engine for the sidecars.
 */

const SECRET = `vm-secret-${Date.now()}`;

function spec(name: string, o: { env?: string; cpus?: number; image?: string; ip?: string; prompt?: string; subnet?: string } = {}): string {
  return `apiVersion: bottled.dev/v1
kind: Bottle
metadata: {name: ${name}}
spec:
  backend: smolvm
${o.subnet ? `  network: {subnet: ${o.subnet}}\n` : ''}  sidecars:
    - name: bundle
      image: bottled/sidecar:local
      aliases: [egress, pipelock, git-gate, supervise]
      env: {LISTEN_PORTS: "8888 9099"}
      ports: [8888, 9099]
${o.ip ? `      ip: ${o.ip}\n` : ''}  agent:
    image: ${o.image ?? 'alpine:3.20'}
    env:
      HTTPS_PROXY: "http://\${sidecar.bundle.host}:\${sidecar.bundle.port.8888}"
      MODE: "${o.env ?? 'a'}"
    secretEnv: {GH_TOKEN: BOTTLED_TEST_VM_TOKEN}
    resources: {cpus: ${o.cpus ?? 2}, memoryMiB: 1024}
    files:
      - path: /home/node/.bottle-prompt.txt
        content: "${o.prompt ?? 'hello'}"
        onChange: {exec: ["touch", "/tmp/reloaded"]}
`;
}

describe('smolvm backend (fake smolvm)', () => {
  const w = new World('smolvm');
  let data = '';
  const env = () => ({ SMOLVM_DATA_DIR: data, BOTTLED_TEST_VM_TOKEN: SECRET });
  const run = (extra: string[] = []) => w.reconcile(['--smolvm', FAKE_SMOLVM, ...extra], env());
  const smolvm = (...args: string[]) => execFileSync(FAKE_SMOLVM, args, { env: { ...process.env, SMOLVM_DATA_DIR: data } }).toString();
  const machines = () => JSON.parse(smolvm('machine', 'ls', '--json')) as { name: string; state: string; labels?: Record<string, string> }[];
  const subcommands = (from: number) => readCalls(data).slice(from).map((c) => c.argv.slice(0, 2).join(' ')).filter((c) => c !== 'machine ls' && !c.startsWith('--version'));

  before(async () => {
    await w.setup();
    data = makeDataDir();
  });
  after(async () => {
    await w.cleanup({ networks: ['t-smolvm-foreign'] });
    await fs.rm(data, { recursive: true, force: true });
  });

  test('converges: derived subnet, pinned sidecar with published ports, machine with the prescribed flags, files in', async () => {
    await w.write('vm.yaml', spec('vm'));
    const r = await run();
    assert.equal(r.code, 0, r.stderr);
    const net = await docker.getNetwork(w.name_('vm', 'net')).inspect();
    const subnet = net.IPAM?.Config?.[0]?.Subnet ?? '';
    assert.match(subnet, /^192\.168\.(\d+)\.0\/24$/);
    assert.notEqual(subnet, '192.168.17.0/24');
    assert.equal(net.Internal, false);
    const side = await docker.getContainer(w.name_('vm', 'bundle')).inspect();
    const ip = side.NetworkSettings.Networks[w.name_('vm', 'net')]!.IPAddress;
    assert.equal(ip, subnet.replace('0/24', '2'));
    const hostPort = side.NetworkSettings.Ports['8888/tcp']?.[0]?.HostPort;
    assert.ok(hostPort && side.NetworkSettings.Ports['8888/tcp']?.[0]?.HostIp === '127.0.0.1');

    const create = readCalls(data).find((c) => c.argv[1] === 'create')!;
    const argv = create.argv;
    const flag = (f: string) => argv.flatMap((a, i) => (a === f ? [argv[i + 1]] : []));
    assert.deepEqual(flag('--name'), [w.name_('vm')]);
    assert.deepEqual(flag('--image'), ['alpine:3.20']);
    assert.ok(argv.includes('--net'));
    assert.deepEqual(flag('--allow-cidr').sort(), [`${ip}/32`, '127.0.0.1/32'].sort());
    assert.ok(flag('-e').includes(`HTTPS_PROXY=http://127.0.0.1:${hostPort}`), argv.join(' '));
    assert.deepEqual(flag('--secret-env'), ['GH_TOKEN=BOTTLED_TEST_VM_TOKEN']);
    assert.deepEqual(flag('--cpus'), ['2']);
    assert.deepEqual(flag('--mem'), ['1024']);
    const labels = Object.fromEntries(flag('--label').map((l) => l!.split(/=(.*)/s).slice(0, 2)));
    assert.equal(labels['bottled.managed-by'], 'bottled');
    assert.equal(labels['bottled.instance'], w.instance);
    assert.equal(labels['bottled.role'], 'agent');
    assert.match(labels['bottled.spec-hash'] ?? '', /^[0-9a-f]{64}$/);
    // The secret reached smolvm's environment, not its argv.
    assert.equal(create.secretEnv.BOTTLED_TEST_VM_TOKEN, SECRET);
    assert.ok(!JSON.stringify(readCalls(data).map((c) => c.argv)).includes(SECRET));

    assert.equal(machines().find((m) => m.name === w.name_('vm'))?.state, 'running');
    assert.equal(smolvm('machine', 'exec', '--name', w.name_('vm'), '--', 'cat', '/home/node/.bottle-prompt.txt'), 'hello');

    const again = await run();
    assert.equal(again.code, 0);
    assert.equal(passLog(again)?.executed, 0, 'second pass is a no-op');

    // bottled exec drives smolvm's own exec with the documented flags (-i; -t only on a terminal).
    const before = readCalls(data).length;
    const ex = execFileSync(process.execPath, [BIN, 'exec', 'vm', '--smolvm', FAKE_SMOLVM, ...w.flags(), '--', 'cat', '/home/node/.bottle-prompt.txt'], { env: { ...process.env, ...env() }, input: '' }).toString();
    assert.equal(ex, 'hello');
    const call = readCalls(data).slice(before).find((c) => c.argv[1] === 'exec');
    assert.deepEqual(call?.argv, ['machine', 'exec', '--name', w.name_('vm'), '-i', '--', 'cat', '/home/node/.bottle-prompt.txt']);
  });

  test('a changed agent file is copied in and its exec runs, without recreating', async () => {
    const before = readCalls(data).length;
    await w.write('vm.yaml', spec('vm', { prompt: 'changed' }));
    assert.equal((await run()).code, 0);
    const cmds = subcommands(before);
    assert.ok(!cmds.includes('machine delete') && !cmds.includes('machine create'), cmds.join(', '));
    assert.equal(smolvm('machine', 'exec', '--name', w.name_('vm'), '--', 'cat', '/home/node/.bottle-prompt.txt'), 'changed');
    execFileSync(FAKE_SMOLVM, ['machine', 'exec', '--name', w.name_('vm'), '--', 'test', '-f', '/tmp/reloaded'], { env: { ...process.env, SMOLVM_DATA_DIR: data } });
  });

  test('env, cpus, image or a sidecar address change recreate the machine alone: stop, delete -f, create, start', async () => {
    const side = (await docker.getContainer(w.name_('vm', 'bundle')).inspect()).Id;
    for (const change of [{ env: 'b' }, { env: 'b', cpus: 4 }, { env: 'b', cpus: 4, image: 'alpine:3.21' }]) {
      const before = readCalls(data).length;
      await w.write('vm.yaml', spec('vm', { prompt: 'changed', ...change }));
      const r = await run();
      assert.equal(r.code, 0, r.stderr);
      const cmds = subcommands(before).filter((c) => c !== 'machine exec' && c !== 'machine cp');
      assert.deepEqual(cmds, ['machine stop', 'machine delete', 'machine create', 'machine start'], JSON.stringify(change));
      const del = readCalls(data).slice(before).find((c) => c.argv[1] === 'delete')!;
      assert.ok(del.argv.includes('-f'));
      assert.equal((await docker.getContainer(w.name_('vm', 'bundle')).inspect()).Id, side, 'sidecar untouched');
    }
    // A sidecar address change recreates the sidecar and, because its allow-cidr changes, the machine.
    const net = await docker.getNetwork(w.name_('vm', 'net')).inspect();
    const newIp = net.IPAM!.Config![0]!.Subnet!.replace('0/24', '7');
    const before = readCalls(data).length;
    await w.write('vm.yaml', spec('vm', { prompt: 'changed', env: 'b', cpus: 4, image: 'alpine:3.21', ip: newIp }));
    assert.equal((await run()).code, 0);
    const create = readCalls(data).slice(before).find((c) => c.argv[1] === 'create')!;
    assert.ok(create.argv.includes(`${newIp}/32`));
  });

  test('an unreachable or crashed machine is healed by the next pass', async () => {
    const name = w.name_('vm');
    for (const hurt of [hangMachine, crashMachine]) {
      hurt(data, name);
      assert.notEqual(machines().find((m) => m.name === name)?.state, 'running');
      const r = await run();
      assert.equal(r.code, 0, r.stderr);
      assert.equal(machines().find((m) => m.name === name)?.state, 'running', hurt.name);
    }
  });

  test('a look-alike machine without our labels is never touched; the bottle reports the collision', async () => {
    smolvm('machine', 'create', '--name', w.name_('twin'), '--net');
    await w.write('twin.yaml', spec('twin', { subnet: '192.168.231.0/24' }));
    const before = readCalls(data).length;
    const r = await run();
    assert.equal(r.code, 1);
    const touched = readCalls(data).slice(before).filter((c) => c.argv.includes(w.name_('twin')));
    assert.deepEqual(touched, []);
    const st = JSON.parse((await w.run(['status', 'twin', '--json'])).stdout);
    assert.equal(st.conditions.find((c: { type: string }) => c.type === 'Ready').reason, 'NameCollision');
    await w.rm('twin.yaml');
    assert.equal((await run()).code, 0);
    assert.ok(machines().some((m) => m.name === w.name_('twin')), 'foreign machine survives');
  });

  test('the subnet is stable across passes and skips one a foreign network has', async () => {
    const subnet = (await docker.getNetwork(w.name_('vm', 'net')).inspect()).IPAM!.Config![0]!.Subnet!;
    const inv = JSON.parse(await fs.readFile(path.join(w.stateDir, 'bottles', 'vm', 'inventory.json'), 'utf8'));
    assert.equal(inv.subnets[w.name_('vm', 'net')], subnet);
    // Remove the network behind bottled's back (sidecar too): it comes back on the same subnet.
    await docker.getContainer(w.name_('vm', 'bundle')).remove({ force: true });
    await docker.getNetwork(w.name_('vm', 'net')).remove();
    assert.equal((await run()).code, 0);
    assert.equal((await docker.getNetwork(w.name_('vm', 'net')).inspect()).IPAM!.Config![0]!.Subnet, subnet);

    // A second bottle whose derived subnet is taken by a foreign network gets another one.
    const probe = spec('other');
    await w.write('other.yaml', probe);
    const plan = JSON.parse((await w.run(['plan', '--json', '--smolvm', FAKE_SMOLVM], { env: env() })).stdout);
    void plan;
    const { deriveSubnet } = await import('../../controller/subnets.js');
    const natural = deriveSubnet('other', [])!;
    await docker.createNetwork({ Name: 't-smolvm-foreign', CheckDuplicate: true, IPAM: { Config: [{ Subnet: natural }] } });
    assert.equal((await run()).code, 0);
    const got = (await docker.getNetwork(w.name_('other', 'net')).inspect()).IPAM!.Config![0]!.Subnet;
    assert.notEqual(got, natural);
    assert.match(got ?? '', /^192\.168\.\d+\.0\/24$/);
  });

  test('removing the bottle deletes the machine (-f), then the sidecars, then the network; the secret is nowhere', async () => {
    await w.rm('other.yaml');
    const before = readCalls(data).length;
    const r = await run();
    assert.equal(r.code, 0, r.stderr);
    await w.rm('vm.yaml');
    const r2 = await run(['--allow-empty']);
    assert.equal(r2.code, 0, r2.stderr);
    const del = readCalls(data).slice(before).filter((c) => c.argv[1] === 'delete');
    assert.ok(del.every((c) => c.argv.includes('-f')));
    assert.ok(!machines().some((m) => m.name === w.name_('vm')));
    assert.deepEqual((await w.containers()).map((c) => c.Names[0]), []);
    assert.deepEqual((await w.networks()).map((n) => n.Name), []);
    // Order, from the event log: machine before its sidecar before its network.
    const events = (await fs.readFile(path.join(w.stateDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const removes = events.filter((e) => e.unit === 'vm' && e.action === 'remove').map((e) => e.resource);
    assert.deepEqual(removes, [`machine ${w.name_('vm')}`, `container ${w.name_('vm', 'bundle')}`, `network ${w.name_('vm', 'net')}`]);
    const everything = [r.stdout, r.stderr, r2.stdout, r2.stderr, await fs.readFile(path.join(w.stateDir, 'events.jsonl'), 'utf8')].join('\n');
    assert.ok(!everything.includes(SECRET));
  });
});

test('watch mode heals a crashed machine through the smolvm poll (no events, no resync)', async () => {
  const { Daemon, eventually } = await import('../helpers/harness.js');
  const w = await new World('vmpoll').setup();
  const data = makeDataDir();
  const env = { SMOLVM_DATA_DIR: data, BOTTLED_TEST_VM_TOKEN: SECRET };
  const state = () => (JSON.parse(execFileSync(FAKE_SMOLVM, ['machine', 'ls', '--json'], { env: { ...process.env, ...env } }).toString()) as { name: string; state: string }[]).find((m) => m.name === w.name_('pv'))?.state;
  const d = new Daemon(w, ['--smolvm', FAKE_SMOLVM, '--resync', '1h', '--smolvm-poll', '1s'], env);
  try {
    await w.write('pv.yaml', spec('pv', { subnet: '192.168.232.0/24' }));
    await d.start();
    await eventually(async () => state() === 'running', 'machine running');
    crashMachine(data, w.name_('pv'));
    assert.notEqual(state(), 'running');
    await eventually(async () => state() === 'running', 'machine healed by the poll');
    assert.ok(!d.logs.some((l) => l.msg === 'resync'));
  } finally {
    await d.stop('SIGKILL');
    await w.cleanup();
    await fs.rm(data, { recursive: true, force: true });
  }
});

test('an expired smolvm bottle: the machine is stopped with `machine stop --name`, kept, and started again when the time moves', async () => {
  const w = await new World('vmexpiry').setup();
  const data = makeDataDir();
  const env = { SMOLVM_DATA_DIR: data, BOTTLED_TEST_VM_TOKEN: SECRET };
  const run = () => w.reconcile(['--smolvm', FAKE_SMOLVM], env);
  const state = () => (JSON.parse(execFileSync(FAKE_SMOLVM, ['machine', 'ls', '--json'], { env: { ...process.env, ...env } }).toString()) as { name: string; state: string }[]).find((m) => m.name === w.name_('ex'))?.state;
  const withLifetime = (at: string) => spec('ex', { subnet: '192.168.233.0/24' }) + `  lifetime: {expiresAt: "${at}", onExpiry: stop}\n`;
  try {
    await w.write('ex.yaml', spec('ex', { subnet: '192.168.233.0/24' }));
    assert.equal((await run()).code, 0);
    assert.equal(state(), 'running');
    const from = readCalls(data).length;
    await w.write('ex.yaml', withLifetime(new Date(Date.now() - 1000).toISOString()));
    const r = await run();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(state(), 'stopped', 'kept, not deleted');
    const calls = readCalls(data).slice(from).map((c) => c.argv.join(' ')).filter((c) => !c.startsWith('machine ls') && !c.startsWith('--version'));
    assert.deepEqual(calls, [`machine stop --name ${w.name_('ex')}`]);
    assert.equal((await w.reconcile(['--smolvm', FAKE_SMOLVM], env)).code, 0);
    assert.equal(state(), 'stopped', 'a later pass does not start it');
    const st = JSON.parse((await w.run(['status', 'ex', '--json'])).stdout) as { conditions: { type: string; reason: string }[] };
    assert.equal(st.conditions.find((c) => c.type === 'Ready')!.reason, 'Expired');
    await w.write('ex.yaml', withLifetime(new Date(Date.now() + 3_600_000).toISOString()));
    assert.equal((await run()).code, 0);
    assert.equal(state(), 'running');
  } finally {
    await w.cleanup();
    await fs.rm(data, { recursive: true, force: true });
  }
});
