import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadSpecs } from '../../specs/load.js';
import { DirSource } from '../../specs/source.js';
import { SpecCache } from '../../specs/spec-cache.js';

const bottle = (name: string, extra = '') => `apiVersion: bottled.dev/v1
kind: Bottle
metadata: {name: ${name}}
spec:
  agent:
    image: busybox
    files:
      - path: /etc/x
        content: "inline ${name}"
${extra}`;

test('the spec cache gives exactly what a fresh parse gives, and only for files that depend on nothing else', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'spec-cache-'));
  const cacheFile = path.join(dir, 'state', 'specs.json');
  const root = path.join(dir, 'd');
  try {
    await fs.mkdir(root);
    await fs.writeFile(path.join(root, 'a.yaml'), bottle('a'));
    await fs.writeFile(path.join(root, 'data.txt'), 'from a file');
    await fs.writeFile(path.join(root, 'b.yaml'), bottle('b', '      - path: /etc/y\n        source: ./data.txt\n'));
    const fresh = await loadSpecs(new DirSource(root));

    const first = await SpecCache.open(cacheFile);
    const viaCache1 = await loadSpecs(new DirSource(root), { cache: first });
    await first.save();
    const stored = JSON.parse(await fs.readFile(cacheFile, 'utf8'));
    assert.equal(Object.keys(stored.entries).length, 1, 'only a.yaml is cacheable (b.yaml reads a source file)');

    const second = await SpecCache.open(cacheFile);
    const viaCache2 = await loadSpecs(new DirSource(root), { cache: second });
    assert.deepEqual(viaCache1, fresh);
    assert.deepEqual(viaCache2, fresh);
    assert.ok(Buffer.isBuffer(viaCache2.bottles.get('a')!.spec.agent.files[0]!.content));
    await second.save();

    // The source file changes: b is parsed again and sees it; a changed spec misses too.
    await fs.writeFile(path.join(root, 'data.txt'), 'changed');
    await fs.writeFile(path.join(root, 'a.yaml'), bottle('a').replace('inline a', 'inline a2'));
    const third = await loadSpecs(new DirSource(root), { cache: second });
    assert.equal(third.bottles.get('b')!.spec.agent.files[1]!.content.toString(), 'changed');
    assert.equal(third.bottles.get('a')!.spec.agent.files[0]!.content.toString(), 'inline a2');
    await second.save();
    assert.equal(Object.keys(JSON.parse(await fs.readFile(cacheFile, 'utf8')).entries).length, 1, 'the stale entry is dropped');

    // Invalid files are never cached.
    await fs.writeFile(path.join(root, 'a.yaml'), bottle('a').replace('image: busybox', 'image: 42'));
    const c = await SpecCache.open(cacheFile);
    const bad = await loadSpecs(new DirSource(root), { cache: c });
    assert.ok(bad.held.has('Bottle/a'));
    assert.deepEqual(await loadSpecs(new DirSource(root), { cache: c }), bad);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
