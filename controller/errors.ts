/** A container (or what it depends on) did not become ready in time, or stopped. */
export class ReadinessError extends Error {}

export class AbortedError extends Error {
  constructor() {
    super('pass aborted');
  }
}
