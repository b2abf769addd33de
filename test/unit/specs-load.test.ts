import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { docKey, loadSpecs } from '../../specs/load.js';
import type { BottleDoc, SharedSidecarDoc } from '../../specs/model.js';
import { DirSource } from '../../specs/source.js';
import { bottle, FIXTURES, lines, loadTree, withTree } from '../fixtures/specs/tree.js';

test('the example of the spec page normalizes to the model', async () => {
  const result = await loadSpecs(new DirSource(path.join(FIXTURES, 'example')));
  assert.deepEqual(lines(result), []);
  // routes/implementer.yaml is a `source:` of implementer.yaml, not a spec file.
  assert.equal(result.fileCount, 2);
  const expected: BottleDoc = {
    kind: 'Bottle',
    metadata: { name: 'implementer', labels: { team: 'infra' } },
    spec: {
      backend: 'docker',
      suspend: false,
      network: { subnet: '192.168.211.0/24' },
      sidecars: [
        {
          name: 'bundle',
          image: 'bot-bottle-sidecars:latest',
          command: ['/app/sidecar_init.py'],
          env: { BOT_BOTTLE_SIDECAR_DAEMONS: 'egress,pipelock' },
          secretEnv: { EGRESS_TOKEN_0: 'GITEA_TOKEN' },
          files: [
            {
              path: '/app/routes.yaml',
              content: Buffer.from('# Not a spec: data that implementer.yaml copies into its bundle sidecar.\nroutes:\n  - host: gitea.example.com\n    allow: true\n'),
              source: './routes/implementer.yaml',
              mode: 0o644,
              onChange: { type: 'signal', signal: 'SIGHUP' },
            },
            {
              path: '/etc/pipelock.yaml',
              content: Buffer.from('listen: 0.0.0.0:8888\n'),
              mode: 0o644,
              onChange: { type: 'signal', signal: 'SIGUSR1' },
            },
          ],
          ports: [8888, 9100],
          healthcheck: { test: ['CMD', 'nc', '-z', '127.0.0.1', '8888'], intervalMs: 2000, retries: 15 },
          init: true,
          aliases: ['egress', 'pipelock', 'git-gate', 'supervise'],
          ip: '192.168.211.2',
          egress: true,
        },
      ],
      agent: {
        image: 'claude-bottle:latest',
        command: ['sleep', 'infinity'],
        env: { HTTPS_PROXY: 'http://egress:9099', NO_PROXY: 'localhost,127.0.0.1' },
        secretEnv: { GH_TOKEN: 'GH_PAT' },
        files: [
          {
            path: '/home/node/.bottle-prompt.txt',
            content: Buffer.from('You help maintain Gitea-hosted projects.'),
            mode: 0o600,
            onChange: { type: 'recreate' },
          },
        ],
        networks: ['tools-net'],
        resources: { cpus: 2, memoryMiB: 2048 },
        init: true,
      },
      uses: ['pkg-cache'],
    },
    origin: { file: 'implementer.yaml', line: 2, col: 1 },
  };
  assert.deepEqual(result.bottles.get('implementer'), expected);

  const shared: SharedSidecarDoc = {
    kind: 'SharedSidecar',
    metadata: { name: 'pkg-cache', labels: {} },
    spec: {
      image: 'bottled/pkg-cache:1',
      env: {},
      secretEnv: {},
      files: [],
      ports: [3142],
      healthcheck: { test: ['CMD-SHELL', 'nc -z 127.0.0.1 3142'], intervalMs: 500, timeoutMs: 90_000, startPeriodMs: 10_000 },
      init: false,
      alias: 'pkg-cache',
      backend: 'docker',
    },
    origin: { file: 'shared.yaml', line: 1, col: 1 },
  };
  assert.deepEqual(result.shared.get('pkg-cache'), shared);
  assert.equal(result.held.size, 0);
  assert.equal(result.brokenFiles.size, 0);
});

test('defaults are applied to a minimal bottle', async () => {
  const result = await loadTree({ 'min.yaml': bottle('min') });
  assert.deepEqual(lines(result), []);
  assert.deepEqual(result.bottles.get('min')?.spec, {
    backend: 'docker',
    suspend: false,
    network: {},
    sidecars: [],
    agent: { image: 'agent:1', env: {}, secretEnv: {}, files: [], networks: [], init: true },
    uses: [],
  });
  assert.deepEqual(result.bottles.get('min')?.metadata, { name: 'min', labels: {} });
});

test('a YAML syntax error is reported at its position and breaks the file', async () => {
  const result = await loadTree({
    'bad.yaml': bottle('bad', '  agent: {image: [x}\n'),
  });
  assert.deepEqual(lines(result).map((l) => l.split(': ')[0]), ['bad.yaml:6:20', 'bad.yaml:6:21']);
  assert.deepEqual([...result.brokenFiles], ['bad.yaml']);
  // The name can still be read: the bottle is held, not pruned.
  assert.deepEqual([...result.held.keys()], ['Bottle/bad']);
  assert.equal(result.bottles.size, 0);
});

test('a duplicate key is an error at the second key', async () => {
  const result = await loadTree({
    'dup.yaml': bottle('dup', '  agent:\n    image: a\n    command: [x]\n    image: b\n'),
  });
  assert.deepEqual(lines(result), ['dup.yaml:9:5: duplicate key image (keys of a mapping must be unique)']);
  assert.deepEqual([...result.brokenFiles], ['dup.yaml']);
  assert.ok(result.held.has('Bottle/dup'));
});

test('an unknown key points at the key and suggests the close one', async () => {
  const result = await loadTree({
    'typo.yaml': bottle('typo', '  agent:\n    imgae: a\n    image: b\n  sidecar: []\n'),
  });
  assert.deepEqual(lines(result), [
    'typo.yaml:7:5: spec.agent.imgae: unknown key (did you mean "image"?)',
    'typo.yaml:9:3: spec.sidecar: unknown key (did you mean "sidecars"?)',
  ]);
  assert.deepEqual(result.brokenFiles.size, 0);
  assert.deepEqual(result.held.get('Bottle/typo')?.length, 2);
});

test('a wrong type points at the value; numbers and booleans for strings suggest quotes', async () => {
  const result = await loadTree({
    'types.yaml': bottle('types', '  suspend: yes\n  agent:\n    image: a\n    env: {PORT: 8080, VERSION: 1.10}\n'),
  });
  assert.deepEqual(lines(result), [
    'types.yaml:6:12: spec.suspend: expected true or false, got the string "yes" (YAML 1.2 reads yes as a string)',
    'types.yaml:9:17: spec.agent.env.PORT: expected a string, got the number 8080 (write it quoted: "8080")',
    'types.yaml:9:32: spec.agent.env.VERSION: expected a string, got the number 1.1 (write it quoted: "1.10")',
  ]);
});

test('a subnet with host bits set is an error at the subnet', async () => {
  const result = await loadTree({
    'net.yaml': bottle('net', '  network:\n    subnet: 192.168.211.5/24\n  agent: {image: a}\n'),
  });
  assert.deepEqual(lines(result), [
    "net.yaml:7:13: spec.network.subnet: 192.168.211.5/24 has host bits set: the subnet's network address is 192.168.211.0/24",
  ]);
});

test('a sidecar ip outside the subnet is an error at the ip', async () => {
  const result = await loadTree({
    'ip.yaml': bottle('ip', '  network: {subnet: 192.168.211.0/24}\n  sidecars:\n    - name: s\n      image: s\n      ip: 10.0.0.5\n  agent: {image: a}\n'),
  });
  assert.deepEqual(lines(result), ['ip.yaml:10:11: spec.sidecars[0].ip: 10.0.0.5 is outside spec.network.subnet 192.168.211.0/24']);
});

test('a sidecar ip without a subnet is an error with the docker backend only', async () => {
  const sidecars = '  sidecars:\n    - {name: s, image: s, ip: 10.0.0.5}\n  agent: {image: a}\n';
  const docker = await loadTree({ 'ip.yaml': bottle('ip', sidecars) });
  assert.equal(docker.diagnostics.length, 1);
  assert.match(lines(docker)[0] ?? '', /^ip\.yaml:7:31: spec\.sidecars\[0\]\.ip: a pinned ip needs an explicit spec\.network\.subnet with the docker backend: /);
  const smolvm = await loadTree({ 'ip.yaml': bottle('ip', `  backend: smolvm\n${sidecars}`) });
  assert.deepEqual(lines(smolvm), []);
});

test('a missing source file is reported at the source value', async () => {
  const result = await loadTree({
    'team/a.yaml': bottle('a', '  agent:\n    image: a\n    files:\n      - path: /etc/x\n        source: ./conf/x.conf\n'),
  });
  assert.deepEqual(lines(result), ['team/a.yaml:10:17: spec.agent.files[0].source: ./conf/x.conf not found (looked for team/conf/x.conf)']);
  assert.ok(result.held.has('Bottle/a'));
  assert.equal(result.brokenFiles.size, 0);
});

test('source files are read relative to the spec file', async () => {
  const result = await loadTree({
    'team/a.yaml': bottle('a', '  agent:\n    image: a\n    files:\n      - {path: /etc/x, source: ../shared/x.conf}\n'),
    'shared/x.conf': 'x=1\n',
  });
  assert.deepEqual(lines(result), []);
  const file = result.bottles.get('a')?.spec.agent.files[0];
  assert.equal(file?.content.toString(), 'x=1\n');
  assert.equal(file?.source, '../shared/x.conf');
});

test('a source path that leaves the root is refused unless allowOutside', async () => {
  const files = {
    'a.yaml': bottle('a', '  agent:\n    image: a\n    files:\n      - {path: /etc/x, source: ../outside.conf}\n'),
    '../outside.conf': 'outside\n',
  };
  const refused = await loadTree(files);
  assert.equal(refused.diagnostics.length, 1);
  assert.match(lines(refused)[0] ?? '', /^a\.yaml:9:32: spec\.agent\.files\[0\]\.source: \.\.\/outside\.conf leads outside .* \(--allow-outside lifts this\)$/);

  const allowed = await loadTree(files, { allowOutside: true });
  assert.deepEqual(lines(allowed), []);
  assert.equal(allowed.bottles.get('a')?.spec.agent.files[0]?.content.toString(), 'outside\n');
});

test('an absolute source path is refused unless allowOutside', async () => {
  const result = await loadTree({
    'a.yaml': bottle('a', '  agent:\n    image: a\n    files:\n      - {path: /etc/x, source: /etc/hostname}\n'),
  });
  assert.match(lines(result)[0] ?? '', /^a\.yaml:9:32: spec\.agent\.files\[0\]\.source: \/etc\/hostname is an absolute path/);
});

test('the same name in two files makes both invalid, each naming the other', async () => {
  const result = await loadTree({
    'one.yaml': bottle('twin'),
    'sub/two.yaml': `# a comment first\n${bottle('twin')}`,
    'other.yaml': bottle('other'),
  });
  assert.deepEqual(lines(result), [
    'one.yaml:4:9: metadata.name: duplicate Bottle "twin": also declared at sub/two.yaml:5:9',
    'sub/two.yaml:5:9: metadata.name: duplicate Bottle "twin": also declared at one.yaml:4:9',
  ]);
  assert.deepEqual([...result.bottles.keys()], ['other']);
  assert.equal(result.held.get('Bottle/twin')?.length, 2);
});

test('a Bottle and a SharedSidecar may share a name', async () => {
  const result = await loadTree({
    'a.yaml': `${bottle('cache')}---\napiVersion: bottled.dev/v1\nkind: SharedSidecar\nmetadata: {name: cache}\nspec: {image: c}\n`,
  });
  assert.deepEqual(lines(result), []);
  assert.ok(result.bottles.has('cache') && result.shared.has('cache'));
});

test('a placeholder that is not one of the supported forms is an error at the value', async () => {
  const result = await loadTree({
    'p.yaml': bottle('p', '  sidecars:\n    - {name: proxy, image: p, ports: [8888]}\n  agent:\n    image: a\n    env:\n      OK: "http://${sidecar.proxy.host}:${sidecar.proxy.port.8888}"\n      BAD: "${HOME}/x"\n      GONE: "${sidecar.proxi.ip}"\n'),
  });
  assert.deepEqual(lines(result), [
    'p.yaml:12:12: spec.agent.env.BAD: unknown placeholder ${HOME}: the supported placeholders are ${sidecar.<name>.ip}, ${sidecar.<name>.host} and ${sidecar.<name>.port.<containerPort>}',
  ]);
  // Which sidecar a placeholder names is checked once every field of the bottle is valid.
  const targets = await loadTree({
    'p.yaml': bottle('p', '  sidecars:\n    - {name: proxy, image: p, ports: [8888]}\n  agent:\n    image: a\n    env:\n      GONE: "${sidecar.proxi.ip}"\n      PORT: "${sidecar.proxy.port.9999}"\n'),
  });
  assert.deepEqual(lines(targets), [
    'p.yaml:11:13: spec.agent.env.GONE: ${sidecar.proxi.ip} names sidecar "proxi", which this bottle does not declare (did you mean "proxy"?) (declared: proxy)',
    "p.yaml:12:13: spec.agent.env.PORT: ${sidecar.proxy.port.9999}: sidecar \"proxy\" does not publish port 9999 (its ports: 8888); add it to that sidecar's ports",
  ]);
});

test('a file mode written as a number is refused with the quoted form to use', async () => {
  const result = await loadTree({
    'm.yaml': bottle('m', '  agent:\n    image: a\n    files:\n      - path: /etc/x\n        content: x\n        mode: 0600\n'),
  });
  assert.deepEqual(lines(result), [
    'm.yaml:11:15: spec.agent.files[0].mode: must be a quoted octal string: write mode: "0600" (unquoted, YAML 1.2 reads 0600 as the decimal number 600)',
  ]);
});

test('a multi-document file yields every document with its own origin; empty documents are skipped', async () => {
  const result = await loadTree({
    'multi.yaml': `---\n${bottle('one')}---\n# nothing here\n---\n${bottle('two')}`,
  });
  assert.deepEqual(lines(result), []);
  assert.deepEqual(result.bottles.get('one')?.origin, { file: 'multi.yaml', line: 2, col: 1 });
  assert.deepEqual(result.bottles.get('two')?.origin, { file: 'multi.yaml', line: 11, col: 1 });
  assert.equal(result.fileCount, 1);
});

test('empty and comment-only files are ignored and count as no spec file', async () => {
  const result = await loadTree({ 'empty.yaml': '', 'comments.yml': '# later\n', 'a.yaml': bottle('a') });
  assert.deepEqual(lines(result), []);
  assert.deepEqual([...result.bottles.keys()], ['a']);
  assert.equal(result.fileCount, 1);
  const onlyEmpty = await loadTree({ 'empty.yaml': '', 'comments.yml': '# later\n' });
  assert.equal(onlyEmpty.fileCount, 0);
});

test('a missing directory is an empty source', async () => {
  const result = await loadSpecs(new DirSource(path.join(FIXTURES, 'does-not-exist')));
  assert.equal(result.fileCount, 0);
  assert.deepEqual(result.diagnostics, []);
  assert.equal(result.describe, path.join(FIXTURES, 'does-not-exist'));
});

test('documents that are not specs are errors; unnamed ones break their file', async () => {
  const result = await loadTree({
    'kinds.yaml': `${bottle('fine')}---\n- a list\n---\napiVersion: bottled.dev/v1\nkind: Botle\nmetadata: {name: k}\nspec: {}\n`,
    'version.yaml': bottle('v').replace('bottled.dev/v1', 'bottled.dev/v2'),
  });
  assert.deepEqual(lines(result), [
    'kinds.yaml:8:1: a spec document must be a mapping with apiVersion, kind, metadata and spec (got a list)',
    'kinds.yaml:11:7: kind: "Botle" is not a kind of bottled.dev/v1 (did you mean "Bottle"?); expected Bottle or SharedSidecar',
    'version.yaml:1:13: apiVersion: "bottled.dev/v2" is not supported; expected bottled.dev/v1',
  ]);
  // kinds.yaml holds documents that cannot be named: nothing from it is applied.
  assert.deepEqual([...result.brokenFiles], ['kinds.yaml']);
  assert.equal(result.bottles.size, 0);
  assert.deepEqual([...result.held.keys()].sort(), ['Bottle/fine', 'Bottle/v']);
  assert.deepEqual(
    result.held.get('Bottle/fine')?.map((d) => `${d.line}:${d.col}`),
    ['8:1', '11:7'],
  );
});

test('held keeps names readable from a file with syntax errors in any document', async () => {
  const result = await loadTree({
    'two.yaml': `${bottle('good')}---\n${bottle('bad', '  agent: {image: "x}\n')}`,
  });
  assert.deepEqual([...result.brokenFiles], ['two.yaml']);
  assert.deepEqual([...result.held.keys()].sort(), [docKey('Bottle', 'bad'), docKey('Bottle', 'good')]);
  assert.equal(result.bottles.size, 0);
});

test('an alias bomb is refused', async () => {
  const bomb =
    bottle('bomb', '  agent:\n    image: a\n    env: &a {A: x, B: x, C: x, D: x, E: x, F: x, G: x, H: x}\n') +
    '  x1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  x2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n  x3: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
  const result = await loadTree({ 'bomb.yaml': bomb });
  assert.equal(result.diagnostics.length, 1);
  assert.match(lines(result)[0] ?? '', /^bomb\.yaml:1:1: too many alias expansions/);
  assert.ok(result.held.has('Bottle/bomb'));
});

test('diagnostics are sorted by file, line and column', async () => {
  const result = await loadTree({
    'b.yaml': bottle('b', '  agent: {image: a, x: 1}\n  y: 2\n'),
    'a.yaml': bottle('a', '  agent: {image: a, z: 1}\n'),
  });
  assert.deepEqual(
    result.diagnostics.map((d) => `${d.file}:${d.line}:${d.col}`),
    ['a.yaml:6:21', 'b.yaml:6:21', 'b.yaml:7:3'],
  );
});

test('agent.from is resolved to an absolute path but not read', async () => {
  const result = await loadTree({
    'vm/a.yaml': bottle('a', '  backend: smolvm\n  agent: {from: ./agent.smolmachine}\n'),
  });
  assert.deepEqual(lines(result), []);
  const agent = result.bottles.get('a')?.spec.agent;
  assert.equal(agent?.from, './agent.smolmachine');
  assert.ok(agent?.fromPath?.endsWith(`${path.sep}specs${path.sep}vm${path.sep}agent.smolmachine`));
  assert.ok(path.isAbsolute(agent?.fromPath ?? ''));
});

test('agent.from that leaves the root is refused like source', async () => {
  const result = await loadTree({ 'a.yaml': bottle('a', '  backend: smolvm\n  agent: {from: ../m.smolmachine}\n') });
  assert.equal(result.diagnostics.length, 1);
  assert.match(lines(result)[0] ?? '', /^a\.yaml:7:17: spec\.agent\.from: \.\.\/m\.smolmachine leads outside /);
});

test('a source inside the root that is a symlink to a file outside is refused unless allowOutside', async () => {
  await withTree({ 'specs/a.yaml': bottle('a', '  agent:\n    image: a\n    files: [{path: /k, source: key}]\n'), 'host-secret': 'secret' }, async (dir) => {
    await fs.symlink(path.join(dir, 'host-secret'), path.join(dir, 'specs', 'key'));
    const refused = await loadSpecs(new DirSource(path.join(dir, 'specs')));
    assert.match(lines(refused)[0] ?? '', /^a\.yaml:8:32: spec\.agent\.files\[0\]\.source: key leads outside .* through a symbolic link/);
    const allowed = await loadSpecs(new DirSource(path.join(dir, 'specs')), { allowOutside: true });
    assert.equal(allowed.bottles.get('a')?.spec.agent.files[0]?.content.toString(), 'secret');
  });
});
