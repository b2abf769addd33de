import { execFileSync } from 'node:child_process';
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

test('DirSource lists links that leave the root, dangle or loop as unreadable (their bottles are held), and follows them with --allow-outside', async () => {
  await withTree({ 'real/a.yaml': '', 'outside/b.yaml': '' }, async (dir) => {
    const root = path.join(dir, 'real');
    await fs.symlink(path.join(dir, 'outside', 'b.yaml'), path.join(root, 'linked.yaml'));
    await fs.symlink(path.join(dir, 'outside'), path.join(root, 'linked-dir'));
    await fs.symlink(path.join(dir, 'nowhere.yaml'), path.join(root, 'dangling.yaml'));
    await fs.symlink(root, path.join(root, 'loop'));
    const source = new DirSource(root);
    assert.deepEqual(await source.list(), ['a.yaml', 'dangling.yaml', 'linked-dir', 'linked.yaml', 'loop']);
    await assert.rejects(source.read('dangling.yaml'), /symbolic link to .*nowhere\.yaml, which does not exist/);
    await assert.rejects(source.read('linked.yaml'), /leads outside/);
    await assert.rejects(source.read('loop'), /loop/);
    assert.deepEqual(await new DirSource(root, true).list(), ['a.yaml', 'dangling.yaml', 'linked-dir/b.yaml', 'linked.yaml', 'loop']);
  });
});

test('DirSource follows links to files and directories inside the root; a second way to a directory is refused, not read twice', async () => {
  await withTree({ 'real/team/a.yaml': '', 'real/ext/g.yaml': 'g' }, async (dir) => {
    const root = path.join(dir, 'real');
    await fs.symlink('ext/g.yaml', path.join(root, 'gamma.yaml'));
    await fs.symlink('team', path.join(root, 'crew'));
    const source = new DirSource(root);
    assert.deepEqual(await source.list(), ['crew', 'ext/g.yaml', 'gamma.yaml', 'team/a.yaml']);
    assert.equal((await source.read('gamma.yaml')).toString(), 'g');
    await assert.rejects(source.read('crew'), /crew leads to team, which is already read/);
    await fs.rm(path.join(root, 'team'), { recursive: true });
    await fs.symlink('ext', path.join(root, 'team'));
    assert.deepEqual(await source.list(), ['crew', 'ext/g.yaml', 'gamma.yaml', 'team'], 'links to a directory read under its own name');
  });
});

test('DirSource refuses a FIFO as a spec file or a source, without blocking', async () => {
  await withTree({ 'real/a.yaml': '' }, async (dir) => {
    const root = path.join(dir, 'real');
    execFileSync('mkfifo', [path.join(root, 'pipe.yaml'), path.join(root, 'pipe.txt')]);
    const source = new DirSource(root);
    assert.deepEqual(await source.list(), ['a.yaml', 'pipe.yaml']);
    await assert.rejects(source.read('pipe.yaml'), /not a regular file/);
    await assert.rejects(source.read('pipe.txt'), /not a regular file \(it is a FIFO\)/);
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
