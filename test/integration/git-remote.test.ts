// GitOps from a remote (issue: fetch, webhook, signed commits), against git servers the tests
// start on 127.0.0.1: git daemon, an sshd with a throwaway host key and deploy key, and smart
// HTTP behind a token. Nothing leaves the machine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Daemon, World, bottleYaml, docker, eventually } from '../helpers/harness.js';
import { GitDaemon, HttpGit, TestRepo, TestSshd } from '../helpers/git-servers.js';

const bottle = (name: string, v: string) => bottleYaml(name, `agent:\n  image: bottled/busybox:local\n  env: {V: "${v}"}`);

async function envOf(name: string): Promise<string | undefined> {
  try {
    return (await docker.getContainer(name).inspect()).Config.Env.find((e) => e.startsWith('V='));
  } catch {
    return undefined;
  }
}

async function sourceOf(w: World): Promise<Record<string, any>> {
  return JSON.parse((await w.run(['status', '--source', '--json'])).stdout);
}

async function readAll(dir: string): Promise<string> {
  let out = '';
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += await fs.readFile(path.join(e.parentPath, e.name), 'latin1');
  }
  return out;
}

describe('a remote over git://', () => {
  const w = new World('gitremote');
  let repo: TestRepo;
  let server: GitDaemon;
  before(async () => {
    await w.setup();
    repo = await new TestRepo(path.join(path.dirname(w.dir), 'srv')).init();
    server = await new GitDaemon(repo.base).start();
  });
  after(async () => {
    await server.stop();
    await w.cleanup();
  });

  test('--once fetches the branch and applies it; a forced push is applied and recorded; plan previews another branch', async () => {
    await repo.write('bottles.d/a.yaml', bottle('a', 'one'));
    const first = repo.commitAndPush('one');
    const r = await w.reconcile(['--git', server.url(), '--ref', 'main']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await envOf(w.name_('a')), 'V=one');
    assert.equal(JSON.parse((await w.run(['status', 'a', '--json'])).stdout).observedRevision, first);
    // No work tree, only the mirror, in the state directory.
    const mirror = (await fs.readdir(path.join(w.stateDir, 'git')))[0]!;
    assert.ok((await fs.stat(path.join(w.stateDir, 'git', mirror, 'HEAD'))).isFile());
    await assert.rejects(fs.stat(path.join(w.stateDir, 'git', mirror, 'bottles.d')));

    // History rewritten: applied like any new revision, and the rewrite is on record.
    repo.git('reset', '-q', '--hard', 'HEAD');
    await repo.write('bottles.d/a.yaml', bottle('a', 'rewritten'));
    repo.git('add', '-A');
    repo.git('commit', '-q', '--amend', '-m', 'rewritten');
    repo.git('push', '-q', '--force', 'origin', 'HEAD:main');
    const rewritten = repo.git('rev-parse', 'HEAD');
    assert.equal((await w.reconcile(['--git', server.url(), '--ref', 'main'])).code, 0);
    assert.equal(await envOf(w.name_('a')), 'V=rewritten');
    const src = (await sourceOf(w)).sources[0];
    assert.deepEqual([src.forced.from, src.forced.to], [first, rewritten]);
    assert.match((await w.run(['status'])).stdout, new RegExp(`history rewritten .*${first.slice(0, 12)} -> ${rewritten.slice(0, 12)}`));

    // A pull request's branch, previewed on the remote.
    repo.git('checkout', '-q', '-b', 'feature');
    await repo.write('bottles.d/a.yaml', bottle('a', 'feature'));
    repo.git('add', '-A');
    repo.git('commit', '-q', '-m', 'feature');
    repo.git('push', '-q', 'origin', 'feature');
    repo.git('checkout', '-q', 'main');
    const plan = await w.run(['plan', '--git', server.url(), '--ref', 'feature']);
    assert.equal(plan.code, 2, plan.stdout);
    assert.match(plan.stdout, /recreate .*env V changed/);
    assert.equal(await envOf(w.name_('a')), 'V=rewritten', 'plan changes nothing');
  });

  test('watch mode: an interval fetch applies a push; a server that goes away leaves bottles running and status says why; it comes back', async () => {
    const d = await new Daemon(w, ['--git', server.url(), '--ref', 'main', '--git-interval', '1s', '--resync', '1h']).start();
    try {
      await repo.write('bottles.d/a.yaml', bottle('a', 'watched'));
      repo.commitAndPush('watched');
      await eventually(async () => (await envOf(w.name_('a'))) === 'V=watched', 'pushed commit applied by an interval fetch');

      const id = (await docker.getContainer(w.name_('a')).inspect()).Id;
      await server.stop();
      await eventually(async () => (await sourceOf(w)).sources[0]?.failing, 'status says the fetch fails');
      const st = await w.run(['status']);
      assert.match(st.stdout, /! fetching fails since .*: git fetch git:\/\/127\.0\.0\.1/);
      assert.equal((await docker.getContainer(w.name_('a')).inspect()).Id, id, 'the bottle keeps running');
      await d.waitLog((l) => l.msg === 'cannot fetch the git source: everything keeps running as applied; retrying with backoff');

      await repo.write('bottles.d/a.yaml', bottle('a', 'back'));
      repo.commitAndPush('back');
      await server.start();
      await eventually(async () => (await envOf(w.name_('a'))) === 'V=back', 'applied once the server is back', 90_000);
      await d.waitLog((l) => l.msg === 'the git source answers again');
      const outageLines = d.logs.filter((l) => l.msg === 'cannot fetch the git source: everything keeps running as applied; retrying with backoff').length;
      assert.equal(outageLines, 1, 'one line per outage, not one per try');
    } finally {
      await d.stop();
    }
  });

  test('webhook: a correctly signed POST fetches at once (the interval is an hour); a wrong one gets 401 and does nothing', async () => {
    const secret = crypto.randomBytes(16).toString('hex');
    const secretFile = path.join(path.dirname(w.dir), 'hook.secret');
    await fs.writeFile(secretFile, secret);
    const port = await (await import('../helpers/git-servers.js')).freePort();
    const d = await new Daemon(w, ['--git', server.url(), '--ref', 'main', '--git-interval', '1h', '--resync', '1h', '--webhook-addr', `127.0.0.1:${port}`, '--webhook-secret-file', secretFile]).start();
    try {
      await repo.write('bottles.d/a.yaml', bottle('a', 'hooked'));
      repo.commitAndPush('hooked');
      const body = JSON.stringify({ ref: 'refs/heads/main' });
      const post = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${port}/hook`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      const bad = await post({ 'X-Hub-Signature-256': `sha256=${crypto.createHmac('sha256', 'wrong').update(body).digest('hex')}` });
      assert.equal(bad.status, 401);
      assert.equal((await post({})).status, 401);
      assert.ok(!d.logs.some((l) => l.msg === 'webhook: push notification: fetching now'), 'nothing triggered');
      const good = await post({ 'X-Gitea-Signature': crypto.createHmac('sha256', secret).update(body).digest('hex') });
      assert.equal(good.status, 202);
      await eventually(async () => (await envOf(w.name_('a'))) === 'V=hooked', 'applied after the signed hook');
      // A flood is one fetch at a time: fifty hooks, the daemon keeps answering.
      const flood = await Promise.all(Array.from({ length: 50 }, () => post({ 'X-Hub-Signature-256': `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}` })));
      assert.ok(flood.every((r) => r.status === 202));
      const huge = await fetch(`http://127.0.0.1:${port}/hook`, { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024) }).catch(() => ({ status: 413 }));
      assert.equal(huge.status, 413);
    } finally {
      await d.stop();
    }
  });

  test('without --webhook-secret-file the webhook refuses to start', async () => {
    const r = await w.run(['reconcile', '--git', server.url(), '--webhook-addr', '127.0.0.1:0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--webhook-addr needs --webhook-secret-file/);
  });
});

describe('signed commits', () => {
  test('--verify-commits: unsigned and foreign-signed revisions are not applied (held, with the reason); an allowed signature is', async () => {
    const w = await new World('gitsigned').setup();
    const base = path.join(path.dirname(w.dir), 'srv');
    const repo = await new TestRepo(base).init();
    const server = await new GitDaemon(base).start();
    try {
      const keys = path.join(path.dirname(w.dir), 'keys');
      await fs.mkdir(keys);
      for (const k of ['allowed', 'other']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', path.join(keys, k)]);
      const signers = path.join(keys, 'allowed_signers');
      await fs.writeFile(signers, `t@t namespaces="git" ${await fs.readFile(path.join(keys, 'allowed.pub'), 'utf8')}`);
      const run = () => w.reconcile(['--git', server.url(), '--ref', 'main', '--verify-commits', signers]);

      await repo.write('bottles.d/s.yaml', bottle('s', 'unsigned'));
      const unsigned = repo.commitAndPush('unsigned');
      const r1 = await run();
      assert.equal(r1.code, 1);
      assert.match(r1.stderr, new RegExp(`revision ${unsigned.slice(0, 12)} is not applied: it is not signed; nothing is applied`));
      assert.equal(await envOf(w.name_('s')), undefined, 'nothing applied');

      await repo.write('bottles.d/s.yaml', bottle('s', 'signed'));
      const signed = repo.commitAndPush('signed', { sign: path.join(keys, 'allowed') });
      assert.equal((await run()).code, 0);
      assert.equal(await envOf(w.name_('s')), 'V=signed');

      await repo.write('bottles.d/s.yaml', bottle('s', 'foreign'));
      const foreign = repo.commitAndPush('foreign', { sign: path.join(keys, 'other') });
      const plan = await w.run(['plan', '--git', server.url(), '--ref', 'main', '--verify-commits', signers]);
      assert.equal(plan.code, 1);
      assert.match(plan.stdout, new RegExp(`! source: .*revision ${foreign.slice(0, 12)} is not applied: it is signed by a key that is not in the allowed signers file; ${signed.slice(0, 12)} stays applied`));
      const r3 = await run();
      assert.equal(r3.code, 1);
      assert.equal(await envOf(w.name_('s')), 'V=signed', 'the last good revision stays applied');
      const src = (await sourceOf(w)).sources[0];
      assert.equal(src.refused.revision, foreign);
      assert.equal(src.applied, signed);
      const events = (await sourceOf(w)).events;
      assert.ok(events.some((e: { action: string; revision: string }) => e.action === 'hold' && e.revision === foreign));
    } finally {
      await server.stop();
      await w.cleanup();
    }
  });
});

describe('credentials', () => {
  test('ssh: a deploy key and a known-hosts file; an unknown host key is refused, never accepted', async () => {
    const w = await new World('gitssh').setup();
    const base = path.join(path.dirname(w.dir), 'srv');
    const repo = await new TestRepo(base).init();
    const sshd = await new TestSshd(path.join(path.dirname(w.dir), 'ssh')).start();
    try {
      await repo.write('bottles.d/k.yaml', bottle('k', 'ssh'));
      repo.commitAndPush('ssh');
      const flags = ['--git', sshd.url(repo.bare), '--ref', 'main', '--git-ssh-key', sshd.clientKey];
      const strangers = path.join(path.dirname(w.dir), 'strangers');
      await fs.writeFile(strangers, `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
      const refused = await w.reconcile([...flags, '--git-known-hosts', strangers]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
      assert.equal(await envOf(w.name_('k')), undefined);
      const r = await w.reconcile([...flags, '--git-known-hosts', sshd.knownHosts]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await envOf(w.name_('k')), 'V=ssh');
      const key = await fs.readFile(sshd.clientKey, 'utf8');
      assert.ok(!(await readAll(w.stateDir)).includes(key.split('\n')[1]!), 'the key is not copied into the state dir');
    } finally {
      await sshd.stop();
      await w.cleanup();
    }
  });

  test('https-style token: sent only in git\'s environment; never in argv, logs, status, events, the mirror\'s config or the state dir', async () => {
    const w = await new World('gittoken').setup();
    const base = path.join(path.dirname(w.dir), 'srv');
    const repo = await new TestRepo(base).init();
    const server = await new HttpGit(base).start();
    // A git on PATH that records the argv of every git process bottled starts, then runs git.
    const shim = path.join(path.dirname(w.dir), 'shim');
    const argvLog = path.join(shim, 'argv.log');
    await fs.mkdir(shim);
    const realGit = execFileSync('sh', ['-c', 'command -v git']).toString().trim();
    await fs.writeFile(path.join(shim, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec '${realGit}' "$@"\n`, { mode: 0o755 });
    try {
      await repo.write('bottles.d/t.yaml', bottle('t', 'token'));
      repo.commitAndPush('token');
      const env = { PATH: `${shim}:${process.env.PATH}` };
      const flags = ['--git', server.url(), '--ref', 'main'];
      const denied = await w.reconcile(flags, env);
      assert.equal(denied.code, 1, 'no token: the server refuses');
      const secrets = path.join(path.dirname(w.dir), 'secrets.env');
      await fs.writeFile(secrets, `BOTTLED_GIT_USERNAME=${server.user}\nBOTTLED_GIT_TOKEN=${server.token}\n`);
      const r = await w.reconcile([...flags, '--secrets-file', secrets], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await envOf(w.name_('t')), 'V=token');
      assert.ok(server.authorized > 0);
      const status = await w.run(['status', '--source', '--json']);
      const plan = await w.run(['plan', ...flags, '--secrets-file', secrets], { env });
      const everything = [r.stdout, r.stderr, denied.stderr, status.stdout, plan.stdout, plan.stderr, await fs.readFile(argvLog, 'utf8'), await readAll(w.stateDir)].join('\n');
      assert.ok((await fs.readFile(argvLog, 'utf8')).includes('fetch'), 'the shim saw the fetches');
      assert.ok(!everything.includes(server.token), 'the token leaked');
      assert.ok(!everything.includes(Buffer.from(`${server.user}:${server.token}`).toString('base64')), 'the encoded token leaked');
      const withPassword = await w.reconcile(['--git', server.url().replace('http://', `http://${server.user}:${server.token}@`)]);
      assert.equal(withPassword.code, 1);
      assert.match(withPassword.stderr, /a password in the URL would be logged and stored/);
      assert.ok(!withPassword.stderr.includes(server.token));
    } finally {
      await server.stop();
      await w.cleanup();
    }
  });
});
