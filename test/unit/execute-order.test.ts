// The executor honours `after`: independent chains of one bottle run side by side, a dependent
// action waits, and a failure starts nothing more. The Engine is replaced by a recorder here: what
// is under test is the order of calls, which the real engine would only blur.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { executeUnit, type ExecContext } from '../../controller/execute.js';
import { makeLogger } from '../../controller/log.js';
import { ActionList } from '../../controller/plan-actions.js';
import type { UnitPlan } from '../../controller/plan-types.js';
import { EventLog } from '../../state/events.js';
import { readInventory } from '../../state/inventory.js';
import { StatePaths } from '../../state/paths.js';

/** A Docker driver whose `start` of a name waits until the test releases it. */
function recorder() {
  const calls: string[] = [];
  const gates = new Map<string, () => void>();
  let inFlight = 0;
  let maxInFlight = 0;
  const docker = {
    start: async (name: string) => {
      calls.push(`start ${name}`);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((r) => gates.set(name, r));
      inFlight--;
      if (name.startsWith('bad')) throw new Error(`${name} failed`);
      calls.push(`started ${name}`);
    },
    update: async (name: string) => {
      calls.push(`update ${name}`);
    },
  };
  const release = async (name: string) => {
    for (let i = 0; i < 100 && !gates.has(name); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(gates.has(name), `${name} was started`);
    gates.get(name)!();
    gates.delete(name);
  };
  return { docker, calls, release, started: (name: string) => gates.has(name), max: () => maxInFlight };
}

async function context(docker: unknown): Promise<{ ctx: ExecContext; paths: StatePaths; dir: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-exec-'));
  const paths = new StatePaths(dir);
  const ctx = {
    docker,
    drivers: new Map(),
    paths,
    events: new EventLog(paths),
    log: makeLogger('silent'),
    reconcileId: 't',
    publishHost: '127.0.0.1',
    waitTimeoutMs: 1000,
    stopTimeoutSec: 1,
  } as unknown as ExecContext;
  return { ctx, paths, dir };
}

function unitOf(acts: ActionList): UnitPlan {
  return { unit: 'b', kind: 'bottle', name: 'b', state: 'changes', actions: acts.list, subnets: {} };
}

const start = (acts: ActionList, name: string, after: number[] = []) => acts.add({ kind: 'start', on: 'container', resource: { type: 'container', name }, cause: 't', after });

test('two independent chains run side by side; what waits for both starts after both', async () => {
  const r = recorder();
  const { ctx, dir } = await context(r.docker);
  const acts = new ActionList();
  const a = start(acts, 'side-a');
  const b = start(acts, 'side-b');
  start(acts, 'agent', [a.id, b.id]);
  const done = executeUnit(unitOf(acts), undefined, ctx);
  await r.release('side-b'); // released in the other order: neither waits for the other
  await r.release('side-a');
  await r.release('agent');
  const res = await done;
  assert.equal(res.ok, true);
  assert.equal(res.executed, 3);
  assert.equal(r.max(), 2, 'the two sidecars were in flight together');
  assert.ok(r.calls.indexOf('start agent') > r.calls.indexOf('started side-a') && r.calls.indexOf('start agent') > r.calls.indexOf('started side-b'), r.calls.join(', '));
  await fs.rm(dir, { recursive: true, force: true });
});

test('a failure starts nothing more, waits for what runs, and keeps the inventory it wrote', async () => {
  const r = recorder();
  const { ctx, paths, dir } = await context(r.docker);
  const acts = new ActionList();
  const bad = start(acts, 'bad-side');
  start(acts, 'slow-side');
  start(acts, 'agent', [bad.id]);
  acts.add({ kind: 'adopt', on: 'inventory', resource: { type: 'network', name: 'n' }, cause: 't', adopt: { type: 'network', role: 'network' } });
  const done = executeUnit(unitOf(acts), undefined, ctx);
  await r.release('bad-side');
  assert.ok(r.started('slow-side'), 'the independent step still runs');
  await r.release('slow-side');
  const res = await done;
  assert.equal(res.ok, false);
  assert.match(res.error ?? '', /bad-side failed/);
  assert.ok(!r.calls.includes('start agent'), 'what waited for the failed step never started');
  assert.ok(r.calls.includes('started slow-side'));
  // The adopt depends on nothing and ran before the failure: its record is on disk.
  assert.equal((await readInventory(paths, 'b'))?.resources['network/n']?.type, 'network');
  await fs.rm(dir, { recursive: true, force: true });
});

test('actions that clear the way (a removal, a disconnect) come before what follows them', () => {
  const acts = new ActionList();
  const rm = acts.add({ kind: 'remove', on: 'container', resource: { type: 'container', name: 'old' }, cause: 't' });
  const net = acts.add({ kind: 'create', on: 'network', resource: { type: 'network', name: 'n' }, cause: 't', network: {} as never });
  const next = start(acts, 'new');
  assert.deepEqual(next.after, [rm.id, net.id]);
});
