import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Daemon, World, bottleYaml, docker, dockerExec, eventually, runningId as running } from '../helpers/harness.js';

const bottle = (name: string, routes = 'r1', image = 'bottled/sidecar:local') =>
  bottleYaml(
    name,
    `sidecars:
  - name: bundle
    image: ${image}
    aliases: [egress]
    egress: true
    env: {WATCH_FILE: /app/routes.yaml}
    files:
      - path: /app/routes.yaml
        source: ./${name}.routes
        onChange: {signal: SIGHUP}
agent:
  image: bottled/busybox:local
  env: {ROUTES: "${routes}"}
`,
  );

async function status(w: World, name: string): Promise<Record<string, any> | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(w.stateDir, 'status', `${name}.json`), 'utf8'));
  } catch {
    return undefined;
  }
}

const cond = (st: Record<string, any> | undefined, type: string) => st?.conditions?.find((c: { type: string }) => c.type === type);

describe('watch mode', () => {
  const w = new World('watch');
  let d: Daemon;
  before(async () => {
    await w.setup();
    // --resync 1h: every heal below must come from the event path, never from the timer.
    d = await new Daemon(w, ['--resync', '1h']).start();
  });
  after(async () => {
    await d.stop('SIGKILL');
    await w.cleanup();
  });

  test('dropping a file brings the bottle up; five saves in 200 ms deliver one signal', async () => {
    await w.write('a.routes', 'v1');
    await w.write('a.yaml', bottle('a'));
    const agent = await eventually(() => running(w.name_('a')), 'agent a running');
    assert.ok(agent);
    const side = w.name_('a', 'bundle');
    for (const [i, v] of ['v2', 'v3', 'v2', 'v4', 'v5'].entries()) {
      await w.write('a.routes', v);
      if (i < 4) await new Promise((r) => setTimeout(r, 40));
    }
    await eventually(async () => (await dockerExec(side, ['cat', '/tmp/signals.log'])).out.includes('v5'), 'signal with v5');
    // A second, distinct content later: one more signal.
    await w.write('a.routes', 'v6');
    await eventually(async () => (await dockerExec(side, ['cat', '/tmp/signals.log'])).out.includes('v6'), 'signal with v6');
    const lines = (await dockerExec(side, ['cat', '/tmp/signals.log'])).out.trim().split('\n');
    assert.deepEqual(lines, ['SIGHUP v5', 'SIGHUP v6']);
  });

  test('drift heals through Docker events: rm -f sidecar, stop agent, disconnect, network rm', async () => {
    const side = w.name_('a', 'bundle');
    const agent = w.name_('a');
    const oldSide = await running(side);
    await docker.getContainer(side).remove({ force: true });
    const newSide = await eventually(() => running(side), 'sidecar recreated');
    assert.notEqual(newSide, oldSide);

    await docker.getContainer(agent).stop({ t: 1 });
    await eventually(() => running(agent), 'agent started again');

    const net = w.name_('a', 'net');
    await docker.getNetwork(net).disconnect({ Container: agent, Force: true });
    await eventually(async () => Object.keys((await docker.getContainer(agent).inspect()).NetworkSettings.Networks).includes(net), 'agent reconnected');

    const egress = w.name_('a', 'egress');
    await docker.getNetwork(egress).disconnect({ Container: side, Force: true });
    await docker.getNetwork(egress).remove().catch(() => {}); // may race with the heal of the disconnect
    await eventually(async () => Object.keys((await docker.getContainer(side).inspect()).NetworkSettings.Networks).includes(egress), 'egress network back and connected');

    assert.ok(!d.logs.some((l) => l.msg === 'resync'), 'the resync timer never fired');
    assert.ok(d.logs.some((l) => l.msg === 'drift'), 'heals were triggered by events');
  });

  test('a broken edit stalls the bottle, which keeps running; fixing the file applies it', async () => {
    const id = await running(w.name_('a'));
    await w.write('a.yaml', bottle('a').replace('  agent:\n', '  agent:\n    bogusKey: 1\n'));
    const st = await eventually(async () => {
      const s = await status(w, 'a');
      return cond(s, 'Stalled')?.reason === 'InvalidSpec' ? s : undefined;
    }, 'status Stalled/InvalidSpec');
    assert.match(cond(st, 'Stalled').message, /a\.yaml:\d+:\d+: .*bogusKey/);
    assert.equal(await running(w.name_('a')), id, 'still running, untouched');
    const stalledAt = st!.updatedAt;
    // Other work goes on; the stalled bottle gets no pass.
    await w.write('b.routes', 'x');
    await w.write('b.yaml', bottle('b'));
    await eventually(() => running(w.name_('b')), 'bottle b up');
    assert.equal((await status(w, 'a'))!.updatedAt, stalledAt, 'no retry of the stalled bottle');
    await w.write('a.yaml', bottle('a', 'r2'));
    await eventually(async () => (await docker.getContainer(w.name_('a')).inspect()).Config.Env.includes('ROUTES=r2'), 'fixed spec applied');
    await eventually(async () => cond(await status(w, 'a'), 'Ready')?.status === 'True', 'a Ready');
  });

  test('a failing bottle backs off (status shows the next retry) while others converge', async () => {
    await w.write('bad.routes', 'x');
    await w.write('bad.yaml', bottle('bad', 'r1', 'bottled/does-not-exist:1'));
    const st = await eventually(async () => {
      const s = await status(w, 'bad');
      return s?.nextRetryAt ? s : undefined;
    }, 'bad has a next retry');
    assert.equal(cond(st, 'Ready').reason, 'ImageMissing');
    // Meanwhile another bottle reacts to changes normally.
    await w.write('b.yaml', bottle('b', 'r9'));
    await eventually(async () => (await docker.getContainer(w.name_('b')).inspect()).Config.Env.includes('ROUTES=r9'), 'b updated while bad backs off');
    // And a second failure pushes the retry further out.
    const first = Date.parse(st!.nextRetryAt);
    const later = await eventually(async () => {
      const s = await status(w, 'bad');
      return s && Date.parse(s.nextRetryAt) > first ? s : undefined;
    }, 'backoff grows');
    assert.ok(Date.parse(later.nextRetryAt) - Date.parse(later.updatedAt) >= 1500, 'second wait is longer');
    await w.rm('bad.yaml');
  });

  test('deleting a file removes the bottle', async () => {
    await w.rm('b.yaml');
    await eventually(async () => !(await running(w.name_('b'))) && !(await w.containers()).some((c) => c.Names[0] === `/${w.name_('b')}-bundle`), 'b removed');
    assert.ok(await running(w.name_('a')), 'a untouched');
  });
});

describe('watch mode shutdown', () => {
  test('SIGTERM with a pass in flight: exit 0, lock released, bottles running', async () => {
    const w = await new World('sigterm').setup();
    try {
      await w.write('ok.yaml', bottleYaml('ok', 'agent:\n  image: bottled/busybox:local'));
      // A sidecar that never becomes healthy keeps the agent's pass waiting.
      await w.write('slow.yaml', bottleYaml('slow', `sidecars:
  - name: never
    image: bottled/sidecar:local
    healthcheck: {test: ["CMD", "false"], interval: 1s, retries: 1000}
agent:
  image: bottled/busybox:local`));
      const d = await new Daemon(w, ['--resync', '1h', '--wait-timeout', '10m']).start();
      await eventually(() => running(w.name_('ok')), 'ok running');
      await eventually(() => running(w.name_('slow', 'never')), 'slow sidecar running (agent waits)');
      const res = await d.stop('SIGTERM');
      assert.equal(res.code, 0);
      assert.ok(d.logs.some((l) => l.msg === 'stopped'));
      assert.ok(await running(w.name_('ok')), 'bottles keep running');
      assert.ok(await running(w.name_('slow', 'never')));
      const r = await w.run(['status']);
      assert.equal(r.code, 0);
      // The lock is free: a --once run gets it at once.
      const once = await w.reconcile(['--lock-timeout', '0s', '--retries', '0', '--wait-timeout', '1s']);
      assert.notEqual(once.code, 3, once.stderr);
    } finally {
      await w.cleanup();
    }
  });

  test('an idle daemon makes no Docker calls between resyncs', async () => {
    const w = await new World('idle').setup();
    const { DockerSocketProxy } = await import('../helpers/socket-proxy.js');
    const proxy = await new DockerSocketProxy().start();
    try {
      for (const n of ['i1', 'i2']) await w.write(`${n}.yaml`, bottleYaml(n, 'agent:\n  image: bottled/busybox:local'));
      const d = await new Daemon(w, ['--resync', '1h', '--docker-host', proxy.host]).start();
      await eventually(async () => (await running(w.name_('i1'))) && (await running(w.name_('i2'))), 'converged');
      // Let the events of our own creations settle into their one follow-up pass.
      await eventually(async () => {
        const n = proxy.requests.length;
        await new Promise((r) => setTimeout(r, 1500));
        return proxy.requests.length === n;
      }, 'quiet');
      const before = proxy.requests.length;
      await new Promise((r) => setTimeout(r, 3000));
      assert.deepEqual(proxy.requests.slice(before), [], 'no Engine API call while idle');
      assert.equal((await d.stop()).code, 0);
    } finally {
      await proxy.stop();
      await w.cleanup();
    }
  });
});

