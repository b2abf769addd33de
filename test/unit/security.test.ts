import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeConfigChange } from '../../controller/hash.js';
import { plan } from '../../controller/plan.js';
import { resolveSecurity } from '../../controller/security.js';
import type { Inventory } from '../../state/inventory.js';
import { apply, bottle, empty, input, unit } from '../fixtures/plan-world.js';

test('defaults by role: the agent loses NET_RAW, MKNOD, AUDIT_WRITE, SETFCAP, SYS_CHROOT; sidecars the first three; both no-new-privileges and a pids limit', () => {
  assert.deepEqual(resolveSecurity('agent', undefined, {}), { hardening: 1, capAdd: [], capDrop: ['AUDIT_WRITE', 'MKNOD', 'NET_RAW', 'SETFCAP', 'SYS_CHROOT'], noNewPrivileges: true, readOnlyRootfs: false, pidsLimit: 4096, tmpfs: [] });
  assert.deepEqual(resolveSecurity('sidecar', undefined, {}).capDrop, ['AUDIT_WRITE', 'MKNOD', 'NET_RAW']);
  assert.equal(resolveSecurity('shared', undefined, {}).pidsLimit, 1024);
  assert.deepEqual(resolveSecurity('agent', { readOnlyRootfs: true, writable: ['/cache'] }, { HOME: '/home/node' }).tmpfs, ['/cache', '/home/node', '/run', '/tmp', '/var/tmp']);
  assert.equal(resolveSecurity('agent', { pidsLimit: 0 }, {}).pidsLimit, null);
});

test('an upgrade from a bottled without hardening recreates each container once, and plan says why', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([bottle('a')], snap, invs)), snap, invs);
  // What an older bottled recorded and labelled: the same configuration without `security`.
  for (const [name, rec] of Object.entries(invs.get('a')!.resources)) {
    if (rec.type !== 'container' || !rec.applied) continue;
    const { security: _s, ...old } = rec.applied as Record<string, unknown>;
    rec.applied = old;
    rec.specHash = 'old';
    snap.containers.find((c) => c.name === name)!.labels['bottled.spec-hash'] = 'old';
  }
  const u = unit(plan(input([bottle('a')], snap, invs)), 'a');
  const recreates = u.actions.filter((a) => a.kind === 'recreate');
  assert.equal(recreates.length, 2);
  for (const a of recreates) assert.match(a.cause, /^hardening defaults changed: drop AUDIT_WRITE, MKNOD, NET_RAW.*; no-new-privileges; pids limit \d+$/);
  assert.equal(describeConfigChange({ runtime: 'runsc' }, {}), 'runtime runsc -> default');
});

test('plan marks a runtime downgrade from gVisor, and nothing for a change that narrows the seal', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const gv = bottle('a', { agent: { ...bottle('a').spec.agent, runtime: 'runsc' } });
  apply(plan(input([gv], snap, invs)), snap, invs);
  const down = unit(plan(input([bottle('a')], snap, invs)), 'a');
  assert.deepEqual(down.widens, ['agent leaves runtime runsc for runc (the host\'s kernel again)']);
  const narrower = bottle('a', { agent: { ...bottle('a').spec.agent, runtime: 'runsc', security: { capDrop: ['ALL'], readOnlyRootfs: true } } });
  const n = unit(plan(input([narrower], snap, invs)), 'a');
  assert.ok(n.actions.length > 0);
  assert.equal(n.widens, undefined);
});

test('widenings the review found silent: held plans, pre-hardening containers, root, a writable root again, a higher pids limit, a new uses, swarm services', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([bottle('a')], snap, invs)), snap, invs);
  const agent = (over: object) => bottle('a', { agent: { ...bottle('a').spec.agent, ...over } });
  // Held (the image is not there yet): the ! lines are shown all the same.
  const held = unit(plan(input([bottle('a', { agent: { ...bottle('a').spec.agent, image: 'nothere:1', security: { capAdd: ['SYS_ADMIN'] } } })], snap, invs)), 'a');
  assert.equal(held.state, 'held');
  assert.deepEqual(held.widens, ['agent gains capability SYS_ADMIN']);
  assert.deepEqual(unit(plan(input([agent({ security: { user: 'root' } })], snap, invs)), 'a').widens, ['agent runs as root (security.user root)']);
  assert.deepEqual(unit(plan(input([agent({ security: { user: '00:1000' } })], snap, invs)), 'a').widens, ['agent runs as root (security.user 00:1000)'], 'uid 00 is root too');
  assert.deepEqual(unit(plan(input([agent({ security: { pidsLimit: 0 } })], snap, invs)), 'a').widens, ['agent: pids limit 4096 -> none']);
  // A container from before hardening had Docker's defaults: an added capability is still news.
  const rec = invs.get('a')!.resources['bottle-a']!;
  const { security: _s, ...old } = rec.applied as Record<string, unknown>;
  const legacy = new Map(invs);
  legacy.set('a', { ...invs.get('a')!, resources: { ...invs.get('a')!.resources, 'bottle-a': { ...rec, applied: old } } });
  assert.deepEqual(unit(plan(input([agent({ security: { capAdd: ['NET_ADMIN'] } })], snap, legacy)), 'a').widens, ['agent gains capability NET_ADMIN']);
});

test('spec: writable needs readOnlyRootfs, never / nor over a mounted file; a user id in range; a pids limit a shell fits in', async () => {
  const { loadSpecs } = await import('../../specs/load.js');
  const { memorySource } = await import('../fixtures/specs/tree.js');
  const msgs = async (sec: string) => (await loadSpecs(memorySource({ 'b.yaml': `apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: b}\nspec:\n  agent:\n    image: x\n    files: [{path: /etc/app/a.conf, content: x}]\n    security: ${sec}\n` }))).diagnostics.map((d) => d.message);
  assert.match((await msgs('{writable: [/x]}')).join(), /applies only with readOnlyRootfs: true/);
  assert.match((await msgs('{readOnlyRootfs: true, writable: [/]}')).join(), /cannot be \//);
  assert.match((await msgs('{readOnlyRootfs: true, writable: [/etc/app]}')).join(), /would hide a file bottled mounts there \(\/etc\/app\/a\.conf\)/);
  assert.match((await msgs('{user: "4294967295"}')).join(), /at most 4294967294/);
  assert.match((await msgs('{pidsLimit: 3}')).join(), /at least 8/);
  assert.deepEqual(await msgs('{readOnlyRootfs: true, writable: [/cache], user: "1000:1000", pidsLimit: 64}'), []);
});
