// One spec file: YAML documents → validated documents or diagnostics.
import path from 'node:path';
import { LineCounter, isMap, isScalar, parseAllDocuments, visit, type Document, type YAMLError } from 'yaml';
import type { Diagnostic, Origin, SpecDoc } from './model.js';
import { didYouMean } from './did-you-mean.js';
import { formatPath, humanErrorMap, issuesToDiagnostics } from './diagnostics.js';
import { API_VERSION, KINDS } from './fields.js';
import type { ReferenceReader } from './references.js';
import { documentSchemas, type ParsedDocument } from './schema.js';
import { isInsideRoot, type SpecSource } from './source.js';
import { YamlLocator, type Position } from './yaml-positions.js';

export type Kind = SpecDoc['kind'];

/** Anchors may be expanded this often in one document before it counts as an alias bomb. */
const MAX_ALIAS_COUNT = 100;

/**
 * yaml's own duplicate-key check compares every key with every earlier key of its mapping
 * (20k keys: 4 s, 40k: 16 s); keys are checked here in one pass instead (`duplicateKeys`).
 */
const YAML_OPTIONS = { version: '1.2', schema: 'core', uniqueKeys: false, prettyErrors: true, strict: true } as const;

/** Spec files are configuration, not data: bounded so that one file cannot stall a pass. */
export const MAX_SPEC_BYTES = 512 * 1024;
/** YAML nodes per file (a bottle is a few hundred; parsing 20k takes 0.1-0.4 s): beyond this it is refused, located. */
export const MAX_SPEC_NODES = 20_000;

/** One non-empty YAML document, as far as it could be understood. */
export interface Entry {
  file: string;
  origin: Origin;
  kind?: Kind;
  name?: string;
  namePosition?: Position;
  parsed?: ParsedDocument; // set only when the document is valid on its own
  /** Where fields checked after loading are (`spec.agent.networks.0`, ...), when valid. */
  positions?: Record<string, Position>;
  diagnostics: Diagnostic[];
}

export interface FileOutcome {
  file: string;
  entries: Entry[];
  /** Why nothing from this file may be applied (syntax errors, unreadable, unnamed documents). */
  brokenBecause: Diagnostic[];
  /** Whether some document has a top-level apiVersion or kind: it is meant as a spec file. */
  declaresKind: boolean;
  /** Root-relative paths its documents name in `source:` (those may be YAML data, not specs). */
  namedSources: string[];
}

export async function loadFile(file: string, source: SpecSource, references: ReferenceReader): Promise<FileOutcome> {
  const outcome: FileOutcome = { file, entries: [], brokenBecause: [], declaresKind: false, namedSources: [] };
  let text: string;
  try {
    text = (await source.read(file, { maxBytes: MAX_SPEC_BYTES })).toString('utf8');
  } catch (error) {
    outcome.brokenBecause.push({ file, line: 1, col: 1, message: `cannot read this file: ${(error as Error).message}` });
    return outcome;
  }
  // Parsing is synchronous: let timers and other bottles' work run between files.
  await new Promise((resolve) => setImmediate(resolve));
  const lineCounter = new LineCounter();
  let nodes = 0;
  for (const doc of parseAllDocuments(text, { ...YAML_OPTIONS, lineCounter })) {
    const structure = structureProblems(doc, lineCounter, file, () => ++nodes);
    const syntaxProblems = [...doc.errors, ...doc.warnings];
    outcome.brokenBecause.push(...syntaxProblems.map((problem) => yamlDiagnostic(file, problem, text)), ...structure);
    if (structure.length) {
      outcome.entries.push(identify(file, new YamlLocator(doc, lineCounter, text), source.revision));
      if (nodes > MAX_SPEC_NODES) break;
      continue;
    }
    if (isEmptyDocument(doc)) continue;
    if (isMap(doc.contents) && (doc.contents.has('apiVersion') || doc.contents.has('kind'))) outcome.declaresKind = true;

    const locator = new YamlLocator(doc, lineCounter, text);
    const entry = identify(file, locator, source.revision);
    const data = toData(doc);
    if ('value' in data) outcome.namedSources.push(...namedSources(data.value, file));
    if (syntaxProblems.length === 0) await validate(entry, data, locator, references);
    outcome.entries.push(entry);
    // A document that cannot be named cannot be held by name; holding its whole file is what
    // keeps a bottle running while someone fixes a mangled kind or name.
    if (entry.kind === undefined || entry.name === undefined) outcome.brokenBecause.push(...entry.diagnostics);
  }
  return outcome;
}

/**
 * Duplicate keys (at the second key, in one pass over the document) and the node limit (at the
 * node that exceeds it). `count` counts nodes across the documents of the file.
 */
function structureProblems(doc: Document, lineCounter: LineCounter, file: string, count: () => number): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (offset: number | undefined) => lineCounter.linePos(offset ?? 0);
  visit(doc, {
    Node(_key, node) {
      if (count() > MAX_SPEC_NODES) {
        out.push({ file, ...at(node.range?.[0]), message: `more than ${MAX_SPEC_NODES} YAML nodes in this file: refusing to read further (split it into several files)` });
        return visit.BREAK;
      }
      if (!isMap(node)) return undefined;
      const seen = new Set<string>();
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (!seen.has(k)) {
          seen.add(k);
          continue;
        }
        const range = isScalar(pair.key) ? pair.key.range : undefined;
        out.push({ file, ...at(range?.[0]), message: `duplicate key ${k} (keys of a mapping must be unique)` });
      }
      return undefined;
    },
  });
  return out;
}

/** `---` with nothing after it, or a document that holds only comments. */
function isEmptyDocument(doc: Document): boolean {
  return doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null);
}

function toData(doc: Document): { value: unknown } | { error: Error } {
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (error) {
    return { error: error as Error };
  }
}

function yamlDiagnostic(file: string, problem: YAMLError, text: string): Diagnostic {
  const position = problem.linePos?.[0] ?? { line: 1, col: 1 };
  let message = problem.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? problem.code;
  if (problem.code === 'DUPLICATE_KEY') {
    const key = /^\s*("[^"\n]*"|'[^'\n]*'|[^:\n]+?)\s*:/.exec(text.slice(problem.pos[0]))?.[1];
    message = `duplicate key${key ? ` ${key}` : ''} (keys of a mapping must be unique)`;
  }
  return { file, ...position, message };
}

/** Kind and name as far as they can be read, even from a document that is otherwise wrong. */
function identify(file: string, locator: YamlLocator, revision: string | undefined): Entry {
  const origin: Origin = { file, ...locator.documentStart(), ...(revision !== undefined && { revision }) };
  const entry: Entry = { file, origin, diagnostics: [] };
  const kind = locator.scalarAt(['kind'])?.value;
  if (typeof kind === 'string' && (KINDS as readonly string[]).includes(kind)) entry.kind = kind as Kind;
  const name = locator.scalarAt(['metadata', 'name']);
  if (typeof name?.value === 'string' && name.value !== '') {
    entry.name = name.value;
    entry.namePosition = name.position;
  }
  return entry;
}

async function validate(
  entry: Entry,
  data: { value: unknown } | { error: Error },
  locator: YamlLocator,
  references: ReferenceReader,
): Promise<void> {
  const problem = (path: (string | number)[], message: string): void => {
    entry.diagnostics.push({ file: entry.file, ...locator.locate(path), message: path.length ? `${formatPath(path)}: ${message}` : message });
  };
  if ('error' in data) {
    return problem([], `too many alias expansions (${data.error.message}); refusing to expand this document`);
  }
  const value = data.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return problem([], `a spec document must be a mapping with apiVersion, kind, metadata and spec (got ${Array.isArray(value) ? 'a list' : typeof value})`);
  }
  const { kind, apiVersion } = value as Record<string, unknown>;
  if (kind === undefined) problem(['kind'], `is required: ${KINDS.join(' or ')}`);
  else if (entry.kind === undefined) {
    problem(['kind'], `${JSON.stringify(kind)} is not a kind of ${API_VERSION}${didYouMean(String(kind), KINDS)}; expected ${KINDS.join(' or ')}`);
  }
  if (apiVersion === undefined) problem(['apiVersion'], `is required: ${API_VERSION}`);
  else if (apiVersion !== API_VERSION) problem(['apiVersion'], `${JSON.stringify(apiVersion)} is not supported; expected ${API_VERSION}`);
  if (entry.kind === undefined || entry.diagnostics.length > 0) return;

  const parsed = documentSchemas[entry.kind].safeParse(value, { error: humanErrorMap });
  if (!parsed.success) {
    entry.diagnostics.push(...issuesToDiagnostics(parsed.error.issues, entry.file, locator));
    return;
  }
  const failures = await references.resolve(parsed.data, entry.file);
  for (const failure of failures) problem(failure.path, failure.message);
  if (failures.length > 0) return;
  entry.parsed = parsed.data;
  entry.positions = laterChecked(parsed.data, locator);
}

/** Where the fields are that are checked after loading (against other documents, the prefix, the engine). */
function laterChecked(doc: ParsedDocument, locator: YamlLocator): Record<string, Position> {
  const out: Record<string, Position> = { 'metadata.name': locator.locate(['metadata', 'name']) };
  if (doc.kind !== 'Bottle') return out;
  doc.spec.agent.networks.forEach((_n, i) => (out[`spec.agent.networks.${i}`] = locator.locate(['spec', 'agent', 'networks', i])));
  doc.spec.sidecars.forEach((_s, i) => (out[`spec.sidecars.${i}.name`] = locator.locate(['spec', 'sidecars', i, 'name'])));
  doc.spec.uses.forEach((_u, i) => (out[`spec.uses.${i}`] = locator.locate(['spec', 'uses', i])));
  return out;
}

/** `source:` values of a document, read from the raw data so that even an invalid document counts. */
function namedSources(data: unknown, specFile: string): string[] {
  const spec = field(data, 'spec');
  const fileLists = [field(spec, 'files'), field(field(spec, 'agent'), 'files')];
  const sidecars = field(spec, 'sidecars');
  if (Array.isArray(sidecars)) fileLists.push(...sidecars.map((sidecar) => field(sidecar, 'files')));
  const written = fileLists.flatMap((files) => (Array.isArray(files) ? files.map((file) => field(file, 'source')) : []));
  return written
    .filter((source): source is string => typeof source === 'string' && !path.posix.isAbsolute(source))
    .map((source) => path.posix.normalize(path.posix.join(path.posix.dirname(specFile), source)))
    .filter(isInsideRoot);
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}
