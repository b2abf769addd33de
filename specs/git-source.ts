// Spec files straight from a committed git tree (`--git REPO --ref REF --subdir DIR`): read with
// the git binary (rev-parse, ls-tree, cat-file), never from a working tree, so an uncommitted
// edit is never applied. The ref is resolved once, when the source is opened: one pass reads one
// commit even if the ref moves meanwhile, and every document carries that commit as `revision`.
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import pLimit from 'p-limit';
import { isInsideRoot, MAX_SOURCE_BYTES, sizeText, type ReadOptions, type SpecSource } from './source.js';

export interface GitSourceOptions {
  /** Path to a repository: a work tree's top directory or a bare repository. */
  repo: string;
  /** Anything `git rev-parse` takes that names a commit; default `HEAD`. */
  ref?: string;
  /** Directory inside the tree that holds the spec files; default `bottles.d`. */
  subdir?: string;
}

/** One entry of the subdir's tree, by path relative to the subdir. */
interface TreeEntry {
  mode: string;
  type: string; // blob, commit (a submodule)
  oid: string;
  /** Bytes of a blob (`ls-tree -l`). */
  size?: number;
}

/** Links followed one after another before it counts as a loop. */
const MAX_LINK_HOPS = 8;
/** A spec tree with more links than this is refused (one pass must stay short). */
const MAX_LINKS = 1000;

/** Contents of blobs by oid, with one `git cat-file --batch`. */
async function catBlobs(repo: string, oids: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const unique = [...new Set(oids)];
  if (!unique.length) return out;
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of LOCAL_ENV_VARS) delete env[name];
  env.GIT_CEILING_DIRECTORIES = path.dirname(repo);
  env.GIT_OPTIONAL_LOCKS = '0';
  const buf = await new Promise<Buffer>((resolve, reject) => {
    const p = spawn('git', ['-C', repo, 'cat-file', '--batch'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => chunks.push(d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`git cat-file --batch exited ${code}`))));
    p.stdin.end(unique.join('\n') + '\n');
  });
  let at = 0;
  for (const oid of unique) {
    const nl = buf.indexOf(10, at);
    const header = buf.subarray(at, nl).toString('utf8').split(' ');
    if (header[1] !== 'blob') {
      at = nl + 1;
      continue;
    }
    const size = Number(header[2]);
    out.set(oid, buf.subarray(nl + 1, nl + 1 + size).toString('utf8'));
    at = nl + 1 + size + 1;
  }
  return out;
}

/** Blobs can be `source:` files of any size; ls-tree of a large tree is long as well. */
const MAX_OUTPUT = 1024 * 1024 * 1024;

/** At most this many git processes of one source read at once (the loader reads every file in parallel). */
const READ_CONCURRENCY = 8;

/**
 * The variables with which git would be pointed at another repository than the one asked for
 * (the list of `git rev-parse --local-env-vars`). They are set inside git hooks — a post-merge
 * hook that runs `bottled apply --git .` has GIT_DIR set — so they are dropped.
 */
const LOCAL_ENV_VARS = [
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_CONFIG',
  'GIT_CONFIG_PARAMETERS',
  'GIT_CONFIG_COUNT',
  'GIT_OBJECT_DIRECTORY',
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_IMPLICIT_WORK_TREE',
  'GIT_GRAFT_FILE',
  'GIT_INDEX_FILE',
  'GIT_NO_REPLACE_OBJECTS',
  'GIT_REPLACE_REF_BASE',
  'GIT_PREFIX',
  'GIT_INTERNAL_SUPER_PREFIX',
  'GIT_SHALLOW_FILE',
  'GIT_COMMON_DIR',
];

class GitFailure extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/**
 * Runs `git -C <repo> <args>`. Discovery stops at the repository's parent
 * (GIT_CEILING_DIRECTORIES), so a directory that is not itself a repository is reported as such
 * instead of silently reading whatever repository happens to contain it.
 */
/** The environment git runs with: nothing that points it at another repository, never a prompt. */
export function gitEnv(repo: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of LOCAL_ENV_VARS) delete env[name];
  env.GIT_CEILING_DIRECTORIES = path.dirname(repo);
  env.GIT_OPTIONAL_LOCKS = '0';
  env.GIT_TERMINAL_PROMPT = '0';
  env.LC_ALL = 'C';
  return { ...env, ...extra };
}

function git(repo: string, args: string[]): Promise<Buffer> {
  const env = gitEnv(repo);
  env.GIT_CEILING_DIRECTORIES = path.dirname(repo);
  env.GIT_OPTIONAL_LOCKS = '0'; // reading must never take the index lock of a live work tree
  env.GIT_TERMINAL_PROMPT = '0';
  env.LC_ALL = 'C'; // stderr is matched below
  return new Promise((resolve, reject) => {
    execFile('git', ['-C', repo, ...args], { env, encoding: 'buffer', maxBuffer: MAX_OUTPUT }, (error, stdout, stderr) => {
      if (error === null) return resolve(stdout);
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return reject(new Error('git: the git binary was not found on PATH'));
      const text = stderr.toString('utf8');
      reject(new GitFailure(`git ${args[0]} failed: ${mainLine(text) || error.message}`, text));
    });
  });
}

/** The line of git's stderr that says what went wrong: the first `fatal:`, else the first line. */
function mainLine(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const fatal = lines.find((line) => line.startsWith('fatal:')) ?? lines[0] ?? '';
  return fatal.replace(/^(fatal|error): /, '');
}

function stderrOf(error: unknown): string {
  return error instanceof GitFailure ? error.stderr : '';
}

/** Is `repo` a repository git can open? Rejects with the clear message when it is not. */
async function checkRepository(repo: string): Promise<void> {
  try {
    await git(repo, ['rev-parse', '--absolute-git-dir']);
  } catch (error) {
    const stderr = stderrOf(error);
    if (stderr === '') throw error; // no git binary
    if (/not a git repository/i.test(stderr)) throw new Error(`git: ${repo} is not a git repository`);
    if (/cannot change to/i.test(stderr)) throw new Error(`git: ${repo} is not a git repository (no such directory)`);
    throw new Error(`git: cannot open ${repo} as a repository: ${mainLine(stderr)}`);
  }
}

/**
 * Full SHA of the commit that `ref` names in `repo` now (a tag is peeled to its commit). One git
 * process when the ref resolves, so watch mode can call it on every change of `gitRefPaths`.
 */
export async function resolveRef(repo: string, ref = 'HEAD'): Promise<string> {
  const absRepo = path.resolve(repo);
  try {
    return (await git(absRepo, ['rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`])).toString('utf8').trim();
  } catch (error) {
    if (stderrOf(error) === '') throw error;
    throw await explainUnresolved(absRepo, ref, error);
  }
}

/** Why did `<ref>^{commit}` not resolve: no repository, no such ref, not a commit, or damage? */
async function explainUnresolved(repo: string, ref: string, original: unknown): Promise<Error> {
  await checkRepository(repo);
  let oid: string;
  try {
    oid = (await git(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', ref])).toString('utf8').trim();
  } catch {
    return new Error(`git: ref "${ref}" does not resolve in ${repo}`);
  }
  let type: string;
  try {
    type = (await git(repo, ['cat-file', '-t', oid])).toString('utf8').trim();
  } catch (error) {
    // rev-parse's own complaint says more ("loose object … is corrupt") unless it is the generic one.
    const telling = /Needed a single revision/.test(stderrOf(original)) ? error : original;
    return damaged(repo, `ref "${ref}" points to ${short(oid)}, which cannot be read`, telling);
  }
  if (type !== 'commit' && type !== 'tag') return new Error(`git: ref "${ref}" names a ${type}, not a commit, in ${repo}`);
  return damaged(repo, `ref "${ref}" (${short(oid)}) cannot be read as a commit`, original);
}

function damaged(repo: string, what: string, error: unknown): Error {
  const detail = mainLine(stderrOf(error));
  return new Error(`git: ${what} in ${repo} (is the repository damaged?)${detail ? `: ${detail}` : ''}`);
}

function short(oid: string): string {
  return oid.slice(0, 12);
}

/**
 * Files whose change means a ref of `repo` may have moved, for watch mode to watch: the git
 * dir's `HEAD` (per work tree), and `packed-refs` and `refs/` of the common dir (shared by linked
 * work trees). Git replaces these by rename, so watch the paths, not the open files; a change
 * is only a hint — compare `resolveRef` with the last revision before doing anything.
 */
export async function gitRefPaths(repo: string): Promise<string[]> {
  const absRepo = path.resolve(repo);
  await checkRepository(absRepo);
  const out = (await git(absRepo, ['rev-parse', '--path-format=absolute', '--git-dir', '--git-common-dir'])).toString('utf8');
  const [gitDir, commonDir] = out.split('\n').map((line) => line.trim());
  if (!gitDir || !commonDir) throw new Error(`git: cannot find the git directory of ${absRepo}`);
  return [...new Set([path.join(gitDir, 'HEAD'), path.join(commonDir, 'packed-refs'), path.join(commonDir, 'refs')])];
}

/** Same skip rules as DirSource (source.ts does not export them): dotfiles and dot-directories, editor backups. */
function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('~') || name.endsWith('.swp');
}

function isSpecPath(rel: string): boolean {
  const parts = rel.split('/');
  const name = parts[parts.length - 1] ?? '';
  return !parts.some(isIgnoredName) && (name.endsWith('.yaml') || name.endsWith('.yml'));
}

/** `./a/b/` → `a/b`; `.` and `` → `` (the whole tree). Rejects what is not a path inside the tree. */
function normalizeSubdir(subdir: string): string {
  const normalized = path.posix.normalize(subdir === '' ? '.' : subdir).replace(/\/+$/, '');
  if (normalized === '.' || normalized === '') return '';
  if (!isInsideRoot(normalized)) throw new Error(`git: subdir "${subdir}" must be a relative path inside the repository`);
  return normalized;
}

function notFound(message: string): Error {
  return Object.assign(new Error(message), { code: 'ENOENT' });
}

export class GitSource implements SpecSource {
  readonly describe: string;
  readonly rootDir = undefined; // a commit has no directory on disk
  private tree: Promise<Map<string, TreeEntry>> | undefined;
  private readonly limit = pLimit(READ_CONCURRENCY);

  private constructor(
    readonly repo: string,
    readonly ref: string,
    readonly subdir: string,
    /** Full SHA of the commit every read of this source comes from. */
    readonly revision: string,
  ) {
    this.describe = `git:${repo}@${ref}:${subdir === '' ? '.' : subdir}`;
  }

  /**
   * Resolves `ref` to a commit once; `list` and `read` then only ever see that commit. Rejects
   * when `repo` is not a repository or `ref` does not name a readable commit; a missing subdir
   * is found by `list`.
   */
  static async open({ repo, ref = 'HEAD', subdir = 'bottles.d' }: GitSourceOptions): Promise<GitSource> {
    const absRepo = path.resolve(repo);
    const dir = normalizeSubdir(subdir);
    const revision = await resolveRef(absRepo, ref);
    return new GitSource(absRepo, ref, dir, revision);
  }

  /**
   * Spec files under the subdir, recursively, sorted. Rejects when the subdir is missing at the
   * commit or the tree cannot be read; an existing subdir without spec files lists as empty.
   * A symbolic link in the tree (mode 120000) is not followed — there is no checkout to follow it
   * in, and a link could name any host file — so it is no spec file; submodules are skipped too.
   */
  async list(): Promise<string[]> {
    const tree = await this.entries();
    const found = new Set<string>();
    this.unreadable = new Map();
    this.aliases = new Map();
    const links: string[] = [];
    for (const [rel, entry] of tree) {
      if (rel.split('/').some(isIgnoredName)) continue;
      if (entry.type === 'blob' && entry.mode !== '120000' && isSpecPath(rel)) found.add(rel);
      else if (entry.mode === '120000') links.push(rel);
      // A submodule where specs could be: what came from there is held, never pruned.
      else if (entry.type === 'commit') this.unreadable.set(rel, `${rel} is a submodule in ${this.describe}: bottled reads no submodules`);
    }
    if (links.length > MAX_LINKS) throw new Error(`git: ${this.describe} holds ${links.length} symbolic links, more than the ${MAX_LINKS} bottled follows`);
    // Every link's target, read in one git process.
    this.targets = await catBlobs(this.repo, links.map((rel) => tree.get(rel)!.oid));
    // Symbolic links are followed inside the subdir's tree (there is no checkout to follow them
    // in, and nothing outside the tree is read); one that dangles, loops or leaves it is listed
    // as unreadable, so what came from it is held, never pruned.
    for (const rel of links) {
      const target = await this.follow(rel, tree);
      if ('problem' in target) {
        this.unreadable.set(rel, target.problem);
        continue;
      }
      if (target.file !== undefined) {
        if (isSpecPath(rel)) {
          found.add(rel);
          this.aliases.set(rel, target.file);
        }
        continue;
      }
      const prefix = target.dir === '' ? '' : `${target.dir}/`;
      if (rel === target.dir || rel.startsWith(prefix)) {
        this.unreadable.set(rel, `${rel} is a symbolic link loop (to ${target.dir}, which contains it)`);
        continue;
      }
      // Like a directory on disk, one in the tree is read once, under its own path (unless that
      // path is one that is never read, such as a dot-directory).
      if (target.dir !== undefined && !target.dir.split('/').some(isIgnoredName)) {
        this.unreadable.set(rel, `${rel} leads to ${target.dir || 'the subdir itself'}, which is already read: a directory is read once (remove one of the two ways to it)`);
        continue;
      }
      for (const [inner, e] of tree) {
        if (!inner.startsWith(prefix) || e.type !== 'blob' || e.mode === '120000') continue;
        const virtual = `${rel}/${inner.slice(prefix.length)}`;
        if (!isSpecPath(virtual)) continue;
        found.add(virtual);
        this.aliases.set(virtual, inner);
      }
    }
    return [...found, ...this.unreadable.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  private unreadable = new Map<string, string>();
  /** Blob oid of each link -> the path it names. */
  private targets = new Map<string, string>();
  /** Paths listed through a link -> the path of the blob in the tree. */
  private aliases = new Map<string, string>();

  /** Where a link of the tree leads: a blob, a directory of the tree, or why it cannot be followed. */
  private async follow(rel: string, tree: Map<string, TreeEntry>): Promise<{ file?: string; dir?: string } | { problem: string }> {
    let at = rel;
    for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
      const entry = tree.get(at)!;
      const text = this.targets.get(entry.oid) ?? (await this.limit(() => git(this.repo, ['cat-file', 'blob', entry.oid]))).toString('utf8');
      const next = path.posix.normalize(path.posix.join(path.posix.dirname(at), text));
      if (path.posix.isAbsolute(text) || !isInsideRoot(next)) {
        return { problem: `${rel} is a symbolic link that leads outside ${this.describe} (to ${text}); links must stay inside it` };
      }
      const e = tree.get(next);
      if (e?.mode === '120000') {
        at = next;
        continue;
      }
      if (e?.type === 'blob') return { file: next };
      if (e === undefined && [...tree.keys()].some((k) => k.startsWith(`${next === '.' ? '' : next}/`) || next === '.')) return { dir: next === '.' ? '' : next };
      return { problem: `${rel} is a symbolic link to ${text}, which does not exist at ${short(this.revision)}` };
    }
    return { problem: `${rel} is a symbolic link loop` };
  }

  /** Bytes of a blob of the commit, by path relative to the subdir (spec files and `source:` files). */
  async read(rel: string, opts: ReadOptions = {}): Promise<Buffer> {
    if (!isInsideRoot(rel)) throw new Error(`${rel}: path is outside ${this.describe}`);
    const why = this.unreadable.get(rel);
    if (why) throw new Error(why);
    let normalized = path.posix.normalize(rel);
    const tree = await this.entries();
    normalized = this.aliases.get(normalized) ?? normalized;
    if (tree.get(normalized)?.mode === '120000') {
      const target = await this.follow(normalized, tree);
      if ('problem' in target) throw new Error(target.problem);
      if (target.file === undefined) throw Object.assign(new Error(`${rel} is a directory in ${this.describe}`), { code: 'EISDIR' });
      normalized = target.file;
    }
    const entry = tree.get(normalized);
    if (entry === undefined) {
      const prefix = `${normalized}/`;
      if ([...tree.keys()].some((key) => key.startsWith(prefix))) {
        throw Object.assign(new Error(`${rel} is a directory in ${this.describe}`), { code: 'EISDIR' });
      }
      throw notFound(`${rel} does not exist at ${short(this.revision)} in ${this.describe}`);
    }
    if (entry.type !== 'blob') throw new Error(`${rel} is a submodule in ${this.describe}, not a file`);
    const max = opts.maxBytes ?? MAX_SOURCE_BYTES;
    if (entry.size !== undefined && entry.size > max) throw new Error(`${rel} is ${entry.size} bytes, more than the ${sizeText(max)} bottled reads`);
    try {
      return await this.limit(() => git(this.repo, ['cat-file', 'blob', entry.oid]));
    } catch (error) {
      if (stderrOf(error) === '') throw error;
      throw damaged(this.repo, `${rel} (blob ${short(entry.oid)} at ${short(this.revision)}) cannot be read`, error);
    }
  }

  /** The subdir's tree, listed once per source (a failure is not kept, so a retry runs git again). */
  private entries(): Promise<Map<string, TreeEntry>> {
    if (this.tree === undefined) {
      this.tree = this.readTree();
      this.tree.catch(() => {
        this.tree = undefined;
      });
    }
    return this.tree;
  }

  private async readTree(): Promise<Map<string, TreeEntry>> {
    const where = `at ${short(this.revision)} in ${this.repo}`;
    let treeish = this.revision;
    if (this.subdir !== '') {
      // The subdir's own entry, looked up literally (no pathspec magic in a directory name). No
      // output means no such path; a failure here means a tree on the way cannot be read.
      let out: string;
      try {
        out = (await git(this.repo, ['--literal-pathspecs', 'ls-tree', '-z', '--full-tree', this.revision, '--', this.subdir])).toString('utf8');
      } catch (error) {
        if (stderrOf(error) === '') throw error;
        throw damaged(this.repo, `the tree of ${short(this.revision)} cannot be read`, error);
      }
      const own = parseLsTree(out).get(this.subdir);
      if (own === undefined) throw new Error(`git: ${this.subdir} does not exist ${where}`);
      if (own.type !== 'tree') {
        const what = own.mode === '120000' ? 'a symbolic link' : own.type === 'commit' ? 'a submodule' : 'a file';
        throw new Error(`git: ${this.subdir} is ${what}, not a directory, ${where}`);
      }
      treeish = own.oid;
    }
    let out: string;
    try {
      out = (await git(this.repo, ['ls-tree', '-r', '-z', '-l', treeish])).toString('utf8');
    } catch (error) {
      if (stderrOf(error) === '') throw error;
      throw damaged(this.repo, `the tree of ${this.subdir === '' ? 'the commit' : this.subdir} at ${short(this.revision)} cannot be read`, error);
    }
    return parseLsTree(out);
  }
}

/** `<mode> SP <type> SP <oid> TAB <path>` records, NUL-terminated (-z: paths are not quoted). */
function parseLsTree(out: string): Map<string, TreeEntry> {
  const entries = new Map<string, TreeEntry>();
  for (const record of out.split('\0')) {
    if (record === '') continue;
    const tab = record.indexOf('\t');
    const [mode, type, oid, size] = record.slice(0, tab).split(/ +/);
    if (tab < 0 || mode === undefined || type === undefined || oid === undefined) continue;
    const bytes = size !== undefined && /^\d+$/.test(size) ? Number(size) : undefined;
    entries.set(record.slice(tab + 1), { mode, type, oid, ...(bytes !== undefined && { size: bytes }) });
  }
  return entries;
}
