import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Daemon, ROOT, World, bottleYaml, docker, eventually } from '../helpers/harness.js';

/**
 * Restarts the Docker Engine under a running daemon. It stops every container on the engine,
 * so it runs alone, after the parallel suites (scripts/test.sh).
 */

function cpuTicks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
}

function dockerdPid(): number | undefined {
  try {
    return Number(execFileSync('pgrep', ['-x', 'dockerd']).toString().trim().split('\n')[0]);
  } catch {
    return undefined;
  }
}

test('the daemon survives an engine restart: logs the outage once, idles while down, converges after', { skip: !dockerdPid() && 'no local dockerd to restart' }, async () => {
  const w = await new World('restart').setup();
  let d: Daemon | undefined;
  try {
    await w.write('r.yaml', bottleYaml('r', `sidecars:
  - name: side
    image: bottled/sidecar:local
    aliases: [egress]
agent:
  image: bottled/busybox:local`));
    d = await new Daemon(w, ['--resync', '1h']).start();
    await eventually(async () => (await docker.getContainer(w.name_('r')).inspect()).State.Running, 'converged');

    execFileSync('kill', ['-TERM', String(dockerdPid())]);
    await eventually(async () => !dockerdPid(), 'dockerd stopped', 60_000);
    await d.waitLog((l) => l.msg === 'lost the Docker event stream: reconnecting with backoff');
    const before = cpuTicks(d.pid);
    await new Promise((r) => setTimeout(r, 5000));
    const used = cpuTicks(d.pid) - before;
    assert.ok(used < 100, `daemon used ${used / 100} s of CPU during a 5 s outage`);

    execFileSync('bash', [`${ROOT}/scripts/ensure-engine.sh`], { stdio: 'ignore' });
    await d.waitLog((l) => l.msg === 'Docker event stream is back: resyncing', 120_000);
    // Remove the sidecar while nobody looks: only the daemon can bring it back.
    await eventually(async () => (await docker.getContainer(w.name_('r')).inspect()).State.Running, 'agent running after the restart', 120_000);
    await docker.getContainer(w.name_('r', 'side')).remove({ force: true });
    await eventually(async () => (await docker.getContainer(w.name_('r', 'side')).inspect()).State.Running, 'sidecar healed after the restart', 120_000);
    const outages = d.logs.filter((l) => l.msg === 'lost the Docker event stream: reconnecting with backoff').length;
    assert.equal(outages, 1, 'the outage is logged once');
    assert.equal((await d.stop()).code, 0);
  } finally {
    await d?.stop('SIGKILL');
    await w.cleanup();
  }
});
