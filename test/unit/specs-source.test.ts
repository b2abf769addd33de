import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DirSource } from '../../specs/source.js';
import { withTree } from '../fixtures/specs/tree.js';

test('DirSource lists *.yaml and *.yml recursively, sorted, skipping dotfiles, backups and other files', async () => {
  await withTree(
    {
      'b.yml': '',
      'a.yaml': '',
      'team/c.yaml': '',
      'team/deeper/d.yml': '',
      '.hidden.yaml': '',
      '.git/config.yaml': '',
      'team/.drafts/e.yaml': '',
      'f.yaml~': '',
      'g.yaml.swp': '',
      '.g.yaml.swp': '',
      'h.json': '',
      'README.md': '',
      'notes.yaml.bak': '',
    },
    async (dir) => {
      assert.deepEqual(await new DirSource(dir).list(), ['a.yaml', 'b.yml', 'team/c.yaml', 'team/deeper/d.yml']);
    },
  );
});

test('DirSource follows symlinks to files, not to directories', async () => {
  await withTree({ 'real/a.yaml': '', 'outside/b.yaml': '' }, async (dir) => {
    const root = path.join(dir, 'real');
    await fs.symlink(path.join(dir, 'outside', 'b.yaml'), path.join(root, 'linked.yaml'));
    await fs.symlink(path.join(dir, 'outside'), path.join(root, 'linked-dir'));
    await fs.symlink(path.join(dir, 'nowhere.yaml'), path.join(root, 'dangling.yaml'));
    assert.deepEqual(await new DirSource(root).list(), ['a.yaml', 'linked.yaml']);
  });
});

test('a missing directory lists as empty; a file given as the directory is an error', async () => {
  await withTree({ 'file.yaml': '' }, async (dir) => {
    assert.deepEqual(await new DirSource(path.join(dir, 'missing')).list(), []);
    await assert.rejects(new DirSource(path.join(dir, 'file.yaml')).list(), { code: 'ENOTDIR' });
  });
});

test('DirSource.read reads any file inside the root and refuses paths outside it', async () => {
  await withTree({ 'specs/conf/x.conf': 'x', 'secret': 's' }, async (dir) => {
    const source = new DirSource(path.join(dir, 'specs'));
    assert.equal((await source.read('conf/x.conf')).toString(), 'x');
    await assert.rejects(source.read('missing.txt'), { code: 'ENOENT' });
    await assert.rejects(source.read('../secret'), /outside/);
    await assert.rejects(source.read('/etc/hostname'), /outside/);
    assert.equal(source.rootDir, path.join(dir, 'specs'));
    assert.equal(source.describe, path.join(dir, 'specs'));
  });
});
