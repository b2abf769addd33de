// Where spec files come from. The loader sees only this interface, so a git revision can be
// a source as well as a directory.
import fs from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import path from 'node:path';

export interface ReadOptions {
  /** Refuse files larger than this (bytes). Default: MAX_SOURCE_BYTES. */
  maxBytes?: number;
}

/** Bounds of a listing: a tree of links must not make a pass endless. */
const MAX_ENTRIES = 20_000;
const MAX_DEPTH = 32;

/** `source:` files are container files, not parsed: larger, still bounded. */
export const MAX_SOURCE_BYTES = 16 * 1024 * 1024;

export interface SpecSource {
  /** What is read, for messages: a directory path or `git:<repo>@<ref>:<subdir>`. */
  describe: string;
  /** Git commit when the source is a revision. */
  revision?: string;
  /**
   * Absolute directory on disk that relative paths are under, when there is one: `agent.from`
   * is resolved against it (and, with allowOutside, escaping `source:` paths).
   */
  rootDir?: string;
  /**
   * Relative POSIX paths of the candidate spec files, sorted. A missing root lists as empty.
   * A candidate that cannot be read (a dangling or looping link, a FIFO) is listed too: reading
   * it says why, so whatever came from it is held instead of pruned. Such a path may be a
   * directory (a link to one), which then stands for every file under it.
   */
  list(): Promise<string[]>;
  /**
   * Bytes of a regular file by relative POSIX path: spec files and `source:` files (any
   * extension). A file that does not exist rejects with an error whose `code` is 'ENOENT'.
   */
  read(rel: string, opts?: ReadOptions): Promise<Buffer>;
}

/** Is this name one the spec page says to skip (dotfiles, editor backups)? */
function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('~') || name.endsWith('.swp');
}

function isSpecFileName(name: string): boolean {
  return !isIgnoredName(name) && (name.endsWith('.yaml') || name.endsWith('.yml'));
}

/** Rejects paths that are absolute or climb out of the root (the loader checks first; this is the backstop). */
export function isInsideRoot(rel: string): boolean {
  const normalized = path.posix.normalize(rel);
  return !path.posix.isAbsolute(normalized) && normalized !== '..' && !normalized.startsWith('../');
}

/**
 * Read a file only if it is a regular file of at most `maxBytes`: a FIFO would block the read
 * forever, a device or a huge file would never end. Opened non-blocking, checked with fstat on
 * the opened descriptor (no race between the check and the read).
 */
export async function readRegularFile(file: string, label: string, maxBytes = MAX_SOURCE_BYTES): Promise<Buffer> {
  const fh = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error(`${label} is a directory, not a file`), { code: 'EISDIR' });
    if (!st.isFile()) throw new Error(`${label} is not a regular file (it is ${kindOf(st)}): refusing to read it`);
    if (st.size > maxBytes) throw new Error(`${label} is ${st.size} bytes, more than the ${sizeText(maxBytes)} bottled reads`);
    const buf = await fh.readFile();
    if (buf.length > maxBytes) throw new Error(`${label} grew past ${sizeText(maxBytes)} while it was read`);
    return buf;
  } finally {
    await fh.close();
  }
}

function kindOf(st: import('node:fs').Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
}

export function sizeText(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

export class DirSource implements SpecSource {
  readonly describe: string;
  readonly rootDir: string;
  /** Listed candidates that cannot be read, and why (refreshed by every list()). */
  private unreadable = new Map<string, string>();

  constructor(
    dir: string,
    /** `--allow-outside`: links may lead out of the directory as well. */
    private readonly allowOutside = false,
  ) {
    this.describe = dir;
    this.rootDir = path.resolve(dir);
  }

  async list(): Promise<string[]> {
    const found: string[] = [];
    this.unreadable = new Map();
    let realRoot: string;
    try {
      realRoot = await fs.realpath(this.rootDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []; // no directory: an empty source
      throw error;
    }
    this.visited = new Map([[realRoot, '.']]);
    this.entries = 0;
    this.links = [];
    await this.walk('', realRoot, realRoot, new Set([realRoot]), found);
    // Links after every real directory: a directory is read under its own path, and a link to
    // it is the second way there.
    for (let l; (l = this.links.shift()); ) await this.followLink(l.rel, l.full, l.name, realRoot, l.ancestors, found);
    return [...found, ...this.unreadable.keys()].sort();
  }

  private links: { rel: string; full: string; name: string; ancestors: Set<string> }[] = [];

  /** Real directories already walked, with the path they were first read as. */
  private visited = new Map<string, string>();
  private entries = 0;

  /**
   * Recursive walk. Symbolic links are followed, to files and to directories, when they stay
   * inside the directory (or anywhere with --allow-outside); one that dangles, loops or leads
   * outside is listed as unreadable, so the bottles it held are held, never pruned.
   */
  private async walk(relDir: string, realDir: string, realRoot: string, ancestors: Set<string>, found: string[]): Promise<void> {
    if (ancestors.size > MAX_DEPTH) throw new Error(`${this.describe}: more than ${MAX_DEPTH} directories deep at ${relDir}`);
    const entries = await fs.readdir(realDir, { withFileTypes: true });
    for (const entry of entries) {
      if (isIgnoredName(entry.name)) continue;
      // Bounded: a tree of links can make a listing without end (or exponential).
      if (++this.entries > MAX_ENTRIES) throw new Error(`${this.describe}: more than ${MAX_ENTRIES} entries to look at; nothing is changed until it holds fewer`);
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      const full = path.join(realDir, entry.name);
      if (entry.isSymbolicLink()) {
        this.links.push({ rel, full, name: entry.name, ancestors });
      } else if (entry.isDirectory()) {
        await this.enter(rel, full, realRoot, ancestors, found);
      } else if (isSpecFileName(entry.name)) {
        if (entry.isFile()) found.push(rel);
        else this.unreadable.set(rel, `${rel} is not a regular file: refusing to read it`);
      }
    }
  }

  private async followLink(rel: string, full: string, name: string, realRoot: string, ancestors: Set<string>, found: string[]): Promise<void> {
    const specName = isSpecFileName(name);
    let target: string;
    try {
      target = await fs.realpath(full);
    } catch (error) {
      // Whatever it was (a spec file, a directory of them, `team.d`), what came from it is held.
      const code = (error as NodeJS.ErrnoException).code;
      const to = await fs.readlink(full).catch(() => '?');
      this.unreadable.set(rel, code === 'ELOOP' ? `${rel} is a symbolic link loop` : `${rel} is a symbolic link to ${to}, which does not exist`);
      return;
    }
    const st = await fs.stat(target).catch(() => undefined);
    const isDir = !!st?.isDirectory();
    if (!isDir && !specName) return; // not a candidate (a `source:` link is checked where it is named)
    const inside = target === realRoot || target.startsWith(realRoot + path.sep);
    if (!inside && !this.allowOutside) {
      this.unreadable.set(rel, `${rel} is a symbolic link that leads outside ${this.describe} (to ${target}); links must stay inside it (--allow-outside lifts this)`);
      return;
    }
    if (isDir) {
      if (ancestors.has(target)) {
        this.unreadable.set(rel, `${rel} is a symbolic link loop (to ${target}, which contains it)`);
        return;
      }
      await this.enter(rel, target, realRoot, ancestors, found);
    } else if (st?.isFile()) {
      found.push(rel);
    } else {
      this.unreadable.set(rel, `${rel} leads to something that is not a regular file: refusing to read it`);
    }
  }

  /** Each real directory is read once: a second way to it (a link) would only repeat its documents. */
  private async enter(rel: string, real: string, realRoot: string, ancestors: Set<string>, found: string[]): Promise<void> {
    const first = this.visited.get(real);
    if (first !== undefined) {
      this.unreadable.set(rel, `${rel} leads to ${first === '.' ? 'the bottles directory itself' : first}, which is already read: a directory is read once (remove one of the two ways to it)`);
      return;
    }
    this.visited.set(real, rel);
    await this.walk(rel, real, realRoot, new Set([...ancestors, real]), found);
  }

  async read(rel: string, opts: ReadOptions = {}): Promise<Buffer> {
    if (!isInsideRoot(rel)) throw new Error(`${rel}: path is outside ${this.describe}`);
    const why = this.unreadable.get(rel);
    if (why) throw new Error(why);
    return readRegularFile(path.join(this.rootDir, ...rel.split('/')), rel, opts.maxBytes);
  }
}
