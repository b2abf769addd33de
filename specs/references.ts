// Paths inside a document (`source:`, `agent.from`): relative to the spec file that holds
// them, and inside the spec root unless --allow-outside.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { AgentSpec, FileSpec } from './model.js';
import type { ParsedDocument } from './schema.js';
import { isInsideRoot, readRegularFile, type SpecSource } from './source.js';

type Resolved = { inside: string } | { outside: string } | { problem: string };

export interface ReferenceFailure {
  path: (string | number)[]; // of the `source`/`from` value in the document
  message: string;
}

export class ReferenceReader {
  /** One read per file per load, however many documents name it. */
  private readonly cache = new Map<string, Promise<Buffer>>();
  private realRoot: Promise<string> | undefined;

  constructor(
    private readonly source: SpecSource,
    private readonly opts: { allowOutside: boolean; rootDir: string | undefined },
  ) {}

  /**
   * Fills in the content of every `source:` file and `agent.fromPath` of a parsed document
   * (in place: the objects are fresh from the schema). Returns what could not be resolved.
   */
  async resolve(doc: ParsedDocument, specFile: string): Promise<ReferenceFailure[]> {
    const failures: ReferenceFailure[] = [];
    const jobs: Promise<void>[] = [];
    const readAll = (files: FileSpec[], at: (string | number)[]) =>
      files.forEach((file, index) => jobs.push(this.fill(file, specFile, [...at, index, 'source'], failures)));
    if (doc.kind === 'Bottle') {
      doc.spec.sidecars.forEach((sidecar, index) => readAll(sidecar.files, ['spec', 'sidecars', index, 'files']));
      readAll(doc.spec.agent.files, ['spec', 'agent', 'files']);
      jobs.push(this.locateFrom(doc.spec.agent, specFile, failures));
    } else {
      readAll(doc.spec.files, ['spec', 'files']);
    }
    await Promise.all(jobs);
    return failures;
  }

  private async fill(file: FileSpec, specFile: string, at: (string | number)[], failures: ReferenceFailure[]): Promise<void> {
    if (file.source === undefined) return;
    const resolved = await this.resolveChecked(file.source, specFile);
    if ('problem' in resolved) {
      failures.push({ path: at, message: resolved.problem });
      return;
    }
    try {
      file.content = await this.read(resolved);
    } catch (error) {
      failures.push({ path: at, message: readProblem(file.source, resolved, error as NodeJS.ErrnoException) });
    }
  }

  /** `agent.from` is not read here: a machine image can be large, and smolvm reads it itself. */
  private async locateFrom(agent: AgentSpec, specFile: string, failures: ReferenceFailure[]): Promise<void> {
    if (agent.from === undefined) return;
    const resolved = await this.resolveChecked(agent.from, specFile);
    if ('problem' in resolved) {
      failures.push({ path: ['spec', 'agent', 'from'], message: resolved.problem });
      return;
    }
    const absolute = 'outside' in resolved ? resolved.outside : this.absoluteInside(resolved.inside);
    if (absolute === undefined) return;
    const st = await fs.stat(absolute).catch(() => undefined);
    if (st && !st.isFile()) {
      failures.push({ path: ['spec', 'agent', 'from'], message: `${agent.from} is not a regular file (a machine file made by smolvm pack is one)` });
      return;
    }
    agent.fromPath = absolute;
  }

  /**
   * `resolvePath`, plus: a path inside the root must not reach outside through a symbolic
   * link either, or a repository could copy any host file (an SSH key) into a container.
   */
  private async resolveChecked(written: string, specFile: string): Promise<Resolved> {
    const resolved = this.resolvePath(written, specFile);
    if (!('inside' in resolved) || this.opts.allowOutside) return resolved;
    const target = await this.linkTargetOutside(resolved.inside);
    if (target === undefined) return resolved;
    return {
      problem: `${written} leads outside ${this.source.describe} through a symbolic link (to ${target}); paths must stay inside it (--allow-outside lifts this)`,
    };
  }

  private async linkTargetOutside(rel: string): Promise<string | undefined> {
    const rootDir = this.opts.rootDir;
    if (rootDir === undefined) return undefined; // not on disk: there are no links to follow
    this.realRoot ??= fs.realpath(rootDir).catch(() => rootDir);
    const root = await this.realRoot;
    let real: string;
    try {
      real = await fs.realpath(path.resolve(rootDir, rel));
    } catch {
      return undefined; // missing: reading it reports that
    }
    return real === root || real.startsWith(root + path.sep) ? undefined : real;
  }

  private resolvePath(written: string, specFile: string): Resolved {
    const { allowOutside, rootDir } = this.opts;
    const root = this.source.describe;
    if (path.posix.isAbsolute(written)) {
      if (allowOutside) return { outside: written };
      return { problem: `${written} is an absolute path; paths are relative to the spec file and stay inside ${root} (--allow-outside lifts this)` };
    }
    const rel = path.posix.normalize(path.posix.join(path.posix.dirname(specFile), written));
    if (isInsideRoot(rel)) return { inside: rel };
    if (!allowOutside) {
      return { problem: `${written} leads outside ${root} (to ${rel} relative to it); paths must stay inside it (--allow-outside lifts this)` };
    }
    if (rootDir === undefined) return { problem: `${written} leads outside ${root}, which has no directory on disk to resolve it against` };
    return { outside: path.resolve(rootDir, rel) };
  }

  private absoluteInside(rel: string): string | undefined {
    return this.opts.rootDir === undefined ? undefined : path.resolve(this.opts.rootDir, rel);
  }

  private read(resolved: { inside: string } | { outside: string }): Promise<Buffer> {
    const key = 'inside' in resolved ? `inside:${resolved.inside}` : `outside:${resolved.outside}`;
    let pending = this.cache.get(key);
    if (pending === undefined) {
      pending = 'inside' in resolved ? this.source.read(resolved.inside) : readRegularFile(resolved.outside, resolved.outside);
      pending.catch(() => undefined); // failures are reported by each reader, not as unhandled
      this.cache.set(key, pending);
    }
    return pending;
  }
}

function readProblem(written: string, resolved: { inside: string } | { outside: string }, error: NodeJS.ErrnoException): string {
  const where = 'inside' in resolved ? resolved.inside : resolved.outside;
  if (error.code === 'ENOENT') return `${written} not found (looked for ${where})`;
  if (error.code === 'EISDIR') return `${written} is a directory, not a file`;
  return `cannot read ${written}: ${error.message}`;
}
