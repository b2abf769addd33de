import assert from 'node:assert/strict';
import type { Action } from '../../controller/plan-types.js';

/** The `key` payload of an action, asserting the action has one (actions are a discriminated union). */
export function field<K extends string>(a: Action | undefined, key: K): Extract<Action, { [P in K]: unknown }>[K] {
  assert.ok(a && key in a, `action ${a ? `${a.kind} ${a.resource.name}` : '(none)'} has no ${key}`);
  return (a as unknown as Record<K, Extract<Action, { [P in K]: unknown }>[K]>)[key];
}
