import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN, World, bottleYaml } from '../helpers/harness.js';

/** Run a command on a pseudo-terminal (util-linux `script`), returning what the terminal showed. */
function onTerminal(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  return new Promise((resolve, reject) => {
    const p = spawn('script', ['-qfec', argv.map(quote).join(' '), '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
  });
}

test('a cold converge of many bottles on a terminal shows a live progress line; without a terminal it does not', async () => {
  const w = await new World('progress').setup();
  try {
    for (let i = 0; i < 12; i++) await w.write(`p${i}.yaml`, bottleYaml(`p${i}`, 'agent:\n  image: bottled/busybox:local'));
    const r = await onTerminal([process.execPath, BIN, 'reconcile', '--once', ...w.flags()], { ...process.env, LOG_LEVEL: 'warn' });
    assert.equal(r.code, 0, r.out.slice(-2000));
    assert.match(r.out, /bottled: \d+\/12 bottles · \d+ in flight(: (create|start|connect) [^·]+)? · 0:\d\d/);
    assert.match(r.out, /\r\x1b\[K/, 'redrawn in place');
    assert.match(r.out, /ETA \d+:\d\d/);
    // Piped (cron, systemd): no terminal control characters at all.
    for (let i = 0; i < 12; i++) await w.rm(`p${i}.yaml`);
    const piped = await w.reconcile(['--allow-empty', '--max-deletions', 'unlimited']);
    assert.equal(piped.code, 0);
    assert.doesNotMatch(piped.stderr, /\x1b\[K/);
  } finally {
    await w.cleanup();
  }
});
