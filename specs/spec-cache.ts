import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FileOutcome } from './load-file.js';

/**
 * Validated spec files by content: parsing and validating YAML is most of a no-op pass, and
 * almost every file is the same as last time. An entry is keyed by the file's path, revision
 * and exact bytes, and only files whose result depends on nothing else are kept (no `source:`,
 * no `from:`, no problem of any kind), so a hit is the result a fresh parse would give.
 */
export class SpecCache {
  private readonly used = new Set<string>();
  private dirty = false;

  private constructor(
    private readonly file: string | undefined,
    private readonly entries: Map<string, string>,
  ) {}

  /** A cache kept in `file` (missing or unreadable: empty), or in memory only without one. */
  static async open(file?: string): Promise<SpecCache> {
    const entries = new Map<string, string>();
    if (file) {
      try {
        const raw = JSON.parse(await fs.readFile(file, 'utf8')) as { version: number; entries: Record<string, string> };
        if (raw.version === 1) for (const [k, v] of Object.entries(raw.entries)) entries.set(k, v);
      } catch {
        /* no cache yet, or a torn one: start empty */
      }
    }
    return new SpecCache(file, entries);
  }

  static key(file: string, revision: string | undefined, bytes: Buffer): string {
    return crypto.createHash('sha256').update(file).update('\0').update(revision ?? '').update('\0').update(bytes).digest('hex');
  }

  static cacheable(o: FileOutcome): boolean {
    return (
      o.declaresKind &&
      o.brokenBecause.length === 0 &&
      o.namedSources.length === 0 &&
      o.entries.length > 0 &&
      o.entries.every((e) => e.parsed && e.diagnostics.length === 0 && !(e.parsed.kind === 'Bottle' && e.parsed.spec.agent.from))
    );
  }

  get(key: string): FileOutcome | undefined {
    const text = this.entries.get(key);
    if (text === undefined) return undefined;
    this.used.add(key);
    return JSON.parse(text, (_k, v) => (v && typeof v === 'object' && typeof v.__b64 === 'string' ? Buffer.from(v.__b64, 'base64') : v)) as FileOutcome;
  }

  set(key: string, outcome: FileOutcome): void {
    if (!SpecCache.cacheable(outcome)) return;
    this.used.add(key);
    this.entries.set(
      key,
      JSON.stringify(outcome, (_k, v) => (v && v.type === 'Buffer' && Array.isArray(v.data) ? { __b64: Buffer.from(v.data).toString('base64') } : v)),
    );
    this.dirty = true;
  }

  /** Keep what the last load used; write only when something changed. */
  async save(): Promise<void> {
    for (const k of [...this.entries.keys()]) {
      if (!this.used.has(k)) {
        this.entries.delete(k);
        this.dirty = true;
      }
    }
    this.used.clear();
    if (!this.dirty || !this.file) return;
    this.dirty = false;
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify({ version: 1, entries: Object.fromEntries(this.entries) }));
    await fs.rename(tmp, this.file);
  }
}
