import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

/**
 * Watches the bottles directory. Every event only means "something changed": after a quiet
 * period the caller re-reads the whole directory, which absorbs editor rename-saves, chokidar's
 * delayed unlinks and a `git checkout` rewriting many files as one burst.
 */
export class FileTrigger {
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly dir: string,
    private readonly onChange: () => void,
    private readonly quietMs = 300,
  ) {}

  async start(): Promise<void> {
    const root = path.resolve(this.dir);
    this.watcher = watch(root, {
      ignoreInitial: true,
      // Dotfiles and dot-directories are never specs (editor temp files, .git).
      ignored: (p: string) => path.relative(root, p).split(path.sep).some((seg) => seg.startsWith('.')),
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
