import fs from 'node:fs/promises';
import path from 'node:path';
import type { StatePaths } from './paths.js';

export interface BottleEvent {
  time: string;
  unit: string;
  reconcileId: string;
  action: string; // create, start, signal, remove, ...
  resource?: string; // "container bottle-x-bundle"
  cause?: string;
  result: 'ok' | 'failed' | 'info';
  error?: string;
  revision?: string;
}

/** Append-only event log: one JSON line per change made or failed, with its cause. */
export class EventLog {
  constructor(private readonly paths: StatePaths) {}
  private ready = false;

  async append(ev: Omit<BottleEvent, 'time'>): Promise<void> {
    if (!this.ready) {
      await fs.mkdir(path.dirname(this.paths.events), { recursive: true });
      this.ready = true;
    }
    const line = JSON.stringify({ time: new Date().toISOString(), ...ev }) + '\n';
    await fs.appendFile(this.paths.events, line); // O_APPEND: concurrent lines do not interleave
  }

  /** The last `n` events of one unit (for `bottled status NAME`). */
  async tail(unit: string, n: number): Promise<BottleEvent[]> {
    let text: string;
    try {
      text = await fs.readFile(this.paths.events, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: BottleEvent[] = [];
    const lines = text.split('\n');
    for (let i = lines.length - 1; i >= 0 && out.length < n; i--) {
      const l = lines[i];
      if (!l) continue;
      try {
        const ev = JSON.parse(l) as BottleEvent;
        if (ev.unit === unit) out.push(ev);
      } catch {
        /* a torn last line after a crash: skip */
      }
    }
    return out.reverse();
  }
}
