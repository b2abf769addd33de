import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Daemon, World, bottleYaml, dockerExec, eventually } from '../helpers/harness.js';
import { Lab } from '../helpers/lab-engine.js';

/**
 * Engine restarts, on an engine of the test's own (test/helpers/lab-engine.ts): invariant 9, a
 * test never stops or restarts an engine it did not start (on a laptop that is the user's
 * Docker with everything on it). Runs after the parallel suites (scripts/test.sh) only because
 * restarts are slow, not because it could disturb them.
 */

function cpuTicks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
}

const sidecarBottle = (name: string, content: string) =>
  bottleYaml(name, `sidecars:
  - name: side
    image: bottled/sidecar:local
    aliases: [egress]
    env: {WATCH_FILE: /app/conf}
    files:
      - path: /app/conf
        content: "${content}"
        onChange: {signal: SIGHUP}
agent:
  image: bottled/busybox:local`);

describe('on a lab engine', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.start(1, { images: ['bottled/busybox:local', 'bottled/sidecar:local'] });
  });
  after(async () => {
    await lab?.stop();
  });

  test('the daemon survives an engine restart: logs the outage once, idles while down, converges after', async () => {
    const node = lab.nodes[0]!;
    const w = await new World('restart').setup();
    let d: Daemon | undefined;
    try {
      await w.write('r.yaml', sidecarBottle('r', 'v1'));
      d = await new Daemon(w, ['--resync', '1h', '--docker-host', node.host]).start();
      const running = (name: string) => async () => (await node.docker.getContainer(name).inspect()).State.Running;
      await eventually(running(w.name_('r')), 'converged');

      await lab.stopEngine(node);
      await d.waitLog((l) => l.msg === 'lost the Docker event stream: reconnecting with backoff');
      const before = cpuTicks(d.pid);
      await new Promise((r) => setTimeout(r, 5000));
      const used = cpuTicks(d.pid) - before;
      assert.ok(used < 100, `daemon used ${used / 100} s of CPU during a 5 s outage`);

      await lab.startEngine(node);
      await d.waitLog((l) => l.msg === 'Docker event stream is back: resyncing', 120_000);
      // Remove the sidecar while nobody looks: only the daemon can bring it back.
      await eventually(running(w.name_('r')), 'agent running after the restart', 120_000);
      await node.docker.getContainer(w.name_('r', 'side')).remove({ force: true });
      await eventually(running(w.name_('r', 'side')), 'sidecar healed after the restart', 120_000);
      const outages = d.logs.filter((l) => l.msg === 'lost the Docker event stream: reconnecting with backoff').length;
      assert.equal(outages, 1, 'the outage is logged once');
      assert.equal((await d.stop()).code, 0);
    } finally {
      await d?.stop('SIGKILL');
      await w.cleanup();
    }
  });

  test('F5: a sidecar signalled for a file change is still restarted by Docker after a crash and after an engine restart, with no bottled running', async () => {
    const node = lab.nodes[0]!;
    const w = await new World('signal-restart').setup();
    try {
      const reconcile = () => w.reconcile(['--docker-host', node.host]);
      await w.write('s.yaml', sidecarBottle('s', 'v1'));
      assert.equal((await reconcile()).code, 0);
      await w.write('s.yaml', sidecarBottle('s', 'v2'));
      const r = await reconcile();
      assert.equal(r.code, 0, r.stderr);
      const side = w.name_('s', 'side');
      assert.match((await dockerExec(side, ['cat', '/tmp/signals.log'], node.docker)).out, /SIGHUP v2/, 'the signal arrived');

      // The sidecar crashes on its own (its main process gets TERM from inside): Docker restarts it.
      await dockerExec(side, ['kill', '1'], node.docker);
      const restarted = await eventually(async () => {
        const i = await node.docker.getContainer(side).inspect();
        return i.State.Running && i.RestartCount >= 1 ? i : undefined;
      }, 'restarted by Docker after the crash');
      assert.equal(restarted.HostConfig.RestartPolicy?.Name, 'always');

      // And after the engine restarts, with no reconciler running.
      await lab.restartEngine(node);
      await eventually(async () => (await node.docker.getContainer(side).inspect()).State.Running, 'running again after the engine restart', 60_000);
    } finally {
      await w.cleanup();
    }
  });
});
