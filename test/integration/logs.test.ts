// `bottled logs`: two containers' lines with `name |` prefixes in time order; -f follows across
// a recreate of one of them and stops cleanly on SIGTERM.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN, World, bottleYaml, docker, eventually } from '../helpers/harness.js';

const doc = (v: string) =>
  bottleYaml('alpha', `sidecars:\n  - name: proxy\n    image: bottled/busybox:local\n    command: [sh, -c, 'echo proxy ${v}; echo proxy-err ${v} >&2; trap "exit 0" TERM; while :; do sleep 1; done']\nagent:\n  image: bottled/busybox:local\n  command: [sh, -c, 'sleep 1; echo agent says hi; trap "exit 0" TERM; while :; do sleep 1; done']\n`);

describe('bottled logs', () => {
  const w = new World('logs');
  before(async () => {
    await w.setup();
    await w.write('a.yaml', doc('v1'));
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => w.cleanup());

  test('the containers interleaved in time order, each line with its name', async () => {
    let out = '';
    await eventually(async () => {
      const r = await w.run(['logs', 'alpha']);
      out = r.stdout;
      return r.code === 0 && out.includes('agent says hi');
    }, 'both containers have logged');
    const lines = out.trim().split('\n');
    assert.ok(lines.includes('proxy | proxy v1'), out);
    assert.ok(lines.includes('proxy | proxy-err v1'), out);
    assert.ok(lines.includes('agent | agent says hi'), out);
    assert.ok(lines.indexOf('proxy | proxy v1') < lines.indexOf('agent | agent says hi'), 'the proxy spoke first (the agent sleeps 1 s)');
    const one = await w.run(['logs', 'alpha', '--container', 'agent', '--json']);
    const parsed = one.stdout.trim().split('\n').map((l) => JSON.parse(l) as { container: string; stream: string; text: string; time: string });
    assert.deepEqual(parsed.map((p) => [p.container, p.stream, p.text]), [['agent', 'stdout', 'agent says hi']]);
    assert.match(parsed[0]!.time, /^\d{4}-\d\d-\d\dT/);
  });

  test('-f keeps following across a recreate of a container, and stops on SIGTERM', async () => {
    const p = spawn(process.execPath, [BIN, 'logs', 'alpha', '-f', ...w.flags()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    try {
      await eventually(async () => out.includes('proxy | proxy v1'), 'the first container followed');
      await w.write('a.yaml', doc('v2'));
      const r = await w.reconcile();
      assert.equal(r.code, 0, r.stderr);
      await eventually(async () => out.includes('proxy | proxy v2'), 'the recreated container followed');
      assert.equal(out.split('\n').filter((l) => l === 'proxy | proxy v1').length, 1, 'nothing printed twice');
    } finally {
      p.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((resolve) => p.on('close', (c) => resolve(c)));
    assert.equal(code, 0);
  });

  test('-f loses no line of stdout and stderr written in turn; a container that took a name of the bottle is not shown, even with its labels copied', async () => {
    await w.write('b.yaml', bottleYaml('beta', `agent:\n  image: bottled/busybox:local\n  command: [sh, -c, 'i=0; while [ $i -lt 200 ]; do echo o$i; echo e$i >&2; i=$((i+1)); done; trap "exit 0" TERM; while :; do sleep 1; done']\n`));
    assert.equal((await w.reconcile()).code, 0);
    const p = spawn(process.execPath, [BIN, 'logs', 'beta', '-f', '--json', ...w.flags()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    try {
      await eventually(async () => out.includes('"o199"') && out.includes('"e199"'), 'the last lines');
    } finally {
      p.kill('SIGTERM');
    }
    await new Promise((resolve) => p.on('close', resolve));
    const texts = out.trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
    assert.equal(new Set(texts).size, 400, `all 400 lines, once each (got ${texts.length})`);
    // The agent removed by hand, a stranger's container under its name, with its labels copied:
    // the ID the inventory recorded is not its ID.
    const labels = (await docker.getContainer(w.name_('beta')).inspect()).Config.Labels;
    await docker.getContainer(w.name_('beta')).remove({ force: true });
    const stranger = await docker.createContainer({ name: w.name_('beta'), Image: 'bottled/busybox:local', Labels: labels, Cmd: ['sh', '-c', 'echo IMPOSTOR; sleep 60'] });
    await stranger.start();
    try {
      const r = await w.run(['logs', 'beta']);
      assert.doesNotMatch(r.stdout, /IMPOSTOR/);
      assert.match(r.stderr, /is not the one bottled made/);
      assert.equal(r.code, 1);
    } finally {
      await stranger.remove({ force: true });
      await w.rm('b.yaml');
      assert.equal((await w.reconcile()).code, 0);
    }
  });
});
