import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { matches, parseSelector, selectDocuments, SelectorError } from '../../specs/selector.js';
import { fleetDiagnostics, readFleet } from '../../specs/fleet.js';
import { plan } from '../../controller/plan.js';
import type { BottleDoc } from '../../specs/model.js';
import type { Inventory } from '../../state/inventory.js';
import { apply, bottle, empty, input, loadOf, unit } from '../fixtures/plan-world.js';

const labelled = (name: string, labels: Record<string, string>): BottleDoc => ({ ...bottle(name), metadata: { name, labels } });

test('selectors in kubectl equality syntax: =, ==, !=, all must hold; a missing label is != anything', () => {
  const s = parseSelector('host=a, tier!=gpu,zone==eu');
  assert.equal(s.text, 'host=a,tier!=gpu,zone=eu');
  assert.ok(matches(s, { host: 'a', zone: 'eu' }));
  assert.ok(!matches(s, { host: 'a', zone: 'eu', tier: 'gpu' }));
  assert.ok(!matches(s, { host: 'b', zone: 'eu' }));
  assert.ok(!matches(s, { zone: 'eu' }));
  assert.ok(matches(undefined, {}), 'no selector serves every bottle');
  for (const bad of ['host', 'host=a,', '=a', 'ho st=a', 'host=a=b', 'host in (a,b)']) assert.throws(() => parseSelector(bad), SelectorError, bad);
});

test('documents of other hosts look undeclared here: a bottle that no longer matches is removed, with its cause', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const a = labelled('one', { host: 'a' });
  apply(plan(input([a], snap, invs)), snap, invs);
  // The commit that moves it to host b: the same bottle, another label.
  const moved = labelled('one', { host: 'b' });
  const load = selectDocuments(loadOf([moved, labelled('two', { host: 'a' })]), parseSelector('host=a'));
  assert.deepEqual([...load.bottles.keys()], ['two']);
  assert.deepEqual([...load.elsewhere!], ['Bottle/one']);
  const u = unit(plan(input([], snap, invs, { load })), 'one');
  assert.equal(u.state, 'removed');
  assert.match(u.actions[0]!.cause, /for another host: it does not match --selector host=a/);
});

test('a SharedSidecar is served wherever a bottle that uses it is, and reported by --fleet only when it runs nowhere', () => {
  const cache = { kind: 'SharedSidecar' as const, metadata: { name: 'cache', labels: {} }, origin: { file: 'cache.yaml', line: 1, col: 1 }, spec: { image: 'side:1', alias: 'pkg-cache', env: {}, secretEnv: {}, files: [], ports: [], init: true } };
  const orphan = { ...cache, metadata: { name: 'orphan', labels: {} }, origin: { ...cache.origin, file: 'orphan.yaml' } };
  const user = { ...labelled('u', { host: 'b' }), spec: { ...bottle('u').spec, uses: ['cache'] } };
  const all = loadOf([user], { shared: new Map([['cache', cache], ['orphan', orphan]]) });
  assert.deepEqual([...selectDocuments(all, parseSelector('host=b')).shared.keys()], ['cache']);
  assert.deepEqual([...selectDocuments(all, parseSelector('host=a')).shared.keys()], []);
  const diags = fleetDiagnostics(all, [{ selector: parseSelector('host=a'), line: 1 }, { selector: parseSelector('host=b'), line: 2 }]);
  assert.deepEqual(diags.map((d) => d.file), ['orphan.yaml']);
});

test('a selector that matches nothing prunes nothing without --allow-empty (a typo, more likely than an empty host)', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  apply(plan(input([labelled('one', { host: 'a' })], snap, invs)), snap, invs);
  const load = selectDocuments(loadOf([labelled('one', { host: 'a' })]), parseSelector('host=A'));
  const p = plan(input([], snap, invs, { load }));
  assert.match(p.pruneGuard ?? '', /no document in bottles.d matches --selector host=A: nothing is pruned without --allow-empty/);
  assert.notEqual(unit(p, 'one').state, 'removed');
});

test('validate --fleet: a bottle no selector matches, or two do, is reported at its file', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-fleet-'));
  const file = path.join(dir, 'fleet');
  await fs.writeFile(file, '# hosts\nhost=a\nhost=b\n\nteam=x\n');
  const fleet = await readFleet(file);
  assert.deepEqual(fleet.map((e) => [e.selector.text, e.line]), [['host=a', 2], ['host=b', 3], ['team=x', 5]]);
  const load = loadOf([labelled('ok', { host: 'a' }), labelled('typo', { hots: 'a' }), labelled('twice', { host: 'b', team: 'x' })]);
  const diags = fleetDiagnostics(load, fleet);
  assert.deepEqual(diags.map((d) => `${d.file}: ${d.message}`), [
    'typo.yaml: Bottle typo (labels: hots=a) matches no selector of the fleet: no host would run it',
    'twice.yaml: Bottle twice (labels: host=b,team=x) matches 2 selectors of the fleet (host=b; team=x): it would run on each of those hosts',
  ]);
  await fs.writeFile(file, 'host=a\nhost\n');
  await assert.rejects(readFleet(file), /fleet:2: "host" is not KEY=VALUE/);
  await fs.rm(dir, { recursive: true, force: true });
});

// Found by an adversarial try of the selector.
const heldDoc = (key: string) => new Map([[key, [{ file: 'x.yaml', line: 3, col: 1, message: 'bad' }]]]);
const cacheDoc = { kind: 'SharedSidecar' as const, metadata: { name: 'cache', labels: {} }, origin: { file: 'cache.yaml', line: 1, col: 1 }, spec: { image: 'side:1', alias: 'pkg-cache', env: {}, secretEnv: {}, files: [], ports: [], init: true } };

test('a SharedSidecar stays while a bottle held for an invalid file is still joined to it', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const sel = parseSelector('host=a');
  const u = { ...labelled('u', { host: 'a' }), spec: { ...bottle('u').spec, uses: ['cache'] } };
  apply(plan(input([], snap, invs, { load: selectDocuments(loadOf([u], { shared: new Map([['cache', cacheDoc]]) }), sel) })), snap, invs);
  assert.ok(snap.containers.find((c) => c.name === 'bottle-shared-cache')?.networks['bottle-u-net'], 'joined');
  // u.yaml becomes invalid: u is held, and nothing served here uses cache any more.
  const p = plan(input([], snap, invs, { load: selectDocuments(loadOf([labelled('k', { host: 'a' })], { fileCount: 3, shared: new Map([['cache', cacheDoc]]), held: heldDoc('Bottle/u') }), sel) }));
  assert.equal(unit(p, 'u').state, 'held');
  const c = unit(p, 'shared.cache');
  assert.equal(c.held?.reason, 'SharedSidecarInUse');
  assert.match(c.held?.message ?? '', /still joined to u, which stays/);
  // The bottle moving away in the same pass lets it go.
  const away = plan(input([], snap, invs, { load: selectDocuments(loadOf([{ ...u, metadata: { name: 'u', labels: { host: 'b' } } }, labelled('k', { host: 'a' })], { shared: new Map([['cache', cacheDoc]]) }), sel) }));
  assert.equal(unit(away, 'u').state, 'removed');
  assert.equal(unit(away, 'shared.cache').state, 'removed');
});

test('an invalid file of any host does not defeat the guard against a selector that matches nothing', () => {
  const snap = empty();
  const invs = new Map<string, Inventory>();
  const docs = [labelled('one', { host: 'alpha' }), labelled('two', { host: 'alpha' })];
  apply(plan(input(docs, snap, invs)), snap, invs);
  const load = selectDocuments(loadOf(docs, { fileCount: 3, held: heldDoc('Bottle/theirs') }), parseSelector('host=alpah'));
  const p = plan(input([], snap, invs, { load }));
  assert.match(p.pruneGuard ?? '', /matches --selector host=alpah/);
  assert.ok(p.units.every((u) => u.state !== 'removed'));
});

test('selector values follow kubectl: at most 63 characters, alphanumeric at both ends; an empty value is allowed', () => {
  for (const ok of ['host=a-b.c_d', 'host=', 'host==A9']) assert.doesNotThrow(() => parseSelector(ok), ok);
  for (const bad of ['host=ä', 'host=a)', `host=${'x'.repeat(64)}`, 'host=-a', 'host=a.']) assert.throws(() => parseSelector(bad), SelectorError, bad);
});

test('a fleet file that names one selector twice says which line repeats which', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-fleet-'));
  const file = path.join(dir, 'fleet');
  await fs.writeFile(file, 'host=a\nhost==a\n');
  await assert.rejects(readFleet(file), /fleet:2: repeats line 1 \(host=a\)/);
  await fs.rm(dir, { recursive: true, force: true });
});
