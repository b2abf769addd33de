import { test } from 'node:test';
import assert from 'node:assert/strict';
import { passNotices, type NotifyState } from '../../controller/notify-pass.js';
import { notificationBody } from '../../controller/notify.js';
import type { Plan, UnitPlan } from '../../controller/plan-types.js';
import { bottle, loadOf } from '../fixtures/plan-world.js';

const held = (name: string, reason: 'DeletionGuard' | 'InvalidSpec', source = `${name}.yaml`): UnitPlan => ({ unit: name, kind: 'bottle', name, source, state: 'held', held: { reason, message: 'm', failure: true }, actions: [], subnets: {} });
const T = '2026-12-01T12:00:00.000Z';
const all = () => true;

test('a new revision is said once, and not again by a reconciler that restarts', () => {
  const load = loadOf([bottle('a'), bottle('b')], { revision: 'abcdef0123456789' });
  const first = passNotices({ units: [] }, load, { holds: {} }, T, all);
  assert.deepEqual(first.notices.map((n) => [n.event, n.message]), [['applied', 'revision abcdef012345 applied (2 bottles declared)']]);
  assert.deepEqual(passNotices({ units: [] }, load, first.next, T, all).notices, []);
});

test('an invalid file: one message per file while it stays invalid, released when it is fixed', () => {
  const bad = loadOf([], { diagnostics: [{ file: 'x.yaml', line: 3, col: 5, message: 'must be a string' }], fileCount: 1 });
  const p: Plan = { units: [held('x', 'InvalidSpec', 'x.yaml')] };
  const a = passNotices(p, bad, { holds: {} }, T, all);
  assert.deepEqual(a.notices.map((n) => [n.event, n.reason, n.message, n.bottles]), [['held', 'InvalidSpec', 'x.yaml:3:5: must be a string', ['x']]]);
  assert.deepEqual(passNotices(p, bad, a.next, T, all).notices, []);
  const fixed = passNotices({ units: [] }, loadOf([bottle('x')]), a.next, T, all);
  assert.deepEqual(fixed.notices.map((n) => [n.event, n.message]), [['released', 'x.yaml is valid again (or gone)']]);
  assert.deepEqual(fixed.next.holds, {});
});

test('the deletion guard ends only when a pass that plans the bottles it held holds none of them', () => {
  const g: Plan = { units: [held('a', 'DeletionGuard'), held('b', 'DeletionGuard')], pruneGuard: 'this pass would remove 2 bottles' };
  const s1 = passNotices(g, loadOf([bottle('c')]), { holds: {} }, T, all);
  assert.deepEqual(s1.notices.map((n) => [n.event, n.bottles]), [['held', ['a', 'b']]]);
  // A watch-mode pass of c alone says nothing about the guard.
  const s2 = passNotices({ units: [] }, loadOf([bottle('c')]), s1.next, T, (u) => u === 'c');
  assert.deepEqual(s2.notices, []);
  assert.deepEqual(s2.next.holds.DeletionGuard?.bottles, ['a', 'b']);
  // a is let go (removed), b not yet planned: still held.
  const s3 = passNotices({ units: [] }, loadOf([bottle('c')]), s2.next, T, (u) => u === 'a');
  assert.deepEqual(s3.notices, []);
  const s4 = passNotices({ units: [] }, loadOf([bottle('c')]), s3.next, T, (u) => u === 'b');
  assert.deepEqual(s4.notices.map((n) => [n.event, n.reason]), [['released', 'DeletionGuard']]);
});

test('the Slack body of pass events', () => {
  const state: NotifyState = { holds: {} };
  const n = passNotices({ units: [held('a', 'DeletionGuard')], pruneGuard: 'x' }, loadOf([bottle('z')]), state, T, all).notices[0]!;
  assert.match((JSON.parse(notificationBody(n, 'slack')) as { text: string }).text, /^:no_entry: pass held: DeletionGuard: m \(holds a\)$/);
});

test('Slack text from spec files cannot mention or link: <, > and & are escaped', () => {
  const body = notificationBody({ event: 'held', reason: 'InvalidSpec', message: 'x.yaml:1:1: "<!channel> <https://evil|ok> & co"', time: T }, 'slack');
  const text = (JSON.parse(body) as { text: string }).text;
  assert.ok(!/[<>]/.test(text), text);
  assert.match(text, /&lt;!channel&gt; &lt;https:\/\/evil\|ok&gt; &amp; co/);
});
