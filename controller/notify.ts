// Notifications: an HTTP POST per transition of a bottle's Ready condition (not Ready, with its
// reason; recovered), never per retry or resync: transitions come from the status bottled
// persists, so a restarted daemon does not say again what it said. Sending never blocks a
// pass: each message is queued, retried a few times with backoff, and given up on.
import type { Logger } from 'pino';
import type { LoadResult } from '../specs/model.js';
import { readJson, writeJsonAtomic } from '../state/fsutil.js';
import type { StatePaths } from '../state/paths.js';
import { UsageError } from './flags.js';
import { passNotices, type NotifyState } from './notify-pass.js';
import type { Plan } from './plan-types.js';
import type { Notification } from './notification.js';

export type { Notification } from './notification.js';

export type NotifyFormat = 'json' | 'slack';

/** The body for a receiver: generic JSON, or Slack's (and Mattermost's, Discord's /slack) `{text}`. */
export function notificationBody(n: Notification, format: NotifyFormat): string {
  if (format === 'slack') {
    const what = n.kind === 'shared' ? `SharedSidecar ${n.bottle}` : `bottle ${n.bottle}`;
    const held = n.bottles?.length ? ` (holds ${n.bottles.slice(0, 10).join(', ')}${n.bottles.length > 10 ? ', …' : ''})` : '';
    const text =
      n.event === 'recovered' ? `:white_check_mark: ${what} is Ready again (${n.message})`
      : n.event === 'not-ready' ? `:warning: ${what} is not Ready: ${n.reason}: ${n.message}`
      : n.event === 'held' ? `:no_entry: pass held: ${n.reason}: ${n.message}${held}`
      : n.event === 'released' ? `:white_check_mark: no longer held: ${n.message}`
      : `:rocket: ${n.message}`;
    // Slack reads <…> as links and mentions (`<!channel>`): text from spec files must not be.
    const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    return JSON.stringify({ text: esc(n.revision ? `${text} (revision ${n.revision.slice(0, 12)})` : text) });
  }
  return JSON.stringify({ source: 'bottled', ...n });
}

/** Ready before and after a pass -> the notification it calls for, if any. */
export function transitionOf(prev: string | undefined, next: { status: string; reason: string; message: string } | undefined): Notification['event'] | undefined {
  if (!next) return undefined;
  if (next.status === 'False' && prev !== 'False') return 'not-ready';
  if (next.status === 'True' && prev === 'False') return 'recovered';
  return undefined;
}

export class Notifier {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly urls: string[],
    private readonly format: NotifyFormat,
    private readonly log: Logger,
    private readonly opts = { attempts: 4, timeoutMs: 5_000, backoffMs: 1_000 },
  ) {}

  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  /** Queue one message to every receiver; returns at once. */
  send = (n: Notification): void => {
    const body = notificationBody(n, this.format);
    for (const url of this.urls) {
      const p = this.post(url, body, n).finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  };

  private async post(url: string, body: string, n: Notification): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        // A redirect is not followed: the body goes where it was told to, nowhere else.
        const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, redirect: 'manual', signal: AbortSignal.timeout(this.opts.timeoutMs) });
        if (r.ok) return;
        throw new Error(`HTTP ${r.status}`);
      } catch (e) {
        // The URL may hold a token (Slack's do): only its origin is logged.
        // An error's text may quote the URL: only its kind is logged.
        if (attempt >= this.opts.attempts) return void this.log.warn({ receiver: new URL(url).origin, bottle: n.bottle, err: { message: (e as Error).name === 'TimeoutError' ? 'timed out' : /^HTTP \d+$/.test((e as Error).message) ? (e as Error).message : (e as Error).name } }, 'notification not delivered');
        await new Promise((r) => setTimeout(r, this.opts.backoffMs * 2 ** (attempt - 1)));
      }
    }
  }

  /** Wait for what is in flight, at most `ms` (a --once run sends its messages before it exits). */
  async drain(ms: number): Promise<void> {
    if (!this.pending.size) return;
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => setTimeout(r, ms).unref())]);
    if (this.pending.size) this.log.warn({ messages: this.pending.size }, 'notifications not delivered: still being retried when bottled exited');
  }
}

/** `--notify URL` (repeatable) and `--notify-format json|slack`: a Notifier, or none. */
export function notifierOf(f: { notify?: string[]; notifyFormat?: string }, log: Logger): Notifier | undefined {
  const urls = [...(f.notify ?? []), ...(process.env.BOTTLED_NOTIFY ? process.env.BOTTLED_NOTIFY.split(/\s+/).filter(Boolean) : [])];
  if (!urls.length) return undefined;
  const format = f.notifyFormat ?? 'json';
  if (format !== 'json' && format !== 'slack') throw new UsageError(`--notify-format ${format}: json or slack`);
  for (const u of urls) {
    let proto = '';
    try {
      proto = new URL(u).protocol;
    } catch {
      /* not a URL */
    }
    if (proto !== 'http:' && proto !== 'https:') throw new UsageError('--notify: an http:// or https:// URL');
    const parsed = new URL(u);
    if (parsed.username || parsed.password) throw new UsageError('--notify: a URL with a user or password is refused (it would be logged and cannot be fetched); put a token in the path or query');
  }
  return new Notifier(urls, format, log);
}

// Passes of one reconciler may run side by side (watch mode): what was said is read and
// written by one of them at a time.
let said = Promise.resolve();

/** Send what a pass says as a whole (held, released, applied), once each; see notify-pass.ts. */
export function notifyPass(paths: StatePaths, plan: Plan, load: LoadResult, send: (n: Notification) => void, planned: (unit: string) => boolean, seenAt: number): Promise<void> {
  const step = said.then(async () => {
    const file = paths.notifyState;
    const prev = (await readJson<NotifyState>(file)) ?? { holds: {} };
    // A pass that read the specs before one already said: its view is older (an earlier
    // revision, a file since fixed) and says nothing.
    if (prev.seenAt !== undefined && seenAt < prev.seenAt) return;
    const { notices, next } = passNotices(plan, load, { holds: prev.holds ?? {}, revision: prev.revision, last: prev.last }, new Date().toISOString(), planned);
    for (const n of notices) send(n);
    if (notices.length || JSON.stringify(next.holds) !== JSON.stringify(prev.holds ?? {})) await writeJsonAtomic(file, { ...next, seenAt });
  });
  said = step.catch(() => {});
  return step;
}
