import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSpecs } from '../../specs/load.js';
import { documentSchemas } from '../../specs/schema.js';
import { bottleMessages as messages, memorySource } from '../fixtures/specs/tree.js';

const AGENT = '  agent: {image: a}\n';

/** A bottle with one sidecar whose fields are `sidecarFields` (YAML flow mapping body). */
const withSidecar = (sidecarFields: string, rest = AGENT) => `  sidecars:\n    - {name: s, image: s, ${sidecarFields}}\n${rest}`;

/** The agent's first file, parsed. */
async function agentFile(fileFields: string) {
  const source = memorySource({
    'b.yaml': `apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: b}\nspec:\n  agent:\n    image: a\n    files:\n      - {path: /f, content: x, ${fileFields}}\n`,
  });
  const result = await loadSpecs(source);
  return { file: result.bottles.get('b')?.spec.agent.files[0], messages: result.diagnostics.map((d) => d.message) };
}

test('metadata.name: pattern, no "--", no trailing "-"', async () => {
  const named = async (name: string) => (await loadSpecs(memorySource({ 'b.yaml': `apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: "${name}"}\nspec: {agent: {image: a}}\n` }))).diagnostics.map((d) => d.message);
  assert.deepEqual(await named('ok-name-1'), []);
  assert.deepEqual(await named('a--b'), ['metadata.name: must not contain "--"']);
  assert.deepEqual(await named('ab-'), ['metadata.name: must not end with "-"']);
  assert.match((await named('Upper'))[0] ?? '', /^metadata\.name: must start with a lowercase letter/);
  assert.match((await named('a'.repeat(41)))[0] ?? '', /at most 40 characters/);
});

test('sidecar names follow their pattern and are unique in the bottle', async () => {
  assert.deepEqual(await messages(`  sidecars:\n    - {name: a, image: s}\n    - {name: a, image: s}\n${AGENT}`), [
    'spec.sidecars[1].name: "a" is already the name of sidecars[0]',
  ]);
  assert.match((await messages(`  sidecars: [{name: ${'s'.repeat(21)}, image: s}]\n${AGENT}`))[0] ?? '', /at most 20 characters/);
});

test('aliases are DNS labels, unique across the sidecars of a bottle', async () => {
  assert.match((await messages(withSidecar('aliases: [ok, -bad]')))[0] ?? '', /^spec\.sidecars\[0\]\.aliases\[1\]: must be a DNS label/);
  assert.deepEqual(await messages(`  sidecars:\n    - {name: a, image: s, aliases: [proxy]}\n    - {name: b, image: s, aliases: [Proxy]}\n${AGENT}`), [
    'spec.sidecars[1].aliases[0]: "Proxy" is already an alias of sidecars[0] (a)',
  ]);
});

test('files: absolute path, exactly one of source/content, unique paths', async () => {
  assert.deepEqual(await messages('  agent:\n    image: a\n    files: [{path: etc/x, content: x}]\n'), [
    'spec.agent.files[0].path: must be an absolute path inside the container, like /etc/app.conf',
  ]);
  assert.deepEqual(await messages('  agent:\n    image: a\n    files: [{path: /etc/../x, content: x}]\n'), [
    'spec.agent.files[0].path: must be a plain absolute path to a file (no "..", ".", "//" or trailing "/")',
  ]);
  assert.deepEqual(await messages('  agent:\n    image: a\n    files: [{path: /x, content: x, source: y}]\n'), [
    'spec.agent.files[0].content: give either source or content, not both',
  ]);
  assert.deepEqual(await messages('  agent:\n    image: a\n    files: [{path: /x}]\n'), [
    'spec.agent.files[0]: needs either source: (a file next to the spec) or content: (inline text)',
  ]);
  assert.deepEqual(await messages('  agent:\n    image: a\n    files: [{path: /x, content: a}, {path: /x, content: b}]\n'), [
    'spec.agent.files[1].path: /x is already used by files[0] of this container',
  ]);
});

test('file mode: quoted octal string → number; numbers are refused', async () => {
  assert.equal((await agentFile('mode: "0600"')).file?.mode, 0o600);
  assert.equal((await agentFile('mode: "755"')).file?.mode, 0o755);
  assert.equal((await agentFile('onChange: restart')).file?.mode, 0o644);
  assert.deepEqual((await agentFile('mode: 644')).messages, [
    'spec.agent.files[0].mode: must be a quoted octal string: write mode: "0644" (unquoted, YAML 1.2 reads 0644 as the decimal number 644)',
  ]);
  // 0o755 is 493 in YAML 1.2: the suggestion gives the octal digits back.
  assert.deepEqual((await agentFile('mode: 0o755')).messages, [
    'spec.agent.files[0].mode: must be a quoted octal string: write mode: "0755" (an unquoted number is not read as octal)',
  ]);
  assert.deepEqual((await agentFile('mode: "0999"')).messages, ['spec.agent.files[0].mode: must be 3 or 4 octal digits, quoted, like "0644"']);
});

test('onChange forms are normalized; unknown signals and actions are refused', async () => {
  assert.deepEqual((await agentFile('')).file?.onChange, { type: 'recreate' });
  assert.deepEqual((await agentFile('onChange: restart')).file?.onChange, { type: 'restart' });
  assert.deepEqual((await agentFile('onChange: {signal: SIGHUP}')).file?.onChange, { type: 'signal', signal: 'SIGHUP' });
  assert.deepEqual((await agentFile('onChange: {signal: HUP}')).file?.onChange, { type: 'signal', signal: 'SIGHUP' });
  assert.deepEqual((await agentFile('onChange: {signal: usr1}')).file?.onChange, { type: 'signal', signal: 'SIGUSR1' });
  assert.deepEqual((await agentFile('onChange: {exec: [nginx, -s, reload]}')).file?.onChange, { type: 'exec', command: ['nginx', '-s', 'reload'] });
  assert.deepEqual((await agentFile('onChange: {signal: SIGHUB}')).messages, [
    'spec.agent.files[0].onChange.signal: "SIGHUB" is not a signal name (did you mean "SIGHUP"?); use a name like SIGHUP, SIGUSR1 or SIGTERM',
  ]);
  assert.deepEqual((await agentFile('onChange: reload')).messages, [
    'spec.agent.files[0].onChange: "reload" is not an onChange action: use restart, recreate, {signal: NAME} or {exec: [command, args...]}',
  ]);
  assert.deepEqual((await agentFile('onChange: {exec: "nginx -s reload"}')).messages, [
    'spec.agent.files[0].onChange.exec: must be a list, e.g. ["/app/run", "--flag"] (a single string is not split into arguments)',
  ]);
  assert.deepEqual((await agentFile('onChange: {sigal: HUP}')).messages, [
    'spec.agent.files[0].onChange: unknown action "sigal" (did you mean "signal"?): use restart, recreate, {signal: NAME} or {exec: [command, args...]}',
  ]);
  assert.deepEqual((await agentFile('onChange: {signal: HUP, exec: [x]}')).messages, [
    'spec.agent.files[0].onChange: must be one of restart, recreate, {signal: NAME} or {exec: [command, args...]}',
  ]);
});

test('healthcheck durations become milliseconds; test forms are checked', async () => {
  const parse = (healthcheck: string) =>
    documentSchemas.Bottle.safeParse({
      apiVersion: 'bottled.dev/v1',
      kind: 'Bottle',
      metadata: { name: 'b' },
      spec: { sidecars: [{ name: 's', image: 's', healthcheck: JSON.parse(healthcheck) }], agent: { image: 'a' } },
    });
  const ok = parse('{"test": ["CMD", "true"], "interval": "500ms", "timeout": "2s", "startPeriod": "1.5m", "retries": 3}');
  assert.ok(ok.success);
  assert.deepEqual(ok.data.spec.sidecars[0]?.healthcheck, { test: ['CMD', 'true'], intervalMs: 500, timeoutMs: 2000, startPeriodMs: 90_000, retries: 3 });
  const bare = parse('{"test": ["CMD-SHELL", "true"], "interval": 5, "timeout": "1h"}');
  assert.ok(bare.success);
  assert.deepEqual(bare.data.spec.sidecars[0]?.healthcheck, { test: ['CMD-SHELL', 'true'], intervalMs: 5000, timeoutMs: 3_600_000 });

  assert.deepEqual(await messages(withSidecar('healthcheck: {test: [CMD]}')), ['spec.sidecars[0].healthcheck.test: ["CMD", ...] needs a command after "CMD"']);
  assert.deepEqual(await messages(withSidecar('healthcheck: {test: [curl, x]}')), [
    'spec.sidecars[0].healthcheck.test: must start with "CMD", "CMD-SHELL" or "NONE", e.g. ["CMD", "nc", "-z", "127.0.0.1", "8888"]',
  ]);
  assert.deepEqual(await messages(withSidecar('healthcheck: {test: [NONE], interval: 0}')), [
    'spec.sidecars[0].healthcheck.interval: must be greater than 0 (omit it to use the default)',
  ]);
  assert.deepEqual(await messages(withSidecar('healthcheck: {test: [NONE], interval: 1m30s}')), [
    'spec.sidecars[0].healthcheck.interval: must be a duration like 500ms, 2s, 5m, 1h, or a number of seconds',
  ]);
  assert.deepEqual(await messages(withSidecar('healthcheck: {test: [NONE], interval: "0.5"}')), []);
  assert.deepEqual(await messages(withSidecar('healthcheck: {test: [NONE], interval: 2d}')), [
    'spec.sidecars[0].healthcheck.interval: must be a duration like 500ms, 2s, 5m, 1h, or a number of seconds',
  ]);
  assert.deepEqual(await messages(withSidecar('healthcheck: {test: [NONE], intervall: 2s}')), [
    'spec.sidecars[0].healthcheck.intervall: unknown key (did you mean "interval"?)',
  ]);
});

test('ports are whole numbers 1..65535, unique', async () => {
  assert.deepEqual(await messages(withSidecar('ports: [0, 65536, 80.5, "81", 82, 82]')), [
    'spec.sidecars[0].ports[0]: must be a port number from 1 to 65535',
    'spec.sidecars[0].ports[1]: must be a port number from 1 to 65535',
    'spec.sidecars[0].ports[2]: must be a whole port number',
    'spec.sidecars[0].ports[3]: expected a number, got the string "81" (write it without quotes: 81)',
  ]);
  assert.deepEqual(await messages(withSidecar('ports: [82, 82]')), ['spec.sidecars[0].ports[1]: 82 is already listed at [0]']);
});

test('env and secretEnv: names, string values, no key in both', async () => {
  assert.deepEqual(await messages('  agent: {image: a, env: {1BAD: x, OK: true, EMPTY: }}\n'), [
    'spec.agent.env["1BAD"]: is not a valid environment variable name (letters, digits and "_", not starting with a digit)',
    'spec.agent.env.OK: expected a string, got true (write it quoted: "true")',
    'spec.agent.env.EMPTY: has no value (expected a string)',
  ]);
  assert.deepEqual(await messages('  agent: {image: a, secretEnv: {TOKEN: "not-a-name"}}\n'), [
    'spec.agent.secretEnv.TOKEN: must be the name of a variable in the reconciler\'s environment (letters, digits and "_", not starting with a digit)',
  ]);
  assert.deepEqual(await messages('  agent: {image: a, env: {TOKEN: x}, secretEnv: {TOKEN: HOST_TOKEN}}\n'), [
    'spec.agent.secretEnv.TOKEN: is also set in env: a variable comes from either env or secretEnv',
  ]);
});

test('placeholders: unterminated, self-reference and cycles between sidecars', async () => {
  assert.deepEqual(await messages('  agent: {image: a, env: {X: "${sidecar.s.ip"}}\n'), [
    'spec.agent.env.X: "${" at character 1 has no closing "}" (placeholders look like ${sidecar.<name>.ip})',
  ]);
  assert.deepEqual(await messages(withSidecar('env: {ME: "${sidecar.s.ip}"}')), [
    'spec.sidecars[0].env.ME: sidecar "s" would wait for itself: a sidecar\'s own ip, host or port is not known before it runs',
  ]);
  assert.deepEqual(await messages(`  sidecars:\n    - {name: a, image: s, env: {P: "\${sidecar.b.ip}"}}\n    - {name: b, image: s, env: {P: "\${sidecar.a.ip}"}}\n${AGENT}`), [
    'spec.sidecars[0].env.P: sidecars wait for each other through placeholders (a → b → a), so none of them could start',
    'spec.sidecars[1].env.P: sidecars wait for each other through placeholders (b → a → b), so none of them could start',
  ]);
  // An agent may name any sidecar; sidecars may name each other without a cycle.
  assert.deepEqual(await messages(`  sidecars:\n    - {name: a, image: s, ports: [80], env: {P: "\${sidecar.b.ip}"}}\n    - {name: b, image: s}\n  agent: {image: a, env: {A: "\${sidecar.a.host}:\${sidecar.a.port.80}"}}\n`), []);
});

test('labels: keys and string values', async () => {
  const labelled = async (labels: string) =>
    (await loadSpecs(memorySource({ 'b.yaml': `apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: b, labels: ${labels}}\nspec: {agent: {image: a}}\n` }))).diagnostics.map((d) => d.message);
  assert.deepEqual(await labelled('{team: infra, app.tier: x}'), []);
  assert.match((await labelled('{"-bad": x}'))[0] ?? '', /^metadata\.labels\["-bad"\]: is not a valid label key/);
  assert.deepEqual(await labelled('{n: 1}'), ['metadata.labels.n: expected a string, got the number 1 (write it quoted: "1")']);
});

test('network.subnet: CIDR form, no host bits, room for hosts', async () => {
  assert.deepEqual(await messages('  network: {subnet: "10.1"}\n' + AGENT), ['spec.network.subnet: "10.1" is not an IPv4 subnet in CIDR form like 192.168.211.0/24']);
  assert.deepEqual(await messages('  network: {subnet: 10.1}\n' + AGENT), ['spec.network.subnet: expected a string, got the number 10.1 (write it quoted: "10.1")']);
  assert.deepEqual(await messages('  network: {subnet: 10.1.2.0/33}\n' + AGENT), ['spec.network.subnet: "10.1.2.0/33" is not an IPv4 subnet in CIDR form like 192.168.211.0/24']);
  assert.deepEqual(await messages('  network: {subnet: 10.1.2.4/31}\n' + AGENT), [
    'spec.network.subnet: /31 is too small for a bottle network (at most /30: a gateway and at least one container)',
  ]);
  assert.deepEqual(await messages('  network: {subnet: 10.1.2.0/24}\n' + AGENT), []);
});

test('sidecar ip: a valid address, not the network, broadcast or gateway address, not taken twice', async () => {
  const net = (sidecars: string) => messages(`  network: {subnet: 10.1.2.0/24}\n  sidecars:\n${sidecars}${AGENT}`);
  assert.deepEqual(await net('    - {name: a, image: s, ip: 10.1.2.300}\n'), ['spec.sidecars[0].ip: "10.1.2.300" is not an IPv4 address like 192.168.211.2']);
  assert.deepEqual(await net('    - {name: a, image: s, ip: 10.1.2.0}\n'), ['spec.sidecars[0].ip: 10.1.2.0 is the network address of 10.1.2.0/24']);
  assert.deepEqual(await net('    - {name: a, image: s, ip: 10.1.2.255}\n'), ['spec.sidecars[0].ip: 10.1.2.255 is the broadcast address of 10.1.2.0/24']);
  assert.deepEqual(await net('    - {name: a, image: s, ip: 10.1.2.1}\n'), [
    "spec.sidecars[0].ip: 10.1.2.1 is the gateway of 10.1.2.0/24 (the network's first address belongs to its gateway)",
  ]);
  assert.deepEqual(await net('    - {name: a, image: s, ip: 10.1.2.9}\n    - {name: b, image: s, ip: 10.1.2.9}\n'), [
    'spec.sidecars[1].ip: 10.1.2.9 is already the ip of sidecars[0] (a)',
  ]);
});

test('smolvm: the first sidecar keeps .2 unless it pins another address', async () => {
  const vm = (sidecars: string) => messages(`  backend: smolvm\n  network: {subnet: 10.1.2.0/24}\n  sidecars:\n${sidecars}${AGENT}`);
  assert.match((await vm('    - {name: a, image: s}\n    - {name: b, image: s, ip: 10.1.2.2}\n'))[0] ?? '', /^spec\.sidecars\[1\]\.ip: 10\.1\.2\.2 is the address the first sidecar \(a\) gets by default/);
  assert.deepEqual(await vm('    - {name: a, image: s, ip: 10.1.2.3}\n    - {name: b, image: s, ip: 10.1.2.2}\n'), []);
  assert.deepEqual(await vm('    - {name: a, image: s, ip: 10.9.9.9}\n'), ['spec.sidecars[0].ip: 10.9.9.9 is outside spec.network.subnet 10.1.2.0/24']);
});

test('agent and backend: image/from, networks, signals', async () => {
  assert.deepEqual(await messages('  agent: {command: [x]}\n'), ['spec.agent.image: is required with the docker backend']);
  assert.deepEqual(await messages('  agent: {image: a, from: ./m}\n'), ['spec.agent.from: is only for the smolvm backend; the docker backend runs agent.image']);
  assert.deepEqual(await messages('  backend: smolvm\n  agent: {command: [x]}\n'), ['spec.agent: needs either image: or from: with the smolvm backend']);
  assert.deepEqual(await messages('  backend: smolvm\n  agent: {image: a, from: ./m}\n'), ['spec.agent.from: give either image or from, not both']);
  assert.deepEqual(await messages('  backend: smolvm\n  agent: {image: a, networks: [tools]}\n'), [
    'spec.agent.networks: applies only to the docker backend (a smolvm machine joins no Docker network)',
  ]);
  assert.deepEqual(await messages('  backend: smolvm\n  agent: {image: a, files: [{path: /x, content: x, onChange: {signal: HUP}}]}\n'), [
    'spec.agent.files[0].onChange: signal is not available for smolvm machines: use {exec: [command, args...]}, e.g. {exec: [pkill, -HUP, myapp]}',
  ]);
  assert.deepEqual(await messages('  backend: smolvm\n  agent: {image: a, files: [{path: /x, content: x, onChange: {exec: [pkill, -HUP, app]}}]}\n'), []);
  assert.deepEqual(await messages('  backend: vm\n' + AGENT), ['spec.backend: must be one of "docker", "smolvm", "swarm"']);
});

test('agent resources: cpus > 0, memoryMiB a whole number > 0', async () => {
  assert.deepEqual(await messages('  agent: {image: a, resources: {cpus: 0.5, memoryMiB: 512}}\n'), []);
  assert.deepEqual(await messages('  agent: {image: a, resources: {cpus: 0, memoryMiB: 1.5}}\n'), [
    'spec.agent.resources.cpus: must be greater than 0',
    'spec.agent.resources.memoryMiB: must be a whole number of MiB',
  ]);
});

test('uses: names of shared sidecars, listed once', async () => {
  assert.deepEqual(await messages(`${AGENT}  uses: [cache, cache, Bad]\n`), [
    'spec.uses[2]: must start with a lowercase letter and hold only lowercase letters, digits and "-" (at most 40 characters)',
  ]);
  assert.deepEqual(await messages(`${AGENT}  uses: [cache, cache]\n`), ['spec.uses[1]: cache is already listed at [0]']);
});

test('init defaults to true and can be turned off', async () => {
  const result = await loadSpecs(
    memorySource({
      'b.yaml': `apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: b}\nspec:\n  sidecars: [{name: s, image: s, init: false}, {name: t, image: t}]\n  agent: {image: a, init: false}\n`,
    }),
  );
  const spec = result.bottles.get('b')?.spec;
  assert.deepEqual([spec?.sidecars[0]?.init, spec?.sidecars[1]?.init, spec?.agent.init], [false, true, false]);
});

test('SharedSidecar: alias defaults to the name; placeholders are refused', async () => {
  const shared = (spec: string) =>
    loadSpecs(memorySource({ 's.yaml': `apiVersion: bottled.dev/v1\nkind: SharedSidecar\nmetadata: {name: cache}\nspec: ${spec}\n` }));
  assert.equal((await shared('{image: c}')).shared.get('cache')?.spec.alias, 'cache');
  assert.equal((await shared('{image: c, alias: pkgs}')).shared.get('cache')?.spec.alias, 'pkgs');
  assert.deepEqual((await shared('{image: c, env: {X: "${sidecar.a.ip}"}}')).diagnostics.map((d) => d.message), [
    'spec.env.X: placeholders name sidecars of a Bottle and are not available in a SharedSidecar',
  ]);
  assert.deepEqual((await shared('{image: c, aliases: [x]}')).diagnostics.map((d) => d.message), ['spec.aliases: unknown key (did you mean "alias"?)']);
});

test('an unknown key far from every known key lists the allowed keys', async () => {
  assert.deepEqual(await messages(`${AGENT}  zzz: 1\n`), ['spec.zzz: unknown key (allowed here: backend, suspend, network, sidecars, agent, uses, lifetime)']);
});

test('the command must be a list', async () => {
  assert.deepEqual(await messages('  agent: {image: a, command: "sleep infinity"}\n'), [
    'spec.agent.command: must be a list, e.g. ["/app/run", "--flag"] (a single string is not split into arguments)',
  ]);
  assert.deepEqual(await messages('  agent: {image: a, command: []}\n'), ['spec.agent.command: must not be empty (omit it to keep the default)']);
});
