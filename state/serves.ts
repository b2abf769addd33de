import type { StatePaths } from './paths.js';
import { readJson, writeJsonAtomic } from './fsutil.js';

/** What the last reconcile of this state directory served: `status` says it to whoever asks. */
export interface Serves {
  /** `--selector` as normalised; absent: every bottle of the source. */
  selector?: string;
  since: string;
}

export async function writeServes(paths: StatePaths, selector: string | undefined): Promise<void> {
  const prev = await readServes(paths);
  if (prev && prev.selector === selector) return;
  await writeJsonAtomic(paths.serves, { ...(selector !== undefined && { selector }), since: new Date().toISOString() } satisfies Serves);
}

export function readServes(paths: StatePaths): Promise<Serves | undefined> {
  return readJson<Serves>(paths.serves);
}
