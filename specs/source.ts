// Where spec files come from. The loader sees only this interface, so a git revision can be
// a source as well as a directory.
import fs from 'node:fs/promises';
import path from 'node:path';

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
  /** Relative POSIX paths of the candidate spec files, sorted. A missing root lists as empty. */
  list(): Promise<string[]>;
  /**
   * Bytes of a file by relative POSIX path: spec files and `source:` files (any extension).
   * A file that does not exist rejects with an error whose `code` is 'ENOENT'.
   */
  read(rel: string): Promise<Buffer>;
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

export class DirSource implements SpecSource {
  readonly describe: string;
  readonly rootDir: string;

  constructor(dir: string) {
    this.describe = dir;
    this.rootDir = path.resolve(dir);
  }

  async list(): Promise<string[]> {
    const found: string[] = [];
    await this.walk('', found);
    return found.sort();
  }

  /**
   * Recursive walk. Symlinks to files are followed; symlinks to directories are not, so a
   * link cycle cannot make the walk endless.
   */
  private async walk(relDir: string, found: string[]): Promise<void> {
    let entries;
    try {
      entries = await fs.readdir(path.join(this.rootDir, relDir), { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (relDir === '' && code === 'ENOENT') return; // no directory: an empty source
      throw error;
    }
    for (const entry of entries) {
      if (isIgnoredName(entry.name)) continue;
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      if (entry.isDirectory()) await this.walk(rel, found);
      else if (isSpecFileName(entry.name) && (entry.isFile() || (entry.isSymbolicLink() && (await this.isFile(rel))))) {
        found.push(rel);
      }
    }
  }

  private async isFile(rel: string): Promise<boolean> {
    try {
      return (await fs.stat(path.join(this.rootDir, rel))).isFile();
    } catch {
      return false; // a dangling link is no spec file
    }
  }

  async read(rel: string): Promise<Buffer> {
    if (!isInsideRoot(rel)) throw new Error(`${rel}: path is outside ${this.describe}`);
    return fs.readFile(path.join(this.rootDir, ...rel.split('/')));
  }
}
