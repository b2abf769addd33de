import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Inventory } from '../../state/inventory.js';
import type { BottleDoc } from '../../specs/model.js';
import type { DockerSnapshot } from '../../resources/docker/driver.js';
import type { ObservedContainer } from '../../resources/docker/driver.js';
import { plan } from '../../controller/plan.js';
import { renderBottle } from '../../controller/render.js';
import { L } from '../../controller/labels.js';
import { formatPlan, planJson } from '../../controller/plan-format.js';
import { INSTANCE, OWNER, apply, bottle, empty, images, input, lines, loadOf, paths, sidecar, unit } from '../fixtures/plan-world.js';
import { field } from '../helpers/actions.js';

test('cold start: networks, then sidecar on its first network, connect, start, then agent', () => {
  const p = plan(input([bottle('impl')], empty()));
  const u = unit(p, 'impl');
  assert.equal(u.state, 'changes');
  assert.deepEqual(lines(u), [
    'create network bottle-impl-net',
    'create network bottle-impl-egress',
    'create container bottle-impl-bundle',
    'connect container bottle-impl-bundle',
    'start container bottle-impl-bundle',
    'create container bottle-impl',
    'start container bottle-impl',
  ]);
  const agentCreate = u.actions[5]!;
  // The agent waits for the sidecar's start and both networks.
  assert.ok(agentCreate.after.includes(5) && agentCreate.after.includes(1));
  assert.deepEqual(field(agentCreate, 'waitFor'), ['bottle-impl-bundle']);
  // The bottle network is internal with inhibit_ipv4; subnets are allocated from the pool.
  const net = field(u.actions[0], 'network');
  assert.equal(net.desired.internal, true);
  assert.equal(net.desired.options['com.docker.network.bridge.inhibit_ipv4'], 'true');
  assert.equal(net.subnet, '10.231.0.0/28');
  assert.equal(field(u.actions[1], 'network').subnet, '10.231.0.16/28');
});

test('a second pass over what the first made is empty', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const fh = new Map<string, string | undefined>();
  const docs = [bottle('a'), bottle('b')];
  apply(plan(input(docs, snap, invs)), snap, invs, fh);
  const p2 = plan(input(docs, snap, invs, { fileHashes: fh }));
  for (const u of p2.units) assert.equal(u.state, 'in-sync', `${u.unit}: ${lines(u).join('; ')}`);
  assert.match(formatPlan(p2, { color: false }), /Plan: nothing to do\./);
});

test('an image change recreates that container alone, with the cause', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const fh = new Map<string, string | undefined>();
  apply(plan(input([bottle('a'), bottle('b')], snap, invs)), snap, invs, fh);
  const changed = bottle('a', { sidecars: [sidecar({ image: 'side:2' })] });
  const p = plan(input([changed, bottle('b')], snap, invs, { fileHashes: fh }));
  assert.deepEqual(lines(unit(p, 'a')).filter((l) => !l.startsWith('connect') && !l.startsWith('start')), ['recreate container bottle-a-bundle']);
  assert.match(unit(p, 'a').actions[0]!.cause, /image side:1 -> side:2/);
  assert.equal(unit(p, 'b').state, 'in-sync');
});

test('a file with a signal onChange is rewritten in place and signalled, not recreated', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const fh = new Map<string, string | undefined>();
  const withFile = (content: string) =>
    bottle('a', { sidecars: [sidecar({ files: [{ path: '/app/routes.yaml', content: Buffer.from(content), mode: 0o644, onChange: { type: 'signal', signal: 'SIGHUP' } }] })] });
  apply(plan(input([withFile('v1')], snap, invs)), snap, invs, fh);
  const p = plan(input([withFile('v2')], snap, invs, { fileHashes: fh }));
  assert.deepEqual(lines(unit(p, 'a')), ['rewrite-file file bottle-a-bundle:/app/routes.yaml', 'signal container bottle-a-bundle']);
  assert.equal(field(unit(p, 'a').actions[1], 'signal'), 'SIGHUP');
  apply(p, snap, invs, fh);
  assert.equal(unit(plan(input([withFile('v2')], snap, invs, { fileHashes: fh })), 'a').state, 'in-sync');
});

test('a file rewritten but never signalled (crash in between) is signalled on the next pass', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const fh = new Map<string, string | undefined>();
  const withFile = (content: string) =>
    bottle('a', { sidecars: [sidecar({ files: [{ path: '/f', content: Buffer.from(content), mode: 0o644, onChange: { type: 'signal', signal: 'SIGUSR1' } }] })] });
  apply(plan(input([withFile('v1')], snap, invs)), snap, invs, fh);
  const d = renderBottle(withFile('v2'), { prefix: 'bottle', instance: INSTANCE, owner: OWNER, paths });
  const f = d.containers[0]!.files[0]!;
  fh.set(f.hostPath, f.hash); // on disk already, delivery not recorded
  assert.deepEqual(lines(unit(plan(input([withFile('v2')], snap, invs, { fileHashes: fh })), 'a')), ['signal container bottle-a-bundle']);
});

test('a bottle no longer declared: containers (agent first) then networks', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([bottle('a'), bottle('b')], snap, invs)), snap, invs);
  const p = plan(input([bottle('b')], snap, invs));
  const u = unit(p, 'a');
  assert.equal(u.state, 'removed');
  assert.deepEqual(lines(u), [
    'remove container bottle-a',
    'remove container bottle-a-bundle',
    'remove network bottle-a-egress',
    'remove network bottle-a-net',
  ]);
  assert.deepEqual(u.actions[3]!.after, [1, 2]);
  assert.equal(unit(p, 'b').state, 'in-sync');
});

test('foreign look-alikes and other instances are never touched', () => {
  const snap = empty();
  snap.containers.push(
    { id: 'f1', name: 'bottle-ghost', image: 'x', imageId: 'x', labels: {}, state: 'running', status: 'Up', networks: {}, ports: [] },
    { id: 'f2', name: 'bottle-other', image: 'x', imageId: 'x', labels: { [L.managedBy]: 'bottled', [L.instance]: 'elsewhere', [L.kind]: 'bottle', [L.bottle]: 'other' }, state: 'running', status: 'Up', networks: {}, ports: [] },
  );
  snap.networks.push({ id: 'n1', name: 'bottle-ghost-net', labels: {}, subnets: ['10.231.0.0/28'], internal: false, options: {} });
  const p = plan(input([bottle('b')], snap));
  assert.deepEqual(p.units.map((u) => u.unit), ['b']);
  // and the allocator skipped the foreign network's subnet
  assert.equal(field(unit(p, 'b').actions[0], 'network').subnet, '10.231.0.16/28');
});

test('a name taken by a foreign container holds the bottle with a collision', () => {
  const snap = empty();
  snap.containers.push({ id: 'f1', name: 'bottle-a-bundle', image: 'x', imageId: 'x', labels: {}, state: 'running', status: 'Up', networks: {}, ports: [] });
  const u = unit(plan(input([bottle('a')], snap)), 'a');
  assert.equal(u.state, 'held');
  assert.equal(u.held!.reason, 'NameCollision');
  assert.equal(u.actions.length, 0);
});

test('an invalid spec holds the bottle; a broken file holds what came from it; an empty source prunes nothing', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([bottle('a'), bottle('b'), bottle('c', {}, 'team/c.yaml')], snap, invs)), snap, invs);
  for (const [n, f] of [['a', 'a.yaml'], ['b', 'b.yaml'], ['c', 'team/c.yaml']] as const) invs.get(n)!.source = { file: f };

  const held = loadOf([bottle('c', {}, 'team/c.yaml')], { held: new Map([['Bottle/a', [{ file: 'a.yaml', line: 3, col: 5, message: 'spec.agent.image: expected string' }]]]), brokenFiles: new Set(['b.yaml']) });
  const p = plan(input([], snap, invs, { load: held }));
  assert.equal(unit(p, 'a').state, 'held');
  assert.equal(unit(p, 'a').held!.reason, 'InvalidSpec');
  assert.equal(unit(p, 'b').state, 'held');
  assert.equal(unit(p, 'c').state, 'in-sync');

  const none = plan(input([], snap, invs, { load: loadOf([], { fileCount: 0 }) }));
  for (const u of none.units) assert.equal(u.state, 'held');
  assert.ok(none.pruneGuard);
  const allowed = plan(input([], snap, invs, { load: loadOf([], { fileCount: 0 }), opts: { ...input([], snap).opts, allowEmpty: true } }));
  for (const u of allowed.units) assert.equal(u.state, 'removed');
});

test('labelled resources missing from the inventory are adopted, not recreated, and never signalled', () => {
  const withFile = bottle('a', { sidecars: [sidecar({ files: [{ path: '/f', content: Buffer.from('v1'), mode: 0o644, onChange: { type: 'signal', signal: 'SIGHUP' } }] })] });
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const fh = new Map<string, string | undefined>();
  apply(plan(input([withFile], snap, invs)), snap, invs, fh);
  const lost = new Map<string, Inventory>(); // the state dir was wiped; the files are back on disk
  // Taking over is explicit (--adopt): the inventory is the proof of ownership, and it is gone.
  const adopt = { opts: { ...input([], snap).opts, adopt: true } };
  assert.equal(unit(plan(input([withFile], snap, lost, { fileHashes: fh })), 'a').held?.reason, 'NameCollision', 'not without --adopt');
  const p = plan(input([withFile], snap, lost, { fileHashes: fh, ...adopt }));
  const u = unit(p, 'a');
  assert.ok(u.actions.length > 0);
  assert.ok(u.actions.every((a) => a.kind === 'adopt'), lines(u).join('; '));
  apply(p, snap, lost, fh);
  assert.equal(unit(plan(input([withFile], snap, lost, { fileHashes: fh })), 'a').state, 'in-sync');
});

test('a signal file that went missing on the host is rewritten and the container restarted (a new inode needs a new bind)', () => {
  const withFile = bottle('a', { sidecars: [sidecar({ files: [{ path: '/f', content: Buffer.from('v1'), mode: 0o644, onChange: { type: 'signal', signal: 'SIGHUP' } }] })] });
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const fh = new Map<string, string | undefined>();
  apply(plan(input([withFile], snap, invs)), snap, invs, fh);
  for (const k of fh.keys()) fh.set(k, undefined);
  invs.get('a')!.delivered = {};
  assert.deepEqual(lines(unit(plan(input([withFile], snap, invs, { fileHashes: fh })), 'a')), ['rewrite-file file bottle-a-bundle:/f', 'restart container bottle-a-bundle']);
});

test('a missing secret variable holds the bottle; the plan never shows secret values', () => {
  const withSecret = (v: string) => bottle('s', { agent: { image: 'agent:1', env: {}, secretEnv: { TOKEN: v }, files: [], networks: [], init: true } });
  assert.equal(unit(plan(input([withSecret('UNSET')], empty())), 's').held!.reason, 'SecretMissing');
  const p = plan(input([withSecret('SET')], empty()));
  assert.equal(unit(p, 's').state, 'changes');
  assert.ok(!JSON.stringify(planJson(p)).includes('hmac:x'));
});

test('stopped containers are started, a disconnected agent is reconnected, an exited sidecar too', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([bottle('a')], snap, invs)), snap, invs);
  const agent = snap.containers.find((c) => c.name === 'bottle-a')!;
  agent.state = 'exited';
  agent.exitCode = 137;
  delete agent.networks['bottle-a-net'];
  const u = unit(plan(input([bottle('a')], snap, invs)), 'a');
  assert.deepEqual(lines(u), ['connect container bottle-a', 'start container bottle-a']);
  assert.match(u.actions[1]!.cause, /exited, code 137/);
});

test('pinned ip placeholders resolve at plan time; an image missing on the engine holds the bottle', () => {
  const doc = bottle('p', {
    network: { subnet: '192.168.50.0/24' },
    sidecars: [sidecar({ ip: '192.168.50.2' })],
    agent: { image: 'agent:1', env: { PROXY: 'http://${sidecar.bundle.ip}:9099' }, secretEnv: {}, files: [], networks: [], init: true },
  });
  const u = unit(plan(input([doc], empty())), 'p');
  const agent = u.actions.find((a) => a.kind === 'create' && a.resource.name === 'bottle-p')!;
  assert.deepEqual((field(agent, 'container').config! as { env: Record<string, string> }).env, { PROXY: 'http://192.168.50.2:9099' });
  assert.equal(field(u.actions[0], 'network').subnet, '192.168.50.0/24');

  const missing = bottle('m', { agent: { image: 'nope:1', env: {}, secretEnv: {}, files: [], networks: [], init: true } });
  assert.equal(unit(plan(input([missing], empty())), 'm').held!.reason, 'ImageMissing');
});

test('recorded subnets never move, even when the network is gone', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([bottle('a'), bottle('b')], snap, invs)), snap, invs);
  const before = { ...invs.get('b')!.subnets };
  snap.networks = snap.networks.filter((n) => !n.name.startsWith('bottle-b'));
  snap.containers = snap.containers.filter((c) => !c.name.startsWith('bottle-b'));
  const u = unit(plan(input([bottle('a'), bottle('b'), bottle('c')], snap, invs)), 'b');
  assert.deepEqual(u.subnets, before);
});

test('pinned addresses: dynamic ones come from the other half; a container holding a pinned address leaves and rejoins', () => {
  const doc = bottle('p', { network: { subnet: '192.168.50.0/24' }, sidecars: [sidecar({ ip: '192.168.50.2' })] });
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const first = plan(input([doc], snap, invs));
  assert.equal(field(unit(first, 'p').actions[0], 'network').ipRange, '192.168.50.128/25');
  apply(first, snap, invs);
  // After an engine restart the agent started first and took the sidecar's address.
  const agent = snap.containers.find((c) => c.name === 'bottle-p')!;
  const side = snap.containers.find((c) => c.name === 'bottle-p-bundle')!;
  agent.networks['bottle-p-net']!.ip = '192.168.50.2';
  side.state = 'exited';
  side.exitCode = 128;
  const u = unit(plan(input([doc], snap, invs)), 'p');
  assert.deepEqual(lines(u), ['disconnect container bottle-p', 'start container bottle-p-bundle', 'connect container bottle-p']);
  assert.match(u.actions[0]!.cause, /holds 192\.168\.50\.2, pinned for bundle/);
});

test('dynamicRange keeps pinned addresses out of the dynamic half', async () => {
  const { dynamicRange } = await import('../../controller/subnets.js');
  assert.equal(dynamicRange('10.0.0.0/28', []), undefined);
  assert.equal(dynamicRange('10.0.0.0/28', ['10.0.0.2']), '10.0.0.8/29');
  assert.equal(dynamicRange('10.0.0.0/28', ['10.0.0.12']), '10.0.0.0/29');
  assert.equal(dynamicRange('10.0.0.0/28', ['10.0.0.2', '10.0.0.12']), undefined);
});

test('a smolvm subnet derived from the name skips 192.168.17.0/24 and subnets in use, and is stable', async () => {
  const { deriveSubnet } = await import('../../controller/subnets.js');
  const crypto = await import('node:crypto');
  // A name whose hash lands on 17 gets the next one.
  let name = '';
  for (let i = 0; ; i++) {
    name = `b${i}`;
    if ((crypto.createHash('sha256').update(name).digest().readUInt16BE(0) % 254) + 1 === 17) break;
  }
  assert.equal(deriveSubnet(name, []), '192.168.18.0/24');
  assert.equal(deriveSubnet(name, ['192.168.18.0/24']), '192.168.19.0/24');
  assert.equal(deriveSubnet('stable', []), deriveSubnet('stable', []));
  assert.equal(deriveSubnet(name, ['192.168.0.0/16']), undefined);
});

test('a recreated bottle network: the shared sidecar leaves it first and rejoins it after', async () => {
  const { renderShared } = await import('../../controller/render.js');
  const shared = renderShared(
    { kind: 'SharedSidecar', metadata: { name: 'cache', labels: {} }, origin: { file: 'c.yaml', line: 1, col: 1 }, spec: { image: 'side:1', alias: 'pkg-cache', env: {}, secretEnv: {}, files: [], ports: [], init: true } },
    { prefix: 'bottle', instance: INSTANCE, owner: OWNER, paths },
  );
  const user = (labels: Record<string, string>) => ({ ...bottle('u', { uses: ['cache'] }), metadata: { name: 'u', labels } });
  const withShared = (docs: BottleDoc[], snap: DockerSnapshot, invs: Map<string, Inventory>) => {
    const i = input(docs, snap, invs);
    i.desired.set(shared.unit, shared);
    return i;
  };
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(withShared([user({})], snap, invs)), snap, invs);
  const sc = snap.containers.find((c) => c.name === 'bottle-shared-cache')!;
  sc.networks['bottle-u-net'] = { networkId: snap.networks.find((n) => n.name === 'bottle-u-net')!.id, ip: '10.0.0.99' };
  assert.equal(unit(plan(withShared([user({})], snap, invs)), 'u').state, 'in-sync');
  // A label change recreates the bottle's networks (labels are create-time).
  const u = unit(plan(withShared([user({ team: 'x' })], snap, invs)), 'u');
  const l = lines(u);
  const leave = l.indexOf('disconnect container bottle-shared-cache');
  const recreate = l.indexOf('recreate network bottle-u-net');
  const rejoin = l.indexOf('connect container bottle-shared-cache');
  assert.ok(leave >= 0 && recreate > leave && rejoin > recreate, l.join('; '));
  assert.ok(!l.includes('remove container bottle-shared-cache'), 'the shared sidecar is never removed by a bottle');
});
