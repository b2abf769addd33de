/**
 * Errors the executor throws on its own account. Apart from execute.ts so that reasons.ts can
 * classify them without importing the executor (execute.ts re-exports them).
 */

/** A readiness wait gave up: a sidecar is not running or healthy, or has no address yet. */
export class ReadinessError extends Error {}

export class AbortedError extends Error {
  constructor() {
    super('pass aborted');
  }
}
