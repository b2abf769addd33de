import type { Logger } from 'pino';
import { gitRefPaths } from '../specs/git-source.js';
import { FileTrigger } from './file-trigger.js';
import type { GitTracker, Refresh } from './git-tracker.js';

/**
 * Watch mode's half of a git source: when to look again. A repository on this machine is looked
 * at when its refs change on disk; a remote every `interval` (±10%), sooner when a webhook says
 * so, and after a failed fetch with backoff (5 s doubling up to the interval). A burst of pokes
 * is one refresh. A failure is logged once per outage; a refused revision once.
 */
export class SourceFollower {
  private timer?: NodeJS.Timeout;
  private files?: FileTrigger;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private failures = 0;
  private refusedLogged?: string;

  constructor(
    private readonly tracker: GitTracker,
    private readonly onChanged: () => Promise<void>,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  /** Look once; with nothing applied yet, keep looking (with backoff) until there is something. */
  async first(): Promise<void> {
    for (;;) {
      await this.refresh(false);
      if (this.tracker.applied || this.stopped) return;
      await new Promise((r) => setTimeout(r, this.backoff()).unref());
    }
  }

  async start(): Promise<void> {
    if (this.tracker.remote) this.schedule(this.interval());
    else {
      this.files = new FileTrigger(await gitRefPaths(this.tracker.repo), () => this.poke());
      await this.files.start();
    }
  }

  /** Look again now (a webhook, a resync); coalesced with a refresh in flight. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.refresh(true).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.files?.stop();
    await this.running;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.poke(), ms);
    this.timer.unref();
  }

  private interval(): number {
    return this.intervalMs * (0.9 + Math.random() * 0.2);
  }

  private backoff(): number {
    return Math.min(5000 * 2 ** Math.max(0, this.failures - 1), this.intervalMs);
  }

  private async refresh(apply: boolean): Promise<void> {
    let r: Refresh;
    try {
      r = await this.tracker.refresh();
    } catch (e) {
      r = { changed: false, error: (e as Error).message };
    }
    if (r.error) {
      this.failures++;
      if (this.failures === 1) this.log.error({ source: this.tracker.describe, err: { message: r.error } }, 'cannot fetch the git source: everything keeps running as applied; retrying with backoff');
      else this.log.debug({ attempts: this.failures, err: { message: r.error } }, 'git fetch failed again');
    } else {
      if (this.failures) this.log.info({ source: this.tracker.describe, failedAttempts: this.failures }, 'the git source answers again');
      this.failures = 0;
    }
    if (r.refused && this.refusedLogged !== r.refused.revision) {
      this.refusedLogged = r.refused.revision;
      this.log.error({ revision: r.refused.revision, problem: r.refused.problem, applied: r.applied }, `revision ${r.refused.revision.slice(0, 12)} is not applied: ${r.refused.problem}`);
    }
    if (r.forced) this.log.warn({ from: r.forced.from, to: r.forced.to }, 'the ref was rewritten (forced push): applying the new history');
    if (r.changed && apply) {
      this.log.info({ revision: r.applied }, 'new revision');
      await this.onChanged();
    }
    if (this.tracker.remote) this.schedule(r.error ? this.backoff() : this.interval());
  }
}
