// `--selector`: which bottles of a shared repository this reconciler serves, by their
// `metadata.labels`, in kubectl's equality-based syntax: `host=a`, `host==a`, `tier!=gpu`,
// comma-separated, all of which must hold.
import type { LoadResult } from './model.js';

const KEY = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
// kubectl's label value: empty, or alphanumerics at both ends with - _ . between, at most 63.
const VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export interface Requirement {
  key: string;
  op: '=' | '!=';
  value: string;
}

export interface Selector {
  /** As given, normalised (`a=b,c!=d`), for messages and status. */
  text: string;
  requirements: Requirement[];
}

export class SelectorError extends Error {}

export function parseSelector(text: string): Selector {
  const requirements: Requirement[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new SelectorError(`--selector: "${part}" is not KEY=VALUE or KEY!=VALUE`);
    const [, key, op, value] = m as unknown as [string, string, string, string];
    if (!KEY.test(key)) throw new SelectorError(`--selector: "${key}" is not a label key (letters, digits, "_", "." and "-", at most 63 characters)`);
    if (!VALUE.test(value)) throw new SelectorError(`--selector: "${value}" is not a label value for ${key}: at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit (kubectl's rule)`);
    requirements.push({ key, op: op === '!=' ? '!=' : '=', value });
  }
  if (!requirements.length) throw new SelectorError('--selector: empty');
  return { text: requirements.map((r) => `${r.key}${r.op}${r.value}`).join(','), requirements };
}

/** Does a document with these labels belong to this reconciler? (A missing label is != anything.) */
export function matches(s: Selector | undefined, labels: Record<string, string>): boolean {
  if (!s) return true;
  return s.requirements.every((r) => (r.op === '=' ? labels[r.key] === r.value : labels[r.key] !== r.value));
}

/**
 * The documents this reconciler serves: the others are for other hosts and look undeclared here
 * (a bottle that no longer matches is removed here, under the usual guards). Invalid documents
 * stay held whatever their labels: what they declare cannot be trusted to say where they go.
 */
export function selectDocuments(load: LoadResult, s: Selector | undefined): LoadResult {
  if (!s) return load;
  const bottles = new Map([...load.bottles].filter(([, d]) => matches(s, d.metadata.labels)));
  // A SharedSidecar runs wherever a bottle that uses it runs (and where its own labels match).
  const used = new Set([...bottles.values()].flatMap((d) => d.spec.uses));
  const shared = new Map([...load.shared].filter(([name, d]) => used.has(name) || matches(s, d.metadata.labels)));
  const elsewhere = new Set([
    ...[...load.bottles.keys()].filter((n) => !bottles.has(n)).map((n) => `Bottle/${n}`),
    ...[...load.shared.keys()].filter((n) => !shared.has(n)).map((n) => `SharedSidecar/${n}`),
  ]);
  return { ...load, bottles, shared, selector: s.text, elsewhere };
}
