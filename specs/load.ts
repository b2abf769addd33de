// Reads every spec file of a source into validated documents, with file:line:col diagnostics
// for everything that is wrong, and says what must be held (never pruned) because of it.
import type { BottleDoc, Diagnostic, LoadResult, Origin, SharedSidecarDoc } from './model.js';
import { loadFile, MAX_SPEC_BYTES, type Entry, type FileOutcome, type Kind } from './load-file.js';
import { ReferenceReader } from './references.js';
import { SpecCache } from './spec-cache.js';
import { checkAcrossDocuments } from './cross-checks.js';
import type { ParsedDocument } from './schema.js';
import type { SpecSource } from './source.js';

export interface LoadOptions {
  /** `--allow-outside`: `source:`/`from:` may be absolute or climb out of the root. */
  allowOutside?: boolean;
  /** Directory that escaping paths and `agent.from` are resolved against; default `source.rootDir`. */
  rootDir?: string;
  /** Validated files by content, to skip parsing what did not change. */
  cache?: SpecCache;
  /** `--prefix`: what the resource names of the documents start with (they must not meet). */
  prefix?: string;
}

/** Key of a document in `held`: `Bottle/<name>` or `SharedSidecar/<name>`. */
export function docKey(kind: Kind, name: string): string {
  return `${kind}/${name}`;
}

/**
 * Never throws for a problem in the files themselves (those become diagnostics); it rejects
 * only when the source cannot be listed, in which case nothing may be pruned either.
 */
export async function loadSpecs(source: SpecSource, opts: LoadOptions = {}): Promise<LoadResult> {
  const candidates = await source.list();
  const references = new ReferenceReader(source, {
    allowOutside: opts.allowOutside ?? false,
    rootDir: opts.rootDir ?? source.rootDir,
  });
  const load = async (file: string): Promise<FileOutcome> => {
    const cache = opts.cache;
    if (!cache) return loadFile(file, source, references);
    let key: string;
    try {
      key = SpecCache.key(file, source.revision, await source.read(file, { maxBytes: MAX_SPEC_BYTES }));
    } catch {
      return loadFile(file, source, references); // reports the read error
    }
    const hit = cache.get(key);
    if (hit) return hit;
    const outcome = await loadFile(file, source, references);
    cache.set(key, outcome);
    return outcome;
  };
  const outcomes = withoutDataFiles(await Promise.all(candidates.map(load)));
  const entries = outcomes.flatMap((outcome) => outcome.entries);
  markDuplicates(entries);
  checkAcrossDocuments(entries, opts.prefix ?? 'bottle');

  const result: LoadResult = {
    bottles: new Map(),
    shared: new Map(),
    diagnostics: [],
    held: new Map(),
    brokenFiles: new Set(),
    // Files that hold only comments or empty documents do not count: a source whose files were
    // all truncated to nothing must look empty, so that it prunes nothing without --allow-empty.
    fileCount: outcomes.filter((outcome) => outcome.entries.length > 0 || outcome.brokenBecause.length > 0).length,
    describe: source.describe,
    ...(source.revision !== undefined && { revision: source.revision }),
  };
  result.emptyFiles = new Set(outcomes.filter((o) => o.entries.length === 0 && o.brokenBecause.length === 0).map((o) => o.file));
  const brokenBecause = new Map<string, Diagnostic[]>();
  for (const outcome of outcomes) {
    if (outcome.brokenBecause.length === 0) continue;
    result.brokenFiles.add(outcome.file);
    brokenBecause.set(outcome.file, outcome.brokenBecause);
  }

  // An unnamed document's diagnostics are also its file's reasons for being broken: report once.
  const reported = new Set<Diagnostic>();
  const report = (diagnostic: Diagnostic) => {
    if (!reported.has(diagnostic)) result.diagnostics.push(diagnostic);
    reported.add(diagnostic);
  };
  for (const outcome of outcomes) outcome.brokenBecause.forEach(report);
  for (const entry of entries) {
    entry.diagnostics.forEach(report);
    if (entry.kind === undefined || entry.name === undefined) continue;
    const fileReasons = brokenBecause.get(entry.file) ?? [];
    if (entry.parsed && entry.diagnostics.length === 0 && fileReasons.length === 0) {
      addValid(result, entry.parsed, entry.origin);
      if (entry.positions) (result.positions ??= new Map()).set(docKey(entry.kind, entry.name), entry.positions);
      continue;
    }
    const key = docKey(entry.kind, entry.name);
    const reasons = new Set([...(result.held.get(key) ?? []), ...entry.diagnostics, ...fileReasons]);
    result.held.set(key, sortDiagnostics([...reasons]));
  }
  result.diagnostics = sortDiagnostics(result.diagnostics);
  return result;
}

/**
 * A `*.yaml` file that a document names in `source:` and that declares no apiVersion/kind is
 * data for a container (the spec page's own example keeps `routes/implementer.yaml` next to
 * the specs), not a spec file: it is neither reported nor counted.
 */
function withoutDataFiles(outcomes: FileOutcome[]): FileOutcome[] {
  const named = new Set(outcomes.flatMap((outcome) => outcome.namedSources));
  return outcomes.filter((outcome) => outcome.declaresKind || !named.has(outcome.file));
}

function addValid(result: LoadResult, parsed: ParsedDocument, origin: Origin): void {
  if (parsed.kind === 'Bottle') {
    const doc: BottleDoc = { ...parsed, origin };
    result.bottles.set(parsed.metadata.name, doc);
  } else {
    const doc: SharedSidecarDoc = { ...parsed, origin };
    result.shared.set(parsed.metadata.name, doc);
  }
}

/**
 * Was the file a unit came from unreadable this time? A broken entry may be a directory (a
 * symbolic link to one that dangles or loops), which covers every file under it.
 */
export function isBrokenSource(load: Pick<LoadResult, 'brokenFiles'>, file: string): boolean {
  if (load.brokenFiles.has(file)) return true;
  for (const b of load.brokenFiles) if (file.startsWith(b + '/')) return true;
  return false;
}

export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort(
    (a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.col - b.col,
  );
}

/** Two documents of one kind and name are both invalid; each names where the other is. */
function markDuplicates(entries: Entry[]): void {
  const byKey = new Map<string, Entry[]>();
  for (const entry of entries) {
    if (entry.kind === undefined || entry.name === undefined) continue;
    const key = docKey(entry.kind, entry.name);
    byKey.set(key, [...(byKey.get(key) ?? []), entry]);
  }
  const place = (entry: Entry) => entry.namePosition ?? entry.origin;
  for (const group of byKey.values()) {
    if (group.length < 2) continue;
    for (const entry of group) {
      const all = group.filter((other) => other !== entry).map((other) => `${other.file}:${place(other).line}:${place(other).col}`);
      // A few places say it; thousands would only bury the message.
      const others = all.length > 3 ? `${all.slice(0, 3).join(', ')} and ${all.length - 3} more` : all.join(', ');
      entry.diagnostics.push({
        file: entry.file,
        line: place(entry).line,
        col: place(entry).col,
        message: `metadata.name: duplicate ${entry.kind} "${entry.name}": also declared at ${others}`,
      });
    }
  }
}
