import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, SimulatedClock } from 'xstate';
import { backoffDelay, lifecycleMachine, type PassOutcome } from '../../controller/lifecycle.js';

/** Drive one bottle's lifecycle with a simulated clock: no sleeps, no Docker. */
function harness() {
  const clock = new SimulatedClock();
  const requests: number[] = [];
  const aborts: number[] = [];
  let now = 0;
  const actor = createActor(
    lifecycleMachine({
      requestPass: (_u, g) => requests.push(g),
      abortPass: () => aborts.push(now),
      now: () => now,
    }),
    { input: { unit: 'b' }, clock },
  );
  actor.start();
  const advance = (ms: number) => {
    now += ms;
    clock.increment(ms);
  };
  const done = (outcome: PassOutcome) => actor.send({ type: 'PASS_DONE', generation: requests.at(-1)!, outcome });
  const state = () => String(actor.getSnapshot().value);
  return { actor, requests, aborts, advance, done, state, ctx: () => actor.getSnapshot().context };
}

const fail: PassOutcome = { kind: 'failed', reason: 'ImageMissing', error: 'image x not found' };

test('backoff grows exponentially from 1 s, capped at 5 min, and resets on success', () => {
  const h = harness();
  assert.equal(h.state(), 'reconciling');
  assert.equal(h.requests.length, 1);
  const waits: number[] = [];
  for (let i = 0; i < 11; i++) {
    h.done(fail);
    assert.equal(h.state(), 'backoff');
    const expected = backoffDelay(i + 1);
    waits.push(expected);
    assert.equal(h.ctx().nextRetryAt, 0 + expected + waits.slice(0, -1).reduce((a, b) => a + b, 0));
    h.advance(expected - 1);
    assert.equal(h.state(), 'backoff', `still waiting 1 ms before retry ${i + 1}`);
    h.advance(1);
    assert.equal(h.state(), 'reconciling');
  }
  assert.deepEqual(waits.slice(0, 5), [1000, 2000, 4000, 8000, 16000]);
  assert.equal(waits.at(-1), 300_000);
  h.done({ kind: 'ready' });
  assert.equal(h.state(), 'ready');
  assert.equal(h.ctx().attempt, 0);
  h.actor.send({ type: 'DRIFT' });
  h.done(fail);
  assert.equal(h.ctx().attempt, 1, 'a new failure starts again at 1 s');
});

test('a spec change cancels a backoff at once: the newest spec wins', () => {
  const h = harness();
  h.done(fail);
  assert.equal(h.state(), 'backoff');
  const before = h.requests.length;
  h.actor.send({ type: 'SPEC_CHANGED' });
  assert.equal(h.state(), 'reconciling');
  assert.equal(h.requests.length, before + 1);
  assert.equal(h.ctx().attempt, 0);
  // The old timer no longer fires a pass.
  h.advance(10_000);
  assert.equal(h.requests.length, before + 1);
});

test('a spec change during a pass aborts it and requests a new one; the stale report is ignored', () => {
  const h = harness();
  const first = h.requests.at(-1)!;
  h.actor.send({ type: 'SPEC_CHANGED' });
  assert.equal(h.aborts.length, 1);
  assert.equal(h.requests.length, 2);
  h.actor.send({ type: 'PASS_DONE', generation: first, outcome: { kind: 'aborted' } });
  assert.equal(h.state(), 'reconciling', 'stale report ignored');
  h.done({ kind: 'ready' });
  assert.equal(h.state(), 'ready');
});

test('drift and resync do not shorten a backoff', () => {
  const h = harness();
  h.done(fail);
  const n = h.requests.length;
  h.actor.send({ type: 'DRIFT' });
  h.actor.send({ type: 'RESYNC' });
  assert.equal(h.state(), 'backoff');
  assert.equal(h.requests.length, n);
});

test('stalled (invalid spec): no retries, not even on resync, until the input changes', () => {
  const h = harness();
  h.done({ kind: 'stalled', reason: 'InvalidSpec', message: 'a.yaml:3:5: bad' });
  assert.equal(h.state(), 'stalled');
  const n = h.requests.length;
  h.advance(3_600_000);
  h.actor.send({ type: 'DRIFT' });
  h.actor.send({ type: 'RESYNC' });
  assert.equal(h.requests.length, n);
  h.actor.send({ type: 'SPEC_CHANGED' });
  assert.equal(h.state(), 'reconciling');
  assert.equal(h.requests.length, n + 1);
});

test('a name collision may clear on a resync, but not on drift', () => {
  const h = harness();
  h.done({ kind: 'stalled', reason: 'NameCollision', message: 'taken' });
  const n = h.requests.length;
  h.actor.send({ type: 'DRIFT' });
  assert.equal(h.requests.length, n);
  h.actor.send({ type: 'RESYNC' });
  assert.equal(h.state(), 'reconciling');
});

test('suspended: nothing happens until the spec changes; deletion goes through deleting', () => {
  const h = harness();
  h.done({ kind: 'held', reason: 'Suspended', message: 'spec.suspend' });
  assert.equal(h.state(), 'suspended');
  const n = h.requests.length;
  h.actor.send({ type: 'DRIFT' });
  h.actor.send({ type: 'RESYNC' });
  h.advance(600_000);
  assert.equal(h.requests.length, n);
  h.actor.send({ type: 'DELETED' });
  assert.equal(h.state(), 'deleting');
  assert.equal(h.requests.length, n + 1);
  h.done({ kind: 'removed' });
  assert.equal(h.actor.getSnapshot().status, 'done');
});

test('an engine outage waits for the engine, without backoff or retries of its own', () => {
  const h = harness();
  h.done({ kind: 'engine-down' });
  assert.equal(h.state(), 'waitingForEngine');
  const n = h.requests.length;
  h.advance(600_000);
  assert.equal(h.requests.length, n);
  h.actor.send({ type: 'RESYNC' });
  assert.equal(h.state(), 'reconciling');
});

test('drift during a pass asks for one more pass after it (the running one may have looked too early)', () => {
  const h = harness();
  const first = h.requests.at(-1)!;
  h.actor.send({ type: 'DRIFT' });
  h.actor.send({ type: 'DRIFT' });
  assert.equal(h.aborts.length, 0, 'drift does not abort');
  h.actor.send({ type: 'PASS_DONE', generation: first, outcome: { kind: 'ready' } });
  assert.equal(h.state(), 'reconciling', 'the report of the earlier pass does not settle it');
  h.done({ kind: 'ready' });
  assert.equal(h.state(), 'ready');
});

test('a pass that asks to plan again gets another pass at once, but not forever', () => {
  const h = harness();
  for (let i = 0; i < 3; i++) {
    const n = h.requests.length;
    h.done({ kind: 'requeue' });
    assert.equal(h.state(), 'reconciling');
    assert.equal(h.requests.length, n + 1);
  }
  h.done({ kind: 'requeue' });
  assert.equal(h.state(), 'ready', 'a fourth request in a row is not honoured');
});
