import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { World, bottleYaml, docker, passLog } from '../helpers/harness.js';
import { DockerSocketProxy } from '../helpers/socket-proxy.js';

const simple = (name: string, extra = '') =>
  bottleYaml(
    name,
    `sidecars:
  - name: proxy
    image: bottled/sidecar:local
    aliases: [egress]
    egress: true
    files:
      - path: /etc/p.conf
        content: "v1"
        onChange: {signal: SIGHUP}
agent:
  image: bottled/busybox:local
${extra}`,
  );

async function readAllUnder(dir: string): Promise<string> {
  let out = '';
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += await fs.readFile(path.join(e.parentPath, e.name), 'latin1');
  }
  return out;
}

describe('safety invariants', () => {
  test('invalid files: validate names file:line:col; reconcile exits 2, keeps their bottles, applies the rest', async () => {
    const w = await new World('invalid').setup();
    try {
      await w.write('keep.yaml', simple('keep'));
      await w.write('ok.yaml', simple('ok'));
      assert.equal((await w.reconcile()).code, 0);
      const ids = Object.fromEntries((await w.containers()).map((c) => [c.Names[0], c.Id]));

      // Break keep.yaml (YAML syntax), and add files with an unknown key, a wrong type, a duplicate name.
      await w.write('keep.yaml', simple('keep').replace('sidecars:', 'sidecars: [oops'));
      await w.write('unknown.yaml', bottleYaml('unknown', 'agent:\n  image: bottled/busybox:local\n  imagePullPolicy: Always'));
      await w.write('wrongtype.yaml', bottleYaml('wrongtype', 'agent:\n  image: 42'));
      await w.write('dup1.yaml', bottleYaml('twin', 'agent:\n  image: bottled/busybox:local'));
      await w.write('dup2.yaml', bottleYaml('twin', 'agent:\n  image: bottled/busybox:local'));
      await w.write('new.yaml', simple('fresh'));

      const v = await w.run(['validate']);
      assert.equal(v.code, 1);
      const lines = v.stdout.trim().split('\n');
      const find = (file: string) => lines.filter((l) => l.includes(`/${file}:`));
      assert.match(find('keep.yaml')[0] ?? '', /keep\.yaml:\d+:\d+: /);
      assert.match(find('unknown.yaml')[0] ?? '', /unknown\.yaml:8:5: .*imagePullPolicy/);
      assert.match(find('wrongtype.yaml')[0] ?? '', /wrongtype\.yaml:7:12: .*spec\.agent\.image/);
      assert.match(find('dup1.yaml')[0] ?? '', /dup1\.yaml:\d+:\d+: .*dup2\.yaml/);
      assert.match(find('dup2.yaml')[0] ?? '', /dup2\.yaml:\d+:\d+: .*dup1\.yaml/);

      const r = await w.reconcile();
      assert.equal(r.code, 2, r.stderr);
      const now = Object.fromEntries((await w.containers()).map((c) => [c.Names[0], c.Id]));
      for (const [n, id] of Object.entries(ids)) assert.equal(now[n], id, `${n} untouched`);
      assert.ok(now[`/${w.name_('fresh')}`], 'the valid new bottle was applied');
      assert.ok(!now[`/${w.name_('twin')}`], 'duplicates are not applied');
      const st = JSON.parse((await w.run(['status', 'keep', '--json'])).stdout);
      const stalled = st.conditions.find((c: { type: string }) => c.type === 'Stalled');
      assert.equal(stalled.status, 'True');
      assert.equal(stalled.reason, 'InvalidSpec');
    } finally {
      await w.cleanup();
    }
  });

  test('a secret reaches the container environment and nothing else', async () => {
    const w = await new World('secret').setup();
    const proxy = await new DockerSocketProxy().start();
    const SECRET = `s3cr3t-${w.id}-value`;
    try {
      await w.write('s.yaml', simple('sec', '  secretEnv: {GH_TOKEN: BOTTLED_TEST_GH_PAT}\n  env: {VISIBLE: plain}'));
      const env = { BOTTLED_TEST_GH_PAT: SECRET, DOCKER_HOST: proxy.host };
      const r = await w.reconcile([], env);
      assert.equal(r.code, 0, r.stderr);
      const agent = await docker.getContainer(w.name_('sec')).inspect();
      assert.ok(agent.Config.Env.includes(`GH_TOKEN=${SECRET}`), 'secret delivered');
      assert.ok(!JSON.stringify(agent.Config.Labels).includes(SECRET), 'not in labels');
      const plan = await w.run(['plan', '--json'], { env });
      const plan2 = await w.run(['plan'], { env });
      const st = await w.run(['status', 'sec', '--json'], { env });
      // Rotate the secret: the plan says so without showing either value.
      const rotated = await w.run(['plan'], { env: { ...env, BOTTLED_TEST_GH_PAT: `${SECRET}-2` } });
      assert.match(rotated.stdout, /\(secret changed\)/);
      const everything = [r.stdout, r.stderr, plan.stdout, plan.stderr, plan2.stdout, st.stdout, rotated.stdout, rotated.stderr, proxy.requests.join('\n'), await readAllUnder(w.stateDir)].join('\n');
      assert.ok(proxy.requests.some((q) => q.startsWith('POST /v1.41/containers/create?name=')), 'requests were recorded');
      assert.ok(!everything.includes(SECRET), 'secret leaked into logs, plan, status, events, state or URLs');
    } finally {
      await proxy.stop();
      await w.cleanup();
    }
  });

  test('SIGKILL after each step, then one more pass: converged, no duplicate, no leftover', async () => {
    const w = await new World('kill').setup();
    try {
      await w.write('k.yaml', simple('kay'));
      // Count the steps of a whole creation, then of a removal.
      const full = await w.reconcile();
      assert.equal(full.code, 0, full.stderr);
      const createSteps = Number(passLog(full)?.executed);
      assert.ok(createSteps >= 6, `creation has ${createSteps} steps`);
      const expected = (await w.containers()).map((c) => c.Names[0]!).sort();
      const expectedNets = (await w.networks()).map((n) => n.Name).sort();
      await w.rm('k.yaml');
      await w.write('other.yaml', simple('other'));
      const removal = await w.reconcile();
      const removeSteps = Number(passLog(removal)?.executed);
      await w.cleanup();
      await w.setup();

      const check = async (label: string, wantNames: string[], wantNets: string[]) => {
        const names = (await w.containers()).map((c) => c.Names[0]!).sort();
        assert.deepEqual(names, wantNames, `${label}: containers`);
        assert.deepEqual((await w.networks()).map((n) => n.Name).sort(), wantNets, `${label}: networks`);
        const all = await docker.listNetworks();
        for (const n of wantNets) assert.equal(all.filter((x) => x.Name === n).length, 1, `${label}: one network named ${n}`);
      };

      for (let k = 1; k < createSteps; k++) {
        await w.write('k.yaml', simple('kay'));
        const killed = await w.reconcile([], { BOTTLED_TEST_KILL_AFTER_STEPS: String(k) });
        assert.equal(killed.signal, 'SIGKILL', `killed after step ${k}`);
        const r = await w.reconcile();
        assert.equal(r.code, 0, `pass after kill at ${k}: ${r.stderr}`);
        await check(`create, kill after ${k}`, expected, expectedNets);
        await w.cleanup();
        await w.setup();
      }
      for (let k = 1; k < removeSteps; k++) {
        await w.write('k.yaml', simple('kay'));
        assert.equal((await w.reconcile()).code, 0);
        await w.rm('k.yaml');
        await w.write('other.yaml', simple('other'));
        const killed = await w.reconcile([], { BOTTLED_TEST_KILL_AFTER_STEPS: String(k) });
        assert.equal(killed.signal, 'SIGKILL', `killed after removal step ${k}`);
        const r = await w.reconcile();
        assert.equal(r.code, 0, r.stderr);
        const names = (await w.containers()).map((c) => c.Names[0]!);
        assert.ok(names.every((n) => n.includes('-other')), `remove, kill after ${k}: ${names.join(',')}`);
        assert.ok((await w.networks()).every((n) => n.Name.includes('-other-')), `remove, kill after ${k}: networks`);
        await w.cleanup();
        await w.setup();
      }
    } finally {
      await w.cleanup();
    }
  });

  test('two reconcilers on one state dir: one waits or exits 3; nothing is created twice', async () => {
    const w = await new World('lock').setup();
    try {
      for (const n of ['l1', 'l2', 'l3']) await w.write(`${n}.yaml`, simple(n));
      const [a, b] = await Promise.all([w.reconcile(['--lock-timeout', '0s']), w.reconcile(['--lock-timeout', '0s'])]);
      const codes = [a.code, b.code].sort();
      assert.ok(
        (codes[0] === 0 && codes[1] === 3) || (codes[0] === 0 && codes[1] === 0),
        `exit codes ${codes}: ${a.stderr.slice(-300)} ${b.stderr.slice(-300)}`,
      );
      const loser = a.code === 3 ? a : b.code === 3 ? b : undefined;
      if (loser) assert.match(loser.stderr, /another reconciler holds the lock/);
      const names = (await w.containers()).map((c) => c.Names[0]!);
      assert.equal(names.length, 6);
      assert.equal(new Set(names).size, 6);
      const all = await docker.listNetworks();
      for (const n of await w.networks()) assert.equal(all.filter((x) => x.Name === n.Name).length, 1);
      // With a wait, the second one runs after the first and finds nothing to do.
      await w.rm('l3.yaml');
      const [c, d] = await Promise.all([w.reconcile(['--lock-timeout', '60s']), w.reconcile(['--lock-timeout', '60s'])]);
      assert.deepEqual([c.code, d.code], [0, 0]);
      assert.equal((await w.containers()).length, 4);
    } finally {
      await w.cleanup();
    }
  });

  test('Docker unreachable: one clear line, exit 1, state dir untouched', async () => {
    const w = await new World('unreach').setup();
    try {
      await w.write('u.yaml', simple('u'));
      const r = await w.reconcile(['--docker-host', 'unix:///nonexistent/docker.sock']);
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /cannot reach the Docker Engine/);
      await assert.rejects(fs.stat(w.stateDir), /ENOENT/);
    } finally {
      await w.cleanup();
    }
  });
});

