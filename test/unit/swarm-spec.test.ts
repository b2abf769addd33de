// backend: swarm in the spec: placement is Swarm's syntax, checked; what Swarm cannot do is
// refused where it is written (file:line:col), never accepted and dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSpecs } from '../../specs/load.js';
import { bottleMessages as messages, memorySource } from '../fixtures/specs/tree.js';
import { desiredShape, observedShape, shapeDrift } from '../../resources/swarm/shape.js';
import { secretRef, type DesiredService } from '../../resources/swarm/desired.js';
import { resolveSecurity } from '../../controller/security.js';

const SWARM = '  backend: swarm\n';

test('placement: constraints and spread preferences in Swarm syntax, on the swarm backend only', async () => {
  assert.deepEqual(await messages(`${SWARM}  agent: {image: a, placement: {constraints: [node.labels.zone==a, "node.role != manager"], preferences: [{spread: node.labels.zone}]}}\n`), []);
  assert.deepEqual(await messages(`${SWARM}  agent: {image: a, placement: {constraints: [zone=a]}}\n`), [
    'spec.agent.placement.constraints[0]: must be a Swarm constraint: node.labels.<key>, node.hostname, node.role, node.id, node.platform.os|arch or engine.labels.<key>, then == or !=, then a value (e.g. node.labels.zone==a)',
  ]);
  assert.deepEqual(await messages(`${SWARM}  agent: {image: a, placement: {preferences: [{spread: zone}]}}\n`), ['spec.agent.placement.preferences[0].spread: must be node.labels.<key> or engine.labels.<key>']);
  assert.deepEqual(await messages(`${SWARM}  agent: {image: a, placement: {constraint: [node.role==worker]}}\n`).then((m) => m.length), 1);
  assert.deepEqual(await messages('  sidecars: [{name: s, image: s, placement: {constraints: [node.role==worker]}}]\n  agent: {image: a}\n'), [
    'spec.sidecars[0].placement: applies only to the swarm backend (this bottle runs on docker, one host)',
  ]);
});

test('what Swarm drops or cannot do is refused: pinned ip, ports, placeholders, signal/exec onChange, agent.networks, from', async () => {
  const got = await messages(
    `${SWARM}  network: {subnet: 10.9.0.0/24}\n  sidecars:\n    - {name: s, image: s, ip: 10.9.0.5, ports: [80]}\n    - {name: t, image: s, env: {UP: "\${sidecar.s.ip}"}, files: [{path: /x, content: x, onChange: {signal: HUP}}]}\n  agent: {image: a, networks: [tools], from: ./m}\n  uses: [cache]\n`,
  );
  assert.deepEqual(got.sort(), [
    'spec.agent.from: is only for the smolvm backend; the swarm backend runs agent.image',
    'spec.agent.networks: is not available on the swarm backend yet: the agent joins only its bottle overlay',
    "spec.sidecars[0].ip: a pinned ip is not possible on the swarm backend: Swarm drops a task's fixed address and gives it a new one at every restart; reach the sidecar by its aliases",
    "spec.sidecars[0].ports: published ports are not available on the swarm backend (they need the routing mesh, which this bottle's dnsrr services do not use)",
    'spec.sidecars[1].env.UP: placeholders are not available on the swarm backend: a task\'s address changes at every restart and no port is published; use the sidecar\'s alias as its host name',
    'spec.sidecars[1].files[0].onChange: signal is not available on the swarm backend: a file is a Swarm config, which cannot change in place, so a change replaces the task; use restart (or recreate, the same there)',
  ].sort());
});

test('a refusal is located at the line and column of the field', async () => {
  const r = await loadSpecs(memorySource({ 'b.yaml': 'apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: b}\nspec:\n  backend: swarm\n  sidecars:\n    - name: s\n      image: s\n      ip: 10.0.0.9\n  agent: {image: a}\n' }));
  const d = r.diagnostics[0]!;
  assert.equal(`${d.file}:${d.line}:${d.col}`, 'b.yaml:9:7');
  assert.ok(r.held.has('Bottle/b'), 'the bottle is held, not removed');
});

const svc: DesiredService = {
  name: 'p-b-proxy',
  role: 'sidecar',
  security: resolveSecurity('sidecar', undefined, {}),
  image: 'reg:5000/proxy:1',
  env: { A: '1' },
  secretEnv: { TOKEN: 'HOST_TOKEN' },
  init: true,
  networks: [{ network: 'p-b-net', aliases: ['egress'] }],
  files: [],
  labels: {},
  placement: { constraints: ['node.role==worker'], preferences: [] },
  waitFor: [],
};
const secret = secretRef('inst', svc.name, 'TOKEN', 'HOST_TOKEN', 'f'.repeat(64));
const spec = (over: { env?: string[]; replicas?: number; image?: string; constraints?: string[]; secrets?: { SecretName: string; File: { Name: string } }[] } = {}) => ({
  TaskTemplate: {
    ContainerSpec: {
      Image: over.image ?? `reg:5000/proxy:1@sha256:${'a'.repeat(64)}`,
      Env: over.env ?? ['A=1', 'TOKEN_FILE=/run/secrets/TOKEN'],
      Init: true,
      Configs: [],
      Secrets: over.secrets ?? [{ SecretName: secret.name, File: { Name: 'TOKEN' } }],
      // As the manager stores them: with the CAP_ prefix.
      CapabilityDrop: ['CAP_AUDIT_WRITE', 'CAP_MKNOD', 'CAP_NET_RAW'],
    } as Record<string, unknown>,
    Networks: [{ Target: 'netid1', Aliases: ['egress'] }],
    Placement: { Constraints: over.constraints ?? ['node.role==worker'] },
    Resources: { Limits: { Pids: 1024 } },
  },
  Mode: { Replicated: { Replicas: over.replicas ?? 1 } },
  EndpointSpec: { Mode: 'dnsrr' },
});
const ids = (n: string) => (n === 'p-b-net' ? 'netid1' : undefined);

test('shape: as applied is no drift (the manager pins a digest); a hand edit names its field', () => {
  const want = desiredShape(svc, [], [secret], ids);
  assert.deepEqual(shapeDrift(observedShape(spec()), want), []);
  assert.deepEqual(shapeDrift(observedShape(spec({ env: ['A=1', 'TOKEN_FILE=/run/secrets/TOKEN', 'SNEAKY=1'] })), want), ['env']);
  assert.deepEqual(shapeDrift(observedShape(spec({ replicas: 0 })), want), ['replicas']);
  assert.deepEqual(shapeDrift(observedShape(spec({ image: 'reg:5000/proxy:2', constraints: [] })), want), ['image', 'constraints']);
  assert.deepEqual(shapeDrift(observedShape(spec({ secrets: [] })), want), ['secrets'], 'a secret taken out by hand');
  const opened = spec();
  Object.assign(opened.TaskTemplate.ContainerSpec, { Mounts: [{ Source: '/', Target: '/host' }], CapabilityAdd: ['CAP_NET_ADMIN'], User: '0' });
  Object.assign(opened.EndpointSpec, { Ports: [{ TargetPort: 22, PublishedPort: 2222 }] });
  assert.deepEqual(shapeDrift(observedShape(opened), want).sort(), ['capAdd', 'mounts', 'ports', 'user'], 'what opens the seal is drift too');
  const unhardened = spec();
  delete unhardened.TaskTemplate.ContainerSpec.CapabilityDrop;
  delete (unhardened.TaskTemplate as { Resources?: unknown }).Resources;
  assert.deepEqual(shapeDrift(observedShape(unhardened), want).sort(), ['capDrop', 'pids'], 'hardening taken off by hand is drift');
});

test('a secret is a file named by <VAR>_FILE; its name carries the digest of the value, never the value', () => {
  assert.deepEqual(desiredShape(svc, [], [secret], ids).env, ['A=1', 'TOKEN_FILE=/run/secrets/TOKEN']);
  assert.match(secret.name, /^bottled-[0-9a-f]{12}-f{16}$/);
  assert.notEqual(secretRef('inst', svc.name, 'TOKEN', 'HOST_TOKEN', 'e'.repeat(64)).name, secret.name, 'a new value is a new secret');
});

test('a SharedSidecar on swarm: placement allowed there only; ports and in-place onChange refused; a bottle uses only one of its own backend', async () => {
  const shared = (body: string) => `apiVersion: bottled.dev/v1\nkind: SharedSidecar\nmetadata: {name: cache}\nspec:\n${body}`;
  const load = async (files: Record<string, string>) => (await loadSpecs(memorySource(files))).diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);
  assert.deepEqual(await load({ 'c.yaml': shared('  backend: swarm\n  image: c\n  placement: {constraints: [node.role==worker]}\n') }), []);
  assert.deepEqual(await load({ 'c.yaml': shared('  image: c\n  placement: {constraints: [node.role==worker]}\n') }), ['c.yaml:6:3: spec.placement: applies only to the swarm backend (this SharedSidecar runs on docker, one host)']);
  assert.match((await load({ 'c.yaml': shared('  backend: swarm\n  image: c\n  ports: [80]\n') }))[0] ?? '', /c\.yaml:7:3: spec\.ports: published ports are not available on the swarm backend/);
  const mixed = await load({
    'c.yaml': shared('  image: c\n'),
    'b.yaml': 'apiVersion: bottled.dev/v1\nkind: Bottle\nmetadata: {name: b}\nspec:\n  backend: swarm\n  uses: [cache]\n  agent: {image: a}\n',
  });
  assert.deepEqual(mixed, ['b.yaml:6:10: spec.uses[0]: SharedSidecar cache runs on docker, and a swarm bottle can only use one with backend: swarm']);
});
