// spec.lifetime: at its expiry a bottle is stopped and kept (onExpiry: stop) or removed like an
// undeclared one (onExpiry: remove); later passes leave it so; status says Expired. Watch mode
// acts at the moment (its resync is an hour away here); --once acts when it runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN, Daemon, World, bottleYaml, docker, eventually } from '../helpers/harness.js';

const body = (lifetime = '') => `sidecars:\n  - name: proxy\n    image: bottled/busybox:local\nagent:\n  image: bottled/busybox:local\n${lifetime}`;
const at = (msFromNow: number) => new Date(Date.now() + msFromNow).toISOString();

describe('expiry', () => {
  const w = new World('expiry');
  before(async () => void (await w.setup()));
  after(async () => w.cleanup());

  const state = async (name: string) => {
    try {
      const i = await docker.getContainer(name).inspect();
      return { running: i.State.Running, restart: i.HostConfig.RestartPolicy?.Name };
    } catch {
      return undefined;
    }
  };
  const ready = async (name: string) => {
    const r = await w.run(['status', name, '--json']);
    if (r.code !== 0) return undefined;
    const s = JSON.parse(r.stdout) as { conditions: { type: string; status: string; reason: string; message: string }[]; expiresAt?: string };
    return { ...s.conditions.find((c) => c.type === 'Ready')!, expiresAt: s.expiresAt };
  };

  test('watch mode stops a bottle at its expiresAt, keeps it stopped, and says Expired', async () => {
    await w.write('a.yaml', bottleYaml('alpha', body()));
    assert.equal((await w.reconcile()).code, 0);
    const expires = at(6_000);
    await w.write('a.yaml', bottleYaml('alpha', body(`lifetime: {expiresAt: "${expires}", onExpiry: stop}\n`)));
    const plan = await w.run(['plan']);
    assert.match(plan.stdout, /expires in \d+s \(.*then stop\)/);
    const d = await new Daemon(w, ['--resync', '1h']).start();
    try {
      await eventually(async () => (await ready('alpha'))?.reason === 'Expired', 'alpha Expired');
      const agent = await state(w.name_('alpha'));
      const proxy = await state(w.name_('alpha', 'proxy'));
      assert.deepEqual(agent, { running: false, restart: 'no' }, 'stopped, kept, and Docker will not start it again');
      assert.deepEqual(proxy, { running: false, restart: 'no' });
      assert.ok(Date.now() >= Date.parse(expires), 'not before its time');
      assert.ok(d.logs.some((l) => l.msg === 'expiry due'), 'the timer, not a resync, did it');
      const r = await ready('alpha');
      assert.equal(r!.status, 'False');
      assert.match(r!.message, /expired at .*: stopped, its containers kept/);
      assert.equal(r!.expiresAt, new Date(expires).toISOString());
      // Started by hand: the pass its event brings stops it again.
      await docker.getContainer(w.name_('alpha')).start();
      await eventually(async () => (await state(w.name_('alpha')))?.running === false, 'agent stopped again').catch((e) => {
        console.log(d.logs.slice(-40).map((l) => JSON.stringify(l)).join('\n'));
        throw e;
      });
      assert.match((await w.run(['status'])).stdout, /alpha\s+False\s+Expired/);
      // Its restart policy turned back on by hand (an engine restart would then start it): off again.
      await docker.getContainer(w.name_('alpha')).update({ RestartPolicy: { Name: 'always' } });
      await eventually(async () => (await state(w.name_('alpha')))?.restart === 'no', 'restart policy off again');
    } finally {
      await d.stop();
    }
    // Moving the time ahead brings it back, with Docker's restart policy on again.
    await w.write('a.yaml', bottleYaml('alpha', body(`lifetime: {expiresAt: "${at(3_600_000)}", onExpiry: stop}\n`)));
    assert.equal((await w.reconcile()).code, 0);
    assert.deepEqual(await state(w.name_('alpha')), { running: true, restart: 'always' });
    assert.equal((await ready('alpha'))!.status, 'True');
  });

  test('--once after the time removes an onExpiry: remove bottle and never creates it again; a new bottle past its expiry is never created', async () => {
    await w.write('b.yaml', bottleYaml('beta', body()));
    assert.equal((await w.reconcile()).code, 0);
    assert.ok(await state(w.name_('beta')));
    await w.write('b.yaml', bottleYaml('beta', body(`lifetime: {expiresAt: "${at(-1_000)}", onExpiry: remove}\n`)));
    await w.write('c.yaml', bottleYaml('gamma', body(`lifetime: {expiresAt: "${at(-60_000)}"}\n`)));
    const plan = await w.run(['plan']);
    assert.match(plan.stdout, /bottle beta .*expired at .*onExpiry remove/);
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    const names = (await w.containers()).map((c) => c.Names[0]!.slice(1));
    assert.ok(!names.some((n) => n.startsWith(w.name_('beta'))), `beta removed: ${names}`);
    assert.ok(!names.some((n) => n.startsWith(w.name_('gamma'))), 'gamma never created');
    assert.ok(!(await w.networks()).some((n) => n.Name.startsWith(w.name_('beta')) || n.Name.startsWith(w.name_('gamma'))));
    assert.equal((await ready('beta'))!.reason, 'Expired');
    assert.match((await ready('gamma'))!.message, /before it was created: not created/);
    // The passes after it: nothing is created, nothing counts as a removal.
    const again = await w.reconcile(['--max-deletions', '0']);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(!(await w.containers()).some((c) => c.Names[0]!.includes('beta')));
    // The document goes: so does its status.
    await w.rm('b.yaml');
    assert.equal((await w.reconcile()).code, 0);
    assert.equal(await ready('beta'), undefined);
  });

  test('status --watch prints the table again when a bottle changes (with EXPIRES), and ends cleanly on SIGTERM', async () => {
    const p = spawn(process.execPath, [BIN, 'status', '--watch', ...w.flags()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    try {
      await eventually(async () => out.includes('NAME'), 'first table');
      const tables = () => out.split(/^--- /m).length - 1;
      const before = tables();
      await w.write('d.yaml', bottleYaml('delta', body(`lifetime: {ttl: 2h}\n`)));
      assert.equal((await w.reconcile()).code, 0);
      await eventually(async () => tables() > before && /delta\s+True\s+Succeeded\s+\S+\s+\S+\s+in 1h59m|delta\s+True\s+Succeeded\s+\S+\s+\S+\s+in 2h/.test(out), `a table with delta: ${out.slice(-600)}`);
      const quiet = tables();
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(tables(), quiet, 'nothing changed: nothing printed (a pipe gets changes only)');
    } finally {
      p.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });
});
