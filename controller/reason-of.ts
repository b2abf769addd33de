// Kept apart from reasons.ts: it knows the drivers' error classes (agent backends' through their
// runtimes), and the pure planner, which uses the reason table, must not load a driver.
import { DockerError } from '../resources/docker/errors.js';
import { agentRuntimes } from '../resources/runtimes.js';
import { AbortedError, ReadinessError } from './errors.js';
import type { Reason } from './reasons.js';

/** Why a step failed, from what it threw. */
export function reasonOf(err: unknown): Reason {
  if (err instanceof DockerError) return err.kind === 'no-such-image' ? 'ImageMissing' : err.kind === 'unreachable' ? 'DockerUnreachable' : 'DockerError';
  for (const r of agentRuntimes()) {
    const reason = r.reasonOf?.(err);
    if (reason) return reason;
  }
  if (err instanceof ReadinessError) return 'NotReady';
  if (err instanceof AbortedError) return 'Aborted';
  return 'Failed';
}
