import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readInventory, resourceKey } from '../../state/inventory.js';
import { StatePaths } from '../../state/paths.js';

test('an inventory from before networks had their own key is read with them under network/<name>, clobbered ones rebuilt from their subnet', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-inv-'));
  try {
    const paths = new StatePaths(root);
    await fs.mkdir(path.dirname(paths.inventory('r')), { recursive: true });
    // A sidecar named "egress" overwrote the record of the egress network of the same name.
    await fs.writeFile(paths.inventory('r'), JSON.stringify({
      version: 1,
      unit: 'r',
      subnets: { 'b-r-net': '10.1.0.0/28', 'b-r-egress': '10.1.0.16/28' },
      resources: {
        'b-r-net': { type: 'network', role: 'network', specHash: 'n1' },
        'b-r-egress': { type: 'container', role: 'sidecar', specHash: 'c1' },
      },
      delivered: {},
    }));
    const inv = (await readInventory(paths, 'r'))!;
    assert.deepEqual(inv.resources[resourceKey('network', 'b-r-net')], { type: 'network', role: 'network', specHash: 'n1' });
    assert.equal(inv.resources['b-r-egress']?.type, 'container');
    assert.equal(inv.resources[resourceKey('network', 'b-r-egress')]?.type, 'network');
    assert.equal(inv.resources['b-r-net'], undefined);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
