import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { ROOT, World, bottleYaml, docker, eventually } from '../helpers/harness.js';

const recipe = (name: string) => fs.readFile(path.join(ROOT, 'examples/recipes', name), 'utf8');
const bottle = (name: string) => bottleYaml(name, 'agent:\n  image: bottled/busybox:local');

async function running(name: string): Promise<boolean> {
  return docker.getContainer(name).inspect().then((i) => i.State.Running, () => false);
}

/** Point a recipe's command at this test's world instead of /opt and /etc. */
function localize(cmd: string, w: World): string {
  return cmd
    .replaceAll('${BOTTLED}', ROOT)
    .replaceAll('/opt/bottled', ROOT)
    .replaceAll('/etc/bottled/bottles.d', w.dir)
    .replaceAll('/var/log/bottled.log', path.join(w.stateDir, '..', 'cron.log'))
    .replaceAll('127.0.0.1:9464', '127.0.0.1:0')
    .replace('--state-dir /var/lib/bottled', `--state-dir ${w.stateDir} --instance ${w.instance} --prefix ${w.prefix} --subnet-pool ${w.pool}`);
}

test('the cron line runs and converges', async () => {
  const w = await new World('cron').setup();
  try {
    await w.write('c.yaml', bottle('c'));
    const line = (await recipe('crontab')).split('\n').find((l) => /^[*\d]/.test(l))!;
    const cmd = localize(line.split(/\s+/).slice(5).join(' '), w);
    execFileSync('sh', ['-c', cmd]);
    assert.ok(await running(w.name_('c')));
  } finally {
    await w.cleanup();
  }
});

test('the systemd unit ExecStart runs the daemon, which stops cleanly on SIGTERM', async () => {
  const w = await new World('systemd').setup();
  try {
    await w.write('s.yaml', bottle('s'));
    const unit = await recipe('bottled.service');
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!;
    const args = localize(exec, w).split(/\s+/);
    assert.equal(/^KillSignal=(.*)$/m.exec(unit)![1], 'SIGTERM');
    const p = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    await eventually(async () => running(w.name_('s')), 'bottle up under the daemon');
    await eventually(async () => err.includes('/healthz'), 'metrics served');
    const code = await new Promise<number | null>((r) => {
      p.on('exit', (c) => r(c));
      p.kill('SIGTERM');
    });
    assert.equal(code, 0, err.slice(-1000));
    assert.ok(await running(w.name_('s')), 'bottles keep running after the daemon stops');
  } finally {
    await w.cleanup();
  }
});

test('the post-merge hook applies what a merge brings', async () => {
  const w = await new World('hook').setup();
  const repo = path.join(w.dir, '..', 'repo');
  try {
    const git = (...a: string[]) => execFileSync('git', ['-C', repo, ...a], { env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', BOTTLED: ROOT, BOTTLED_STATE_DIR: w.stateDir, BOTTLED_FLAGS: `--instance ${w.instance} --prefix ${w.prefix} --subnet-pool ${w.pool}` } }).toString();
    await fs.mkdir(path.join(repo, 'bottles.d'), { recursive: true });
    execFileSync('git', ['init', '-q', '-b', 'main', repo]);
    await fs.writeFile(path.join(repo, 'bottles.d', 'first.yaml'), bottle('first'));
    git('add', '.');
    git('commit', '-qm', 'first');
    git('checkout', '-qb', 'feature');
    await fs.writeFile(path.join(repo, 'bottles.d', 'second.yaml'), bottle('second'));
    git('add', '.');
    git('commit', '-qm', 'second');
    git('checkout', '-q', 'main');
    await fs.copyFile(path.join(ROOT, 'examples/recipes/post-merge'), path.join(repo, '.git/hooks/post-merge'));
    await fs.chmod(path.join(repo, '.git/hooks/post-merge'), 0o755);
    git('merge', '-q', '--no-ff', '-m', 'merge', 'feature');
    assert.ok(await running(w.name_('first')));
    assert.ok(await running(w.name_('second')));
  } finally {
    await w.cleanup();
  }
});
