// What must happen before what inside one bottle, now that independent actions run side by side
// (found by review of the parallel executor, and two older planner holes found with it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../controller/plan.js';
import { renderShared } from '../../controller/render.js';
import type { Action } from '../../controller/plan-types.js';
import type { Observed } from '../../controller/observed.js';
import type { Inventory } from '../../state/inventory.js';
import { INSTANCE, OWNER, apply, bottle, empty, input, lines, paths, sidecar, unit } from '../fixtures/plan-world.js';

/** Every action `a` waits for, directly or through others. */
function ancestors(actions: Action[], a: Action): Set<number> {
  const byId = new Map(actions.map((x) => [x.id, x]));
  const out = new Set<number>();
  const visit = (x: Action) => {
    for (const id of x.after) {
      if (out.has(id)) continue;
      out.add(id);
      visit(byId.get(id)!);
    }
  };
  visit(a);
  return out;
}
const find = (actions: Action[], kind: string, name: string) => {
  const a = actions.find((x) => x.kind === kind && x.resource.name === name);
  assert.ok(a, `${kind} ${name} in ${actions.map((x) => `${x.kind} ${x.resource.name}`).join('; ')}`);
  return a;
};

test('a bottle starts only once the shared sidecar it uses has joined its network', () => {
  const shared = renderShared(
    { kind: 'SharedSidecar', metadata: { name: 'cache', labels: {} }, origin: { file: 'c.yaml', line: 1, col: 1 }, spec: { image: 'side:1', alias: 'pkg-cache', env: {}, secretEnv: {}, files: [], ports: [], init: true } },
    { prefix: 'bottle', instance: INSTANCE, owner: OWNER, paths },
  );
  const i = input([bottle('u', { uses: ['cache'] })], empty());
  i.desired.set(shared.unit, shared);
  const u = unit(plan(i), 'u');
  const connect = find(u.actions, 'connect', 'bottle-shared-cache');
  for (const name of ['bottle-u-bundle', 'bottle-u']) assert.ok(ancestors(u.actions, find(u.actions, 'start', name)).has(connect.id), `${name} starts after the shared sidecar joined`);
});

test('a sidecar without an address starts after a pinned one when the network has no free range of its own', () => {
  const doc = bottle('p', {
    network: { subnet: '10.77.0.0/24' },
    sidecars: [sidecar({ name: 'a', ip: '10.77.0.2', egress: false }), sidecar({ name: 'b', ip: '10.77.0.200', egress: false }), sidecar({ name: 'c', egress: false })],
  });
  const u = unit(plan(input([doc], empty())), 'p');
  const before = ancestors(u.actions, find(u.actions, 'start', 'bottle-p-c'));
  for (const pinned of ['bottle-p-a', 'bottle-p-b']) assert.ok(before.has(find(u.actions, 'start', pinned).id), `c starts after ${pinned}`);
});

test('an agent is told of a changed file only after the sidecar it waits for is back', () => {
  const file = (content: string) => ({ path: '/etc/a.conf', content: Buffer.from(content), mode: 0o644, onChange: { type: 'signal' as const, signal: 'SIGHUP' } });
  const agent = (content: string) => ({ image: 'agent:1', env: {}, secretEnv: {}, files: [file(content)], networks: [], init: true });
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const fileHashes = new Map<string, string | undefined>();
  apply(plan(input([bottle('f', { agent: agent('one') })], snap, invs, { fileHashes })), snap, invs, fileHashes);
  // The sidecar's image changes (recreate) in the same pass as the agent's file.
  const u = unit(plan(input([bottle('f', { sidecars: [sidecar({ image: 'side:2' })], agent: agent('two') })], snap, invs, { fileHashes })), 'f');
  const signal = find(u.actions, 'signal', 'bottle-f');
  assert.ok(ancestors(u.actions, signal).has(find(u.actions, 'start', 'bottle-f-bundle').id), lines(u).join('; '));
});

test('recreating only the egress network recreates the agent too, removing it first', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([bottle('e')], snap, invs)), snap, invs);
  // The egress network drifted from its spec hash: it is recreated, and with it every container.
  snap.networks.find((n) => n.name === 'bottle-e-egress')!.labels['bottled.spec-hash'] = 'other';
  const u = unit(plan(input([bottle('e')], snap, invs)), 'e');
  const l = lines(u);
  assert.ok(l.includes('recreate network bottle-e-egress'), l.join('; '));
  const rm = l.indexOf('remove container bottle-e');
  assert.ok(rm >= 0 && rm < l.indexOf('create container bottle-e'), l.join('; '));
});

/** A snapshot in which smolvm listed no machine, or failed with `error`. */
function smolvmSays(error?: string): Observed {
  return { ...empty(), workloads: new Map([['smolvm', { objects: [], ...(error !== undefined && { error }) }]]) };
}

test('a smolvm bottle no longer declared is not removed while smolvm cannot be asked', () => {
  const invs = new Map<string, Inventory>([['vm', { version: 1, unit: 'vm', subnets: {}, resources: { 'bottle-vm': { type: 'machine', role: 'agent', specHash: 'x' } }, delivered: {} }]]);
  const u = unit(plan(input([], smolvmSays('smolvm: not found'), invs, { load: { ...input([], empty()).load, fileCount: 1 } })), 'vm');
  assert.equal(u.state, 'held');
  assert.equal(u.held?.reason, 'SmolvmUnavailable');
  assert.match(u.held?.message ?? '', /machine cannot be removed: smolvm: not found/);
  assert.equal(u.actions.length, 0);
  // Once smolvm answers (and the machine is gone), the rest of the bottle goes.
  const later = unit(plan(input([], smolvmSays(), invs, { load: { ...input([], empty()).load, fileCount: 1 } })), 'vm');
  assert.equal(later.state, 'removed');
});
