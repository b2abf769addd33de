// Input the loader must survive (issue: seventeen holes, F3, F8, F10, F11, F15): each case is
// refused with file:line:col, and what came from a file that cannot be read is held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isBrokenSource, loadSpecs } from '../../specs/load.js';
import { DirSource } from '../../specs/source.js';
import { bottle, lines, loadTree, withTree } from '../fixtures/specs/tree.js';

const AGENT = '  agent:\n    image: a\n';

test('F10: duplicate keys are found in linear time; 8k keys parse fast (the old check: 4 s for 20k)', async () => {
  let env = '';
  for (let i = 0; i < 8_000; i++) env += `      K${i}: v\n`;
  const big = bottle('big', `  agent:\n    image: a\n    env:\n${env}      K7: again\n`);
  const started = process.hrtime.bigint();
  const result = await loadTree({ 'big.yaml': big });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.deepEqual(lines(result), [`big.yaml:${9 + 8_000}:7: duplicate key K7 (keys of a mapping must be unique)`]);
  assert.ok(result.held.has('Bottle/big'));
  // A figure, not a timing assertion on the product: the old check took 4 s here.
  assert.ok(ms < 10_000, `took ${ms} ms`);
});

test('F10: a file over 512 KiB, or with more than 20k nodes, is refused with a location and its bottles held', async () => {
  const huge = bottle('huge', `${AGENT}    env: {A: "${'x'.repeat(1024 * 1024)}"}\n`);
  const r1 = await loadTree({ 'huge.yaml': huge });
  assert.match(lines(r1)[0] ?? '', /^huge\.yaml:1:1: cannot read this file: huge\.yaml is \d+ bytes, more than the 512 KiB bottled reads$/);
  assert.deepEqual([...r1.brokenFiles], ['huge.yaml']);

  let list = '';
  for (let i = 0; i < 12_000; i++) list += `      - {a: ${i}}\n`;
  const many = bottle('many', `${AGENT}    command:\n${list}`);
  const r2 = await loadTree({ 'many.yaml': many });
  assert.match(lines(r2)[0] ?? '', /^many\.yaml:\d+:\d+: more than 20000 YAML nodes in this file/);
  assert.ok(r2.held.has('Bottle/many'), 'held, never pruned');
});

test('F11: a source: that is a FIFO is refused at once, located', async () => {
  await withTree({ 'specs/a.yaml': bottle('a', `${AGENT}    files: [{path: /k, source: pipe}]\n`) }, async (dir) => {
    execFileSync('mkfifo', [path.join(dir, 'specs', 'pipe')]);
    const r = await loadSpecs(new DirSource(path.join(dir, 'specs')));
    assert.deepEqual(lines(r), ['a.yaml:8:32: spec.agent.files[0].source: cannot read pipe: pipe is not a regular file (it is a FIFO): refusing to read it']);
  });
});

test('F3: links inside the directory are followed; once they dangle, their bottles are held, not pruned', async () => {
  await withTree({ 'specs/.store/gamma.yaml': bottle('gamma'), 'specs/.store/team/t.yaml': bottle('t'), 'specs/a.yaml': bottle('a') }, async (dir) => {
    const specs = path.join(dir, 'specs');
    // The targets live in a dot-directory (never walked itself), reached only through the links.
    await fs.symlink('.store/gamma.yaml', path.join(specs, 'gamma.yaml'));
    await fs.symlink('.store/team', path.join(specs, 'team'));
    const ok = await loadSpecs(new DirSource(specs));
    assert.deepEqual(lines(ok), []);
    assert.deepEqual([...ok.bottles.keys()].sort(), ['a', 'gamma', 't']);
    assert.equal(ok.bottles.get('t')?.origin.file, 'team/t.yaml');
    await fs.rm(path.join(specs, '.store'), { recursive: true });
    const r = await loadSpecs(new DirSource(specs));
    assert.deepEqual(lines(r), [
      'gamma.yaml:1:1: cannot read this file: gamma.yaml is a symbolic link to .store/gamma.yaml, which does not exist',
      'team:1:1: cannot read this file: team is a symbolic link to .store/team, which does not exist',
    ]);
    assert.ok(isBrokenSource(r, 'gamma.yaml'));
    assert.ok(isBrokenSource(r, 'team/t.yaml'), 'a dangling directory link covers every file that was under it');
    assert.ok(!isBrokenSource(r, 'a.yaml'));
  });
});

test('F15: a file path with ":" or NUL, NUL in env, nested file paths, absurd durations are refused, located', async () => {
  const r = await loadTree({
    'colon.yaml': bottle('colon', `${AGENT}    files: [{path: "/app/a:b", content: x}]\n`),
    'nul.yaml': bottle('nul', `${AGENT}    env: {A: "x\\u0000y"}\n`),
    'nested.yaml': bottle('nested', `${AGENT}    files: [{path: /app/x, content: a}, {path: /app/x/y, content: b}]\n`),
    'forever.yaml': bottle('forever', `  sidecars:\n    - name: s\n      image: s\n      healthcheck: {test: [CMD, "true"], interval: 99999999999h}\n${AGENT}`),
    'mem.yaml': bottle('mem', `  agent: {image: a, resources: {memoryMiB: 2}}\n`),
  });
  assert.deepEqual(lines(r), [
    'colon.yaml:8:20: spec.agent.files[0].path: must not contain ":" (Docker reads a bind mount as source:target:options)',
    'forever.yaml:9:52: spec.sidecars[0].healthcheck.interval: must be at most 24h',
    'mem.yaml:6:44: spec.agent.resources.memoryMiB: must be at least 6 (Docker refuses less)',
    'nested.yaml:8:48: spec.agent.files[1].path: /app/x/y would be inside /app/x, which is the file of files[0]: a path cannot be both a file and a directory',
    'nul.yaml:8:14: spec.agent.env.A: must not contain a NUL character (\\u0000)',
  ]);
});

test('F15: a sidecar container name that is another bottle\'s agent is refused in both files, saying what collides', async () => {
  const r = await loadTree({
    'a.yaml': bottle('a', `  sidecars:\n    - name: b\n      image: s\n${AGENT}`),
    'a-b.yaml': bottle('a-b'),
    'shared-x.yaml': bottle('shared-x'),
    'x.yaml': 'apiVersion: bottled.dev/v1\nkind: SharedSidecar\nmetadata:\n  name: x\nspec:\n  image: s\n',
  });
  assert.deepEqual(lines(r), [
    'a-b.yaml:4:9: container name bottle-a-b of the agent of bottle a-b is also sidecar b of bottle a (a.yaml:7:13): rename one of them',
    'a.yaml:7:13: container name bottle-a-b of sidecar b of bottle a is also the agent of bottle a-b (a-b.yaml:4:9): rename one of them',
    'shared-x.yaml:4:9: container name bottle-shared-x of the agent of bottle shared-x is also the container of SharedSidecar x (x.yaml:4:9): rename one of them',
    'shared-x.yaml:4:9: network name bottle-shared-x-net of the network of bottle shared-x is also the network of SharedSidecar x (x.yaml:4:9): rename one of them',
    'x.yaml:4:9: container name bottle-shared-x of the container of SharedSidecar x is also the agent of bottle shared-x (shared-x.yaml:4:9): rename one of them',
    'x.yaml:4:9: network name bottle-shared-x-net of the network of SharedSidecar x is also the network of bottle shared-x (shared-x.yaml:4:9): rename one of them',
  ]);
  assert.equal(r.bottles.size, 0);
});

test('F8: agent.networks refuses Docker\'s own networks and the names bottled manages for its --prefix', async () => {
  const r = await loadTree({
    'a.yaml': bottle('a', `  sidecars:\n    - {name: s, image: s, egress: true}\n  agent:\n    image: a\n    networks: [tools-net, bridge, bottle-a-egress, bottle-other-net]\n`),
  });
  assert.deepEqual(lines(r), [
    'a.yaml:10:27: spec.agent.networks[1]: "bridge" is one of Docker\'s own networks: an agent on it reaches past its sidecars (the host, other containers); agent.networks is for networks of your own',
  ]);
  const r2 = await loadTree({
    'a.yaml': bottle('a', `  sidecars:\n    - {name: s, image: s, egress: true}\n  agent:\n    image: a\n    networks: [tools-net, bottle-a-egress, bottle-other-net]\n`),
  });
  assert.deepEqual(lines(r2), [
    'a.yaml:10:27: spec.agent.networks[1]: bottle-a-egress is a network name bottled manages (--prefix bottle): joining a bottle\'s own or another bottle\'s network would open the agent\'s seal',
    'a.yaml:10:44: spec.agent.networks[2]: bottle-other-net is a network name bottled manages (--prefix bottle): joining a bottle\'s own or another bottle\'s network would open the agent\'s seal',
  ]);
  const other = await loadTree({ 'a.yaml': bottle('a', '  agent:\n    image: a\n    networks: [bottle-a-egress]\n') }, { prefix: 'proj' });
  assert.deepEqual(lines(other), [], 'another prefix: not a name this reconciler manages');
});
