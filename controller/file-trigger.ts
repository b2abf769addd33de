import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

/**
 * Watches the bottles directory (or a git repository's refs). Every event only means "something changed": after a quiet
 * period the caller re-reads the whole directory, which absorbs editor rename-saves, chokidar's
 * delayed unlinks and a `git checkout` rewriting many files as one burst.
 */
export class FileTrigger {
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly paths: string[],
    private readonly onChange: () => void,
    private readonly quietMs = 300,
  ) {}

  async start(): Promise<void> {
    const roots = this.paths.map((p) => path.resolve(p));
    this.watcher = watch(roots, {
      ignoreInitial: true,
      // Below a watched root, dotfiles and dot-directories are never specs (editor temp files, .git).
      ignored: (p: string) => {
        const root = roots.find((r) => p === r || p.startsWith(r + path.sep));
        return !!root && path.relative(root, p).split(path.sep).some((seg) => seg.startsWith('.'));
      },
    });
    this.watcher.on('all', () => this.poke());
    this.watcher.on('error', () => this.poke());
    await new Promise<void>((r) => this.watcher!.once('ready', () => r()));
  }

  private poke(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onChange, this.quietMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.watcher?.close();
  }
}
