import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { specJsonSchema } from '../../specs/json-schema.js';
import { FIXTURES } from '../fixtures/specs/tree.js';

type Schema = Record<string, unknown>;

/** Keywords the small validator below understands; the test fails if the schema uses others. */
const CHECKED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'propertyNames', 'items', 'const', 'enum',
  'pattern', 'minLength', 'minItems', 'minimum', 'maximum', 'exclusiveMinimum', 'oneOf', 'anyOf',
]);
const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', 'default', 'format']);

function keywordsOf(schema: unknown, into = new Set<string>()): Set<string> {
  if (typeof schema !== 'object' || schema === null) return into;
  for (const [key, value] of Object.entries(schema)) {
    into.add(key);
    if (key === 'properties') for (const sub of Object.values(value as Schema)) keywordsOf(sub, into);
    else if (key === 'oneOf' || key === 'anyOf') for (const sub of value as unknown[]) keywordsOf(sub, into);
    else if (key === 'items' || key === 'additionalProperties' || key === 'propertyNames') keywordsOf(value, into);
  }
  return into;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Just enough of JSON Schema 2020-12 for the keywords in CHECKED. */
function valid(schema: Schema, value: unknown): boolean {
  const t = typeOf(value);
  if (schema.type !== undefined && schema.type !== t && !(schema.type === 'number' && t === 'integer')) return false;
  if ('const' in schema && schema.const !== value) return false;
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) return false;
  if (typeof value === 'string') {
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) return false;
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) return false;
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) return false;
    if (typeof schema.maximum === 'number' && value > schema.maximum) return false;
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) return false;
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) return false;
    if (schema.items && !value.every((item) => valid(schema.items as Schema, item))) return false;
  }
  if (t === 'object') {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    if (Array.isArray(schema.required) && !schema.required.every((key) => key in object)) return false;
    for (const [key, item] of Object.entries(object)) {
      if (schema.propertyNames && !valid(schema.propertyNames as Schema, key)) return false;
      const sub = properties[key];
      if (sub) {
        if (!valid(sub, item)) return false;
      } else if (schema.additionalProperties === false) {
        return false;
      } else if (typeof schema.additionalProperties === 'object' && !valid(schema.additionalProperties as Schema, item)) {
        return false;
      }
    }
  }
  if (Array.isArray(schema.oneOf) && schema.oneOf.filter((sub) => valid(sub as Schema, value)).length !== 1) return false;
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some((sub) => valid(sub as Schema, value))) return false;
  return true;
}

test('the JSON Schema is generated, uses known keywords, and is one of Bottle / SharedSidecar', () => {
  const schema = specJsonSchema();
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  const branches = schema.oneOf as Schema[];
  assert.deepEqual(branches.map((b) => b.title), ['Bottle', 'SharedSidecar']);
  for (const branch of branches) assert.equal(branch.additionalProperties, false);
  const unknown = [...keywordsOf(schema)].filter((k) => !CHECKED.has(k) && !ANNOTATIONS.has(k));
  assert.deepEqual(unknown, [], 'keywords the test validator does not check');
  assert.doesNotThrow(() => JSON.stringify(schema));
});

test('the JSON Schema accepts the examples and rejects basic mistakes', async () => {
  const schema = specJsonSchema();
  const example = parse(await fs.readFile(path.join(FIXTURES, 'example', 'implementer.yaml'), 'utf8')) as Record<string, any>;
  const shared = parse(await fs.readFile(path.join(FIXTURES, 'example', 'shared.yaml'), 'utf8')) as Record<string, any>;
  assert.ok(valid(schema, example), 'the spec page example');
  assert.ok(valid(schema, shared), 'the shared sidecar example');
  assert.ok(valid(schema, { apiVersion: 'bottled.dev/v1', kind: 'Bottle', metadata: { name: 'm' }, spec: { agent: { image: 'a' } } }));

  const broken = (change: (doc: Record<string, any>) => void) => {
    const copy = structuredClone(example);
    change(copy);
    return valid(schema, copy);
  };
  assert.equal(broken((d) => (d.spec.extra = 1)), false, 'unknown key in spec');
  assert.equal(broken((d) => (d.spec.sidecars[0].imgae = 'x')), false, 'unknown key in a sidecar');
  assert.equal(broken((d) => (d.kind = 'Pod')), false, 'unknown kind');
  assert.equal(broken((d) => (d.apiVersion = 'v2')), false, 'wrong apiVersion');
  assert.equal(broken((d) => (d.metadata.name = 'Upper')), false, 'bad name');
  assert.equal(broken((d) => (d.spec.sidecars[0].files[0].mode = 644)), false, 'mode as a number');
  assert.equal(broken((d) => (d.spec.sidecars[0].ports = [70000])), false, 'port out of range');
  assert.equal(broken((d) => (d.spec.agent.env.PORT = 8080)), false, 'env value as a number');
  assert.equal(broken((d) => (d.spec.backend = 'vm')), false, 'unknown backend');
  assert.equal(broken((d) => delete d.spec.agent), false, 'agent missing');
  assert.equal(broken((d) => (d.spec.sidecars[0].files[0].onChange = 'reload')), false, 'unknown onChange');
  assert.equal(broken((d) => (d.spec.sidecars[0].healthcheck.interval = '2 days')), false, 'bad duration');
  assert.equal(broken((d) => (d.spec.sidecars[0].files[0].onChange = { exec: ['nginx', '-s', 'reload'] })), true, 'exec onChange');
});
