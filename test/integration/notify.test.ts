// --notify: one POST when a bottle breaks and one when it recovers, none for the retries in
// between nor from a restarted reconciler (transitions come from the persisted status), no
// secret in any body; a Slack-style body with --notify-format slack.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { World, bottleYaml, docker } from '../helpers/harness.js';

const SECRET = 'notify-secret-7f3e2a9c';

describe('notifications', () => {
  const w = new World('notify');
  const bodies: string[] = [];
  let server: http.Server;
  let url = '';
  const image = `${w.prefix}-side:1`;
  const run = (extra: string[] = []) => w.reconcile(['--notify', url, ...extra], { BOTTLED_TEST_NOTIFY_SECRET: SECRET });

  before(async () => {
    await w.setup();
    server = http.createServer((req, res) => {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => {
        bodies.push(b);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    // The sidecar's image is a tag of the test's own: removing it breaks only this bottle.
    await docker.getImage('bottled/busybox:local').tag({ repo: `${w.prefix}-side`, tag: '1' });
    await w.write('a.yaml', bottleYaml('alpha', `sidecars:\n  - name: proxy\n    image: ${image}\nagent:\n  image: bottled/busybox:local\n  secretEnv: {TOKEN: BOTTLED_TEST_NOTIFY_SECRET}\n`));
  });
  after(async () => {
    server.close();
    await w.cleanup();
    await docker.getImage(image).remove().catch(() => {});
  });

  const events = () => bodies.map((b) => JSON.parse(b) as { event: string; bottle: string; reason: string });

  test('a bottle that comes up Ready says nothing; one that breaks says so once, with its reason', async () => {
    assert.equal((await run()).code, 0);
    assert.deepEqual(bodies, []);
    await docker.getContainer(w.name_('alpha', 'proxy')).remove({ force: true });
    await docker.getImage(image).remove();
    const r = await run();
    assert.equal(r.code, 1, 'the sidecar cannot be created');
    assert.deepEqual(events().map((e) => [e.event, e.bottle, e.reason]), [['not-ready', 'alpha', 'ImageMissing']], JSON.stringify(bodies));
    // Still broken, another reconciler process (a cron run, a restarted daemon): nothing new.
    await run();
    assert.equal(bodies.length, 1, JSON.stringify(bodies));
  });

  test('it recovers: one message; no body ever holds the secret', async () => {
    await docker.getImage('bottled/busybox:local').tag({ repo: `${w.prefix}-side`, tag: '1' });
    assert.equal((await run()).code, 0);
    assert.deepEqual(events().map((e) => e.event), ['not-ready', 'recovered']);
    assert.equal((await run()).code, 0);
    assert.equal(bodies.length, 2);
    for (const b of bodies) assert.ok(!b.includes(SECRET));
  });

  test('--notify-format slack sends {"text": …}', async () => {
    await docker.getContainer(w.name_('alpha', 'proxy')).remove({ force: true });
    await docker.getImage(image).remove();
    await run(['--notify-format', 'slack']);
    const last = JSON.parse(bodies.at(-1)!) as { text: string };
    assert.deepEqual(Object.keys(last), ['text']);
    assert.match(last.text, /bottle alpha is not Ready: ImageMissing/);
    await docker.getImage('bottled/busybox:local').tag({ repo: `${w.prefix}-side`, tag: '1' });
    assert.equal((await run()).code, 0);
  });

  test('a held pass is said once for all it holds: an invalid file, then the deletion guard; and once when it ends', async () => {
    bodies.length = 0;
    await w.write('broken.yaml', 'apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: broken}\nspec:\n  agent: {image: 7}\n');
    assert.equal((await run()).code, 2);
    await run();
    const held = events().filter((e) => e.event === 'held');
    assert.deepEqual(held.map((e) => e.reason), ['InvalidSpec'], JSON.stringify(bodies));
    assert.match((JSON.parse(bodies[0]!) as { message: string }).message, /broken\.yaml:5:\d+: /);
    assert.deepEqual((JSON.parse(bodies[0]!) as { bottles: string[] }).bottles, ['broken'], 'a bottle that never ran is held by its file too');
    assert.equal((await w.run(['status', 'broken'])).code, 0);
    await w.rm('broken.yaml');
    await run();
    assert.equal((await w.run(['status', 'broken'])).code, 1, 'its status goes with the file');
    assert.deepEqual(events().map((e) => e.event), ['held', 'released']);
    // Removing the bottle's file past --max-deletions: one message for the guard, none for alpha itself.
    bodies.length = 0;
    await w.write('keep.yaml', bottleYaml('kept', 'suspend: true\nagent: {image: bottled/busybox:local}\n')); // the source is not empty
    await w.rm('a.yaml');
    assert.equal((await run(['--max-deletions', '0'])).code, 1);
    await run(['--max-deletions', '0']);
    const guard = events() as { event: string; reason: string; bottle?: string; bottles?: string[] }[];
    assert.deepEqual(guard.map((e) => [e.event, e.reason, e.bottles]), [['held', 'DeletionGuard', ['alpha']]], JSON.stringify(bodies));
    await w.write('a.yaml', bottleYaml('alpha', `sidecars:\n  - name: proxy\n    image: ${image}\nagent:\n  image: bottled/busybox:local\n  secretEnv: {TOKEN: BOTTLED_TEST_NOTIFY_SECRET}\n`));
    assert.equal((await run()).code, 0);
    assert.deepEqual(events().map((e) => [e.event, e.reason]), [['held', 'DeletionGuard'], ['released', 'DeletionGuard']], JSON.stringify(bodies));
    // The status says what was last said about the bottle.
    const st = JSON.parse((await w.run(['status', 'alpha', '--json'])).stdout) as { lastNotification?: { event: string } };
    assert.equal(st.lastNotification?.event, 'recovered');
  });

  test('a URL with a password is refused before anything is done, and the password is not printed', async () => {
    const r = await w.reconcile(['--notify', 'http://user:hunter2pass@127.0.0.1:9/x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /a URL with a user or password is refused/);
    assert.ok(!r.stderr.includes('hunter2pass') && !r.stdout.includes('hunter2pass'));
  });
});
