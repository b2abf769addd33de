import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import lockfile from 'proper-lockfile';
import type { StatePaths } from './paths.js';

export class LockHeldError extends Error {
  constructor(readonly owner?: LockOwner, detail = '') {
    super(
      `another reconciler holds the lock on this state directory` +
        (owner ? ` (pid ${owner.pid} on ${owner.host}, ${owner.op} since ${owner.since}${detail})` : detail),
    );
  }
}

export interface LockOwner {
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id: a pid from before a reboot is nobody. */
  bootId?: string;
  /** Start time of the process (clock ticks since boot): a reused pid is somebody else. */
  startTime?: string;
  op: string;
  since: string;
  /**
   * Inode of the lock directory this owner took. The owner file sits beside the lock, so after a
   * break it may still describe the dead holder while a new one holds a new lock: it only counts
   * for the lock directory it names.
   */
  lockIno?: number;
  /** Birth time of that directory (inodes are reused at once). */
  lockBorn?: number;
}

export interface HeldLock {
  release(): Promise<void>;
  /** Aborted if the lock is taken away (its directory removed or replaced by hand). */
  lost: AbortSignal;
}

/**
 * A holder on another host refreshes the lock's mtime every second (proper-lockfile `update`);
 * one that has not for this long is dead. Only used when liveness cannot be checked directly.
 */
const STALE_ELSEWHERE_MS = 10_000;
const BREAK_AFTER_MS = 2_500;
/** proper-lockfile never declares our lock stale by itself: liveness is decided below. */
const NEVER_STALE_MS = 2 ** 31 - 1;

/**
 * One reconciler per state directory (invariant 6). proper-lockfile's mkdir lock, plus an owner
 * file that says who holds it. A holder on this host is alive while its process is (same boot,
 * same pid, same start time): it keeps the lock however long it does not refresh it (stopped
 * with SIGSTOP, or a long synchronous step). A dead holder's lock is broken at once. A holder on
 * another host (a shared state directory) counts as dead when its refresh is 10 s late.
 */
export async function acquireLock(paths: StatePaths, opts: { op: string; timeoutMs: number }): Promise<HeldLock> {
  await fs.mkdir(paths.root, { recursive: true });
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 100;
  for (;;) {
    const lost = new AbortController();
    try {
      const release = await lockfile.lock(paths.root, {
        lockfilePath: paths.lock,
        stale: NEVER_STALE_MS,
        update: 1_000,
        retries: 0,
        realpath: false,
        onCompromised: (err) => lost.abort(err),
      });
      const st = await fs.stat(paths.lock);
      const owner: LockOwner = { pid: process.pid, host: os.hostname(), bootId: bootId(), startTime: startTime(process.pid), op: opts.op, since: new Date().toISOString(), lockIno: st.ino, lockBorn: st.birthtimeMs };
      // Written under a temporary name and renamed: a reader never sees half an owner.
      const tmp = `${paths.lockOwner}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify(owner) + '\n');
      await fs.rename(tmp, paths.lockOwner);
      return {
        lost: lost.signal,
        release: async () => {
          if (lost.signal.aborted) return; // not ours any more: leave whatever is there alone
          await fs.rm(paths.lockOwner, { force: true }).catch(() => {});
          await release().catch(() => {});
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const owner = await readOwner(paths);
      const verdict = await holderState(paths, owner && (await ownsThisLock(paths, owner)) ? owner : undefined);
      // A dead holder's lock is broken once it has not been refreshed for a moment: a live one
      // refreshes it every second, so a lock this fresh belongs to a contender that just won.
      if (verdict === 'dead' && (await lockAgeMs(paths)) > BREAK_AFTER_MS) {
        // The rename makes the break atomic: of two contenders, one renames, the other finds
        // nothing to break (and then meets the winner's fresh lock).
        const grave = `${paths.lock}.broken.${process.pid}.${Date.now()}`;
        try {
          await fs.rename(paths.lock, grave);
          await fs.rm(grave, { recursive: true, force: true });
        } catch {
          /* someone else broke it first */
        }
        continue;
      }
      if (Date.now() >= deadline) throw new LockHeldError(owner, verdict === 'stopped' ? ', stopped (SIGSTOP?)' : '');
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 2_000);
    }
  }
}

type HolderState = 'alive' | 'stopped' | 'dead';

async function holderState(paths: StatePaths, owner: LockOwner | undefined): Promise<HolderState> {
  // An owner file without a start time comes from an older bottled: it cannot be checked like
  // this, and that bottled refreshed the lock every second, so its refresh tells.
  if (owner && owner.host === os.hostname() && owner.startTime !== undefined) {
    if (owner.pid === process.pid) return 'alive'; // our own lock (a second acquire in one process)
    if (owner.bootId && owner.bootId !== bootId()) return 'dead';
    if (!alive(owner.pid)) return 'dead';
    if (owner.startTime && owner.startTime !== startTime(owner.pid)) return 'dead'; // the pid was reused
    return processState(owner.pid) === 'T' ? 'stopped' : 'alive';
  }
  // Another host, or an owner file not written yet (or lost): only the refresh can tell.
  return (await lockAgeMs(paths)) > STALE_ELSEWHERE_MS ? 'dead' : 'alive';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Field 22 (starttime) and field 3 (state) of /proc/<pid>/stat; the command may hold spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function startTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

function processState(pid: number): string | undefined {
  return statFields(pid)?.[0];
}

async function ownsThisLock(paths: StatePaths, owner: LockOwner): Promise<boolean> {
  if (owner.lockIno === undefined) return true; // written by an older bottled
  try {
    const st = await fs.stat(paths.lock);
    return st.ino === owner.lockIno && (owner.lockBorn === undefined || st.birthtimeMs === owner.lockBorn);
  } catch {
    return false;
  }
}

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
