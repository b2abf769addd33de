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
        update: 2_000,
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
      if (owner && owner.host === os.hostname() && owner.pid !== process.pid && !alive(owner.pid)) {
        // The holder died without releasing: its lock is ours to break.
        await fs.rm(paths.lock, { recursive: true, force: true });
        await fs.rm(paths.lockOwner, { force: true });
        continue;
      }
      if (Date.now() >= deadline) throw new LockHeldError(owner);
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 2_000);
    }
  }
}

async function readOwner(paths: StatePaths): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await fs.readFile(paths.lockOwner, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}
