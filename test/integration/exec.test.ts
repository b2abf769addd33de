// `bottled exec`: the command's output and exit code, in the agent or a named sidecar; stdin
// piped through; an interactive session through a real pseudo-terminal (util-linux `script`).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN, World, bottleYaml, docker } from '../helpers/harness.js';

function bottled(w: World, args: string[], cmd: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args, ...w.flags(), '--', ...cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input ?? '');
  });
}

describe('bottled exec', () => {
  const w = new World('exec');
  before(async () => {
    await w.setup();
    await w.write('a.yaml', bottleYaml('alpha', 'sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\n    files: [{path: /app/routes.yaml, content: routes-v1}]\nagent:\n  image: bottled/busybox:local\n'));
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => w.cleanup());

  test('the agent: output on stdout and stderr, and the exit code of the command', async () => {
    const r = await bottled(w, ['exec', 'alpha'], ['sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.match(r.stderr, /^err$/m);
  });

  test('a named sidecar, and an unknown one named with the ones it has', async () => {
    const r = await bottled(w, ['exec', 'alpha', '--container', 'proxy'], ['cat', '/app/routes.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'routes-v1');
    const bad = await bottled(w, ['exec', 'alpha', '--container', 'nope'], ['true']);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /bottle alpha has no sidecar nope \(it has: proxy\)/);
  });

  test('stdin is piped to the command, and its end is the command\'s EOF', async () => {
    const r = await bottled(w, ['exec', 'alpha'], ['sh', '-c', 'cat; echo done'], 'hi\nthere\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\nthere\ndone\n');
  });

  test('an interactive session through a pseudo-terminal: a prompt, a command, its exit code', async () => {
    const line = [process.execPath, BIN, 'exec', 'alpha', ...w.flags()].map((a) => `'${a}'`).join(' ');
    // `script` gives bottled a real terminal; what is typed arrives through it, as from a person.
    const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const p = spawn('script', ['-qec', line, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let typed = false;
      p.stdout.on('data', (d) => {
        out += d;
        // busybox sh asks the terminal where its cursor is right after the prompt (ESC [6n).
        if (!typed && /[#$] /.test(out)) {
          typed = true;
          p.stdin.write('echo $((6*7)); exit 5\r');
        }
      });
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, out }));
    });
    assert.match(r.out, /[#$] /, 'a shell prompt');
    assert.match(r.out, /\b42\b/, r.out);
    assert.equal(r.code, 5, r.out);
  });

  test('a bottle that is not Ready says so, in one line, before trying', async () => {
    await w.write('b.yaml', bottleYaml('beta', 'agent:\n  image: bottled/busybox:local\n  secretEnv: {TOKEN: BOTTLED_EXEC_TEST_UNSET}\n'));
    await w.reconcile();
    await w.write('b.yaml', bottleYaml('beta', 'agent:\n  image: bottled/busybox:local\n'));
    assert.equal((await w.reconcile()).code, 0);
    await w.write('b.yaml', bottleYaml('beta', 'agent:\n  image: bottled/busybox:local\n  secretEnv: {TOKEN: BOTTLED_EXEC_TEST_UNSET}\n'));
    await w.reconcile();
    const r = await bottled(w, ['exec', 'beta'], ['echo', 'still here']);
    assert.match(r.stderr, /bottled: bottle beta is not Ready \(SecretMissing: .*\); trying anyway/, r.stderr);
    assert.equal(r.stdout, 'still here\n');
    assert.equal(r.code, 0);
  });

  test('a name that is not a bottle name is refused before anything is read; a container that took the agent\'s name is never entered', async () => {
    const bad = await bottled(w, ['exec', '../../etc'], ['true']);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /is not a bottle name/);
    const badC = await bottled(w, ['exec', 'alpha', '--container', '../x'], ['true']);
    assert.equal(badC.code, 1, badC.stderr);
    // The agent removed by hand and a stranger's container started under its name.
    const agent = w.name_('alpha');
    await docker.getContainer(agent).remove({ force: true });
    const stranger = await docker.createContainer({ name: agent, Image: 'bottled/busybox:local' });
    await stranger.start();
    try {
      const r = await bottled(w, ['exec', 'alpha'], ['sh', '-c', 'echo inside']);
      assert.notEqual(r.code, 0);
      assert.ok(!r.stdout.includes('inside'), 'the command did not run in the stranger');
    } finally {
      await stranger.remove({ force: true });
      await w.rm('b.yaml'); // the bottle held for a missing secret by the test before
      assert.equal((await w.reconcile()).code, 0);
      assert.equal((await bottled(w, ['exec', 'alpha'], ['echo', 'back'])).stdout, 'back\n', 'the recreated agent is entered');
    }
  });

  test('no command: the user\'s login shell, or spec.agent.shell once it is declared (no recreate)', async () => {
    const sh = await bottled(w, ['exec', 'alpha'], [], 'echo via-shell; exit 4\n');
    assert.equal(sh.code, 4, sh.stderr);
    assert.equal(sh.stdout, 'via-shell\n');
    const id = (await docker.getContainer(w.name_('alpha')).inspect()).Id;
    await w.write('a.yaml', bottleYaml('alpha', 'sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\n    files: [{path: /app/routes.yaml, content: routes-v1}]\nagent:\n  image: bottled/busybox:local\n  shell: [/bin/sh, -c, "echo custom-shell; exit 5"]\n'));
    assert.equal((await w.reconcile()).code, 0);
    assert.equal((await docker.getContainer(w.name_('alpha')).inspect()).Id, id, 'the agent is not recreated for its shell');
    const custom = await bottled(w, ['exec', 'alpha'], []);
    assert.equal(custom.code, 5, custom.stderr);
    assert.equal(custom.stdout, 'custom-shell\n');
    // A sidecar gets the login shell, not the agent's.
    const side = await bottled(w, ['exec', 'alpha', '--container', 'proxy'], [], 'echo side; exit 0\n');
    assert.equal(side.stdout, 'side\n');
  });
});
