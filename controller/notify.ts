// Notifications: an HTTP POST per transition of a bottle's Ready condition (not Ready, with its
// reason; recovered), never per retry or resync: transitions come from the status bottled
// persists, so a restarted daemon does not say again what it said. Sending never blocks a
// pass: each message is queued, retried a few times with backoff, and given up on.
import type { Logger } from 'pino';
import { UsageError } from './flags.js';

export interface Notification {
  event: 'not-ready' | 'recovered';
  bottle: string;
  kind: 'bottle' | 'shared';
  reason: string;
  message: string;
  revision?: string;
  time: string;
}

export type NotifyFormat = 'json' | 'slack';

/** The body for a receiver: generic JSON, or Slack's (and Mattermost's, Discord's /slack) `{text}`. */
export function notificationBody(n: Notification, format: NotifyFormat): string {
  if (format === 'slack') {
    const what = n.kind === 'shared' ? `SharedSidecar ${n.bottle}` : `bottle ${n.bottle}`;
    const text = n.event === 'recovered' ? `:white_check_mark: ${what} is Ready again (${n.message})` : `:warning: ${what} is not Ready: ${n.reason}: ${n.message}`;
    return JSON.stringify({ text: n.revision ? `${text} (revision ${n.revision.slice(0, 12)})` : text });
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
