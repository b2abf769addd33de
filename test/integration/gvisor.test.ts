// runtime: runsc on an engine of the test's own (a lab dockerd in a network namespace with
// Debian's runsc registered): the agent runs under gVisor's kernel, reaches its sidecar by alias,
// and stays sealed (no route out; neither the sidecar's egress address nor a service beside the
// bottle answers it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { World, bottleYaml, dockerExec, passLog } from '../helpers/harness.js';
import { Lab, writeRunscConfig } from '../helpers/lab-engine.js';

describe('runtime: runsc (gVisor) on a lab engine', () => {
  let lab: Lab;
  const w = new World('gvisor');
  let cfg = '';
  let args: string[] = [];
  const run = (extra: string[]) => w.run([...extra, '--docker-host', lab.nodes[0]!.host]);

  before(async () => {
    await w.setup();
    cfg = `${w.stateDir}-daemon.json`;
    args = await writeRunscConfig(cfg);
    lab = await Lab.start(1, { images: ['bottled/busybox:local', 'bottled/sidecar:local'], dockerdArgs: ['--config-file', cfg] });
  });
  after(async () => {
    await lab?.stop();
    await w.cleanup();
    await fs.rm(cfg, { force: true });
  });

  test('a gVisor agent converges, sees gVisor\'s kernel, reaches its sidecar by alias and is sealed', async () => {
    const engine = lab.nodes[0]!.docker;
    await w.write('g.yaml', bottleYaml('gee', 'sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\n    aliases: [egress]\n    egress: true\n    env: {LISTEN_PORTS: "8888"}\nagent:\n  image: bottled/busybox:local\n  runtime: runsc\n'));
    const r = await run(['reconcile', '--once']);
    assert.equal(r.code, 0, r.stderr);
    const agent = await engine.getContainer(w.name_('gee')).inspect();
    assert.equal(agent.HostConfig.Runtime, 'runsc');
    const kernel = await dockerExec(w.name_('gee'), ['uname', '-r'], engine);
    const host = (await fs.readFile('/proc/sys/kernel/osrelease', 'utf8')).trim();
    assert.notEqual(kernel.out.trim(), host, `gVisor's kernel, not the host's (${host}); runsc args ${JSON.stringify(args)}`);
    assert.match(kernel.out.trim(), /^4\.4\.0/, kernel.out);
    const got = await dockerExec(w.name_('gee'), ['sh', '-c', "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 egress 8888"], engine);
    assert.match(got.out, /HTTP\/1\.[01] /, `reaches its sidecar by alias: ${got.out}`);
    // Sealed: no default route; neither the sidecar's egress-network address nor a service of
    // the engine's host (a listener in the lab node's namespace, on its address and docker0)
    // answers; the sidecar, on a network that is not sealed, reaches that service.
    const node = lab.nodes[0]!;
    const listener = spawn('ip', ['netns', 'exec', node.netns, 'busybox', 'nc', '-ll', '-p', '18080', '-e', 'echo', 'ok'], { stdio: 'ignore' });
    try {
      const side = await engine.getContainer(w.name_('gee', 'proxy')).inspect();
      const egressIp = side.NetworkSettings.Networks[w.name_('gee', 'egress')]!.IPAddress;
      const egressGw = side.NetworkSettings.Networks[w.name_('gee', 'egress')]!.Gateway;
      let control = { out: '' };
      for (let i = 0; i < 20 && !/reached/.test(control.out); i++) {
        control = await dockerExec(w.name_('gee', 'proxy'), ['sh', '-c', `nc -w 2 ${node.addr} 18080 </dev/null && echo reached`], engine);
      }
      assert.match(control.out, /reached/, `control: the host's service answers a container that is not sealed: ${control.out}`);
      // gVisor lists a default route via the bottle network's gateway (runc lists none), but the
      // gateway has no address on the host side (inhibit_ipv4) and the network is internal: it
      // leads nowhere. What counts is what answers.
      const gw = agent.NetworkSettings.Networks[w.name_('gee', 'net')]!.Gateway || (await engine.getNetwork(w.name_('gee', 'net')).inspect()).IPAM?.Config?.[0]?.Gateway;
      const seal = await dockerExec(w.name_('gee'), ['sh', '-c', `for a in ${node.addr} ${egressGw} 172.17.0.1 ${gw}; do nc -w 2 $a 18080 </dev/null && echo reached-$a; done; nc -w 2 ${egressIp} 8888 </dev/null && echo reached-egress; echo done`], engine);
      assert.match(seal.out, /done/, seal.out);
      assert.doesNotMatch(seal.out, /reached/, seal.out);
    } finally {
      listener.kill();
    }
    // A no-op pass: the runtime check is one cached call, not one per bottle or per pass.
    const again = await run(['reconcile', '--once']);
    assert.equal(passLog(again)?.executed, 0);
  });
});
