// Bottles as Swarm services, on a real three-node swarm of the test's own (lab namespaces, a
// registry on the lab bridge): placement, reach by alias across nodes, the seal, a file change,
// a constant no-op, drift, removal, and an invalid file holding what runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { BIN, Daemon, World, bottleYaml, dockerExec, eventually, passLog } from '../helpers/harness.js';
import { Lab, type LabNode } from '../helpers/lab-engine.js';
import { DockerSocketProxy } from '../helpers/socket-proxy.js';

interface Svc { ID: string; Spec: { Name: string; Labels: Record<string, string>; TaskTemplate: { ContainerSpec: { Env?: string[]; Configs?: { ConfigName: string }[] } } } }
interface Task { ID: string; NodeID: string; DesiredState: string; Status: { State: string; ContainerStatus?: { ContainerID: string } } }

describe('backend: swarm on a three-node lab swarm', () => {
  let lab: Lab;
  let mgr: LabNode;
  let images: Map<string, string>;
  const w = new World('swarm');
  const nodeIds = new Map<string, string>(); // hostname -> node ID

  const bottle = (name: string, opts: { conf?: string; extraSidecar?: boolean; agentZone?: string } = {}) =>
    bottleYaml(
      name,
      `backend: swarm
sidecars:
  - name: proxy
    image: ${images.get('bottled/sidecar:local')}
    aliases: [egress]
    egress: true
    env: {LISTEN_PORTS: "8888", WATCH_FILE: /app/routes.yaml}
    placement: {constraints: [node.labels.zone==b]}
    files:
      - path: /app/routes.yaml
        content: "${opts.conf ?? 'routes-v1'}"
        onChange: restart
${opts.extraSidecar ? `  - name: extra\n    image: ${images.get('bottled/busybox:local')}\n    placement: {constraints: [node.labels.zone==b]}\n` : ''}agent:
  image: ${images.get('bottled/busybox:local')}
  env: {HTTPS_PROXY: "http://egress:8888"}
  placement: {constraints: [node.labels.zone==${opts.agentZone ?? 'c'}]}
`,
    );
  const run = (args: string[], env?: NodeJS.ProcessEnv) => w.run([...args, '--docker-host', mgr.host], { env });
  const services = async (): Promise<Svc[]> => (await mgr.docker.listServices({ filters: JSON.stringify({ label: [`bottled.instance=${w.instance}`] }) } as never)) as unknown as Svc[];
  const runningTask = async (service: string): Promise<Task | undefined> =>
    ((await mgr.docker.listTasks({ filters: JSON.stringify({ service: [service], 'desired-state': ['running'] }) } as never)) as unknown as Task[]).find((t) => t.Status.State === 'running');
  /** Swarm starts a task after the create returns: wait for it (bounded), then report where it runs. */
  const nodeOf = async (service: string): Promise<string | undefined> => {
    // Generous: on a loaded machine a worker has been seen to take ~30 s to start a first task.
    for (let i = 0; i < 600; i++) {
      const t = await runningTask(service);
      if (t) return [...nodeIds].find(([, id]) => id === t.NodeID)?.[0];
      await new Promise((r) => setTimeout(r, 200));
    }
    return undefined;
  };
  const engineOf = (nodeId: string): Docker => lab.nodes.find((n) => nodeIds.get(n.name) === nodeId)!.docker;
  /** Run a command in the service's running task, on whichever node runs it. */
  const inTask = async (service: string, cmd: string[]) => {
    for (let i = 0; i < 600; i++) {
      const t = await runningTask(service);
      if (t?.Status.ContainerStatus?.ContainerID) return dockerExec(t.Status.ContainerStatus.ContainerID, cmd, engineOf(t.NodeID));
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${service} has no running task`);
  };

  before(async () => {
    lab = await Lab.start(3, { registry: true });
    mgr = lab.nodes[0]!;
    await lab.swarm();
    images = await lab.pushImages(['bottled/busybox:local', 'bottled/sidecar:local']);
    await lab.labelNode('n2', { zone: 'b' });
    await lab.labelNode('n3', { zone: 'c' });
    for (const n of (await mgr.docker.listNodes()) as { ID: string; Description: { Hostname: string } }[]) nodeIds.set(n.Description.Hostname, n.ID);
    await w.setup();
  });
  after(async () => {
    await lab?.stop();
    await w.cleanup();
  });

  test('two bottles converge: agent and sidecar on the nodes their placement names, reaching each other by alias across nodes, sealed', async () => {
    await w.write('a.yaml', bottle('alpha'));
    await w.write('b.yaml', bottle('beta'));
    const r = await run(['reconcile', '--once']);
    assert.equal(r.code, 0, r.stderr);
    const svcs = await services();
    assert.deepEqual(svcs.map((s) => s.Spec.Name).sort(), [w.name_('alpha'), w.name_('alpha', 'proxy'), w.name_('beta'), w.name_('beta', 'proxy')].sort());
    const agent = svcs.find((s) => s.Spec.Name === w.name_('alpha'))!;
    assert.equal(agent.Spec.Labels['bottled.role'], 'agent');
    assert.equal(agent.Spec.Labels['bottled.bottle'], 'alpha');
    assert.match(agent.Spec.Labels['bottled.spec-hash'] ?? '', /^[0-9a-f]{64}$/);
    for (const b of ['alpha', 'beta']) {
      assert.equal(await nodeOf(w.name_(b, 'proxy')), 'n2');
      assert.equal(await nodeOf(w.name_(b)), 'n3');
    }
    const nets = (await mgr.docker.listNetworks({ filters: { label: [`bottled.instance=${w.instance}`] } })) as { Name: string; Driver: string; Internal: boolean; Attachable: boolean }[];
    const net = nets.find((n) => n.Name === w.name_('alpha', 'net'))!;
    assert.equal(net.Driver, 'overlay');
    assert.equal(net.Internal, true);
    // The agent on n3 reaches its own sidecar on n2 by alias, and gets its file.
    const got = await inTask(w.name_('alpha'), ['sh', '-c', `printf 'GET /routes HTTP/1.0\\r\\n\\r\\n' | nc -w 3 egress 8888; nslookup egress 2>&1 | tail -2`]);
    assert.match(got.out, /HTTP\/1\.[01] /, got.out);
    const conf = await inTask(w.name_('alpha', 'proxy'), ['cat', '/app/routes.yaml']);
    assert.equal(conf.out.trim(), 'routes-v1');
    // Sealed: no route out, and neither a node's address nor the egress network's side of its sidecar answers.
    const seal = await inTask(w.name_('alpha'), ['sh', '-c', `ip route; for a in ${lab.nodes.map((n) => n.addr).join(' ')}; do nc -w 2 $a 2377 </dev/null && echo "reached $a"; done; echo done`]);
    assert.doesNotMatch(seal.out, /default/, seal.out);
    assert.doesNotMatch(seal.out, /reached/, seal.out);
    const status = await run(['status', 'alpha']);
    assert.match(status.stdout, new RegExp(`service +${w.name_('alpha', 'proxy')} +running +\\(on n2\\)`), status.stdout);
    // Hardened as on the docker backend, as far as the Swarm API carries it: capabilities and a pids limit.
    const spec = (await mgr.docker.getService(w.name_('alpha')).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { CapabilityDrop?: string[] }; Resources?: { Limits?: { Pids?: number } } } } };
    assert.deepEqual(spec.Spec.TaskTemplate.ContainerSpec.CapabilityDrop, ['CAP_AUDIT_WRITE', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETFCAP', 'CAP_SYS_CHROOT']);
    assert.equal(spec.Spec.TaskTemplate.Resources?.Limits?.Pids, 4096);
    const ping = await inTask(w.name_('alpha'), ['sh', '-c', 'ping -c1 -W1 egress; echo rc=$?']);
    assert.match(ping.out, /permission denied/, `the agent task has no raw sockets: ${ping.out}`);
  });

  test('a user label added to a swarm bottle updates its services in place; its overlays stay', async () => {
    await w.write('b.yaml', bottle('beta').replace('metadata:\n  name: beta\n', 'metadata:\n  name: beta\n  labels: {team: blue}\n'));
    const r = await run(['reconcile', '--once']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stderr.includes('"kind":"recreate"') && !/NetworkInUse/.test(r.stderr), r.stderr);
    const agent = (await services()).find((x) => x.Spec.Name === w.name_('beta'))!;
    assert.equal(agent.Spec.Labels['bottled.user.team'], 'blue');
    await w.write('b.yaml', bottle('beta'));
    assert.equal((await run(['reconcile', '--once'])).code, 0);
  });

  test('a no-op pass makes no change and the same number of calls as for more bottles', async () => {
    const r = await run(['reconcile', '--once']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(passLog(r)?.executed, 0, r.stderr);
    const two = Number(passLog(r)?.swarmCalls) + Number(passLog(r)?.dockerCalls);
    const plan = await run(['plan']);
    assert.match(plan.stdout, /nothing to do/, plan.stdout);
    await w.write('c.yaml', bottle('gamma'));
    assert.equal((await run(['reconcile', '--once'])).code, 0);
    const again = await run(['reconcile', '--once']);
    assert.equal(passLog(again)?.executed, 0);
    assert.equal(Number(passLog(again)?.swarmCalls) + Number(passLog(again)?.dockerCalls), two, 'a no-op pass over 3 swarm bottles makes as many calls as over 2');
    await w.rm('c.yaml');
    assert.equal((await run(['reconcile', '--once'])).code, 0);
  });

  test('a file change is a new config and a replaced task, planned as such; the old config goes', async () => {
    const proxy = w.name_('alpha', 'proxy');
    const before = (await services()).find((x) => x.Spec.Name === proxy)!.Spec.TaskTemplate.ContainerSpec.Configs!.map((c) => c.ConfigName);
    await w.write('a.yaml', bottle('alpha', { conf: 'routes-v2' }));
    const plan = await run(['plan']);
    assert.match(plan.stdout, new RegExp(`service +${proxy} +update +files changed: new configs, Swarm replaces the task \\(start-first\\)`), plan.stdout);
    assert.doesNotMatch(plan.stdout, new RegExp(`service +${w.name_('alpha')} `), 'the agent is not touched');
    const r = await run(['reconcile', '--once']);
    assert.equal(r.code, 0, r.stderr);
    for (let i = 0; i < 100; i++) {
      const conf = await inTask(proxy, ['cat', '/app/routes.yaml']).catch(() => ({ out: '' }));
      if (conf.out.trim() === 'routes-v2') break;
      if (i === 99) assert.fail(`the sidecar still reads ${conf.out}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    const configs = ((await mgr.docker.listConfigs({ filters: JSON.stringify({ label: [`bottled.instance=${w.instance}`, 'bottled.bottle=alpha'] }) } as never)) as unknown as { Spec: { Name: string } }[]).map((c) => c.Spec.Name);
    assert.equal(configs.length, 1, `one config left: ${configs}`);
    assert.ok(!before.includes(configs[0]!), 'the old config was removed');
    const again = await run(['reconcile', '--once']);
    assert.equal(passLog(again)?.executed, 0, again.stderr);
  });

  test('a service of someone else\'s with a bottle\'s name is a NameCollision, never changed', async () => {
    const name = w.name_('coll');
    await mgr.docker.createService(undefined as never, { Name: name, TaskTemplate: { ContainerSpec: { Image: images.get('bottled/busybox:local'), Env: ['MINE=1'] } }, Mode: { Replicated: { Replicas: 0 } } } as never);
    await w.write('coll.yaml', bottleYaml('coll', `backend: swarm\nagent:\n  image: ${images.get('bottled/busybox:local')}\n`));
    try {
      const r = await run(['reconcile', '--once']);
      assert.equal(r.code, 1, r.stderr);
      const status = await run(['status', 'coll']);
      assert.match(status.stdout, /NameCollision/, status.stdout);
      const spec = (await mgr.docker.getService(name).inspect()) as { Spec: { Labels?: Record<string, string>; TaskTemplate: { ContainerSpec: { Env: string[] } } } };
      assert.deepEqual(spec.Spec.TaskTemplate.ContainerSpec.Env, ['MINE=1'], 'left as it was');
      assert.equal(spec.Spec.Labels?.['bottled.managed-by'], undefined);
    } finally {
      await w.rm('coll.yaml');
      await mgr.docker.getService(name).remove();
      assert.equal((await run(['reconcile', '--once'])).code, 0);
    }
  });

  test('drift: a service removed or changed by hand is put back; an invalid file holds the running bottle', async () => {
    const proxy = w.name_('beta', 'proxy');
    await mgr.docker.getService(proxy).remove();
    const agent = w.name_('beta');
    const cur = (await mgr.docker.getService(agent).inspect()) as { Version: { Index: number }; Spec: { TaskTemplate: { ContainerSpec: { Env: string[] } } } & Record<string, unknown> };
    cur.Spec.TaskTemplate.ContainerSpec.Env = [...cur.Spec.TaskTemplate.ContainerSpec.Env, 'SNEAKY=1'];
    await mgr.docker.getService(agent).update({ version: cur.Version.Index, ...cur.Spec } as never);
    const plan = await run(['plan']);
    assert.match(plan.stdout, new RegExp(`service +${proxy} +create `), plan.stdout);
    assert.match(plan.stdout, new RegExp(`service +${agent} +update +changed by hand: env`), plan.stdout);
    assert.equal((await run(['reconcile', '--once'])).code, 0);
    const svcs = await services();
    assert.ok(svcs.some((x) => x.Spec.Name === proxy));
    assert.ok(!svcs.find((x) => x.Spec.Name === agent)!.Spec.TaskTemplate.ContainerSpec.Env!.includes('SNEAKY=1'));

    await w.write('b.yaml', 'apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: beta}\nspec:\n  backend: swarm\n  sidecars:\n    - name: proxy\n      image: x\n      ip: 10.1.1.1\n  agent: {image: y}\n');
    const r = await run(['reconcile', '--once']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /b\.yaml:\d+:\d+: .*pinned ip is not possible on the swarm backend/);
    assert.ok((await services()).some((x) => x.Spec.Name === agent), 'the running bottle is held, not removed');
    await w.write('b.yaml', bottle('beta'));
  });

  test('secretEnv is a Swarm secret: the container reads it from <VAR>_FILE, no inspect shows it, a new value is a new secret', async () => {
    const v1 = 'tok-v1-9f8e7d6c5b4a';
    const v2 = 'tok-v2-1a2b3c4d5e6f';
    const doc = bottleYaml('sec', `backend: swarm\nagent:\n  image: ${images.get('bottled/busybox:local')}\n  secretEnv: {TOKEN: BOTTLED_TEST_TOKEN}\n`);
    await w.write('s.yaml', doc);
    // Every request line bottled sends the manager, recorded: no value, and no base64 of one.
    const proxy = await new DockerSocketProxy(mgr.sock).start();
    const viaProxy = (args: string[], env: NodeJS.ProcessEnv) => w.run([...args, '--docker-host', proxy.host], { env });
    const r = await viaProxy(['reconcile', '--once'], { BOTTLED_TEST_TOKEN: v1 });
    assert.equal(r.code, 0, r.stderr);
    const agent = w.name_('sec');
    const read = async () => (await inTask(agent, ['sh', '-c', 'cat "$TOKEN_FILE"'])).out.trim();
    assert.equal(await read(), v1);
    const inspected = JSON.stringify(await mgr.docker.getService(agent).inspect());
    assert.ok(!inspected.includes(v1), 'docker service inspect does not show the value');
    const t = await runningTask(agent);
    const ctr = JSON.stringify(await engineOf(t!.NodeID).getContainer(t!.Status.ContainerStatus!.ContainerID).inspect());
    assert.ok(!ctr.includes(v1), 'nor does docker inspect of the task container');
    const plan = await run(['plan'], { BOTTLED_TEST_TOKEN: v2 });
    assert.match(plan.stdout, new RegExp(`service +${agent} +update +\\(secret changed\\)`), plan.stdout);
    const r2 = await viaProxy(['reconcile', '--once'], { BOTTLED_TEST_TOKEN: v2 });
    assert.equal(r2.code, 0, r2.stderr);
    await proxy.stop();
    assert.ok(proxy.requests.some((l) => l.includes('/secrets/create')), 'the secrets went through the proxy');
    for (const v of [v1, v2]) {
      const forms = [v, Buffer.from(v).toString('base64'), encodeURIComponent(Buffer.from(v).toString('base64'))];
      assert.ok(!proxy.requests.some((l) => forms.some((f) => l.includes(f))), `no request URL holds the value: ${proxy.requests.filter((l) => l.includes('secret')).join(' | ')}`);
    }
    await eventually(async () => (await read().catch(() => '')) === v2, 'the new task reads the new value');
    const secrets = (await mgr.docker.listSecrets({ filters: JSON.stringify({ label: [`bottled.instance=${w.instance}`, 'bottled.bottle=sec'] }) } as never)) as unknown as unknown[];
    assert.equal(secrets.length, 1, 'the old secret was removed');
    for (const text of [r.stderr, r.stdout, r2.stderr, plan.stdout, (await run(['status', 'sec'])).stdout]) {
      assert.ok(!text.includes(v1) && !text.includes(v2), 'no value in logs, plan or status');
    }
    await w.rm('s.yaml');
    assert.equal((await run(['reconcile', '--once'])).code, 0);
  });

  test('a task that cannot run: status gives Swarm\'s words (image missing on the node, no suitable node)', async () => {
    await w.write('g.yaml', bottleYaml('ghost', `backend: swarm\nsidecars:\n  - name: gone\n    image: ${lab.registry}/bottled/nothing:here\nagent:\n  image: ${images.get('bottled/busybox:local')}\n  placement: {constraints: [node.labels.zone==nowhere]}\n`));
    try {
      const r = await run(['reconcile', '--once', '--wait-timeout', '5s']);
      assert.equal(r.code, 1, 'the agent waits for a sidecar that never runs');
      assert.match(r.stderr, /ghost-gone: task \w+: .*(No such image|not found|manifest unknown)/i, r.stderr);
      const status = await run(['status', 'ghost']);
      assert.match(status.stdout, new RegExp(`service +${w.name_('ghost', 'gone')} +stopped +\\(task \\w+ on n\\d: .*(No such image|not found|manifest unknown)`, 'i'), status.stdout);
      await w.write('g.yaml', bottleYaml('ghost', `backend: swarm\nagent:\n  image: ${images.get('bottled/busybox:local')}\n  placement: {constraints: [node.labels.zone==nowhere]}\n`));
      // Status is written by a pass: the scheduler's verdict shows from the pass after it gave one.
      const said = new RegExp(`service +${w.name_('ghost')} +(starting|stopped) +\\(task pending: no suitable node`);
      await eventually(async () => (await run(['reconcile', '--once'])).code === 0 && said.test((await run(['status', 'ghost'])).stdout), 'status says no suitable node');
    } finally {
      await w.rm('g.yaml');
      assert.equal((await run(['reconcile', '--once'])).code, 0);
    }
  });

  test('a SharedSidecar on swarm: one service joined to the overlay of each bottle that uses it, under its alias; it leaves a bottle that goes', async () => {
    const shared = w.name_('shared', 'cache');
    const user = (name: string) => bottleYaml(name, `backend: swarm\nuses: [cache]\nagent:\n  image: ${images.get('bottled/busybox:local')}\n`);
    await w.write('cache.yaml', `apiVersion: bottled.dev/v1\nkind: SharedSidecar\nmetadata: {name: cache}\nspec:\n  backend: swarm\n  image: ${images.get('bottled/sidecar:local')}\n  env: {LISTEN_PORTS: "8888"}\n  placement: {constraints: [node.role==worker]}\n`);
    await w.write('u1.yaml', user('uone'));
    await w.write('u2.yaml', user('utwo'));
    try {
      const r = await run(['reconcile', '--once']);
      assert.equal(r.code, 0, r.stderr);
      const netsOf = async () => {
        const spec = (await mgr.docker.getService(shared).inspect()) as { Spec: { TaskTemplate: { Networks: { Target: string; Aliases?: string[] }[] } } };
        const byId = new Map(((await mgr.docker.listNetworks()) as { Id: string; Name: string }[]).map((n) => [n.Id, n.Name]));
        return spec.Spec.TaskTemplate.Networks.map((n) => byId.get(n.Target) ?? n.Target).sort();
      };
      assert.deepEqual(await netsOf(), [w.name_('shared', 'cache', 'net'), w.name_('uone', 'net'), w.name_('utwo', 'net')].sort());
      for (const b of ['uone', 'utwo']) {
        await eventually(async () => /HTTP\/1\.[01] /.test((await inTask(w.name_(b), ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 cache 8888`])).out), `${b} reaches cache`);
      }
      assert.equal(passLog(await run(['reconcile', '--once']))?.executed, 0, 'then nothing to do');
      await w.rm('u2.yaml');
      const gone = await run(['reconcile', '--once']);
      assert.equal(gone.code, 0, gone.stderr);
      assert.deepEqual(await netsOf(), [w.name_('shared', 'cache', 'net'), w.name_('uone', 'net')].sort());
      // Swarm takes the overlay off its nodes after the manager removed it.
      await eventually(async () => !((await mgr.docker.listNetworks()) as { Name: string }[]).some((n) => n.Name === w.name_('utwo', 'net')), 'the removed bottle\'s overlay is gone');
    } finally {
      for (const f of ['u1.yaml', 'u2.yaml', 'cache.yaml']) await w.rm(f);
      assert.equal((await run(['reconcile', '--once'])).code, 0);
    }
  });

  test('watch mode follows the manager: a sidecar service removed by hand is back without waiting for a resync', async () => {
    // No resync and no poll in the test's time: only the manager's event stream can bring it back.
    const d = await new Daemon(w, ['--resync', '1h', '--smolvm-poll', '1h', '--docker-host', mgr.host]).start();
    try {
      await d.waitLog((l) => l.msg === 'watching');
      await d.waitLog((l) => l.msg === 'bottle alpha is ready');
      const proxy = w.name_('alpha', 'proxy');
      await mgr.docker.getService(proxy).remove();
      await eventually(async () => (await services()).some((x) => x.Spec.Name === proxy), 'the removed service is created again');
      assert.ok(await nodeOf(proxy), 'and it runs');
      assert.ok(d.logs.some((l) => l.msg === 'drift' && l.event === 'service remove' && l.bottle === 'alpha'), 'the event said so');
    } finally {
      await d.stop('SIGTERM');
    }
  });

  test('a service of someone else\'s on a bottle\'s overlay holds the bottle; removal leaves nothing and touches no foreign service', async () => {
    // Attachable overlays let anyone with manager access join them: such a service could answer
    // to the agent. bottled says so and touches nothing of that bottle until it leaves.
    await mgr.docker.createService({ Name: `${w.prefix}-foreign`, TaskTemplate: { ContainerSpec: { Image: images.get('bottled/busybox:local') }, Networks: [{ Target: w.name_('alpha', 'net') }] }, Mode: { Replicated: { Replicas: 0 } } } as never);
    const held = await run(['plan']);
    assert.equal(held.code, 1, held.stdout);
    assert.match(held.stdout, new RegExp(`network ${w.name_('alpha', 'net')} is joined by services that are not part of the bottle \\(${w.prefix}-foreign\\)`), held.stdout);
    const cur = (await mgr.docker.getService(`${w.prefix}-foreign`).inspect()) as { Version: { Index: number }; Spec: { TaskTemplate: Record<string, unknown> } & Record<string, unknown> };
    await mgr.docker.getService(`${w.prefix}-foreign`).update({ version: cur.Version.Index, ...cur.Spec, TaskTemplate: { ...cur.Spec.TaskTemplate, Networks: [] } } as never);
    await w.rm('b.yaml');
    const r = await run(['reconcile', '--once']);
    assert.equal(r.code, 0, r.stderr);
    const left = await services();
    assert.ok(!left.some((x) => x.Spec.Labels['bottled.bottle'] === 'beta'), left.map((x) => x.Spec.Name).join(', '));
    const nets = (await mgr.docker.listNetworks({ filters: { label: [`bottled.instance=${w.instance}`, 'bottled.bottle=beta'] } })) as unknown[];
    assert.equal(nets.length, 0);
    const configs = (await mgr.docker.listConfigs({ filters: JSON.stringify({ label: [`bottled.instance=${w.instance}`, 'bottled.bottle=beta'] }) } as never)) as unknown as unknown[];
    assert.equal(configs.length, 0);
    assert.ok(await mgr.docker.getService(`${w.prefix}-foreign`).inspect(), 'the foreign service is still there');
  });

  test('SIGKILL after each step of a create and of a removal, then one more pass: converged, nothing twice, nothing left', async () => {
    const k = await new World('swkill').setup();
    const runK = (env?: NodeJS.ProcessEnv) => k.run(['reconcile', '--once', '--allow-empty', '--docker-host', mgr.host], { env });
    const ours = async () => {
      const f = (extra: string[] = []) => JSON.stringify({ label: [`bottled.instance=${k.instance}`, ...extra] });
      const svcs = ((await mgr.docker.listServices({ filters: f() } as never)) as unknown as Svc[]).map((x) => x.Spec.Name).sort();
      const nets = ((await mgr.docker.listNetworks({ filters: { label: [`bottled.instance=${k.instance}`] } })) as { Name: string }[]).map((n) => n.Name).sort();
      const configs = ((await mgr.docker.listConfigs({ filters: f() } as never)) as unknown as unknown[]).length;
      return { svcs, nets, configs };
    };
    try {
      await k.write('k.yaml', bottle('kay'));
      const full = await runK();
      assert.equal(full.code, 0, full.stderr);
      const createSteps = Number(passLog(full)?.executed);
      const expected = await ours();
      assert.equal(expected.svcs.length, 2);
      await k.rm('k.yaml');
      const removal = await runK();
      const removeSteps = Number(passLog(removal)?.executed);
      assert.deepEqual(await ours(), { svcs: [], nets: [], configs: 0 });
      for (let n = 1; n < createSteps; n++) {
        await k.write('k.yaml', bottle('kay'));
        assert.equal((await runK({ BOTTLED_TEST_KILL_AFTER_STEPS: String(n) })).signal, 'SIGKILL', `killed after step ${n}`);
        const r = await runK();
        assert.equal(r.code, 0, `pass after kill at ${n}: ${r.stderr}`);
        assert.deepEqual(await ours(), expected, `create, kill after ${n}`);
        await k.rm('k.yaml');
        assert.equal((await runK()).code, 0);
      }
      for (let n = 1; n < removeSteps; n++) {
        await k.write('k.yaml', bottle('kay'));
        assert.equal((await runK()).code, 0);
        await k.rm('k.yaml');
        assert.equal((await runK({ BOTTLED_TEST_KILL_AFTER_STEPS: String(n) })).signal, 'SIGKILL', `killed after removal step ${n}`);
        const r = await runK();
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await ours(), { svcs: [], nets: [], configs: 0 }, `remove, kill after ${n}`);
      }
    } finally {
      await k.cleanup();
    }
  });

  test('logs of a swarm bottle come from the manager, across nodes; exec says where the task runs instead', async () => {
    await w.write('e.yaml', bottleYaml('echo', `backend: swarm\nagent:\n  image: ${images.get('bottled/busybox:local')}\n  command: [sh, -c, "echo hello-from-task; echo oops >&2; sleep 3600"]\n  placement: {constraints: [node.labels.zone==c]}\n`));
    assert.equal((await run(['reconcile', '--once'])).code, 0);
    assert.equal(await nodeOf(w.name_('echo')), 'n3');
    let out = '';
    for (let i = 0; i < 100 && !out.includes('oops'); i++) {
      out = (await run(['logs', 'echo'])).stdout;
      if (!out.includes('oops')) await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(out, /^agent \| hello-from-task$/m, out);
    assert.match(out, /^agent \| oops$/m, out);
    assert.equal((await run(['reconcile', '--once'])).code, 0); // status as it runs now: on n3
    const ex = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, 'exec', 'echo', ...w.flags(), '--docker-host', mgr.host, '--', 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(ex.code, 125);
    assert.match(ex.stderr, /runs on node n3, whose engine bottled does not reach/);
    await w.rm('e.yaml');
    assert.equal((await run(['reconcile', '--once'])).code, 0);
  });

  test('a worker lost: its task runs on another node, status says which, and the next pass changes nothing', async () => {
    await w.write('d.yaml', bottle('delta').replace('node.labels.zone==b', 'node.role==worker').replace('node.labels.zone==c', 'node.role==manager'));
    assert.equal((await run(['reconcile', '--once'])).code, 0);
    const proxy = w.name_('delta', 'proxy');
    const first = await nodeOf(proxy);
    assert.ok(first === 'n2' || first === 'n3', String(first));
    await lab.killEngine(lab.nodes.find((n) => n.name === first)!);
    let moved: string | undefined;
    for (let i = 0; i < 300 && !moved; i++) {
      const t = await runningTask(proxy);
      const where = t && [...nodeIds].find(([, id]) => id === t.NodeID)?.[0];
      if (where && where !== first) moved = where;
      else await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(moved, 'Swarm moved the task');
    const r = await run(['reconcile', '--once']);
    assert.equal(passLog(r)?.executed, 0, `Swarm heals its tasks; bottled changes nothing: ${r.stderr}`);
    const status = await run(['status', 'delta']);
    assert.match(status.stdout, new RegExp(`service +${proxy} +running +\\(on ${moved}\\)`), status.stdout);
  });
});
