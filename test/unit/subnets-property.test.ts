// The allocator of issue 14 must choose exactly the subnets the old one chose (recorded subnets
// never move, and a bottle created before the upgrade gets what it would have got): random
// inputs, both implementations, the same answer. Plus the figure that motivated it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ObservedNetwork } from '../../resources/docker/driver.js';
import type { DesiredNetwork, DesiredUnit } from '../../controller/desired.js';
import { L } from '../../controller/labels.js';
import { SnapshotIndex } from '../../controller/plan-index.js';
import { allocateSubnets } from '../../controller/plan-subnets.js';
import type { PlanInput } from '../../controller/plan.js';
import type { Inventory } from '../../state/inventory.js';
import { referenceAllocateSubnets } from '../fixtures/allocator-reference.js';
import { AddressSpace } from '../../controller/address-space.js';

const INSTANCE = 'prop';
const OWNER = 'aaaaaaaaaaaaaaaa';

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible seed. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function world(seed: number) {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)]!;
  const block = (second: number, prefix: number) => {
    const size = 2 ** (32 - prefix);
    const n = (10 * 2 ** 24 + second * 2 ** 16) + int(2 ** 16 / size) * size;
    return `${[24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.')}/${prefix}`;
  };
  const second = 200 + int(4);
  const pool = pick([`10.${second}.0.0/16`, `10.${second}.0.0/20`, `10.${second}.16.0/22`]);
  const hostSubnets = [...Array(int(3))].map(() => pick([block(second, 24), '172.17.0.0/16', '192.168.1.0/24', block(second, 26)]));
  const units: DesiredUnit[] = [];
  const nUnits = int(30);
  for (let i = 0; i < nUnits; i++) {
    const name = `b${i}`;
    const smolvm = r() < 0.15;
    const nets: DesiredNetwork[] = [{ type: 'network', name: `p-${name}-net`, role: 'network', internal: !smolvm, options: {}, labels: {}, allocPrefix: smolvm ? 24 : pick([26, 27, 28]), ...(smolvm && { deriveFrom: name }), ...(r() < 0.1 && { fixedSubnet: block(second, 28) }) }];
    if (!smolvm && r() < 0.6) nets.push({ type: 'network', name: `p-${name}-egress`, role: 'egress-network', internal: false, options: {}, labels: {}, allocPrefix: 28 });
    units.push({ unit: name, kind: 'bottle', name, origin: { file: `${name}.yaml`, line: 1, col: 1 }, backend: smolvm ? 'smolvm' : 'docker', suspend: false, networks: nets, containers: [], uses: [] });
  }
  const allNets = units.flatMap((u) => u.networks.map((n) => ({ u, n })));
  const networks: ObservedNetwork[] = [];
  for (let i = 0; i < int(40); i++) {
    const ours = allNets.length && r() < 0.4 ? pick(allNets) : undefined;
    const subnets = r() < 0.1 ? ['fd00::/64'] : r() < 0.1 ? [block(second, pick([24, 28])), block(second, 30)] : [pick([block(second, pick([22, 24, 26, 28, 29, 30])), `192.168.${int(256)}.0/24`])];
    networks.push({
      id: `n${i}`,
      name: ours && r() < 0.8 ? ours.n.name : `foreign-${i}`,
      labels: ours ? { [L.managedBy]: 'bottled', [L.instance]: INSTANCE, [L.kind]: 'bottle', [L.bottle]: ours.u.unit, [L.owner]: OWNER } : {},
      subnets,
      internal: false,
      options: {},
    });
  }
  const inventories = new Map<string, Inventory>();
  for (const { u, n } of allNets) {
    if (r() < 0.3) {
      const inv = inventories.get(u.unit) ?? { version: 1 as const, unit: u.unit, subnets: {}, resources: {}, delivered: {} };
      inv.subnets[n.name] = r() < 0.5 ? block(second, 28) : `192.168.${int(256)}.0/24`;
      inventories.set(u.unit, inv);
    }
  }
  if (r() < 0.3) inventories.set('gone', { version: 1, unit: 'gone', subnets: { 'p-gone-net': block(second, 28) }, resources: {}, delivered: {} });
  const input = {
    desired: new Map(units.map((u) => [u.unit, u])),
    snapshot: { networks, containers: [], images: new Map() },
    inventories,
    opts: { prefix: 'p', instance: INSTANCE, owner: OWNER, subnetPool: pool, publishHost: '127.0.0.1', allowEmpty: false, hostSubnets },
  } as unknown as PlanInput;
  const index = new SnapshotIndex(input.snapshot, { instance: INSTANCE, owner: OWNER, inventories, imageLabels: new Map(), adopt: false, declared: () => true });
  return { input, index };
}

test('the new allocator picks the same subnets as the old one on 2000 random engines', () => {
  let allocated = 0;
  for (let seed = 1; seed <= 2000; seed++) {
    const { input, index } = world(seed);
    const want = Object.fromEntries(referenceAllocateSubnets(input, index));
    const got = Object.fromEntries(allocateSubnets(input, index));
    assert.deepEqual(got, want, `seed ${seed}`);
    allocated += Object.values(got).filter((x) => x.subnet).length;
  }
  assert.ok(allocated > 10_000, `the inputs exercise the allocator (${allocated} subnets)`);
});

test('AddressSpace: overlap in both directions, host bits, IPv6 ignored, first fit jumps past what is in use', () => {
  const s = new AddressSpace();
  s.add('10.0.0.0/24', 'a');
  s.add('10.0.2.5/30', 'b'); // host bits: the block it lies in
  s.add('fd00::/64', 'v6');
  assert.ok(s.overlaps('10.0.0.128/25'));
  assert.ok(s.overlaps('10.0.0.0/16'));
  assert.ok(s.overlaps('10.0.2.4/32'));
  assert.ok(!s.overlaps('10.0.1.0/24'));
  assert.ok(!s.overlaps('10.0.0.0/24', (o) => o === 'a'));
  assert.equal(s.firstFree('10.0.0.0/16', 24), '10.0.1.0/24');
  s.add('10.0.1.0/24');
  assert.equal(s.firstFree('10.0.0.0/16', 24), '10.0.3.0/24');
  assert.equal(s.firstFree('10.0.0.0/16', 30), '10.0.2.0/30');
  assert.deepEqual(s.overlappingOwners('10.0.0.0/22').sort(), ['a', 'b']);
});
