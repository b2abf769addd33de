import fs from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

/**
 * Watches the bottles directory (or a git repository's refs). Every event only means "something changed": after a quiet
 * period the caller re-reads the whole directory, which absorbs editor rename-saves, chokidar's
 * delayed unlinks and a `git checkout` rewriting many files as one burst.
 */
export class FileTrigger {
  private watcher?: FSWatcher;
  private parentWatcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private check?: NodeJS.Timeout;
  private inodes = new Map<string, number | undefined>();
  private rearming?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly paths: string[],
    private readonly onChange: () => void,
    private readonly quietMs = 300,
    /**
     * Follow each path across replacement: a directory that is removed and made again
     * (`rm -rf bottles.d && git clone … bottles.d`) is a new inode, which a watch on the old one
     * never sees again. Its parent is watched for the path coming and going, its inode is
     * checked every few seconds as well, and the watch is made anew on the new directory.
     */
    private readonly followReplacement = false,
  ) {}

  private get roots(): string[] {
    return this.paths.map((p) => path.resolve(p));
  }

  async start(): Promise<void> {
    await this.arm();
    if (!this.followReplacement) return;
    const roots = this.roots;
    const parents = [...new Set(roots.map((r) => path.dirname(r)))];
    this.parentWatcher = watch(parents, { ignoreInitial: true, depth: 0, ignored: (p: string) => !parents.includes(p) && !roots.includes(p) });
    this.parentWatcher.on('all', () => void this.rearmIfReplaced());
    this.parentWatcher.on('error', () => void this.rearmIfReplaced());
    await new Promise<void>((r) => this.parentWatcher!.once('ready', () => r()));
    this.check = setInterval(() => void this.rearmIfReplaced(), 2000);
    this.check.unref();
  }

  private async arm(): Promise<void> {
    const roots = this.roots;
    for (const r of roots) this.inodes.set(r, inodeOf(r));
    const watcher = watch(roots, {
      ignoreInitial: true,
      // Below a watched root, dotfiles and dot-directories are never specs (editor temp files, .git).
      ignored: (p: string) => {
        const root = roots.find((r) => p === r || p.startsWith(r + path.sep));
        return !!root && path.relative(root, p).split(path.sep).some((seg) => seg.startsWith('.'));
      },
    });
    watcher.on('all', () => this.poke());
    watcher.on('error', () => this.poke());
    await new Promise<void>((r) => watcher.once('ready', () => r()));
    this.watcher = watcher;
  }

  /** A root that is gone or is another inode now: watch it anew, and treat it as a change. */
  private async rearmIfReplaced(): Promise<void> {
    if (this.stopped || this.rearming) return this.rearming;
    const replaced = this.roots.some((r) => inodeOf(r) !== this.inodes.get(r));
    if (!replaced) return;
    this.rearming = (async () => {
      await this.watcher?.close();
      if (!this.stopped) await this.arm();
      this.poke();
    })().finally(() => (this.rearming = undefined));
    return this.rearming;
  }

  private poke(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onChange, this.quietMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.check);
    await this.rearming;
    await Promise.all([this.watcher?.close(), this.parentWatcher?.close()]);
  }
}

function inodeOf(p: string): number | undefined {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined;
  }
}
