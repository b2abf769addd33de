import fs from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { parseDuration } from './duration.js';

/** A flag with a value a reconciler cannot work with: one clear line, exit 1, nothing touched. */
export class UsageError extends Error {}

export interface DurationFlags {
  lockTimeout: string;
  waitTimeout: string;
  /** Watch-mode flags: absent on the commands that do not take them. */
  resync?: string;
  smolvmPoll?: string;
  shutdownTimeout?: string;
  gitInterval?: string;
}

const DURATIONS: Record<keyof DurationFlags, { flag: string; minMs: number; why?: string }> = {
  lockTimeout: { flag: '--lock-timeout', minMs: 0 },
  waitTimeout: { flag: '--wait-timeout', minMs: 1 },
  // A resync or poll every few milliseconds is a busy loop against the engine.
  resync: { flag: '--resync', minMs: 1000, why: 'at least 1s (it is a full pass over every bottle)' },
  smolvmPoll: { flag: '--smolvm-poll', minMs: 1000, why: 'at least 1s' },
  shutdownTimeout: { flag: '--shutdown-timeout', minMs: 0 },
  gitInterval: { flag: '--git-interval', minMs: 1000, why: 'at least 1s' },
};

/** Every duration flag given, parsed and bounded, in milliseconds. */
export function durations(f: DurationFlags): Record<keyof DurationFlags, number> {
  const out = {} as Record<keyof DurationFlags, number>;
  for (const [key, d] of Object.entries(DURATIONS) as [keyof DurationFlags, (typeof DURATIONS)[keyof DurationFlags]][]) {
    const text = f[key];
    if (text === undefined) continue;
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch (e) {
      throw new UsageError(`${d.flag}: ${(e as Error).message}`);
    }
    if (ms < d.minMs) throw new UsageError(`${d.flag} ${text}: must be ${d.why ?? (d.minMs === 0 ? '0 or more' : 'greater than 0')}`);
    if (ms > 2 ** 31 - 1) throw new UsageError(`${d.flag} ${text}: must be at most 24 days`);
    out[key] = ms;
  }
  return out;
}

export function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} ${text}: a whole number from ${min} to ${max}`);
  }
  return n;
}

export function ipv4(flag: string, text: string): string {
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) throw new UsageError(`${flag} ${text}: an IPv4 address, e.g. 127.0.0.1`);
  const range = ipaddr.IPv4.parse(text).range();
  if (range === 'multicast' || range === 'broadcast' || range === 'reserved') throw new UsageError(`${flag} ${text}: a ${range} address cannot be listened on`);
  return text;
}

/** The path with every symbolic link resolved, as far as it exists (the rest appended). */
export function realish(p: string): string {
  const abs = path.resolve(p);
  const tail: string[] = [];
  for (let at = abs; ; at = path.dirname(at)) {
    try {
      return path.join(fs.realpathSync(at), ...tail.reverse());
    } catch {
      if (path.dirname(at) === at) return abs;
      tail.push(path.basename(at));
    }
  }
}
