// Holes that only watch mode shows (F6, F7, F9, F16) and the shared-sidecar heal from events.
// Every daemon runs with --resync 1h: a heal below can only come from an event or a file watch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Daemon, World, bottleYaml, docker, dockerExec, eventually, runningId } from '../helpers/harness.js';

const agentOnly = (name: string) => bottleYaml(name, 'agent:\n  image: bottled/busybox:local');
const withSidecar = (name: string) =>
  bottleYaml(name, `sidecars:
  - name: side
    image: bottled/sidecar:local
    aliases: [egress]
agent:
  image: bottled/busybox:local`);

describe('watch mode heals from events', () => {
  const w = new World('watchholes');
  let d: Daemon;
  const extra = () => `${w.prefix}-extra`;
  before(async () => {
    await w.setup();
    await w.write('a.yaml', withSidecar('a'));
    await w.write('cache.yaml', 'apiVersion: bottled.dev/v1\nkind: SharedSidecar\nmetadata: {name: cache}\nspec:\n  image: bottled/busybox:local\n');
    await w.write('u.yaml', bottleYaml('u', 'agent:\n  image: bottled/busybox:local\nuses: [cache]'));
    d = await new Daemon(w, ['--resync', '1h']).start();
    await eventually(() => runningId(w.name_('a')), 'a up');
    await eventually(() => runningId(w.name_('u')), 'u up');
  });
  after(async () => {
    await d.stop('SIGKILL');
    await w.cleanup({ networks: [extra()] });
  });

  test('F6: a sidecar that exits on its own (Docker not restarting it) is started again from the die event', async () => {
    const side = w.name_('a', 'side');
    // Take Docker's own restart out of the picture, so only bottled can bring it back.
    await docker.getContainer(side).update({ RestartPolicy: { Name: 'no' } });
    const startedAt = (await docker.getContainer(side).inspect()).State.StartedAt;
    await dockerExec(side, ['kill', '1']);
    await eventually(async () => {
      const i = await docker.getContainer(side).inspect();
      return i.State.Running && i.State.StartedAt !== startedAt && i.RestartCount === 0;
    }, 'sidecar started again (by bottled: Docker would not)');
  });

  test('F7: a network connected to the agent by hand is disconnected from the connect event', async () => {
    await docker.createNetwork({ Name: extra(), CheckDuplicate: true } as never);
    await docker.getNetwork(extra()).connect({ Container: w.name_('a') });
    await eventually(async () => !Object.keys((await docker.getContainer(w.name_('a')).inspect()).NetworkSettings.Networks).includes(extra()), 'extra network disconnected');
  });

  test('a shared sidecar removed or stopped by hand is healed from the event', async () => {
    const name = w.name_('shared', 'cache');
    const id = await eventually(() => runningId(name), 'shared up');
    await docker.getContainer(name).remove({ force: true });
    const id2 = await eventually(async () => {
      const now = await runningId(name);
      return now && now !== id ? now : false;
    }, 'shared recreated');
    await eventually(async () => Object.keys((await docker.getContainer(name).inspect()).NetworkSettings.Networks).includes(w.name_('u', 'net')), 'rejoined its user');
    await docker.getContainer(name).stop({ t: 1 });
    await eventually(async () => (await runningId(name)) === id2, 'shared started again');
  });

  test('F16: the bottles directory replaced by a new one is still watched', async () => {
    const a = await runningId(w.name_('a'));
    // rm -rf and mkdir, as a `git clone` into a fresh directory does.
    const files = Object.fromEntries(await Promise.all(['a.yaml', 'cache.yaml', 'u.yaml'].map(async (f) => [f, await fs.readFile(path.join(w.dir, f), 'utf8')] as const)));
    await fs.rm(w.dir, { recursive: true });
    await new Promise((r) => setTimeout(r, 1000));
    await fs.mkdir(w.dir);
    await new Promise((r) => setTimeout(r, 1000));
    for (const [f, text] of Object.entries(files)) await fs.writeFile(path.join(w.dir, f), text);
    await w.write('n.yaml', agentOnly('n'));
    await eventually(() => runningId(w.name_('n')), 'a bottle added to the new directory is applied');
    assert.equal(await runningId(w.name_('a')), a, 'the others are untouched');
    await w.rm('n.yaml');
    await eventually(async () => !(await runningId(w.name_('n'))), 'and a later removal too');
  });
});

describe('deletion guard over time', () => {
  test('watch mode counts removals over a window: deleting files one at a time meets --max-deletions too', async () => {
    const w = await new World('delwindow').setup();
    let d: Daemon | undefined;
    try {
      for (const n of ['p', 'q', 'r', 'keep']) await w.write(`${n}.yaml`, agentOnly(n));
      d = await new Daemon(w, ['--resync', '1h', '--max-deletions', '2']).start();
      for (const n of ['p', 'q', 'r']) await eventually(() => runningId(w.name_(n)), `${n} up`);
      for (const n of ['p', 'q']) {
        await w.rm(`${n}.yaml`);
        await eventually(async () => !(await runningId(w.name_(n))), `${n} removed`);
      }
      await w.rm('r.yaml');
      await d.waitLog((l) => l.bottle === 'r' && l.state === 'stalled', 30_000);
      assert.ok(await runningId(w.name_('r')), 'the third removal in a row is held');
      const st = JSON.parse(await fs.readFile(path.join(w.stateDir, 'status', 'r.json'), 'utf8'));
      assert.match(JSON.stringify(st), /after 2 removed in the last 10 minutes, more than --max-deletions 2/);
    } finally {
      await d?.stop('SIGKILL');
      await w.cleanup();
    }
  });
});

describe('the lock', () => {
  test('F9: a stopped daemon keeps its lock; after SIGCONT it goes on; a lock taken away pauses it, never crashes it', async () => {
    const w = await new World('lockstop').setup();
    let d: Daemon | undefined;
    try {
      await w.write('a.yaml', agentOnly('a'));
      d = await new Daemon(w, ['--resync', '1h']).start();
      await eventually(() => runningId(w.name_('a')), 'a up');
      process.kill(d.pid, 'SIGSTOP');
      try {
        // Longer than the old 10 s staleness.
        await new Promise((r) => setTimeout(r, 13_000));
        const other = await w.reconcile(['--lock-timeout', '0s']);
        assert.equal(other.code, 3, other.stderr);
        assert.match(other.stderr, /another reconciler holds the lock .*stopped/);
      } finally {
        process.kill(d.pid, 'SIGCONT');
      }
      await w.write('b.yaml', agentOnly('b'));
      await eventually(() => runningId(w.name_('b')), 'the daemon goes on after SIGCONT');
      assert.ok(!d.logs.some((l) => /ECOMPROMISED|Unable to update lock/.test(JSON.stringify(l)) && l.level === 60), 'no crash');

      // Someone removes the lock by hand: the daemon stops passes, takes the lock back, goes on.
      await fs.rm(path.join(w.stateDir, 'lock'), { recursive: true, force: true });
      await d.waitLog((l) => l.msg === 'lost the lock on the state directory: passes stop until it is ours again', 30_000);
      await d.waitLog((l) => l.msg === 'the lock is ours again: resyncing', 30_000);
      await w.write('c.yaml', agentOnly('c'));
      await eventually(() => runningId(w.name_('c')), 'passes run again');
      assert.equal((await d.stop()).code, 0, 'a clean exit');
    } finally {
      await d?.stop('SIGKILL');
      await w.cleanup();
    }
  });
});
