// zod issues → human diagnostics at file:line:col.
import type { z } from 'zod';
import type { Diagnostic } from './model.js';
import { didYouMean } from './did-you-mean.js';
import type { FieldPath, YamlLocator } from './yaml-positions.js';

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

/** `spec.sidecars[0].env.PORT`; keys that are not identifiers are quoted (`labels["a.b"]`). */
export function formatPath(path: FieldPath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(segment))) text += `${text ? '.' : ''}${String(segment)}`;
    else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}

const NOUNS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

function describeValue(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return `the string ${JSON.stringify(value)}`;
    case 'number':
      return `the number ${value}`;
    case 'boolean':
      return `${value}`;
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

/**
 * Default wording for zod's built-in checks. Messages the schema sets itself take precedence
 * (zod consults a per-parse error map only for issues without their own message).
 */
export const humanErrorMap = (issue: RawIssue): string | undefined => {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      const expected = NOUNS[issue.expected] ?? issue.expected;
      if (issue.input === null) return `has no value (expected ${expected})`;
      if (issue.expected === 'boolean' && typeof issue.input === 'string' && /^(yes|no|on|off|y|n)$/i.test(issue.input)) {
        return `expected true or false, got the string ${JSON.stringify(issue.input)} (YAML 1.2 reads ${issue.input} as a string)`;
      }
      if ((issue.expected === 'number' || issue.expected === 'int') && typeof issue.input === 'string' && /^[0-9]+(\.[0-9]+)?$/.test(issue.input)) {
        return `expected ${expected}, got the string ${JSON.stringify(issue.input)} (write it without quotes: ${issue.input})`;
      }
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'too_small':
      if (issue.origin === 'array') return `must have at least ${issue.minimum} item${issue.minimum === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return issue.minimum === 1 ? 'must not be empty' : `must be at least ${issue.minimum} characters`;
      return `must be ${issue.inclusive ? 'at least' : 'greater than'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${issue.maximum} items`;
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}`;
    case 'invalid_value': {
      const allowed = issue.values.map((v) => JSON.stringify(v)).join(', ');
      const hint = typeof issue.input === 'string' ? didYouMean(issue.input, issue.values.map(String)) : '';
      return issue.values.length === 1 ? `must be ${allowed}${hint}` : `must be one of ${allowed}${hint}`;
    }
    case 'invalid_format':
      return 'has an invalid format';
    case 'invalid_union':
      return 'does not match any of the allowed forms';
    case 'invalid_key':
      return 'is not a valid key here';
    default:
      return undefined;
  }
};

/** Codes that mean "this branch of a union is not the one the user wrote". */
function rejectsWholeValue(issue: Issue): boolean {
  return issue.path.length === 0 && ['invalid_type', 'invalid_value', 'unrecognized_keys'].includes(issue.code);
}

/**
 * The issues to show for an `invalid_union`: when exactly one branch accepted the value's
 * shape (its issues are all deeper or about constraints), that branch's issues are what the
 * user needs (`{signal: SIGFOO}` → "not a signal name", not "does not match any form").
 */
function expandUnion(issue: Extract<Issue, { code: 'invalid_union' }>): Issue[] {
  const plausible = issue.errors.filter((branch) => branch.length > 0 && !branch.some(rejectsWholeValue));
  if (plausible.length !== 1) return [issue];
  return (plausible[0] as Issue[]).map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }) as Issue);
}

function flatten(issues: readonly Issue[]): Issue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union') return [issue];
    const expanded = expandUnion(issue);
    return expanded.length === 1 && expanded[0] === issue ? [issue] : flatten(expanded);
  });
}

function diagnostic(file: string, position: { line: number; col: number }, path: FieldPath, message: string): Diagnostic {
  const prefix = formatPath(path);
  return { file, ...position, message: prefix ? `${prefix}: ${message}` : message };
}

/** Maps the issues of one document to diagnostics; unknown keys yield one per key. */
export function issuesToDiagnostics(issues: readonly Issue[], file: string, locator: YamlLocator): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of flatten(issues)) {
    if (issue.code === 'unrecognized_keys') {
      const messages = issue.message.split('\n');
      issue.keys.forEach((key, index) => {
        const path = [...issue.path, key];
        out.push(diagnostic(file, locator.locate(path, 'key'), path, messages[index] ?? messages[0] ?? 'unknown key'));
      });
      continue;
    }
    if (issue.code === 'invalid_key') {
      // A map key that fails its own rule (env names, label keys): point at the key.
      const message = issue.issues[0]?.message ?? issue.message;
      out.push(diagnostic(file, locator.locate(issue.path, 'key'), issue.path, message));
      continue;
    }
    const atKey = issue.code === 'custom' && issue.params?.['at'] === 'key';
    out.push(diagnostic(file, locator.locate(issue.path, atKey ? 'key' : 'value'), issue.path, withQuotingHint(issue, locator)));
  }
  return out;
}

/** `PORT: 8080` where a string is expected: show the quoted form, from the text as written. */
function withQuotingHint(issue: Issue, locator: YamlLocator): string {
  if (issue.code !== 'invalid_type' || issue.expected !== 'string' || /quote/i.test(issue.message)) return issue.message;
  const written = locator.plainScalarSource(issue.path);
  if (written === undefined || written === '' || /^(null|Null|NULL|~)$/.test(written)) return issue.message;
  return `${issue.message} (write it quoted: ${JSON.stringify(written)})`;
}
