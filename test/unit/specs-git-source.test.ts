import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GitSource, gitRefPaths, resolveRef } from '../../specs/git-source.js';
import { loadSpecs } from '../../specs/load.js';
import { bottle, lines } from '../fixtures/specs/tree.js';

const run = promisify(execFile);

/** Git of the tests themselves: fixed identity, no user or system config, no inherited repository. */
async function sh(cwd: string, ...args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('GIT_')) delete env[name];
  Object.assign(env, {
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
  });
  const { stdout } = await run('git', ['-c', 'init.defaultBranch=main', '-C', cwd, ...args], { env });
  return stdout.trim();
}

async function write(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), content);
  }
}

/** Commits `files` (on top of what is there) and returns the new commit's SHA. */
async function commit(repo: string, files: Record<string, string>, message = 'change'): Promise<string> {
  await write(repo, files);
  await sh(repo, 'add', '-A');
  await sh(repo, 'commit', '-q', '-m', message);
  return sh(repo, 'rev-parse', 'HEAD');
}

/** A fresh temp dir holding a non-bare repository at `<tmp>/repo`; removed after `fn`. */
async function withRepo<T>(fn: (repo: string, tmp: string) => Promise<T>): Promise<T> {
  const tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-git-')));
  try {
    const repo = path.join(tmp, 'repo');
    await fs.mkdir(repo);
    await sh(repo, 'init', '-q');
    return await fn(repo, tmp);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

async function objectFile(repo: string, oid: string): Promise<string> {
  const gitDir = await sh(repo, 'rev-parse', '--absolute-git-dir');
  return path.join(gitDir, 'objects', oid.slice(0, 2), oid.slice(2));
}

test('lists only committed spec files: an uncommitted edit and an untracked file are not seen', async () => {
  await withRepo(async (repo) => {
    const sha = await commit(repo, { 'bottles.d/a.yaml': bottle('a'), 'bottles.d/b.yml': bottle('b'), 'other.yaml': bottle('o') });
    await write(repo, { 'bottles.d/a.yaml': bottle('a-edited'), 'bottles.d/new.yaml': bottle('new') });
    await fs.rm(path.join(repo, 'bottles.d', 'b.yml'));

    const source = await GitSource.open({ repo });
    assert.equal(source.revision, sha);
    assert.equal(source.describe, `git:${repo}@HEAD:bottles.d`);
    assert.equal(source.rootDir, undefined);
    assert.deepEqual(await source.list(), ['a.yaml', 'b.yml']);
    assert.equal((await source.read('a.yaml')).toString(), bottle('a'));
    assert.equal((await source.read('b.yml')).toString(), bottle('b'));
  });
});

test('multi-level directories and the same ignore rules as DirSource; links out of the subdir are listed as unreadable', async () => {
  await withRepo(async (repo) => {
    await commit(repo, {
      'bottles.d/b.yml': '',
      'bottles.d/a.yaml': '',
      'bottles.d/team/c.yaml': '',
      'bottles.d/team/deeper/d.yml': '',
      'bottles.d/.hidden.yaml': '',
      'bottles.d/.config/x.yaml': '',
      'bottles.d/team/.drafts/e.yaml': '',
      'bottles.d/f.yaml~': '',
      'bottles.d/g.yaml.swp': '',
      'bottles.d/h.json': '',
      'bottles.d/README.md': '',
      'bottles.d/notes.yaml.bak': '',
      'bottles.d/with space ü.yaml': 'x',
      'outside/o.yaml': 'secret',
    });
    await fs.symlink('../outside/o.yaml', path.join(repo, 'bottles.d', 'linked.yaml'));
    await fs.symlink('../outside', path.join(repo, 'bottles.d', 'linked-dir'));
    await commit(repo, {});

    const source = await GitSource.open({ repo });
    assert.deepEqual(await source.list(), ['a.yaml', 'b.yml', 'linked-dir', 'linked.yaml', 'team/c.yaml', 'team/deeper/d.yml', 'with space ü.yaml']);
    assert.equal((await source.read('with space ü.yaml')).toString(), 'x');
    // Any file is readable (for `source:`), ignored names included; links and directories are not files.
    assert.equal((await source.read('README.md')).toString(), '');
    assert.equal((await source.read('team/./deeper/../c.yaml')).toString(), '');
    await assert.rejects(source.read('linked.yaml'), /symbolic link that leads outside/);
    await assert.rejects(source.read('linked-dir/o.yaml'), { code: 'ENOENT' });
    await assert.rejects(source.read('team'), { code: 'EISDIR' });
    await assert.rejects(source.read('missing.yaml'), { code: 'ENOENT' });
    await assert.rejects(source.read('../outside/o.yaml'), /outside/);
    await assert.rejects(source.read('/etc/hostname'), /outside/);
  });
});

test('reads an older ref and an annotated tag; one source keeps its commit when the ref moves', async () => {
  await withRepo(async (repo) => {
    const first = await commit(repo, { 'bottles.d/a.yaml': 'one' });
    await sh(repo, 'tag', '-a', '-m', 'release', 'v1');
    const second = await commit(repo, { 'bottles.d/a.yaml': 'two', 'bottles.d/b.yaml': 'b' });

    const old = await GitSource.open({ repo, ref: 'HEAD~1' });
    assert.equal(old.revision, first);
    assert.equal(old.describe, `git:${repo}@HEAD~1:bottles.d`);
    assert.deepEqual(await old.list(), ['a.yaml']);
    assert.equal((await old.read('a.yaml')).toString(), 'one');
    assert.equal((await GitSource.open({ repo, ref: 'v1' })).revision, first);
    assert.equal(await resolveRef(repo, 'v1'), first);

    const current = await GitSource.open({ repo, ref: 'main' });
    assert.equal(current.revision, second);
    const third = await commit(repo, { 'bottles.d/a.yaml': 'three' });
    assert.equal(await resolveRef(repo, 'main'), third);
    assert.equal(await resolveRef(repo), third);
    // Opened before the commit: still reads the commit it resolved.
    assert.equal((await current.read('a.yaml')).toString(), 'two');
  });
});

test('a bare repository is read the same way', async () => {
  await withRepo(async (repo, tmp) => {
    const sha = await commit(repo, { 'bottles.d/x/a.yaml': 'a' });
    const bare = path.join(tmp, 'bare.git');
    await sh(tmp, 'clone', '-q', '--bare', repo, bare);
    const source = await GitSource.open({ repo: bare });
    assert.equal(source.revision, sha);
    assert.deepEqual(await source.list(), ['x/a.yaml']);
    assert.equal((await source.read('x/a.yaml')).toString(), 'a');

    const paths = await gitRefPaths(bare);
    assert.deepEqual(paths, [path.join(bare, 'HEAD'), path.join(bare, 'packed-refs'), path.join(bare, 'refs')]);
  });
});

test('gitRefPaths of a work tree names files of its .git directory', async () => {
  await withRepo(async (repo) => {
    await commit(repo, { 'f': '' });
    const gitDir = path.join(repo, '.git');
    assert.deepEqual(await gitRefPaths(repo), [path.join(gitDir, 'HEAD'), path.join(gitDir, 'packed-refs'), path.join(gitDir, 'refs')]);
  });
});

test('subdir: nested, the whole tree, names with glob characters, and paths that leave the tree', async () => {
  await withRepo(async (repo) => {
    await commit(repo, { 'deploy/bottles.d/a.yaml': '', 'top.yaml': '', 'b*/c.yaml': '', 'bx/d.yaml': '' });
    assert.deepEqual(await (await GitSource.open({ repo, subdir: 'deploy/bottles.d/' })).list(), ['a.yaml']);
    assert.deepEqual(await (await GitSource.open({ repo, subdir: './deploy//bottles.d' })).list(), ['a.yaml']);
    assert.deepEqual(await (await GitSource.open({ repo, subdir: '.' })).list(), ['b*/c.yaml', 'bx/d.yaml', 'deploy/bottles.d/a.yaml', 'top.yaml']);
    assert.deepEqual(await (await GitSource.open({ repo, subdir: 'b*' })).list(), ['c.yaml']);
    assert.equal((await GitSource.open({ repo, subdir: '' })).describe, `git:${repo}@HEAD:.`);
    await assert.rejects(GitSource.open({ repo, subdir: '../x' }), /^Error: git: subdir "..\/x" must be a relative path inside the repository$/);
    await assert.rejects(GitSource.open({ repo, subdir: '/etc' }), /must be a relative path/);
  });
});

test('a ref that does not resolve, or is no commit, is a clear error', async () => {
  await withRepo(async (repo) => {
    await assert.rejects(GitSource.open({ repo }), { message: `git: ref "HEAD" does not resolve in ${repo}` }); // no commit yet
    await commit(repo, { 'bottles.d/a.yaml': '' });
    await assert.rejects(GitSource.open({ repo, ref: 'nope' }), { message: `git: ref "nope" does not resolve in ${repo}` });
    await assert.rejects(resolveRef(repo, 'nope'), { message: `git: ref "nope" does not resolve in ${repo}` });
    await assert.rejects(GitSource.open({ repo, ref: '--help' }), { message: `git: ref "--help" does not resolve in ${repo}` });
    await assert.rejects(GitSource.open({ repo, ref: 'HEAD:bottles.d' }), {
      message: `git: ref "HEAD:bottles.d" names a tree, not a commit, in ${repo}`,
    });
  });
});

test('a directory that is not a repository is a clear error, even inside another repository', async () => {
  await withRepo(async (repo, tmp) => {
    await commit(repo, { 'bottles.d/a.yaml': '' });
    const plain = path.join(tmp, 'plain');
    await fs.mkdir(plain);
    await assert.rejects(GitSource.open({ repo: plain }), { message: `git: ${plain} is not a git repository` });
    const inner = path.join(repo, 'bottles.d');
    await assert.rejects(GitSource.open({ repo: inner }), { message: `git: ${inner} is not a git repository` });
    await assert.rejects(resolveRef(inner, 'HEAD'), { message: `git: ${inner} is not a git repository` });
    await assert.rejects(gitRefPaths(plain), { message: `git: ${plain} is not a git repository` });
    const missing = path.join(tmp, 'missing');
    await assert.rejects(GitSource.open({ repo: missing }), { message: `git: ${missing} is not a git repository (no such directory)` });
  });
});

test('a damaged repository is a clear error, and loadSpecs rejects', async () => {
  await withRepo(async (repo) => {
    const sha = await commit(repo, { 'bottles.d/a.yaml': bottle('a') });
    const subtree = await sh(repo, 'rev-parse', 'HEAD:bottles.d');
    const blob = await sh(repo, 'rev-parse', 'HEAD:bottles.d/a.yaml');
    const source = await GitSource.open({ repo });

    await fs.rm(await objectFile(repo, blob));
    assert.deepEqual(await source.list(), ['a.yaml']);
    await assert.rejects(source.read('a.yaml'), /^Error: git: a\.yaml \(blob \w+ at \w+\) cannot be read in .* \(is the repository damaged\?\)/);

    await fs.rm(await objectFile(repo, subtree));
    const again = await GitSource.open({ repo });
    await assert.rejects(again.list(), { message: new RegExp(`^git: the tree of bottles.d at ${sha.slice(0, 12)} cannot be read in ${repo} \\(is the repository damaged\\?\\)`) });
    await assert.rejects(loadSpecs(again), /damaged/);

    const commitFile = await objectFile(repo, sha);
    await fs.chmod(commitFile, 0o644);
    await fs.writeFile(commitFile, 'junk');
    await assert.rejects(GitSource.open({ repo }), {
      message: new RegExp(`^git: ref "HEAD" points to ${sha.slice(0, 12)}, which cannot be read in ${repo} \\(is the repository damaged\\?\\)`),
    });
    await fs.rm(commitFile);
    await assert.rejects(GitSource.open({ repo }), /is the repository damaged\?/);
  });
});

test('a subdir missing at the commit rejects; one without spec files lists as empty', async () => {
  await withRepo(async (repo) => {
    const sha = await commit(repo, { 'README.md': '', 'docs/readme.md': '', 'file': '' });
    await write(repo, { 'bottles.d/a.yaml': bottle('a') }); // not committed
    const source = await GitSource.open({ repo });
    await assert.rejects(source.list(), { message: `git: bottles.d does not exist at ${sha.slice(0, 12)} in ${repo}` });
    await assert.rejects(loadSpecs(source), { message: `git: bottles.d does not exist at ${sha.slice(0, 12)} in ${repo}` });
    await assert.rejects((await GitSource.open({ repo, subdir: 'file' })).list(), {
      message: `git: file is a file, not a directory, at ${sha.slice(0, 12)} in ${repo}`,
    });
    assert.deepEqual(await (await GitSource.open({ repo, subdir: 'docs' })).list(), []);
    const empty = await loadSpecs(await GitSource.open({ repo, subdir: 'docs' }));
    assert.equal(empty.fileCount, 0);
    assert.equal(empty.bottles.size, 0);
  });
});

test('loadSpecs over a GitSource records the commit and reads source: files from it', async () => {
  await withRepo(async (repo) => {
    const sha = await commit(repo, {
      'bottles.d/a.yaml': bottle(
        'a',
        '  agent:\n    image: agent:1\n    files:\n      - {path: /etc/conf, source: ./conf/a.conf}\n      - {path: /etc/new, source: ./conf/new.conf}\n',
      ),
      'bottles.d/conf/a.conf': 'committed',
      'bottles.d/b.yaml': bottle('b'),
    });
    await write(repo, { 'bottles.d/conf/a.conf': 'edited', 'bottles.d/conf/new.conf': 'untracked' });

    const result = await loadSpecs(await GitSource.open({ repo }));
    assert.equal(result.revision, sha);
    assert.equal(result.describe, `git:${repo}@HEAD:bottles.d`);
    assert.deepEqual(lines(result), ['a.yaml:10:34: spec.agent.files[1].source: ./conf/new.conf not found (looked for conf/new.conf)']);
    assert.deepEqual([...result.held.keys()], ['Bottle/a']);
    const b = result.bottles.get('b');
    assert.equal(b?.origin.revision, sha);

    await commit(repo, {});
    const fixed = await loadSpecs(await GitSource.open({ repo }));
    assert.deepEqual(lines(fixed), []);
    const files = fixed.bottles.get('a')?.spec.agent.files ?? [];
    assert.deepEqual(files.map((file) => file.content.toString()), ['edited', 'untracked']);
    assert.equal(fixed.bottles.get('a')?.origin.revision, fixed.revision);
  });
});

test('GIT_DIR and GIT_WORK_TREE of the environment (as in a git hook) do not redirect the source', async () => {
  await withRepo(async (repo, tmp) => {
    const sha = await commit(repo, { 'bottles.d/a.yaml': '' });
    const other = path.join(tmp, 'other');
    await fs.mkdir(other);
    await sh(other, 'init', '-q');
    await commit(other, { 'bottles.d/z.yaml': '' });
    const saved = { GIT_DIR: process.env.GIT_DIR, GIT_WORK_TREE: process.env.GIT_WORK_TREE };
    process.env.GIT_DIR = path.join(other, '.git');
    process.env.GIT_WORK_TREE = other;
    try {
      const source = await GitSource.open({ repo });
      assert.equal(source.revision, sha);
      assert.deepEqual(await source.list(), ['a.yaml']);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

test('links inside the subdir are followed: to a file, to a directory read nowhere else; a dangling one, a second way to a directory and a submodule are unreadable', async () => {
  await withRepo(async (repo) => {
    await commit(repo, { 'bottles.d/ext/g.yaml': 'g', 'bottles.d/team/a.yaml': 'a', 'bottles.d/.store/s.yaml': 's' });
    await fs.symlink('ext/g.yaml', path.join(repo, 'bottles.d', 'gamma.yaml'));
    await fs.symlink('team', path.join(repo, 'bottles.d', 'crew'));
    await fs.symlink('.store', path.join(repo, 'bottles.d', 'store.d'));
    await fs.symlink('gone', path.join(repo, 'bottles.d', 'dangling.d'));
    await commit(repo, {});
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args]);
    git('update-index', '--add', '--cacheinfo', `160000,${git('rev-parse', 'HEAD').toString().trim()},bottles.d/sub`);
    git('commit', '-q', '-m', 'submodule');
    const source = await GitSource.open({ repo });
    assert.deepEqual(await source.list(), ['crew', 'dangling.d', 'ext/g.yaml', 'gamma.yaml', 'store.d/s.yaml', 'sub', 'team/a.yaml']);
    assert.equal((await source.read('gamma.yaml')).toString(), 'g');
    assert.equal((await source.read('store.d/s.yaml')).toString(), 's');
    await assert.rejects(source.read('crew'), /already read/);
    await assert.rejects(source.read('dangling.d'), /does not exist/);
    await assert.rejects(source.read('sub'), /is a submodule/);
  });
});
