import { test } from 'node:test';
import assert from 'node:assert/strict';
import { World, bottleYaml, passLog } from '../helpers/harness.js';

const small = (name: string) =>
  bottleYaml(
    name,
    `sidecars:
  - name: egress
    image: bottled/sidecar:local
    aliases: [egress, proxy]
    egress: true
agent:
  image: bottled/busybox:local`,
  );

async function noopCalls(w: World): Promise<number> {
  const r = await w.reconcile();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(passLog(r)?.executed, 0, 'nothing to do');
  return Number(passLog(r)?.dockerCalls);
}

test('a no-op pass costs the same for 2 and 20 bottles, and 60 bottles (120 networks) converge on a default engine', async () => {
  const w = await new World('scale').setup();
  try {
    for (let i = 0; i < 2; i++) await w.write(`b${i}.yaml`, small(`b${i}`));
    assert.equal((await w.reconcile()).code, 0);
    const two = await noopCalls(w);

    for (let i = 2; i < 20; i++) await w.write(`b${i}.yaml`, small(`b${i}`));
    assert.equal((await w.reconcile()).code, 0);
    const twenty = await noopCalls(w);
    assert.equal(twenty, two, `no-op pass: ${two} calls for 2 bottles, ${twenty} for 20`);
    assert.ok(two <= 5, `no-op pass made ${two} Engine API calls`);

    for (let i = 20; i < 60; i++) await w.write(`b${i}.yaml`, small(`b${i}`));
    const r = await w.reconcile(['--concurrency', '8']);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.equal((await w.networks()).length, 120);
    const ctrs = await w.containers();
    assert.equal(ctrs.length, 120);
    assert.ok(ctrs.every((c) => c.State === 'running'));
    assert.equal(await noopCalls(w), two);
  } finally {
    await w.cleanup();
  }
});
