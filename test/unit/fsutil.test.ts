import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeInPlace } from '../../state/fsutil.js';

test('writeInPlace keeps the inode of an existing file, and replaces a directory Docker made for a missing bind source', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fsutil-'));
  try {
    const f = path.join(dir, 'a', 'routes.yaml');
    await writeInPlace(f, Buffer.from('v1'), 0o644);
    const ino = (await fs.stat(f)).ino;
    await writeInPlace(f, Buffer.from('v2'), 0o600);
    assert.equal((await fs.stat(f)).ino, ino, 'same inode: a bind mount sees the change');
    assert.equal(await fs.readFile(f, 'utf8'), 'v2');
    assert.equal((await fs.stat(f)).mode & 0o777, 0o600);

    const g = path.join(dir, 'b', 'prompt.txt');
    await fs.mkdir(g, { recursive: true });
    await writeInPlace(g, Buffer.from('hello'), 0o644);
    assert.ok((await fs.stat(g)).isFile());
    assert.equal(await fs.readFile(g, 'utf8'), 'hello');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
