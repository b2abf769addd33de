import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { World, bottleYaml, docker, dockerExec, passLog } from '../helpers/harness.js';

const shared = (env = 'one') => `apiVersion: bottled.dev/v1
kind: SharedSidecar
metadata: {name: cache}
spec:
  image: bottled/sidecar:local
  alias: pkg-cache
  env: {LISTEN_PORTS: "7777", VERSION: "${env}"}
`;
const user = (name: string) => bottleYaml(name, 'agent:\n  image: bottled/busybox:local\nuses: [cache]');

async function reaches(agent: string): Promise<boolean> {
  const r = await dockerExec(agent, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 pkg-cache 7777`]);
  return /HTTP\/1\.[01] /.test(r.out);
}

describe('SharedSidecar', () => {
  const w = new World('shared');
  const sharedName = () => w.name_('shared', 'cache');
  const id = async () => (await docker.getContainer(sharedName()).inspect()).Id;
  before(async () => {
    await w.setup();
  });
  after(async () => {
    await w.cleanup();
  });

  test('two bottles reach one shared sidecar by its alias', async () => {
    await w.write('cache.yaml', shared());
    await w.write('a.yaml', user('a'));
    await w.write('b.yaml', user('b'));
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    const info = await docker.getContainer(sharedName()).inspect();
    assert.equal(info.Config.Labels['bottled.kind'], 'shared');
    assert.equal(info.Config.Labels['bottled.role'], 'shared');
    assert.deepEqual(Object.keys(info.NetworkSettings.Networks).sort(), [w.name_('a', 'net'), w.name_('b', 'net'), w.name_('shared', 'cache', 'net')].sort());
    assert.ok(await reaches(w.name_('a')));
    assert.ok(await reaches(w.name_('b')));
  });

  test('removing one bottle disconnects the shared sidecar only: same container, still reachable from the other', async () => {
    const before = await id();
    await w.rm('a.yaml');
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await id(), before);
    const info = await docker.getContainer(sharedName()).inspect();
    assert.equal(info.State.Running, true);
    assert.ok(!Object.keys(info.NetworkSettings.Networks).includes(w.name_('a', 'net')));
    assert.ok(await reaches(w.name_('b')));
    await assert.rejects(docker.getNetwork(w.name_('a', 'net')).inspect());
  });

  test('a crash between connect and record does not wedge the next pass; a disconnect is healed', async () => {
    await w.write('c.yaml', user('c'));
    // Steps of the new bottle: create its network, connect the shared sidecar, ... kill right after the connect.
    const killed = await w.reconcile([], { BOTTLED_TEST_KILL_AFTER_STEPS: '2' });
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(Object.keys((await docker.getContainer(sharedName()).inspect()).NetworkSettings.Networks).includes(w.name_('c', 'net')));
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    assert.ok(await reaches(w.name_('c')));
    await docker.getNetwork(w.name_('c', 'net')).disconnect({ Container: sharedName(), Force: true });
    assert.equal(await reaches(w.name_('c')), false);
    assert.equal((await w.reconcile()).code, 0);
    assert.ok(await reaches(w.name_('c')), 'reconnected');
  });

  test('recreating the shared sidecar reconnects it to every bottle network in the same pass', async () => {
    const before = await id();
    await w.write('cache.yaml', shared('two'));
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(await id(), before);
    assert.ok(await reaches(w.name_('b')));
    assert.ok(await reaches(w.name_('c')));
    assert.equal(passLog(await w.reconcile())?.executed, 0, 'and the next pass has nothing to do');
  });

  test('removing its document disconnects and removes it; its users become not-ready and stay', async () => {
    const agents = [await docker.getContainer(w.name_('b')).inspect(), await docker.getContainer(w.name_('c')).inspect()].map((i) => i.Id);
    await w.rm('cache.yaml');
    const r = await w.reconcile();
    assert.equal(r.code, 1, 'users of a missing shared sidecar are failures');
    await assert.rejects(docker.getContainer(sharedName()).inspect());
    await assert.rejects(docker.getNetwork(w.name_('shared', 'cache', 'net')).inspect());
    const now = [await docker.getContainer(w.name_('b')).inspect(), await docker.getContainer(w.name_('c')).inspect()];
    assert.deepEqual(now.map((i) => i.Id), agents, 'users are not torn down');
    const st = JSON.parse((await w.run(['status', 'b', '--json'])).stdout);
    const ready = st.conditions.find((c: { type: string }) => c.type === 'Ready');
    assert.equal(ready.status, 'False');
    assert.equal(ready.reason, 'SharedSidecarMissing');
    assert.match(ready.message, /cache/);
  });
});
