import { test } from 'node:test';
import assert from 'node:assert/strict';
import { driftOfEvent, unitsOfEvent, type UnitLookup } from '../../controller/docker-trigger.js';
import { L } from '../../controller/labels.js';
import { unitKey } from '../../controller/unit-key.js';

type Event = Parameters<typeof unitsOfEvent>[0];

const INSTANCE = 'test';

/** What a controller would have learned from its passes: one network and one container of bottle b1. */
const lookup: UnitLookup = {
  unitsOfNetwork: (name) => (name === 'bottle-b1' ? [unitKey.bottle('b1')] : []),
  unitOfContainer: (id) => (id === 'c0ffee' ? unitKey.bottle('b1') : undefined),
  unitOfWorkload: (backend, name) => (backend === 'swarm' && name === 'bottle-s1-proxy' ? unitKey.bottle('s1') : undefined),
  unitsOfBackend: (backend) => (backend === 'swarm' ? [unitKey.bottle('s1'), unitKey.bottle('s2')] : []),
};

function containerEvent(action: string, labels: Record<string, string>, name = 'bottle-x'): Event {
  return { type: 'container', action, id: 'abc', attributes: { name, ...labels }, time: 0 };
}

const owned = (kind: 'bottle' | 'shared', name: string) => ({ [L.managedBy]: 'bottled', [L.instance]: INSTANCE, [L.kind]: kind, [L.bottle]: name });

test('a shared sidecar container routes to its shared unit key', () => {
  assert.deepEqual(unitsOfEvent(containerEvent('die', owned('shared', 'dns')), INSTANCE, lookup), [unitKey.shared('dns')]);
  assert.deepEqual(unitsOfEvent(containerEvent('die', owned('shared', 'dns')), INSTANCE, lookup), ['shared.dns']);
});

test('a bottle container routes to its bottle key', () => {
  assert.deepEqual(unitsOfEvent(containerEvent('stop', owned('bottle', 'b2')), INSTANCE, lookup), ['b2']);
});

test('a container not ours routes to nothing', () => {
  assert.deepEqual(unitsOfEvent(containerEvent('die', {}), INSTANCE, lookup), []);
  assert.deepEqual(unitsOfEvent(containerEvent('die', { ...owned('bottle', 'b2'), [L.instance]: 'other' }), INSTANCE, lookup), []);
  assert.deepEqual(unitsOfEvent(containerEvent('die', { ...owned('bottle', 'b2'), [L.managedBy]: 'someone' }), INSTANCE, lookup), []);
  assert.deepEqual(unitsOfEvent(containerEvent('die', { ...owned('bottle', 'b2'), [L.kind]: 'odd' }), INSTANCE, lookup), []);
});

test('a network connect routes by the connected container ID, even on a network not ours', () => {
  const e: Event = { type: 'network', action: 'connect', id: 'n1', attributes: { name: 'someone-elses', container: 'c0ffee', type: 'bridge' }, time: 0 };
  assert.deepEqual(unitsOfEvent(e, INSTANCE, lookup), ['b1']);
});

test('a network event routes by network name, once per unit', () => {
  const e: Event = { type: 'network', action: 'disconnect', id: 'n1', attributes: { name: 'bottle-b1', container: 'c0ffee' }, time: 0 };
  assert.deepEqual(unitsOfEvent(e, INSTANCE, lookup), ['b1']);
  const stranger: Event = { type: 'network', action: 'connect', id: 'n2', attributes: { name: 'bridge', container: 'feed' }, time: 0 };
  assert.deepEqual(unitsOfEvent(stranger, INSTANCE, lookup), []);
});

test('only drift actions ask for a pass; a container that died is named for inspection', () => {
  assert.deepEqual(driftOfEvent(containerEvent('start', owned('bottle', 'b2')), INSTANCE, lookup), { units: [] });
  assert.deepEqual(driftOfEvent(containerEvent('die', owned('bottle', 'b2'), 'bottle-b2-agent'), INSTANCE, lookup), { units: ['b2'], died: 'bottle-b2-agent' });
  assert.deepEqual(driftOfEvent(containerEvent('stop', owned('bottle', 'b2')), INSTANCE, lookup), { units: ['b2'], died: undefined });
  assert.deepEqual(driftOfEvent(containerEvent('health_status: unhealthy', owned('shared', 'dns')), INSTANCE, lookup).units, ['shared.dns']);
});

test('a start or a restart-policy update is drift only for a bottle kept stopped (expired), whose container is then inspected', () => {
  const kept = { ...lookup, isStoppedOnPurpose: (u: string) => u === 'b2' };
  assert.deepEqual(driftOfEvent(containerEvent('start', owned('bottle', 'b2'), 'bottle-b2'), INSTANCE, kept), { units: ['b2'], died: 'bottle-b2' });
  assert.deepEqual(driftOfEvent(containerEvent('update', owned('bottle', 'b2'), 'bottle-b2'), INSTANCE, kept), { units: ['b2'], died: 'bottle-b2' });
  assert.deepEqual(driftOfEvent(containerEvent('update', owned('bottle', 'b3'), 'bottle-b3'), INSTANCE, kept), { units: [] });
});

test('a Swarm manager: a service removed or updated routes to its bottle; a node going down to every swarm bottle', () => {
  const svc = (action: string, name: string): Event => ({ type: 'service', action, id: 'svc', attributes: { name }, time: 0 });
  assert.deepEqual(driftOfEvent(svc('remove', 'bottle-s1-proxy'), INSTANCE, lookup).units, ['s1']);
  assert.deepEqual(driftOfEvent(svc('update', 'bottle-s1-proxy'), INSTANCE, lookup).units, ['s1']);
  assert.deepEqual(driftOfEvent(svc('remove', 'someone-elses'), INSTANCE, lookup).units, []);
  assert.deepEqual(driftOfEvent(svc('create', 'bottle-s1-proxy'), INSTANCE, lookup).units, [], 'a create is our own');
  const node: Event = { type: 'node', action: 'update', id: 'n', attributes: { name: 'n2', 'state.new': 'down' }, time: 0 };
  assert.deepEqual(driftOfEvent(node, INSTANCE, lookup).units, ['s1', 's2']);
});
