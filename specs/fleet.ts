// `validate --fleet FILE`: every bottle of a repository shared by several hosts should be served
// by exactly one of them. A label typo must not leave a bottle nowhere, or in two places.
import fs from 'node:fs/promises';
import type { Diagnostic, LoadResult, SpecDoc } from './model.js';
import { matches, parseSelector, SelectorError, type Selector } from './selector.js';

export interface FleetEntry {
  selector: Selector;
  line: number;
}

/** The selectors of a fleet file: one a line; blank lines and `#` comments are skipped. */
export async function readFleet(file: string): Promise<FleetEntry[]> {
  const text = await fs.readFile(file, 'utf8');
  const out: FleetEntry[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    try {
      const selector = parseSelector(line);
      const same = out.find((o) => o.selector.text === selector.text);
      if (same) throw new SelectorError(`${file}:${i + 1}: repeats line ${same.line} (${selector.text})`);
      out.push({ selector, line: i + 1 });
    } catch (e) {
      if (e instanceof SelectorError && e.message.startsWith(`${file}:`)) throw e;
      if (e instanceof SelectorError) throw new SelectorError(`${file}:${i + 1}: ${e.message.replace(/^--selector: /, '')}`);
      throw e;
    }
  }
  if (!out.length) throw new SelectorError(`${file}: lists no selector`);
  return out;
}

/** A diagnostic for each valid document that no selector, or more than one, of the fleet matches. */
export function fleetDiagnostics(load: LoadResult, fleet: FleetEntry[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const check = (kind: string, doc: SpecDoc) => {
    const hits = fleet.filter((e) => matches(e.selector, doc.metadata.labels));
    // A SharedSidecar runs on every host that runs a bottle using it: only "nowhere" is a problem.
    if (kind === 'SharedSidecar') {
      const users = [...load.bottles.values()].filter((b) => b.spec.uses.includes(doc.metadata.name));
      if (hits.length || fleet.some((e) => users.some((b) => matches(e.selector, b.metadata.labels)))) return;
    }
    const where = load.positions?.get(`${kind}/${doc.metadata.name}`)?.['metadata.labels'] ?? doc.origin;
    const labels = Object.entries(doc.metadata.labels).map(([k, v]) => `${k}=${v}`).join(',') || 'none';
    if (hits.length === 0) {
      out.push({ file: doc.origin.file, line: where.line, col: where.col, message: `${kind} ${doc.metadata.name} (labels: ${labels}) matches no selector of the fleet: no host would run it` });
    } else if (hits.length > 1) {
      out.push({ file: doc.origin.file, line: where.line, col: where.col, message: `${kind} ${doc.metadata.name} (labels: ${labels}) matches ${hits.length} selectors of the fleet (${hits.map((h) => h.selector.text).join('; ')}): it would run on each of those hosts` });
    }
  };
  for (const d of load.bottles.values()) check('Bottle', d);
  for (const d of load.shared.values()) check('SharedSidecar', d);
  return out;
}
