// Kept apart from reasons.ts: it knows the drivers' error classes, and the pure planner, which
// uses the reason table, must not load a driver.
import { DockerError } from '../resources/docker/errors.js';
import { SmolvmError } from '../resources/smolvm/errors.js';
import { AbortedError, ReadinessError } from './errors.js';
import type { Reason } from './reasons.js';

/** Why a step failed, from what it threw. */
export function reasonOf(err: unknown): Reason {
  if (err instanceof DockerError) return err.kind === 'no-such-image' ? 'ImageMissing' : err.kind === 'unreachable' ? 'DockerUnreachable' : 'DockerError';
  // No usable smolvm is what the plan holds as SmolvmUnavailable; anything else is one call's failure.
  if (err instanceof SmolvmError) return err.kind === 'missing-binary' || err.kind === 'unsupported' ? 'SmolvmUnavailable' : 'SmolvmError';
  if (err instanceof ReadinessError) return 'NotReady';
  if (err instanceof AbortedError) return 'Aborted';
  return 'Failed';
}
