import fs from 'node:fs/promises';
import os from 'node:os';
import lockfile from 'proper-lockfile';
import type { StatePaths } from './paths.js';

export class LockHeldError extends Error {
  constructor(readonly owner?: LockOwner) {
    super(
      `another reconciler holds the lock on this state directory` +
        (owner ? ` (pid ${owner.pid} on ${owner.host}, ${owner.op} since ${owner.since})` : ''),
    );
  }
}

interface LockOwner {
  pid: number;
  host: string;
  op: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One reconciler per state directory. proper-lockfile's mkdir lock is refreshed by mtime, so a
 * crashed holder goes stale on its own (after `staleMs`); on top of that, a lock whose recorded
 * owner process is dead on this host is broken at once, so a SIGKILLed pass never makes the
 * next one wait.
 */
export async function acquireLock(
  paths: StatePaths,
  opts: { op: string; timeoutMs: number; staleMs?: number; onCompromised?: (err: Error) => void },
): Promise<() => Promise<void>> {
  await fs.mkdir(paths.root, { recursive: true });
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 100;
  for (;;) {
    try {
      const release = await lockfile.lock(paths.root, {
        lockfilePath: paths.lock,
        stale: opts.staleMs ?? 10_000,
        update: 1_000,
        retries: 0,
        realpath: false,
        onCompromised: opts.onCompromised ?? ((err) => { throw err; }),
      });
      const owner: LockOwner = { pid: process.pid, host: os.hostname(), op: opts.op, since: new Date().toISOString() };
      await fs.writeFile(paths.lockOwner, JSON.stringify(owner) + '\n');
      return async () => {
        await fs.rm(paths.lockOwner, { force: true }).catch(() => {});
        await release().catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const owner = await readOwner(paths);
      if (owner && owner.host === os.hostname() && owner.pid !== process.pid && !alive(owner.pid) && (await lockAgeMs(paths)) > BREAK_AFTER_MS) {
        // The holder died without releasing: its lock is ours to break. A live holder refreshes
        // the lock's mtime every second, so an older lock is the dead owner's and not a fresh
        // one of another contender (whose owner file may not be written yet). The rename makes
        // the break atomic: of two contenders, one renames, the other finds nothing to break.
        const grave = `${paths.lock}.broken.${process.pid}.${Date.now()}`;
        try {
          await fs.rename(paths.lock, grave);
          await fs.rm(grave, { recursive: true, force: true });
        } catch {
          /* someone else broke it first */
        }
        continue;
      }
      if (Date.now() >= deadline) throw new LockHeldError(owner);
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 2_000);
    }
  }
}

/** A live holder refreshes the lock every second (proper-lockfile `update`). */
const BREAK_AFTER_MS = 2_500;

async function lockAgeMs(paths: StatePaths): Promise<number> {
  try {
    return Date.now() - (await fs.stat(paths.lock)).mtimeMs;
  } catch {
    return 0;
  }
}

async function readOwner(paths: StatePaths): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await fs.readFile(paths.lockOwner, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}
