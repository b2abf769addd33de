import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerError, mapDockerError } from '../../resources/docker/errors.js';
import { SmolvmError, type SmolvmErrorKind } from '../../resources/smolvm/driver.js';
import { AbortedError, ReadinessError } from '../../controller/execute.js';
import { outcomeOf } from '../../controller/controller.js';
import type { UnitPlan } from '../../controller/plan-types.js';
import { QUIET_HOLDS as PLAN_QUIET, STALLED_REASONS as PLAN_STALLED } from '../../controller/plan-types.js';
import { QUIET_HOLDS, REASONS, STALLED_REASONS, isQuiet, isStalled, type Reason } from '../../controller/reasons.js';
import { reasonOf } from '../../controller/reason-of.js';

test('reasonOf: Docker errors by kind, as the driver maps them', () => {
  assert.equal(reasonOf(mapDockerError({ statusCode: 404, json: { message: 'No such image: x:1' } }, 'create x')), 'ImageMissing');
  assert.equal(reasonOf(mapDockerError({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED /var/run/docker.sock' }, 'ping')), 'DockerUnreachable');
  assert.equal(reasonOf(mapDockerError({ statusCode: 409, json: { message: 'Conflict. The container name "/x" is already in use' } }, 'create x')), 'DockerError');
  assert.equal(reasonOf(new DockerError('failed', 'boom', 500)), 'DockerError');
});

test('reasonOf: smolvm errors get a reason of their own, no longer Failed', () => {
  const cases: [SmolvmErrorKind, Reason][] = [
    ['missing-binary', 'SmolvmUnavailable'],
    ['unsupported', 'SmolvmUnavailable'],
    ['not-found', 'SmolvmError'],
    ['already-exists', 'SmolvmError'],
    ['not-running', 'SmolvmError'],
    ['unreachable', 'SmolvmError'],
    ['db-locked', 'SmolvmError'],
    ['usage', 'SmolvmError'],
    ['failed', 'SmolvmError'],
  ];
  for (const [kind, want] of cases) assert.equal(reasonOf(new SmolvmError(kind, `smolvm machine start (m) failed: ${kind}`, { args: ['machine', 'start'], machine: 'm' })), want, kind);
});

test('reasonOf: readiness, abort (what a readiness wait throws when aborted), anything else', () => {
  assert.equal(reasonOf(new ReadinessError('s not ready after 100 ms (starting)')), 'NotReady');
  assert.equal(reasonOf(new AbortedError()), 'Aborted');
  assert.equal(reasonOf(new Error('exec exited 1')), 'Failed');
  assert.equal(reasonOf('not even an error'), 'Failed');
  assert.equal(reasonOf(undefined), 'Failed');
});

test('the table gives the stalled and quiet sets the controller had before it (plus SharedSidecarInUse and Expired, new since)', () => {
  const stalledBefore = ['InvalidSpec', 'NameCollision', 'SecretMissing', 'SmolvmUnavailable', 'SharedSidecarMissing', 'SubnetUnavailable', 'ArtifactMissing', 'DeletionGuard', 'NetworkForbidden', 'NetworkInUse', 'ForeignEndpoint', 'SharedSidecarInUse'];
  const quietBefore = ['Suspended', 'EmptySource', 'SourceEmptied', 'Expired'];
  assert.deepEqual([...STALLED_REASONS].sort(), [...stalledBefore].sort());
  assert.deepEqual([...QUIET_HOLDS].sort(), [...quietBefore].sort());
  assert.equal(PLAN_STALLED, STALLED_REASONS);
  assert.equal(PLAN_QUIET, QUIET_HOLDS);
  for (const r of Object.keys(REASONS) as Reason[]) {
    assert.equal(isStalled(r), stalledBefore.includes(r), r);
    assert.equal(isQuiet(r), quietBefore.includes(r), r);
    assert.ok(!(REASONS[r].stalled && REASONS[r].quiet), `${r} is both stalled and quiet`);
  }
});

test('failure defaults: only an invalid spec, deliberate holds, an abort and success do not fail --once', () => {
  const notFailures = (Object.keys(REASONS) as Reason[]).filter((r) => !REASONS[r].failure).sort();
  assert.deepEqual(notFailures, ['Aborted', 'EmptySource', 'Expired', 'InvalidSpec', 'Progressing', 'ProgressingWithRetry', 'SourceEmptied', 'Succeeded', 'Suspended']);
});

test('what the watch loop makes of a failed step: an abort in a readiness wait is an abort, a missing smolvm waits like its hold', () => {
  const u = { unit: 'b', kind: 'bottle', name: 'b', state: 'changes', actions: [], subnets: {} } as UnitPlan;
  const failed = (e: unknown) => outcomeOf(u, { unit: 'b', ok: false, executed: 1, error: (e as Error).message, reason: reasonOf(e) });
  assert.deepEqual(failed(new AbortedError()), { kind: 'aborted' });
  assert.deepEqual(failed(new ReadinessError('s is unhealthy')), { kind: 'failed', reason: 'NotReady', error: 's is unhealthy' });
  assert.deepEqual(failed(new SmolvmError('not-running', 'm is not running')), { kind: 'failed', reason: 'SmolvmError', error: 'm is not running' });
  assert.deepEqual(failed(new SmolvmError('missing-binary', 'no smolvm')), { kind: 'stalled', reason: 'SmolvmUnavailable', message: 'no smolvm' });
  assert.deepEqual(failed(mapDockerError({ code: 'ENOENT' }, 'ping')), { kind: 'engine-down' });
});
