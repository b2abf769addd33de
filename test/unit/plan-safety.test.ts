// The planner's side of the safety invariants 7 and 8 and of the holes found by a hostile
// review (F1, F2, F4, F5, F7, F12, F14): pure, against the simulated engine of plan-world.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Inventory } from '../../state/inventory.js';
import type { SharedSidecarDoc } from '../../specs/model.js';
import { plan } from '../../controller/plan.js';
import { L } from '../../controller/labels.js';
import { OWNER, apply, bottle, empty, input, lines, loadOf, sidecar, unit } from '../fixtures/plan-world.js';
import { field } from '../helpers/actions.js';

/** Converge `docs` on an empty simulated engine; return the engine and the inventories. */
function converged(docs: ReturnType<typeof bottle>[], over: Parameters<typeof input>[3] = {}) {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const fh = new Map<string, string | undefined>();
  apply(plan(input(docs, snap, invs, { fileHashes: fh, ...over })), snap, invs, fh);
  return { snap, invs, fh };
}

/** Relabel everything as another state directory's (same instance, another owner id). */
function ownedElsewhere(snap: ReturnType<typeof empty>, owner = 'fedcba9876543210'): void {
  for (const r of [...snap.networks, ...snap.containers]) r.labels = { ...r.labels, [L.owner]: owner, [L.ownerDir]: '/elsewhere' };
}

test('F1: another state directory with the same --instance: its bottles are never removed, a shared name is a collision', () => {
  const { snap } = converged([bottle('alpha')]);
  ownedElsewhere(snap);
  // This state directory declares only beta, knows nothing of alpha: alpha is not ours to prune.
  const p = plan(input([bottle('beta')], snap));
  assert.deepEqual(p.units.map((u) => u.unit), ['beta']);
  assert.ok(unit(p, 'beta').actions.every((a) => a.kind !== 'remove'));
  // Declaring alpha too: a collision that names the other state directory and the way out.
  const held = unit(plan(input([bottle('alpha')], snap)), 'alpha');
  assert.equal(held.held?.reason, 'NameCollision');
  assert.match(held.held!.message, /another bottled state directory \(\/elsewhere\) with the same --instance unit; run with --adopt/);
});

test('F1: --adopt takes over the declared bottles of a lost state directory, records their owner, recreates nothing', () => {
  const { snap, fh } = converged([bottle('alpha')]);
  ownedElsewhere(snap);
  const invs = new Map<string, Inventory>();
  const p = plan(input([bottle('alpha'), bottle('other')], snap, invs, { fileHashes: fh, opts: { ...input([], snap).opts, adopt: true } }));
  const u = unit(p, 'alpha');
  assert.ok(u.actions.length > 0 && u.actions.every((a) => a.kind === 'adopt'), lines(u).join('; '));
  assert.ok(u.actions.every((a) => a.adopt?.owner === 'fedcba9876543210'));
  apply(p, snap, invs, fh);
  // Without --adopt from now on: the inventory proves it.
  assert.equal(unit(plan(input([bottle('alpha')], snap, invs, { fileHashes: fh })), 'alpha').state, 'in-sync');
});

test('resources from a bottled without owner labels: ours when the inventory records them, foreign otherwise', () => {
  const { snap, invs, fh } = converged([bottle('old')]);
  for (const r of [...snap.networks, ...snap.containers]) {
    const { [L.owner]: _o, [L.ownerDir]: _d, [L.createId]: _c, ...rest } = r.labels;
    r.labels = rest;
  }
  const mine = plan(input([], snap, invs, { fileHashes: fh, load: loadOf([], { fileCount: 1 }) }));
  assert.equal(unit(mine, 'old').state, 'removed', 'recorded: ours to remove');
  const notMine = plan(input([], snap, new Map(), { load: loadOf([], { fileCount: 1 }) }));
  assert.deepEqual(notMine.units, [], 'unrecorded: never touched');
});

test('F2: a container made from a committed bottle image is not ours: never removed, never adopted', () => {
  const { snap, invs } = converged([bottle('a')]);
  const agent = snap.containers.find((c) => c.name === 'bottle-a')!;
  // docker commit bottle-a snap; docker run --name other snap: every label comes from the image.
  snap.imageLabels = new Map([['sha256:snap', { ...agent.labels }]]);
  snap.containers.push({ ...agent, id: 'copy', name: 'other', imageId: 'sha256:snap', labels: { ...agent.labels } });
  const p = plan(input([bottle('a')], snap, invs));
  assert.equal(unit(p, 'a').state, 'in-sync');
  assert.ok(!p.units.some((u) => u.actions.some((a) => a.resource.name === 'other')));
  const gone = plan(input([], snap, invs, { load: loadOf([], { fileCount: 1 }) }));
  assert.ok(!unit(gone, 'a').actions.some((a) => a.resource.name === 'other'), 'removing the bottle leaves the copy alone');
});

test('F4: --max-deletions counts shared sidecars as well as bottles', () => {
  const shared = (n: string): SharedSidecarDoc => ({ kind: 'SharedSidecar', metadata: { name: n, labels: {} }, origin: { file: `${n}.yaml`, line: 1, col: 1 }, spec: { image: 'side:1', alias: n, env: {}, secretEnv: {}, files: [], ports: [], init: true } });
  const load = loadOf([], { shared: new Map(['c1', 'c2', 'c3'].map((n) => [n, shared(n)])) });
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([], snap, invs, { load })), snap, invs);
  assert.equal(snap.containers.length, 3);
  const p = plan(input([], snap, invs, { load: loadOf([], { fileCount: 1 }), opts: { ...input([], snap).opts, maxDeletions: 1 } }));
  assert.ok(p.units.every((u) => u.state === 'held' && u.held?.reason === 'DeletionGuard'));
  assert.match(p.pruneGuard ?? '', /would remove 3 shared sidecars \(SharedSidecar c1, SharedSidecar c2, SharedSidecar c3\), more than --max-deletions 1/);
});

test('F7: a network connected to the agent by hand is disconnected; one it declares stays', () => {
  const { snap, invs, fh } = converged([bottle('a')]);
  snap.networks.push({ id: 'n-some', name: 'some-bridge', labels: {}, subnets: ['172.30.0.0/16'], internal: false, options: {} });
  snap.containers.find((c) => c.name === 'bottle-a')!.networks['some-bridge'] = { networkId: 'n-some', ip: '172.30.0.5' };
  const u = unit(plan(input([bottle('a')], snap, invs, { fileHashes: fh })), 'a');
  assert.deepEqual(lines(u), ['disconnect container bottle-a']);
  assert.equal(field(u.actions[0], 'networkName'), 'some-bridge');
  assert.match(u.actions[0]!.cause, /not declared \(connected by hand\)/);
});

test('F8: an agent network that bottled manages (another bottle\'s, or its own egress) holds the bottle', () => {
  const { snap, invs } = converged([bottle('a'), bottle('b')]);
  const withNet = (net: string) => bottle('a', { agent: { image: 'agent:1', env: {}, secretEnv: {}, files: [], networks: [net], init: true } });
  for (const net of ['bottle-b-net', 'bottle-a-egress']) {
    const u = unit(plan(input([withNet(net), bottle('b')], snap, invs)), 'a');
    assert.equal(u.held?.reason, 'NetworkForbidden', net);
    assert.match(u.held!.message, new RegExp(`${net} is a network bottled manages`));
  }
});

test('F12: a network recreate with a foreign container attached is held before anything is removed', () => {
  const doc = (subnet: string) => bottle('a', { network: { subnet } });
  const { snap, invs } = converged([doc('192.168.50.0/24')]);
  snap.containers.push({ id: 'f', name: 'foreign', image: 'x', imageId: 'x', labels: {}, state: 'running', status: 'Up', networks: { 'bottle-a-net': { networkId: snap.networks[0]!.id, ip: '192.168.50.9' } }, ports: [] });
  const u = unit(plan(input([doc('192.168.51.0/24')], snap, invs)), 'a');
  assert.equal(u.held?.reason, 'NetworkInUse');
  assert.deepEqual(u.actions, []);
  assert.match(u.held!.message, /bottle-a-net must be recreated \(subnet 192\.168\.50\.0\/24 -> 192\.168\.51\.0\/24\), but network bottle-a-net has a container attached that is not part of it \(foreign\)/);
  // Removing the bottle is held the same way: nothing half-removed.
  const gone = unit(plan(input([], snap, invs, { load: loadOf([], { fileCount: 1 }) })), 'a');
  assert.equal(gone.held?.reason, 'NetworkInUse');
});

test('F14: adopted after the state directory (and its HMAC key) was lost, a container with secrets is proven unchanged', () => {
  const withSecret = bottle('s', { agent: { image: 'agent:1', env: {}, secretEnv: { TOKEN: 'SET' }, files: [], networks: [], init: true } });
  const { snap, fh } = converged([withSecret]);
  // A new key: the same secret now digests differently, so the spec-hash label no longer matches.
  const newKey = { secretDigest: (v: string) => (v === 'SET' ? 'hmac:new' : undefined), opts: { ...input([], snap).opts, adopt: true } };
  const lost = new Map<string, Inventory>();
  const same = plan(input([withSecret], snap, lost, { ...newKey, fileHashes: fh, observedSecrets: new Map([['bottle-s', { TOKEN: 'hmac:new' }]]) }));
  const u = unit(same, 's');
  assert.ok(u.actions.every((a) => a.kind === 'adopt'), lines(u).join('; '));
  apply(same, snap, lost, fh);
  assert.equal(unit(plan(input([withSecret], snap, lost, { ...newKey, fileHashes: fh })), 's').state, 'in-sync');

  // The secret itself changed while the state was gone: recreated, and the cause says so.
  const rotated = unit(plan(input([withSecret], snap, new Map(), { ...newKey, fileHashes: fh, observedSecrets: new Map([['bottle-s', { TOKEN: 'hmac:other' }]]) })), 's');
  const recreate = rotated.actions.find((a) => a.kind === 'recreate');
  assert.equal(recreate?.cause, '(secret changed)');

  // A container from before secret-free hashes: the cause says what is known, not "changed".
  const agent = snap.containers.find((c) => c.name === 'bottle-s')!;
  delete agent.labels[L.configHash];
  const legacy = unit(plan(input([withSecret], snap, new Map(), { ...newKey, fileHashes: fh })), 's');
  assert.match(legacy.actions.find((a) => a.kind === 'recreate')?.cause ?? '', /cannot prove it unchanged/);
});

test('F5: a container from before restart policy "always" is updated in place once', () => {
  const { snap, invs, fh } = converged([bottle('a')]);
  for (const c of snap.containers) delete c.labels[L.createId];
  const p = plan(input([bottle('a')], snap, invs, { fileHashes: fh }));
  assert.deepEqual(lines(unit(p, 'a')).sort(), ['update container bottle-a', 'update container bottle-a-bundle']);
  apply(p, snap, invs, fh);
  assert.equal(unit(plan(input([bottle('a')], snap, invs, { fileHashes: fh })), 'a').state, 'in-sync');
});

test('a bottle whose shared sidecar name is taken by a foreign container is held, the container untouched', () => {
  const cache: SharedSidecarDoc = { kind: 'SharedSidecar', metadata: { name: 'cache', labels: {} }, origin: { file: 'c.yaml', line: 1, col: 1 }, spec: { image: 'side:1', alias: 'cache', env: {}, secretEnv: {}, files: [], ports: [], init: true } };
  const user = bottle('u', { uses: ['cache'] });
  const snap = empty();
  snap.containers.push({ id: 'x', name: 'bottle-shared-cache', image: 'x', imageId: 'x', labels: { [L.managedBy]: 'bottled', [L.instance]: 'unit', [L.kind]: 'shared', [L.bottle]: 'cache', [L.owner]: 'another0another0' }, state: 'running', status: 'Up', networks: {}, ports: [] });
  const p = plan(input([user], snap, new Map(), { load: loadOf([user], { shared: new Map([['cache', cache]]) }) }));
  assert.equal(unit(p, 'u').held?.reason, 'SharedSidecarUnavailable');
  assert.equal(unit(p, 'shared.cache').held?.reason, 'NameCollision');
  void OWNER;
});

test('a sidecar named like its egress network: both are recorded and in sync (they live in separate Docker name spaces)', () => {
  const doc = bottle('r', { sidecars: [sidecar({ name: 'egress', egress: true })] });
  const { snap, invs, fh } = converged([doc]);
  assert.equal(unit(plan(input([doc], snap, invs, { fileHashes: fh })), 'r').state, 'in-sync');
  assert.equal(invs.get('r')!.resources['bottle-r-egress']?.type, 'container');
  assert.equal(invs.get('r')!.resources['network/bottle-r-egress']?.type, 'network');
});

test('labels copied by hand (docker inspect) onto a new container or network prove nothing: the inventory records names and IDs', () => {
  const { snap, invs, fh } = converged([bottle('x')]);
  const agent = snap.containers.find((c) => c.name === 'bottle-x')!;
  const egress = snap.networks.find((n) => n.name === 'bottle-x-egress')!;
  // A look-alike container with every label of the agent, under a new name.
  snap.containers.push({ ...agent, id: 'handmade', name: 'bottle-x-mycopy', networks: {}, labels: { ...agent.labels, [L.createId]: 'other' } });
  // And the agent itself replaced by a copy (same name, another ID).
  const copy = { ...agent, id: 'impostor' };
  snap.containers = snap.containers.map((c) => (c.name === 'bottle-x' ? copy : c));
  const p = plan(input([bottle('x')], snap, invs, { fileHashes: fh }));
  const u = unit(p, 'x');
  assert.equal(u.held?.reason, 'NameCollision', 'the impostor under the agent\'s name is not ours');
  assert.match(u.held!.message, /not the resource it created \(another ID\)/);
  assert.ok(!p.units.some((x) => x.actions.some((a) => a.resource.name === 'bottle-x-mycopy')), 'the look-alike is never removed');
  // A network with the labels of the egress network, under a name the bottle does not use.
  snap.containers = snap.containers.map((c) => (c.id === 'impostor' ? agent : c));
  snap.networks.push({ ...egress, id: 'handnet', name: 'bottle-x-other' });
  const p2 = plan(input([bottle('x')], snap, invs, { fileHashes: fh }));
  assert.equal(unit(p2, 'x').state, 'in-sync', lines(unit(p2, 'x')).join('; '));
});

test('a spec file truncated for a moment (being written) holds what it declared instead of removing it', () => {
  const { snap, invs } = converged([bottle('x'), bottle('y')]);
  const p = plan(input([bottle('y')], snap, invs, { load: loadOf([bottle('y')], { fileCount: 2, emptyFiles: new Set(['x.yaml']) }) }));
  assert.equal(unit(p, 'x').held?.reason, 'SourceEmptied');
  const gone = plan(input([bottle('y')], snap, invs, { load: loadOf([bottle('y')], { fileCount: 1 }) }));
  assert.equal(unit(gone, 'x').state, 'removed', 'a deleted file removes its bottle as before');
});

test('someone else\'s container on a bottle network is an alert (not Ready); bottled does not touch it', () => {
  const { snap, invs, fh } = converged([bottle('x')]);
  const net = snap.networks.find((n) => n.name === 'bottle-x-net')!;
  snap.containers.push({ id: 'i', name: 'intruder', image: 'x', imageId: 'x', labels: {}, state: 'running', status: 'Up', networks: { 'bottle-x-net': { networkId: net.id, ip: '10.0.0.99' } }, ports: [] });
  const u = unit(plan(input([bottle('x')], snap, invs, { fileHashes: fh })), 'x');
  assert.equal(u.state, 'in-sync');
  assert.match(u.alerts?.[0] ?? '', /network bottle-x-net has a container attached that is not part of the bottle \(intruder\)/);
  assert.ok(!u.actions.some((a) => a.resource.name === 'intruder'));
});
