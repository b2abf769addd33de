import type { StatePaths } from './paths.js';
import { readJson, writeJsonAtomic } from './fsutil.js';

/** What bottled knows of its git source (`<state>/source.json`): shown by `bottled status`. */
export interface SourceStatus {
  /** `git:<url or path>@<ref>:<subdir>` (never with a credential). */
  describe: string;
  /** The newest revision seen at the ref, and when it was fetched (or resolved). */
  fetched?: { revision: string; at: string };
  /** The revision the bottles are applied from (the newest, or the last verified one). */
  applied?: string;
  /** `--verify-commits`: the last revision that verified, and by whom. */
  verified?: { revision: string; signer: string };
  /** `--verify-commits`: the newest revision, refused, and why. */
  refused?: { revision: string; problem: string; since: string };
  /** The last fetch failed: since when, how often, why. */
  failing?: { since: string; lastAttempt: string; attempts: number; error: string };
  /** The last history rewrite seen at the ref. */
  forced?: { from: string; to: string; at: string };
  updatedAt?: string;
}

/** Every source this state directory has read (`plan --ref feature` beside the applied `main`). */
export async function readSourceStatuses(paths: StatePaths): Promise<SourceStatus[]> {
  const f = await readJson<{ version: 1; sources: SourceStatus[] }>(paths.sourceStatus);
  return f?.version === 1 ? f.sources : [];
}

export async function readSourceStatus(paths: StatePaths, describe: string): Promise<SourceStatus | undefined> {
  return (await readSourceStatuses(paths)).find((s) => s.describe === describe);
}

export async function writeSourceStatus(paths: StatePaths, s: SourceStatus): Promise<void> {
  const others = (await readSourceStatuses(paths)).filter((x) => x.describe !== s.describe);
  await writeJsonAtomic(paths.sourceStatus, { version: 1, sources: [{ ...s, updatedAt: new Date().toISOString() }, ...others].slice(0, 20) });
}
