// DNS from a sealed bottle: an agent on its bottle network gets no outside name resolved, even on
// an engine whose upstream resolver is on loopback (the case of CVE-2024-29018, where Docker's
// embedded DNS forwarded queries of internal networks from the host's namespace). On a lab
// engine of the test's own, its upstream a logging responder inside the lab namespace: the
// agent's query never reaches it; the sidecar's, on the egress network, does (the control).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT, World, bottleYaml, dockerExec, eventually } from '../helpers/harness.js';
import { Lab } from '../helpers/lab-engine.js';

for (const where of ['the node\'s own address', 'loopback'] as const) {
  describe(`DNS: an engine whose upstream resolver is on ${where}`, () => {
    let lab: Lab;
    let responder: ChildProcess;
    const w = new World('dns');
    let log = '';
    const run = (extra: string[]) => w.run([...extra, '--docker-host', lab.nodes[0]!.host]);

    before(async () => {
      await w.setup();
      log = path.join(w.stateDir + '-dns.log');
      await fs.writeFile(log, '');
      const upstream = (node: { addr: string }) => (where === 'loopback' ? '127.0.0.1' : node.addr);
      lab = await Lab.start(1, { images: ['bottled/busybox:local', 'bottled/sidecar:local'], dockerdArgsFor: (node) => ['--dns', upstream(node)] });
      const addr = upstream(lab.nodes[0]!);
      responder = spawn('nsenter', [`--net=/run/netns/${lab.nodes[0]!.netns}`, process.execPath, path.join(ROOT, 'test/helpers/dns-responder.mjs'), addr, '53', log, '10.9.9.9'], { stdio: 'ignore' });
      await eventually(async () => (await fs.readFile(log, 'utf8')).includes('ready'), 'responder ready', 10_000);
    });
    after(async () => {
      responder?.kill();
      await lab?.stop();
      await w.cleanup();
      await fs.rm(log, { force: true });
    });

    test('the agent resolves its sidecar but no outside name; the sidecar on the egress network does (control)', async () => {
      await w.write('d.yaml', bottleYaml('dee', 'sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\n    aliases: [egress]\n    egress: true\nagent:\n  image: bottled/busybox:local\n'));
      assert.equal((await run(['reconcile', '--once'])).code, 0);
      const engine = lab.nodes[0]!.docker;
      const side = await dockerExec(w.name_('dee', 'proxy'), ['nslookup', 'control-probe.example'], engine);
      const agentOwn = await dockerExec(w.name_('dee'), ['nslookup', 'egress'], engine);
      const agent = await dockerExec(w.name_('dee'), ['nslookup', 'agent-probe.example'], engine);
      const seen = await fs.readFile(log, 'utf8');
      assert.match(agentOwn.out, /Address: 10\./, `the agent resolves its sidecar's alias: ${agentOwn.out}`);
      assert.doesNotMatch(agent.out, /10\.9\.9\.9/, agent.out);
      assert.ok(!seen.includes('agent-probe.example'), `the agent's query reached the upstream resolver: ${seen}`);
      if (where === 'loopback') {
        // Engine 20.10 forwards from the container's namespace, where the host's loopback is not:
        // even the sidecar gets no answer. An engine that forwards from its own namespace (the
        // CVE) would have the agent's query reach the responder, which the assertion above sees.
        // The control: the responder answers the engine's own namespace.
        const host = await new Promise<string>((resolve) => {
          const p = spawn('nsenter', [`--net=/run/netns/${lab.nodes[0]!.netns}`, 'busybox', 'nslookup', 'host-probe.example', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          p.stdout.on('data', (d) => (out += d));
          p.on('close', () => resolve(out));
        });
        assert.match(host, /10\.9\.9\.9/, `control: the responder answers on the engine's loopback: ${host}`);
      } else {
        // The control: the same engine forwards the sidecar's query (egress network) to it.
        assert.match(side.out, /10\.9\.9\.9/, `control: the sidecar's query is answered by the upstream: ${side.out}`);
        assert.ok(seen.includes('control-probe.example'), `control: the responder saw the sidecar's query: ${seen}`);
      }
    });
  });
}
