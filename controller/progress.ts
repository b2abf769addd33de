import type { Logger } from 'pino';

/**
 * One line at the bottom of a terminal that log lines scroll above: used as pino's destination
 * while a progress line is shown, so each log line first clears it and then redraws it.
 */
export class TtyLine {
  private text = '';

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  /** pino destination. */
  write(chunk: string): boolean {
    if (!this.text) return this.out.write(chunk);
    this.out.write(`\r\x1b[K${chunk}`);
    return this.out.write(this.fit(this.text));
  }

  draw(text: string): void {
    this.text = text;
    this.out.write(`\r\x1b[K${this.fit(text)}`);
  }

  clear(): void {
    if (!this.text) return;
    this.text = '';
    this.out.write('\r\x1b[K');
  }

  private fit(text: string): string {
    const cols = this.out.columns || 120;
    return text.length < cols ? text : `${text.slice(0, cols - 2)}…`;
  }
}

/**
 * Progress of one pass over many bottles: done / total, what runs now, elapsed, ETA. On a
 * terminal it redraws one line; elsewhere (cron, systemd, watch mode) it logs a summary every
 * few seconds, and only while the pass lasts longer than that.
 */
export class PassProgress {
  private done = 0;
  private failed = 0;
  private readonly inflight = new Map<string, string>();
  private readonly started = Date.now();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly total: number,
    private readonly opts: { tty?: TtyLine; log: Logger; everyMs?: number },
  ) {}

  start(): void {
    const every = this.opts.tty ? 250 : (this.opts.everyMs ?? 5000);
    this.timer = setInterval(() => this.show(), every);
    this.timer.unref();
  }

  unitStarted(unit: string): void {
    this.inflight.set(unit, 'planning');
  }

  step(unit: string, what: string): void {
    this.inflight.set(unit, what);
  }

  unitDone(unit: string, ok: boolean): void {
    this.inflight.delete(unit);
    this.done++;
    if (!ok) this.failed++;
  }

  stop(): void {
    clearInterval(this.timer);
    this.opts.tty?.clear();
  }

  text(): string {
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = this.done > 0 && this.done < this.total ? ` · ETA ${clock((elapsed / this.done) * (this.total - this.done))}` : '';
    const now = [...this.inflight.values()].slice(0, 3).join(', ');
    return `bottled: ${this.done}/${this.total} bottles${this.failed ? ` (${this.failed} failed)` : ''} · ${this.inflight.size} in flight${now ? `: ${now}` : ''} · ${clock(elapsed)}${eta}`;
  }

  private show(): void {
    if (this.opts.tty) return this.opts.tty.draw(this.text());
    const elapsed = (Date.now() - this.started) / 1000;
    this.opts.log.info({ done: this.done, total: this.total, failed: this.failed, inflight: this.inflight.size, elapsedS: Math.round(elapsed) }, this.text().replace(/^bottled: /, 'progress: '));
  }
}

function clock(s: number): string {
  const t = Math.max(0, Math.round(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}
