import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scanPlaceholders, substitutePlaceholders, type PlaceholderRef } from '../../specs/placeholders.js';
import { closest, levenshtein } from '../../specs/did-you-mean.js';

test('scanPlaceholders recognizes the three forms and flags the rest', () => {
  const scan = scanPlaceholders('http://${sidecar.proxy.host}:${sidecar.proxy.port.8888} ${sidecar.db.ip} ${HOME} ${sidecar.x.port.0}');
  assert.deepEqual(
    scan.placeholders.map((p) => p.ref),
    [
      { sidecar: 'proxy', field: 'host' },
      { sidecar: 'proxy', field: 'port', port: 8888 },
      { sidecar: 'db', field: 'ip' },
      undefined,
      undefined,
    ],
  );
  assert.equal(scan.unterminatedAt, undefined);
  assert.equal(scanPlaceholders('a ${sidecar.x.ip').unterminatedAt, 2);
  assert.deepEqual(scanPlaceholders('$HOME and $ alone').placeholders, []);
});

test('substitutePlaceholders fills every placeholder or reports what is unresolved', () => {
  const lookup = (ref: PlaceholderRef) =>
    ref.field === 'ip' ? '10.0.0.2' : ref.field === 'host' ? '127.0.0.1' : ref.port === 8888 ? '49153' : undefined;
  assert.deepEqual(substitutePlaceholders('http://${sidecar.p.host}:${sidecar.p.port.8888}/', lookup), { value: 'http://127.0.0.1:49153/' });
  assert.deepEqual(substitutePlaceholders('no placeholders', lookup), { value: 'no placeholders' });
  assert.deepEqual(substitutePlaceholders('${sidecar.p.ip}:${sidecar.p.port.9}', lookup), {
    unresolved: [{ sidecar: 'p', field: 'port', port: 9 }],
  });
});

test('did-you-mean suggests only plausible typos', () => {
  assert.equal(levenshtein('kitten', 'sitting'), 3);
  assert.equal(closest('imgae', ['image', 'command']), 'image');
  assert.equal(closest('secretenv', ['env', 'secretEnv']), 'secretEnv');
  assert.equal(closest('op', ['ip', 'env']), undefined);
  assert.equal(closest('zzz', ['image']), undefined);
});
