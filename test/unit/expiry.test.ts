import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Inventory } from '../../state/inventory.js';
import { plan } from '../../controller/plan.js';
import { formatPlan, planJson, roughDuration } from '../../controller/plan-format.js';
import { apply, bottle, empty, input, lines, loadOf, unit } from '../fixtures/plan-world.js';
import { loadSpecs } from '../../specs/load.js';
import { memorySource } from '../fixtures/specs/tree.js';

/** file:line:col: message of each problem in one bottle file. */
async function parseDocument(text: string): Promise<string[]> {
  const r = await loadSpecs(memorySource({ 'b.yaml': text }));
  return r.diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);
}

const T = Date.parse('2026-12-01T12:00:00Z');

test('a bottle before its expiresAt is planned as usual; plan says when it expires', () => {
  const b = bottle('a', { lifetime: { expiresAt: '2026-12-01T14:13:00.000Z', onExpiry: 'stop' } });
  const p = plan({ ...input([b], empty()), now: T });
  const u = unit(p, 'a');
  assert.equal(u.state, 'changes');
  assert.ok(lines(u).includes('create container bottle-a'));
  assert.deepEqual(u.expiry, { at: '2026-12-01T14:13:00.000Z', onExpiry: 'stop', expired: false });
  assert.match(formatPlan(p, { color: false, now: T }), /⏲ expires in 2h13m \(2026-12-01T14:13:00.000Z, then stop\)/);
  assert.deepEqual((planJson(p) as { bottles: { expiry: unknown }[] }).bottles[0]!.expiry, { at: '2026-12-01T14:13:00.000Z', onExpiry: 'stop', expired: false });
});

test('an in-sync bottle with an upcoming expiry is still shown by plan', () => {
  const b = bottle('a', { lifetime: { expiresAt: '2026-12-03T12:00:00.000Z', onExpiry: 'remove' } });
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan({ ...input([b], snap, invs), now: T }), snap, invs);
  for (const c of snap.containers) c.state = 'running';
  const p = plan({ ...input([b], snap, invs), now: T });
  assert.equal(unit(p, 'a').state, 'in-sync');
  assert.match(formatPlan(p, { color: false, now: T }), /bottle a .*\n  ⏲ expires in 2d \(2026-12-03T12:00:00.000Z, then remove\)/);
});

test('past expiresAt with onExpiry stop: agent stopped first, then sidecars; nothing created; then held Expired', () => {
  const live = bottle('a');
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan({ ...input([live], snap, invs), now: T }), snap, invs);
  for (const c of snap.containers) c.state = 'running';
  const b = bottle('a', { lifetime: { expiresAt: '2026-12-01T11:00:00.000Z', onExpiry: 'stop' } });
  const p = plan({ ...input([b], snap, invs), now: T });
  const u = unit(p, 'a');
  assert.equal(u.state, 'changes');
  assert.deepEqual(lines(u), ['stop container bottle-a', 'stop container bottle-a-bundle']);
  assert.deepEqual(u.actions[1]!.after, [1], 'a sidecar stops after the agent');
  assert.match(u.actions[0]!.cause, /expired at 2026-12-01T11:00:00.000Z/);
  assert.match(formatPlan(p, { color: false, now: T }), /expired at .*onExpiry stop[\s\S]*2 to stop \(expired\)/);
  // Once stopped with the restart policy off, nothing more: held, not a failure.
  for (const c of snap.containers) {
    c.state = 'exited';
    invs.get('a')!.resources[c.name]!.restartPolicy = 'no';
  }
  const again = unit(plan({ ...input([b], snap, invs), now: T }), 'a');
  assert.equal(again.state, 'held');
  assert.equal(again.held!.reason, 'Expired');
  assert.equal(again.held!.failure, false);
  // Started by hand (or by an engine restart): stopped again.
  snap.containers[0]!.state = 'running';
  assert.deepEqual(lines(unit(plan({ ...input([b], snap, invs), now: T }), 'a')), [`stop container ${snap.containers[0]!.name}`]);
  // A container stopped by something else still has Docker's restart policy on: it is turned off.
  snap.containers[0]!.state = 'exited';
  delete invs.get('a')!.resources[snap.containers[0]!.name]!.restartPolicy;
  assert.deepEqual(lines(unit(plan({ ...input([b], snap, invs), now: T }), 'a')), [`stop container ${snap.containers[0]!.name}`]);
});

test('moving expiresAt ahead starts the stopped bottle again and turns its restart policy back on', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan({ ...input([bottle('a')], snap, invs), now: T }), snap, invs);
  for (const c of snap.containers) {
    c.state = 'exited';
    invs.get('a')!.resources[c.name]!.restartPolicy = 'no';
  }
  const b = bottle('a', { lifetime: { expiresAt: '2026-12-02T11:00:00.000Z', onExpiry: 'stop' } });
  const u = unit(plan({ ...input([b], snap, invs), now: T }), 'a');
  assert.ok(lines(u).includes('start container bottle-a'));
  assert.ok(lines(u).includes('update container bottle-a'));
  assert.ok(u.actions.some((a) => a.kind === 'update' && /stopped at its expiry/.test(a.cause)));
});

test('past expiry with onExpiry remove: removed like an undeclared bottle, counted by --max-deletions', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan({ ...input([bottle('a'), bottle('b')], snap, invs), now: T }), snap, invs);
  const gone = { lifetime: { expiresAt: '2026-12-01T11:00:00.000Z', onExpiry: 'remove' as const } };
  const p = plan({ ...input([bottle('a', gone), bottle('b')], snap, invs), now: T });
  const u = unit(p, 'a');
  assert.equal(u.state, 'removed');
  assert.equal(u.expiry?.expired, true);
  assert.deepEqual(lines(u).slice(0, 2), ['remove container bottle-a', 'remove container bottle-a-bundle']);
  assert.match(u.actions[0]!.cause, /expired at .*onExpiry: remove/);
  const guarded = unit(plan({ ...input([bottle('a', gone), bottle('b')], snap, invs, { opts: { ...input([], snap).opts, maxDeletions: 0 } }), now: T }), 'a');
  assert.equal(guarded.held?.reason, 'DeletionGuard');
  assert.equal(unit(p, 'b').state, 'in-sync', 'the other bottle is untouched');
});

test('an expiry in the past on a new bottle never creates it', () => {
  for (const onExpiry of ['stop', 'remove'] as const) {
    const u = unit(plan({ ...input([bottle('a', { lifetime: { expiresAt: '2026-11-30T00:00:00.000Z', onExpiry } })], empty()), now: T }), 'a');
    assert.equal(u.state, 'held');
    assert.equal(u.held!.reason, 'Expired');
    assert.match(u.held!.message, /before it was created: not created/);
    assert.equal(u.actions.length, 0);
  }
});

test('ttl counts from the first creation the inventory records, also after a removal at expiry', () => {
  const b = bottle('a', { lifetime: { ttl: 3_600_000, onExpiry: 'remove' } });
  const fresh = unit(plan({ ...input([b], empty()), now: T }), 'a');
  assert.equal(fresh.expiry?.fromNow, true);
  assert.match(formatPlan({ units: [fresh] }, { color: false, now: T }), /expires 1h after it is created/);
  const inv: Inventory = { version: 1, unit: 'a', subnets: {}, resources: {}, delivered: {}, createdAt: '2026-12-01T10:30:00.000Z' };
  const u = unit(plan({ ...input([b], empty(), new Map([['a', inv]])), now: T }), 'a');
  assert.equal(u.state, 'held', 'a tombstone inventory (nothing left) keeps it expired');
  assert.equal(u.held!.reason, 'Expired');
  assert.match(u.held!.message, /removed; it is not created again/);
  assert.equal(unit(plan({ ...input([bottle('a', { lifetime: { ttl: 4 * 3_600_000, onExpiry: 'remove' } })], empty(), new Map([['a', inv]])), now: T }), 'a').state, 'changes', 'a longer ttl brings it back');
});

test('an expired bottle is no user of a SharedSidecar whose document went: the sidecar is removed, not held', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const cache = { kind: 'SharedSidecar' as const, metadata: { name: 'cache', labels: {} }, origin: { file: 'cache.yaml', line: 1, col: 1 }, spec: { image: 'side:1', alias: 'pkg-cache', env: {}, secretEnv: {}, files: [], ports: [], init: true } };
  apply(plan({ ...input([], snap, invs, { load: loadOf([bottle('u', { uses: ['cache'] })], { shared: new Map([['cache', cache]]) }) }), now: T }), snap, invs);
  assert.ok(snap.containers.find((c) => c.name === 'bottle-shared-cache')?.networks['bottle-u-net'], 'joined');
  const expired = bottle('u', { uses: ['cache'], lifetime: { expiresAt: '2026-12-01T11:00:00.000Z', onExpiry: 'stop' } });
  const p = plan({ ...input([], snap, invs, { load: loadOf([expired]) }), now: T });
  assert.equal(unit(p, 'u').expiry?.expired, true);
  assert.equal(unit(p, 'shared.cache').state, 'removed', JSON.stringify(unit(p, 'shared.cache').held));
});

test('a suspended bottle is not stopped at expiry (suspend touches nothing)', () => {
  const u = unit(plan({ ...input([bottle('a', { suspend: true, lifetime: { expiresAt: '2026-11-30T00:00:00.000Z', onExpiry: 'stop' } })], empty()), now: T }), 'a');
  assert.equal(u.held?.reason, 'Suspended');
});

test('spec.lifetime is validated with positions', async () => {
  const bad = async (lifetime: string) => parseDocument(`apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: a}\nspec:\n  agent: {image: x}\n  lifetime: ${lifetime}\n`);
  assert.match((await bad('{expiresAt: "2026-12-01 12:00"}')).join('\n'), /:6:\d+: .*RFC 3339/);
  assert.match((await bad('{expiresAt: "2026-02-30T12:00:00Z"}')).join('\n'), /not a real date/);
  assert.match((await bad('{}')).join('\n'), /needs expiresAt or ttl/);
  assert.match((await bad('{expiresAt: "2026-12-01T12:00:00Z", ttl: 1h}')).join('\n'), /either expiresAt or ttl/);
  assert.match((await bad('{ttl: 1h, onExpiry: delete}')).join('\n'), /onExpiry/);
  assert.deepEqual(await bad('{expiresAt: "2026-12-01T13:00:00+01:00", onExpiry: remove}'), []);
  assert.match((await bad('{ttl: 99999999999h}')).join('\n'), /at most 87600h/, 'a ttl past what a date can hold is refused, not a planner crash');
  const swarm = await parseDocument('apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: a}\nspec:\n  backend: swarm\n  agent: {image: x}\n  lifetime: {ttl: 1h}\n');
  assert.match(swarm.join('\n'), /:7:3: .*onExpiry: stop \(the default\) is not available on the swarm backend/);
});

test('roughDuration', () => {
  assert.equal(roughDuration(45_000), '45s');
  assert.equal(roughDuration(13 * 60_000), '13m');
  assert.equal(roughDuration(2 * 3_600_000 + 13 * 60_000), '2h13m');
  assert.equal(roughDuration(76 * 3_600_000), '3d4h');
});

test('an onExpiry remove bottle whose removal waits (someone else\'s container on its network) is stopped meanwhile, and says why', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan({ ...input([bottle('a')], snap, invs), now: T }), snap, invs);
  for (const c of snap.containers) c.state = 'running';
  const net = snap.networks.find((n) => n.name === 'bottle-a-net')!;
  snap.containers.push({ id: 'x1', name: 'stranger', image: 'x', imageId: 'sha256:x', labels: {}, state: 'running', status: 'Up', networks: { [net.name]: { networkId: net.id } }, ports: [] });
  const gone = bottle('a', { lifetime: { expiresAt: '2026-12-01T11:00:00.000Z', onExpiry: 'remove' } });
  const u = unit(plan({ ...input([gone], snap, invs), now: T }), 'a');
  assert.deepEqual(lines(u), ['stop container bottle-a', 'stop container bottle-a-bundle']);
  assert.match(u.alerts?.[0] ?? '', /stopped, not removed yet: .*stranger/);
  for (const c of snap.containers.filter((x) => x.name.startsWith('bottle-a'))) {
    c.state = 'exited';
    invs.get('a')!.resources[c.name]!.restartPolicy = 'no';
  }
  const later = unit(plan({ ...input([gone], snap, invs), now: T }), 'a');
  assert.equal(later.held?.reason, 'NetworkInUse');
  assert.match(later.held!.message, /its containers are stopped; removal waits/);
  // A policy turned back on by hand, seen by an inspect the pass made (an event named it): turned off again.
  snap.containers.find((c) => c.name === 'bottle-a')!.restartPolicy = 'always';
  assert.deepEqual(lines(unit(plan({ ...input([gone], snap, invs), now: T }), 'a')), ['stop container bottle-a']);
});
