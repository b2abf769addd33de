// Hardened by default: the agent has no raw sockets (busybox ping fails), setuid cannot elevate
// (NoNewPrivs), a pids limit; sidecars the same where it costs nothing. Overrides per container;
// a runtime the engine lacks holds only its bottle.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { World, bottleYaml, docker, dockerExec } from '../helpers/harness.js';

describe('isolation: hardened containers', () => {
  const w = new World('harden');
  before(async () => void (await w.setup()));
  after(() => w.cleanup());
  const inspect = (name: string) => docker.getContainer(name).inspect();

  test('by default the agent cannot open a raw socket, setuid does not elevate, and a pids limit holds', async () => {
    await w.write('a.yaml', bottleYaml('alpha', 'sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\nagent:\n  image: bottled/busybox:local\n'));
    const r = await w.reconcile();
    assert.equal(r.code, 0, r.stderr);
    const agent = await inspect(w.name_('alpha'));
    assert.deepEqual(agent.HostConfig.CapDrop, ['AUDIT_WRITE', 'MKNOD', 'NET_RAW', 'SETFCAP', 'SYS_CHROOT']);
    assert.deepEqual(agent.HostConfig.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(agent.HostConfig.PidsLimit, 4096);
    const side = await inspect(w.name_('alpha', 'proxy'));
    assert.deepEqual(side.HostConfig.CapDrop, ['AUDIT_WRITE', 'MKNOD', 'NET_RAW']);
    assert.equal(side.HostConfig.PidsLimit, 1024);
    // Effective, not only written down: ping needs NET_RAW; the kernel says no process gains privileges.
    const ip = Object.values(side.NetworkSettings.Networks)[0]!.IPAddress;
    const ping = await dockerExec(w.name_('alpha'), ['sh', '-c', `ping -c1 -W1 ${ip}; echo rc=$?`]);
    assert.match(ping.out, /permission denied/, ping.out);
    assert.match(ping.out, /rc=1/);
    const nnp = await dockerExec(w.name_('alpha'), ['sh', '-c', 'grep NoNewPrivs /proc/1/status /proc/self/status']);
    assert.match(nnp.out, /\/proc\/1\/status:NoNewPrivs:\s+1/);
    assert.match(nnp.out, /\/proc\/self\/status:NoNewPrivs:\s+1/);
    // The same image, with the sidecar's defaults plus a chroot it may do: the sidecar still has it.
    const chroot = await dockerExec(w.name_('alpha', 'proxy'), ['sh', '-c', 'chroot / true; echo rc=$?']);
    assert.match(chroot.out, /rc=0/);
    const agentChroot = await dockerExec(w.name_('alpha'), ['sh', '-c', 'chroot / true 2>&1; echo rc=$?']);
    assert.doesNotMatch(agentChroot.out, /rc=0/, 'SYS_CHROOT is dropped for the agent');
  });

  test('the seal report says per container what it can reach and do; plan marks each change that widens it with !', async () => {
    const st = await w.run(['status', 'alpha']);
    assert.match(st.stdout, new RegExp(`Seal .*:\\n(.*\\n)*  ${w.name_('alpha')} +networks ${w.name_('alpha', 'net')} \\(no route out\\); runtime runc; drops AUDIT_WRITE, MKNOD, NET_RAW, SETFCAP, SYS_CHROOT; no-new-privileges`), st.stdout);
    const json = JSON.parse((await w.run(['status', 'alpha', '--json'])).stdout) as { resources: { name: string; seal?: { networks: { routeOut: boolean }[] } }[] };
    assert.equal(json.resources.find((r) => r.name === w.name_('alpha'))?.seal?.networks[0]?.routeOut, false);
    await docker.createNetwork({ Name: `${w.prefix}-tools`, CheckDuplicate: true });
    try {
      await w.write('a.yaml', bottleYaml('alpha', `sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\n    egress: true\n    ports: [8080]\nagent:\n  image: bottled/busybox:local\n  networks: [${w.prefix}-tools]\n  security: {capAdd: [SYS_PTRACE], capDrop: [MKNOD], noNewPrivileges: false}\n`));
      const plan = await w.run(['plan']);
      const bangs = plan.stdout.split('\n').filter((l) => l.includes('! widens the seal:')).map((l) => l.replace(/^.*widens the seal: /, ''));
      assert.deepEqual(bangs.sort(), [
        'agent gains capability SYS_PTRACE',
        'agent keeps capabilities AUDIT_WRITE, NET_RAW, SETFCAP, SYS_CHROOT (dropped until now)',
        'agent: no-new-privileges off (setuid binaries can elevate)',
        `agent joins ${w.prefix}-tools (agent.networks): a network bottled does not seal`,
        `sidecar proxy joins ${w.name_('alpha', 'egress')}: a route out`,
        'sidecar proxy publishes port 8080',
      ].sort(), plan.stdout);
      const pj = JSON.parse((await w.run(['plan', '--json'])).stdout) as { bottles: { name: string; widens?: string[] }[] };
      assert.equal(pj.bottles.find((b) => b.name === 'alpha')?.widens?.length, 6);
    } finally {
      await w.write('a.yaml', bottleYaml('alpha', 'sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\nagent:\n  image: bottled/busybox:local\n'));
      await docker.getNetwork(`${w.prefix}-tools`).remove().catch(() => {});
    }
  });

  test('overrides: capabilities back or added, no-new-privileges off, a read-only root with writable tmpfs; plan says why it recreates', async () => {
    await w.write('a.yaml', bottleYaml('alpha', 'sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\nagent:\n  image: bottled/busybox:local\n  env: {HOME: /home/node}\n  security: {capDrop: [], capAdd: [net_raw, CAP_SYS_PTRACE], noNewPrivileges: false, readOnlyRootfs: true, pidsLimit: 0, writable: [/work]}\n'));
    const plan = await w.run(['plan']);
    assert.match(plan.stdout, /security: add NET_RAW, SYS_PTRACE; no pids limit; read-only root/, plan.stdout);
    assert.equal((await w.reconcile()).code, 0);
    const agent = await inspect(w.name_('alpha'));
    assert.deepEqual(agent.HostConfig.CapAdd, ['NET_RAW', 'SYS_PTRACE']);
    assert.ok(!agent.HostConfig.CapDrop?.length);
    assert.ok(!agent.HostConfig.SecurityOpt?.length);
    assert.equal(agent.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(Object.keys(agent.HostConfig.Tmpfs ?? {}).sort(), ['/home/node', '/run', '/tmp', '/var/tmp', '/work']);
    const rw = await dockerExec(w.name_('alpha'), ['sh', '-c', 'touch /etc/x 2>/dev/null && echo etc-writable; touch /tmp/x /home/node/x /work/x && echo tmp-writable']);
    assert.equal(rw.out.trim(), 'tmp-writable');
    // What an agent writes there it can run (npm bins, go build): the tmpfs is not noexec.
    const ran = await dockerExec(w.name_('alpha'), ['sh', '-c', "printf '#!/bin/sh\\necho ran\\n' > /tmp/t.sh && chmod +x /tmp/t.sh && /tmp/t.sh"]);
    assert.equal(ran.out.trim(), 'ran', ran.out);
    const side = await inspect(w.name_('alpha', 'proxy'));
    assert.deepEqual(side.HostConfig.CapDrop, ['AUDIT_WRITE', 'MKNOD', 'NET_RAW'], 'the sidecar keeps its defaults');
  });

  test('setuid does not elevate: a setuid-root binary run by the agent\'s user gains nothing, unless noNewPrivileges is turned off', async () => {
    const asRoot = async (container: string, cmd: string[]) => {
      const ex = await docker.getContainer(container).exec({ Cmd: cmd, User: '0', AttachStdout: true, AttachStderr: true });
      const st = await ex.start({ hijack: true, stdin: false });
      await new Promise<void>((res) => { st.on('end', () => res()); st.on('close', () => res()); st.resume(); });
    };
    const spec = (nnp: boolean) => bottleYaml('suid', `sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\nagent:\n  image: bottled/busybox:local\n  security: {user: "1000", capDrop: [], noNewPrivileges: ${nnp}}\n  files: [{path: /etc/agent.conf, content: only-mine, mode: "0600"}]\n`);
    const attempt = async () => {
      const agent = w.name_('suid');
      assert.equal((await inspect(agent)).Config.User, '1000');
      // A setuid-root copy of busybox, made by root; ping needs root's raw socket (NET_RAW stays in the bounding set here).
      await asRoot(agent, ['sh', '-c', 'mkdir -p /tmp/s && cp /bin/busybox /tmp/s/busybox && chown 0:0 /tmp/s/busybox && chmod 4755 /tmp/s/busybox']);
      const ip = Object.values((await inspect(w.name_('suid', 'proxy'))).NetworkSettings.Networks)[0]!.IPAddress;
      return dockerExec(agent, ['sh', '-c', `id -u; /tmp/s/busybox ping -c1 -W2 ${ip}; echo rc=$?`]);
    };
    await w.write('s.yaml', spec(true));
    assert.equal((await w.reconcile()).code, 0);
    const held = await attempt();
    assert.match(held.out, /^1000$/m, held.out);
    const mine = await dockerExec(w.name_('suid'), ['cat', '/etc/agent.conf']);
    assert.equal(mine.out, 'only-mine', 'a file with no uid: of the user security.user names, not the image\'s');
    assert.match(held.out, /^rc=1$/m, held.out);
    assert.match(held.out, /^ping: permission denied/m, `no-new-privileges: the setuid bit gave no root: ${held.out}`);
    await w.write('s.yaml', spec(false));
    assert.equal((await w.reconcile()).code, 0);
    const open = await attempt();
    assert.match(open.out, /^rc=0$/m, `control: without no-new-privileges the same binary does elevate: ${open.out}`);
    await w.rm('s.yaml');
  });

  test('bad security fields are refused where they are written', async () => {
    await w.write('bad.yaml', bottleYaml('bad', 'agent:\n  image: bottled/busybox:local\n  security: {capAdd: [NET_RAWW], pidsLimit: -1}\n  runtime: "run sc"\n'));
    const v = await w.run(['validate']);
    assert.equal(v.code, 1);
    assert.match(v.stdout + v.stderr, /bad\.yaml:8:\d+: spec\.agent\.security\.capAdd\[0\]: is not a Linux capability/);
    assert.match(v.stdout + v.stderr, /bad\.yaml:8:\d+: spec\.agent\.security\.pidsLimit: must be 0 \(no limit\) or more/);
    assert.match(v.stdout + v.stderr, /bad\.yaml:9:\d+: spec\.agent\.runtime: must be the name of a runtime/);
    await w.rm('bad.yaml');
  });

  test('a runtime the engine lacks holds its bottle with RuntimeMissing, naming it and how to register it; others converge', async () => {
    await w.write('r.yaml', bottleYaml('rt', 'agent:\n  image: bottled/busybox:local\n  runtime: nosuch-runtime\n'));
    await w.write('o.yaml', bottleYaml('other', 'agent:\n  image: bottled/busybox:local\n'));
    const r = await w.reconcile(['--retries', '0']);
    assert.equal(r.code, 1);
    const st = JSON.parse((await w.run(['status', 'rt', '--json'])).stdout) as { conditions: { type: string; reason: string; message: string }[] };
    const ready = st.conditions.find((c) => c.type === 'Ready')!;
    assert.equal(ready.reason, 'RuntimeMissing');
    assert.match(ready.message, /runtime nosuch-runtime, which the engine does not have \(registered: .*runc.*\); register it in \/etc\/docker\/daemon\.json/);
    assert.equal((await inspect(w.name_('other'))).State.Running, true);
    await assert.rejects(inspect(w.name_('rt')));
    await w.rm('r.yaml');
  });
});
