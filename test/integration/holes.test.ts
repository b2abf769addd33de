// The seventeen holes of the hostile review, each tried again against the real engine (the ones
// that need watch mode are in watch-holes.test.ts, the engine restart in test/serial).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { World, bottleYaml, docker, dockerExec, type RunResult } from '../helpers/harness.js';
import { DockerSocketProxy } from '../helpers/socket-proxy.js';

const simple = (name: string, extra = '', agentExtra = '') =>
  bottleYaml(
    name,
    `sidecars:
  - name: proxy
    image: bottled/sidecar:local
    aliases: [egress]
    env: {WATCH_FILE: /etc/p.conf}
    files:
      - path: /etc/p.conf
        content: "v1"
        onChange: {signal: SIGHUP}
${extra}agent:
  image: bottled/busybox:local
${agentExtra}`,
  );

const shared = (name: string) => `apiVersion: bottled.dev/v1\nkind: SharedSidecar\nmetadata: {name: ${name}}\nspec:\n  image: bottled/busybox:local\n`;

async function ids(w: World): Promise<Record<string, string>> {
  return Object.fromEntries((await w.containers()).map((c) => [c.Names[0]!.slice(1), c.Id]));
}

async function statusOf(w: World, unit: string): Promise<Record<string, any>> {
  return JSON.parse(await fs.readFile(path.join(w.stateDir, 'status', `${unit}.json`), 'utf8'));
}

const ready = (st: Record<string, any>) => st.conditions.find((c: { type: string }) => c.type === 'Ready');

/** A run that must finish (a hang is the bug): fails after `ms` instead of waiting for the test timeout. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

describe('data loss', () => {
  test('F1 + F14: two state dirs with one --instance never prune each other; a lost state dir is adopted explicitly, recreating nothing', async () => {
    const a = await new World('owner-a').setup();
    const b = await new World('owner-b').setup();
    // Same engine, same instance, same prefix: two projects that both kept the defaults.
    Object.assign(b, { instance: a.instance, prefix: a.prefix, pool: a.pool });
    const env = { BOTTLED_TEST_TOKEN: `tok-${a.id}` };
    try {
      await a.write('alpha.yaml', simple('alpha', '', '  secretEnv: {TOKEN: BOTTLED_TEST_TOKEN}\n'));
      assert.equal((await a.reconcile([], env)).code, 0);
      const alpha = await ids(a);
      await b.write('beta.yaml', simple('beta'));
      const rb = await b.reconcile([], env);
      assert.equal(rb.code, 0, rb.stderr);
      const after = await ids(a);
      for (const [n, id] of Object.entries(alpha)) assert.equal(after[n], id, `${n} untouched by the other state dir`);
      assert.ok(after[b.name_('beta')], 'beta is up');

      // The other project declares a bottle of the same name: a collision that says what to do.
      await b.write('alpha.yaml', simple('alpha'));
      const collide = await b.reconcile([], env);
      assert.equal(collide.code, 1);
      assert.match(JSON.stringify(await statusOf(b, 'alpha')), /another bottled state directory \(.*\) with the same --instance .*--adopt/);
      // --adopt is for a lost state directory, not one that still exists.
      const grab = await b.reconcile(['--adopt'], env);
      assert.equal(grab.code, 1);
      assert.match(JSON.stringify(await statusOf(b, 'alpha')), /which still exists: --adopt takes over only what a lost state directory left/);
      await b.rm('alpha.yaml');
      assert.equal((await b.reconcile(['--max-deletions', 'unlimited'], env)).code, 0);
      assert.equal((await ids(a))[a.name_('alpha')], alpha[a.name_('alpha')]);

      // a's state directory is lost: nothing is taken over without --adopt...
      await fs.rm(a.stateDir, { recursive: true, force: true });
      const plain = await a.run(['plan'], { env });
      assert.equal(plain.code, 1, 'a collision is held: plan exits as reconcile --once would');
      assert.match(plain.stdout, /NameCollision: .*--adopt/);
      // ...and with it, what is proven unchanged is adopted, never recreated (F14: the agent has a secret).
      const preview = await a.run(['plan', '--adopt'], { env });
      assert.doesNotMatch(preview.stdout, /recreate/, preview.stdout);
      assert.match(preview.stdout, /adopt .*taken over with --adopt/);
      const adopted = await a.reconcile(['--adopt'], env);
      assert.equal(adopted.code, 0, adopted.stderr);
      for (const [n, id] of Object.entries(alpha)) assert.equal((await ids(a))[n], id, `${n} kept its container`);
      const again = await a.run(['plan'], { env });
      assert.equal(again.code, 0, again.stdout);
    } finally {
      await b.cleanup();
      await a.cleanup();
    }
  });

  test('F2: a container run from a committed bottle image keeps running when bottled prunes', async () => {
    const w = await new World('commit').setup();
    const copy = `${w.prefix}-copy`;
    const image = `bottled-test/commit-${w.id}:snap`;
    try {
      await w.write('a.yaml', simple('a'));
      assert.equal((await w.reconcile()).code, 0);
      await docker.getContainer(w.name_('a')).commit({ repo: image.split(':')[0], tag: 'snap' });
      const c = await docker.createContainer({ name: copy, Image: image, Cmd: ['sleep', '3600'] } as never);
      await c.start();
      const plan = await w.run(['plan']);
      assert.doesNotMatch(plan.stdout, new RegExp(copy), plan.stdout);
      await w.rm('a.yaml');
      await w.write('other.yaml', simple('other'));
      assert.equal((await w.reconcile()).code, 0);
      assert.equal((await docker.getContainer(copy).inspect()).State.Running, true, 'the copy was not removed');
      assert.ok(!(await ids(w))[w.name_('a')], 'the bottle itself was removed');
    } finally {
      await w.cleanup({ containers: [copy] });
      await docker.getImage(image).remove({ force: true }).catch(() => {});
    }
  });

  test('F3: a linked spec file that dangles, and a team directory replaced by a link, remove nothing', async () => {
    const w = await new World('links').setup();
    const ext = path.join(path.dirname(w.dir), 'ext');
    try {
      await fs.mkdir(ext);
      await fs.writeFile(path.join(ext, 'gamma.yaml'), simple('gamma'));
      await fs.symlink(path.join(ext, 'gamma.yaml'), path.join(w.dir, 'gamma.yaml'));
      await w.write('team/t.yaml', simple('t'));
      // A link out of the directory is followed only with --allow-outside.
      const refused = await w.run(['validate']);
      assert.equal(refused.code, 1);
      assert.match(refused.stdout, /gamma\.yaml:1:1: .*symbolic link that leads outside .*--allow-outside/);
      assert.equal((await w.reconcile(['--allow-outside'])).code, 0);
      const before = await ids(w);
      assert.ok(before[w.name_('gamma')]);

      // The team directory becomes a link to the same files, inside the directory: nothing to do.
      await fs.rename(path.join(w.dir, 'team'), path.join(w.dir, '.team'));
      await fs.symlink('.team', path.join(w.dir, 'team'));
      assert.equal((await w.run(['plan', '--allow-outside'])).code, 0);

      // Both links dangle: their bottles are held, not pruned.
      await fs.rm(path.join(ext, 'gamma.yaml'));
      await fs.rm(path.join(w.dir, '.team'), { recursive: true });
      const r = await w.reconcile(['--allow-outside']);
      assert.equal(r.code, 2, r.stderr);
      assert.deepEqual(await ids(w), before, 'every container kept');
      assert.equal(ready(await statusOf(w, 'gamma')).reason, 'InvalidSpec');
      assert.equal(ready(await statusOf(w, 't')).reason, 'InvalidSpec');
    } finally {
      await w.cleanup();
      await fs.rm(ext, { recursive: true, force: true });
    }
  });

  test('F4: --max-deletions counts SharedSidecars', async () => {
    const w = await new World('maxdel').setup();
    try {
      for (const n of ['c1', 'c2', 'c3']) await w.write(`${n}.yaml`, shared(n));
      await w.write('keep.yaml', bottleYaml('keep', 'agent:\n  image: bottled/busybox:local'));
      assert.equal((await w.reconcile()).code, 0);
      const before = await ids(w);
      for (const n of ['c1', 'c2', 'c3']) await w.rm(`${n}.yaml`);
      const r = await w.reconcile(['--max-deletions', '1']);
      assert.equal(r.code, 1);
      assert.deepEqual(await ids(w), before, 'nothing removed');
      assert.match(r.stderr, /would remove 3 shared sidecars/);
    } finally {
      await w.cleanup();
    }
  });
});

describe('an agent left unsealed', () => {
  test('F7: a network connected to the agent by hand is disconnected by the next pass', async () => {
    const w = await new World('extranet').setup();
    const extra = `${w.prefix}-extra`;
    try {
      await w.write('a.yaml', simple('a'));
      assert.equal((await w.reconcile()).code, 0);
      await docker.createNetwork({ Name: extra, CheckDuplicate: true } as never);
      await docker.getNetwork(extra).connect({ Container: w.name_('a') });
      const plan = await w.run(['plan']);
      assert.equal(plan.code, 2);
      assert.match(plan.stdout, new RegExp(`disconnect ${extra} .*not declared \\(connected by hand\\)`));
      assert.equal((await w.reconcile()).code, 0);
      const nets = Object.keys((await docker.getContainer(w.name_('a')).inspect()).NetworkSettings.Networks);
      assert.deepEqual(nets, [w.name_('a', 'net')]);
    } finally {
      await w.cleanup({ networks: [extra] });
    }
  });

  test('F8: agent.networks naming bottled-managed networks or Docker\'s bridge is refused by validate, located', async () => {
    const w = await new World('netforbid').setup();
    try {
      await w.write('a.yaml', simple('a', '', `  networks: [bridge]\n`));
      await w.write('b.yaml', simple('b', '', `  networks: [${w.prefix}-a-net]\n`));
      const v = await w.run(['validate']);
      assert.equal(v.code, 1);
      assert.match(v.stdout, /a\.yaml:\d+:\d+: spec\.agent\.networks\[0\]: "bridge" is one of Docker's own networks/);
      assert.match(v.stdout, new RegExp(`b\\.yaml:\\d+:\\d+: spec\\.agent\\.networks\\[0\\]: ${w.prefix}-a-net is a network name bottled manages`));
    } finally {
      await w.cleanup();
    }
  });

  test('F8: a network named like the ID of another network is refused (Docker would take it for that network)', async () => {
    const w = await new World('netid').setup();
    try {
      await w.write('a.yaml', simple('a'));
      assert.equal((await w.reconcile()).code, 0);
      const aNet = (await docker.getNetwork(w.name_('a', 'net')).inspect()).Id;
      await w.write('b.yaml', simple('b', '', `  networks: ["${aNet}"]\n`));
      const v = await w.run(['validate']);
      assert.equal(v.code, 1);
      assert.match(v.stdout, /b\.yaml:\d+:\d+: spec\.agent\.networks\[0\]: looks like a Docker network ID/);
      const r = await w.reconcile();
      assert.equal(r.code, 2);
      assert.ok(!(await w.containers()).some((c) => c.Names[0] === `/${w.name_('b')}`), 'b is not applied');
      const aNets = (await docker.getNetwork(w.name_('a', 'net')).inspect()).Containers ?? {};
      assert.equal(Object.keys(aNets).length, 2, "only a's own containers on a's network");
    } finally {
      await w.cleanup();
    }
  });
});

describe('a seal broken from outside', () => {
  test('a foreign container attached to a bottle network (answering to a sidecar alias) makes the bottle not Ready, and is left alone', async () => {
    const w = await new World('intruder').setup();
    const intruder = `${w.prefix}-intruder`;
    try {
      await w.write('a.yaml', simple('a'));
      assert.equal((await w.reconcile()).code, 0);
      const c = await docker.createContainer({ name: intruder, Image: 'bottled/busybox:local' } as never);
      await c.start();
      await docker.getNetwork(w.name_('a', 'net')).connect({ Container: intruder, EndpointConfig: { Aliases: ['egress'] } });
      const plan = await w.run(['plan']);
      assert.equal(plan.code, 1, plan.stdout);
      assert.match(plan.stdout, new RegExp(`! alert: network ${w.name_('a', 'net')} has a container attached that is not part of the bottle \\(${intruder}\\)`));
      const r = await w.reconcile();
      assert.equal(r.code, 1);
      assert.equal(ready(await statusOf(w, 'a')).reason, 'ForeignEndpoint');
      assert.equal((await docker.getContainer(intruder).inspect()).State.Running, true, 'not touched');
      await docker.getNetwork(w.name_('a', 'net')).disconnect({ Container: intruder });
      assert.equal((await w.reconcile()).code, 0);
      assert.equal(ready(await statusOf(w, 'a')).status, 'True');
    } finally {
      await w.cleanup({ containers: [intruder] });
    }
  });
});

describe('staying up', () => {
  test('F5: through an engine that is not local (the kill API), a signalled sidecar is still restarted after a crash', async () => {
    const w = await new World('sigapi').setup();
    const proxy = await new DockerSocketProxy('/var/run/docker.sock', true).start();
    try {
      const run = () => w.reconcile(['--docker-host', proxy.host]);
      await w.write('a.yaml', simple('a'));
      assert.equal((await run()).code, 0);
      await w.write('a.yaml', simple('a').replace('"v1"', '"v2"'));
      assert.equal((await run()).code, 0);
      const side = w.name_('a', 'proxy');
      assert.ok(proxy.requests.some((q) => q.startsWith(`POST /v1.41/containers/${side}/kill?signal=SIGHUP`)), 'signalled through the API');
      assert.match((await dockerExec(side, ['cat', '/tmp/signals.log'])).out, /SIGHUP v2/);
      await dockerExec(side, ['kill', '1']);
      const deadline = Date.now() + 30_000;
      let info = await docker.getContainer(side).inspect();
      while (!(info.State.Running && info.RestartCount >= 1) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        info = await docker.getContainer(side).inspect();
      }
      assert.ok(info.State.Running && info.RestartCount >= 1, `restarted by Docker (${info.State.Status}, ${info.RestartCount} restarts)`);
    } finally {
      await proxy.stop();
      await w.cleanup();
    }
  });

  test('F12: a subnet change that cannot complete (a foreign container on the network) holds the bottle, still running', async () => {
    const w = await new World('netinuse').setup();
    const foreign = `${w.prefix}-foreign`;
    // Inside the world's own pool (no other test allocates from it).
    const [o1, o2, o3] = w.pool.split('.');
    const subnet = (x: number) => `${o1}.${o2}.${o3}.${x}/28`;
    try {
      await w.write('a.yaml', simple('a', '', '').replace('sidecars:', `network: {subnet: ${subnet(0)}}\n  sidecars:`));
      const first = await w.reconcile();
      assert.equal(first.code, 0, first.stderr);
      const c = await docker.createContainer({ name: foreign, Image: 'bottled/busybox:local', HostConfig: { NetworkMode: w.name_('a', 'net') } } as never);
      await c.start();
      const before = await ids(w);
      await w.write('a.yaml', simple('a').replace('sidecars:', `network: {subnet: ${subnet(16)}}\n  sidecars:`));
      const r = await w.reconcile();
      assert.equal(r.code, 1);
      assert.deepEqual(await ids(w), before, 'nothing of the bottle was removed');
      for (const id of Object.values(before)) assert.equal((await docker.getContainer(id).inspect()).State.Running, true);
      const st = ready(await statusOf(w, 'a'));
      assert.equal(st.reason, 'NetworkInUse');
      assert.match(st.message, new RegExp(`\\(${foreign}\\)`));
    } finally {
      await w.cleanup({ containers: [foreign] });
    }
  });
});

describe('input the loader must survive', () => {
  test('F10, F11: a 40k-key spec and a FIFO source get located errors at once', async () => {
    const w = await new World('bigspec').setup();
    try {
      let env = '';
      for (let i = 0; i < 40_000; i++) env += `    K${i}: v\n`;
      await w.write('big.yaml', bottleYaml('big', `agent:\n  image: bottled/busybox:local\n  env:\n${env}`));
      await w.write('pipe.yaml', bottleYaml('pipe', 'agent:\n  image: bottled/busybox:local\n  files: [{path: /x, source: fifo}]'));
      execFileSync('mkfifo', [path.join(w.dir, 'fifo')]);
      const v = await within(60_000, w.run(['validate']), 'validate');
      assert.equal(v.code, 1);
      assert.match(v.stdout, /big\.yaml:1:1: cannot read this file: big\.yaml is \d+ bytes, more than the 512 KiB bottled reads/);
      assert.match(v.stdout, /pipe\.yaml:\d+:\d+: spec\.agent\.files\[0\]\.source: cannot read fifo: fifo is not a regular file \(it is a FIFO\)/);
    } finally {
      await w.cleanup();
    }
  });

  test('F15: what Docker would refuse at runtime is a located validate error; a name collision says what collides', async () => {
    const w = await new World('runtime').setup();
    try {
      const agent = 'agent:\n  image: bottled/busybox:local\n';
      await w.write('colon.yaml', bottleYaml('colon', `${agent}  files: [{path: "/app/a:b", content: x}]`));
      await w.write('nul.yaml', bottleYaml('nul', `${agent}  env: {A: "x\\u0000y"}`));
      await w.write('nested.yaml', bottleYaml('nested', `${agent}  files: [{path: /app/x, content: a}, {path: /app/x/y, content: b}]`));
      await w.write('forever.yaml', bottleYaml('forever', `sidecars:\n  - {name: s, image: bottled/sidecar:local, healthcheck: {test: [CMD, "true"], interval: 99999999999h}}\n${agent}`));
      await w.write('a.yaml', bottleYaml('a', `sidecars:\n  - {name: b, image: bottled/sidecar:local}\n${agent}`));
      await w.write('a-b.yaml', bottleYaml('a-b', agent));
      const v = await w.run(['validate', '--prefix', w.prefix]);
      assert.equal(v.code, 1);
      const out = v.stdout;
      assert.match(out, /colon\.yaml:\d+:\d+: spec\.agent\.files\[0\]\.path: must not contain ":"/);
      assert.match(out, /nul\.yaml:\d+:\d+: spec\.agent\.env\.A: must not contain a NUL character/);
      assert.match(out, /nested\.yaml:\d+:\d+: spec\.agent\.files\[1\]\.path: \/app\/x\/y would be inside \/app\/x/);
      assert.match(out, /forever\.yaml:\d+:\d+: spec\.sidecars\[0\]\.healthcheck\.interval: must be at most 24h/);
      assert.match(out, new RegExp(`a\\.yaml:\\d+:\\d+: container name ${w.prefix}-a-b of sidecar b of bottle a is also the agent of bottle a-b \\(a-b\\.yaml:`));
      assert.match(out, new RegExp(`a-b\\.yaml:\\d+:\\d+: container name ${w.prefix}-a-b of the agent of bottle a-b is also sidecar b of bottle a`));
    } finally {
      await w.cleanup();
    }
  });

  test('F17: flags are checked; a state dir inside a linked --dir is refused; plan exits like reconcile --once', async () => {
    const w = await new World('flags').setup();
    const linked = path.join(path.dirname(w.dir), 'linked');
    try {
      const expectUsage = async (args: string[], re: RegExp) => {
        const r: RunResult = await w.run(args);
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, re);
      };
      await expectUsage(['reconcile', '--resync', '0'], /--resync 0: must be at least 1s/);
      await expectUsage(['reconcile', '--once', '--retries', 'abc'], /--retries abc: a whole number from 0 to 100/);
      await expectUsage(['reconcile', '--once', '--retries', '-1'], /--retries -1: a whole number/);
      await expectUsage(['plan', '--wait-timeout', 'soon'], /--wait-timeout: "soon" must be a duration/);
      await fs.symlink(w.dir, linked);
      const inside = await runWith(w, ['plan', '--dir', linked, '--state-dir', path.join(w.dir, 'state')]);
      assert.equal(inside.code, 1);
      assert.match(inside.stderr, /is inside --dir/);
      // A bottle that cannot be applied (its image is missing): plan and reconcile --once both exit 1.
      await w.write('m.yaml', bottleYaml('m', 'agent:\n  image: bottled/missing:none'));
      assert.equal((await w.run(['plan'])).code, 1);
      assert.equal((await w.reconcile(['--retries', '0'])).code, 1);
    } finally {
      await fs.rm(linked, { force: true });
      await w.cleanup();
    }
  });
});

describe('smaller, still wrong', () => {
  test('F13: a 0600 file of an agent that runs as a named user is readable by it; uid/gid set the owner', async () => {
    const w = await new World('owner').setup();
    try {
      await w.write('a.yaml', bottleYaml('a', `sidecars:
  - name: s
    image: bottled/sidecar:local
    files: [{path: /etc/owned, content: "o", uid: 4242, gid: 4343, mode: "0640"}]
agent:
  image: bottled/busybox-node:local
  files: [{path: /home/node/.bottle-prompt.txt, content: "You help.", mode: "0600"}]`));
      const r = await w.reconcile();
      assert.equal(r.code, 0, r.stderr);
      const read = await dockerExec(w.name_('a'), ['cat', '/home/node/.bottle-prompt.txt']);
      assert.equal(read.out, 'You help.', `the agent (user node) reads its file: ${read.out}`);
      assert.equal(read.code, 0);
      assert.equal((await dockerExec(w.name_('a', 's'), ['stat', '-c', '%u:%g', '/etc/owned'])).out.trim(), '4242:4343');
      assert.equal((await w.run(['plan'])).code, 0, 'in sync afterwards');
    } finally {
      await w.cleanup();
    }
  });
});

/** Run the CLI with this world's flags, but these first (a flag given twice: the last wins, so put overrides after). */
function runWith(w: World, args: string[]): Promise<RunResult> {
  return w.run([...args.slice(0, 1), ...w.flags().filter((_, i, all) => !['--dir', '--state-dir'].includes(all[i]!) && !['--dir', '--state-dir'].includes(all[i - 1]!)), ...args.slice(1)], { flags: false });
}
