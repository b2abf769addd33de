import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Daemon, ROOT, World, bottleYaml, docker, eventually } from '../helpers/harness.js';

const bottle = (name: string, env = 'one') => bottleYaml(name, `agent:\n  image: bottled/busybox:local\n  env: {V: "${env}"}`);
const gitEnv = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

async function envOf(name: string): Promise<string | undefined> {
  try {
    return (await docker.getContainer(name).inspect()).Config.Env.find((e) => e.startsWith('V='));
  } catch {
    return undefined;
  }
}

describe('specs from a git revision', () => {
  const w = new World('git');
  let repo = '';
  const git = (...a: string[]) => execFileSync('git', ['-C', repo, ...a], { env: { ...process.env, ...gitEnv } }).toString().trim();
  const write = (rel: string, text: string) => fs.mkdir(path.dirname(path.join(repo, rel)), { recursive: true }).then(() => fs.writeFile(path.join(repo, rel), text));
  const commit = async (msg: string) => {
    git('add', '-A');
    git('commit', '-qm', msg, '--allow-empty');
    return git('rev-parse', 'HEAD');
  };
  const run = (extra: string[] = []) => w.run(['reconcile', '--once', '--git', repo, ...extra]);

  before(async () => {
    await w.setup();
    repo = path.join(w.dir, '..', 'repo');
    execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  });
  after(async () => {
    await w.cleanup();
  });

  test('a committed bottle is applied; an uncommitted edit is not; status shows the commit', async () => {
    await write('bottles.d/a.yaml', bottle('a'));
    const first = await commit('a');
    await write('bottles.d/a.yaml', bottle('a', 'uncommitted'));
    await write('bottles.d/b.yaml', bottle('b'));
    const r = await run();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await envOf(w.name_('a')), 'V=one');
    assert.equal(await envOf(w.name_('b')), undefined, 'untracked file not applied');
    const st = await w.run(['status']);
    assert.match(st.stdout, new RegExp(`a\\s+True\\s+\\S+\\s+${first.slice(0, 12)}`));
    const json = JSON.parse((await w.run(['status', 'a', '--json'])).stdout);
    assert.equal(json.observedRevision, first);
    assert.ok(json.events.every((e: { revision?: string }) => e.revision === first));
    git('checkout', '-q', '--', '.');
    await fs.rm(path.join(repo, 'bottles.d/b.yaml'));
  });

  test('plan --ref OTHER reviews another revision; switching --ref back converges to it', async () => {
    const older = git('rev-parse', 'HEAD');
    await write('bottles.d/a.yaml', bottle('a', 'two'));
    await write('bottles.d/c.yaml', bottle('c'));
    git('checkout', '-qb', 'feature');
    const newer = await commit('two');
    git('checkout', '-q', 'main');
    const plan = await w.run(['plan', '--git', repo, '--ref', 'feature']);
    assert.equal(plan.code, 2);
    assert.match(plan.stdout, /-\/\+ container\s+\S+-a\s+recreate\s+env V changed/);
    assert.match(plan.stdout, /\+\s+container\s+\S+-c\s+create/);
    assert.equal((await run(['--ref', 'feature'])).code, 0);
    assert.equal(await envOf(w.name_('a')), 'V=two');
    assert.equal(JSON.parse((await w.run(['status', 'a', '--json'])).stdout).observedRevision, newer);
    assert.equal((await run(['--ref', older])).code, 0);
    assert.equal(await envOf(w.name_('a')), 'V=one');
    assert.equal(await envOf(w.name_('c')), undefined, 'c removed again');
  });

  test('a ref that does not resolve, or a missing subdir: clear error, nothing pruned', async () => {
    const before = (await w.containers()).length;
    const bad = await run(['--ref', 'no-such-ref']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ref "no-such-ref" does not resolve/);
    const missing = await run(['--subdir', 'nope.d']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.d does not exist/);
    assert.equal((await w.containers()).length, before);
  });

  test('a commit that deletes every spec prunes nothing without --allow-empty', async () => {
    await fs.rm(path.join(repo, 'bottles.d'), { recursive: true });
    await fs.mkdir(path.join(repo, 'bottles.d'));
    await write('bottles.d/README.md', 'no specs here');
    await commit('delete all');
    const r = await run();
    assert.equal(r.code, 0, r.stderr);
    assert.ok(await envOf(w.name_('a')), 'still running');
    assert.match(r.stderr, /--allow-empty/);
  });

  test('--max-deletions blocks a mass removal and the plan says so', async () => {
    git('checkout', '-q', 'HEAD~1', '--', 'bottles.d');
    for (const n of ['d', 'e', 'f']) await write(`bottles.d/${n}.yaml`, bottle(n));
    await commit('more');
    assert.equal((await run()).code, 0);
    for (const n of ['a', 'd', 'e', 'f']) await fs.rm(path.join(repo, `bottles.d/${n}.yaml`));
    await write('bottles.d/keep.yaml', bottle('keep'));
    await commit('mass removal');
    const plan = await w.run(['plan', '--git', repo, '--max-deletions', '2']);
    assert.match(plan.stdout, /would remove 4 bottles .* more than --max-deletions 2: nothing is removed/);
    const r = await run(['--max-deletions', '2']);
    assert.equal(r.code, 1);
    for (const n of ['a', 'd', 'e', 'f']) assert.ok(await envOf(w.name_(n)), `${n} kept`);
    assert.ok(await envOf(w.name_('keep')), 'the rest is applied');
    const st = JSON.parse((await w.run(['status', 'd', '--json'])).stdout);
    assert.equal(st.conditions.find((c: { type: string }) => c.type === 'Ready').reason, 'DeletionGuard');
    const events = await fs.readFile(path.join(w.stateDir, 'events.jsonl'), 'utf8');
    assert.match(events, /DeletionGuard|max-deletions/);
    assert.equal((await run(['--max-deletions', '4'])).code, 0);
    for (const n of ['a', 'd', 'e', 'f']) assert.equal(await envOf(w.name_(n)), undefined, `${n} removed`);
  });

  test('watch mode applies new commits on the ref; the working tree never', async () => {
    const d = await new Daemon(w, ['--git', repo, '--resync', '1h']).start();
    try {
      await write('bottles.d/w.yaml', bottle('w'));
      await eventually(async () => d.logs.some((l) => l.msg === 'watching'), 'watching');
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(await envOf(w.name_('w')), undefined, 'uncommitted file not applied');
      const sha = await commit('w');
      await eventually(() => envOf(w.name_('w')), 'committed bottle applied');
      await eventually(async () => JSON.parse(await fs.readFile(path.join(w.stateDir, 'status', 'keep.json'), 'utf8')).observedRevision === sha, 'status of every bottle shows the new commit');
    } finally {
      assert.equal((await d.stop()).code, 0);
    }
  });
});

test('a bare repository with the documented post-receive hook: git push deploys', async () => {
  const w = await new World('push').setup();
  const bare = path.join(w.dir, '..', 'bottles.git');
  const clone = path.join(w.dir, '..', 'clone');
  try {
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    await fs.copyFile(path.join(ROOT, 'examples/recipes/post-receive'), path.join(bare, 'hooks/post-receive'));
    await fs.chmod(path.join(bare, 'hooks/post-receive'), 0o755);
    execFileSync('git', ['clone', '-q', bare, clone], { stdio: 'ignore' });
    const git = (...a: string[]) =>
      execFileSync('git', ['-C', clone, ...a], {
        env: { ...process.env, ...gitEnv, BOTTLED: ROOT, BOTTLED_STATE_DIR: w.stateDir, BOTTLED_FLAGS: `--instance ${w.instance} --prefix ${w.prefix} --subnet-pool ${w.pool}` },
      }).toString();
    await fs.mkdir(path.join(clone, 'bottles.d'));
    await fs.writeFile(path.join(clone, 'bottles.d', 'p.yaml'), bottle('p'));
    git('add', '-A');
    git('commit', '-qm', 'p');
    git('push', '-q', 'origin', 'main');
    assert.equal(await envOf(w.name_('p')), 'V=one');
    await fs.writeFile(path.join(clone, 'bottles.d', 'p.yaml'), bottle('p', 'pushed'));
    git('commit', '-qam', 'change');
    git('push', '-q', 'origin', 'main');
    assert.equal(await envOf(w.name_('p')), 'V=pushed');
  } finally {
    await w.cleanup();
  }
});
