import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { World, bottleYaml, docker, dockerExec, passLog } from '../helpers/harness.js';

/** A bottle like the old launchers made: internal + egress network, a sidecar with aliases, an agent. */
function implementer(name: string, opts: { routes?: string; image?: string; agentEnv?: string; command?: string } = {}): string {
  return bottleYaml(
    name,
    `sidecars:
  - name: bundle
    image: ${opts.image ?? 'bottled/sidecar:local'}
    aliases: [egress, pipelock]
    egress: true
    env: {LISTEN_PORTS: "8888 9099", WATCH_FILE: /app/routes.yaml}
    files:
      - path: /app/routes.yaml
        content: "${opts.routes ?? 'routes-v1'}"
        onChange: {signal: SIGHUP}
agent:
  image: bottled/busybox:local
  env: {HTTPS_PROXY: "http://egress:9099"${opts.agentEnv ? `, ${opts.agentEnv}` : ''}}
${opts.command ? `  command: ${opts.command}\n` : ''}`,
  );
}

async function probe(container: string, host: string, port: number): Promise<boolean> {
  const r = await dockerExec(container, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${host} ${port}`]);
  return /HTTP\/1\.[01] /.test(r.out);
}

describe('converge, change, remove (docker backend)', () => {
  const w = new World('converge');
  let hostServer: http.Server;
  let hostPort = 0;

  before(async () => {
    await w.setup();
    hostServer = http.createServer((_, res) => res.end('host-secret-page'));
    await new Promise<void>((r) => hostServer.listen(0, '0.0.0.0', r));
    hostPort = (hostServer.address() as AddressInfo).port;
  });
  after(async () => {
    hostServer.close();
    await w.cleanup({ containers: ['t-lookalike-ctr'], networks: ['t-lookalike-net'] });
  });

  test('one pass makes exactly the topology, labelled, reachable by alias and sealed from the host', async () => {
    await w.write('a.yaml', implementer('alpha'));
    await w.write('team/b.yaml', implementer('beta'));
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);

    const ctrs = await w.containers();
    assert.deepEqual(ctrs.map((c) => c.Names[0]).sort(), [w.name_('alpha'), w.name_('alpha', 'bundle'), w.name_('beta'), w.name_('beta', 'bundle')].map((n) => `/${n}`).sort());
    for (const c of ctrs) assert.equal(c.State, 'running', c.Names[0]);
    const nets = await w.networks();
    assert.deepEqual(nets.map((n) => n.Name).sort(), [w.name_('alpha', 'egress'), w.name_('alpha', 'net'), w.name_('beta', 'egress'), w.name_('beta', 'net')].sort());

    const agent = await docker.getContainer(w.name_('alpha')).inspect();
    assert.equal(agent.Config.Labels['bottled.managed-by'], 'bottled');
    assert.equal(agent.Config.Labels['bottled.instance'], w.instance);
    assert.equal(agent.Config.Labels['bottled.kind'], 'bottle');
    assert.equal(agent.Config.Labels['bottled.bottle'], 'alpha');
    assert.equal(agent.Config.Labels['bottled.role'], 'agent');
    assert.equal(agent.Config.Labels['bottled.hash-version'], '1');
    assert.match(agent.Config.Labels['bottled.spec-hash'] ?? '', /^[0-9a-f]{64}$/);
    assert.equal(agent.HostConfig.Init, true);
    assert.deepEqual(Object.keys(agent.NetworkSettings.Networks), [w.name_('alpha', 'net')]);

    const side = await docker.getContainer(w.name_('alpha', 'bundle')).inspect();
    assert.equal(side.Config.Labels['bottled.role'], 'sidecar');
    assert.equal(side.Config.Labels['bottled.component'], 'bundle');
    assert.deepEqual(Object.keys(side.NetworkSettings.Networks).sort(), [w.name_('alpha', 'egress'), w.name_('alpha', 'net')].sort());

    const net = await docker.getNetwork(w.name_('alpha', 'net')).inspect();
    assert.equal(net.Internal, true);
    assert.equal(net.Options?.['com.docker.network.bridge.inhibit_ipv4'], 'true');
    assert.equal(net.Labels?.['bottled.role'], 'network');

    // The agent reaches its sidecar by alias ...
    assert.ok(await probe(w.name_('alpha'), 'egress', 9099), 'agent -> egress:9099');
    assert.ok(await probe(w.name_('alpha'), 'pipelock', 8888), 'agent -> pipelock:8888');
    // ... but not the sidecar's egress-network address ...
    const egressIp = side.NetworkSettings.Networks[w.name_('alpha', 'egress')]!.IPAddress;
    assert.ok(egressIp);
    assert.equal(await probe(w.name_('alpha'), egressIp, 9099), false, 'agent must not reach the egress network');
    // ... nor a service the host serves on 0.0.0.0, through the gateway or docker0.
    const gateway = net.IPAM?.Config?.[0]?.Gateway;
    assert.ok(gateway);
    const docker0 = os.networkInterfaces().docker0?.find((a) => a.family === 'IPv4')?.address ?? '172.17.0.1';
    assert.ok(await probeFromSidecarEgress(w.name_('alpha', 'bundle'), docker0, hostPort), 'control: the host listener is reachable from a non-sealed network');
    assert.equal(await probe(w.name_('alpha'), gateway, hostPort), false, 'agent must not reach the host via the gateway');
    assert.equal(await probe(w.name_('alpha'), docker0, hostPort), false, 'agent must not reach the host via docker0');
  });

  test('a second pass with nothing changed is empty and recreates nothing', async () => {
    const ids = Object.fromEntries((await w.containers()).map((c) => [c.Names[0], c.Id]));
    const plan = await w.run(['plan']);
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /Plan: nothing to do\./);
    const json = JSON.parse((await w.run(['plan', '--json'])).stdout);
    assert.ok(json.bottles.every((b: { state: string }) => b.state === 'in-sync'));
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(passLog(r)?.executed, 0);
    assert.ok(Number(passLog(r)?.dockerCalls) <= 5, `no-op pass made ${passLog(r)?.dockerCalls} calls`);
    assert.deepEqual(Object.fromEntries((await w.containers()).map((c) => [c.Names[0], c.Id])), ids);
  });

  test('a changed signal file is rewritten in place and signalled once; the container stays', async () => {
    const sidecar = w.name_('alpha', 'bundle');
    const before = (await docker.getContainer(sidecar).inspect()).Id;
    await w.write('a.yaml', implementer('alpha', { routes: 'routes-v2' }));
    const plan = await w.run(['plan']);
    assert.equal(plan.code, 2);
    assert.match(plan.stdout, /~\s+file\s+\S+:\/app\/routes\.yaml/);
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    const info = await docker.getContainer(sidecar).inspect();
    assert.equal(info.Id, before);
    const log = (await dockerExec(sidecar, ['cat', '/tmp/signals.log'])).out.trim().split('\n').filter(Boolean);
    assert.deepEqual(log, ['SIGHUP routes-v2'], 'exactly one SIGHUP, and the new content was visible at that moment');
    // The other bottle saw nothing.
    assert.equal((await dockerExec(w.name_('beta', 'bundle'), ['cat', '/tmp/signals.log'])).out.trim(), '');
  });

  test('an env, command or image change recreates that container alone', async () => {
    const ids = Object.fromEntries((await w.containers()).map((c) => [c.Names[0]!.slice(1), c.Id]));
    await w.write('a.yaml', implementer('alpha', { routes: 'routes-v2', agentEnv: 'EXTRA: "1"' }));
    let r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    let now = Object.fromEntries((await w.containers()).map((c) => [c.Names[0]!.slice(1), c.Id]));
    assert.notEqual(now[w.name_('alpha')], ids[w.name_('alpha')], 'agent recreated');
    for (const n of [w.name_('alpha', 'bundle'), w.name_('beta'), w.name_('beta', 'bundle')]) assert.equal(now[n], ids[n], `${n} untouched`);
    const env = (await docker.getContainer(w.name_('alpha')).inspect()).Config.Env;
    assert.ok(env.includes('EXTRA=1'));

    await w.write('team/b.yaml', implementer('beta', { command: '["sh", "-c", "sleep 1000000"]' }));
    r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    const later = Object.fromEntries((await w.containers()).map((c) => [c.Names[0]!.slice(1), c.Id]));
    assert.notEqual(later[w.name_('beta')], now[w.name_('beta')]);
    for (const n of [w.name_('alpha'), w.name_('alpha', 'bundle'), w.name_('beta', 'bundle')]) assert.equal(later[n], now[n], `${n} untouched`);
    now = later;

    await w.write('team/b.yaml', implementer('beta', { command: '["sh", "-c", "sleep 1000000"]', image: 'bottled/sidecar:local' }));
    r = await w.reconcile();
    assert.equal(passLog(r)?.executed, 0, 'same image: nothing to do');
  });

  test('removing a document removes that bottle; look-alikes and other instances survive', async () => {
    // An unmanaged container and network with look-alike names, and a resource of another instance.
    await docker.createNetwork({ Name: 't-lookalike-net', CheckDuplicate: true, Labels: { 'bottled.bottle': 'beta' } });
    const foreign = await docker.createContainer({ name: 't-lookalike-ctr', Image: 'bottled/busybox:local', Labels: { 'bottled.managed-by': 'bottled', 'bottled.instance': `${w.instance}-other`, 'bottled.kind': 'bottle', 'bottled.bottle': 'beta' } });
    await w.rm('team/b.yaml');
    const plan = await w.run(['plan']);
    assert.equal(plan.code, 2);
    assert.match(plan.stdout, /bottle beta\s+\(no longer declared\)/);
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    const names = (await w.containers()).map((c) => c.Names[0]).sort();
    assert.deepEqual(names, [`/${w.name_('alpha')}`, `/${w.name_('alpha', 'bundle')}`]);
    assert.deepEqual((await w.networks()).map((n) => n.Name).sort(), [w.name_('alpha', 'egress'), w.name_('alpha', 'net')]);
    assert.ok((await docker.getContainer(foreign.id).inspect()).Id);
    assert.ok((await docker.getNetwork('t-lookalike-net').inspect()).Id);
    // Its events say what happened and why.
    const st = await w.run(['status', 'beta']);
    assert.equal(st.code, 1, 'status of a removed bottle is gone');
  });

  test('an empty bottles directory prunes nothing without --allow-empty', async () => {
    await w.rm('a.yaml');
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await w.containers()).length, 2);
    assert.match(r.stderr, /--allow-empty/);
    const r2 = await w.reconcile(['--allow-empty']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal((await w.containers()).length, 0);
    assert.equal((await w.networks()).length, 0);
  });
});

/** Probe from the sidecar (which has the egress network and so a normal route to the host). */
async function probeFromSidecarEgress(container: string, host: string, port: number): Promise<boolean> {
  const r = await dockerExec(container, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${host} ${port}`]);
  return /host-secret-page/.test(r.out);
}
