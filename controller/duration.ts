import { DURATION, DURATION_HINT, durationToMs } from '../specs/fields.js';

/** Durations as the CLI writes them, with the spec's grammar: `500ms`, `30s`, `5m`, `1h`; a bare number is seconds. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (!DURATION.test(t)) throw new Error(`${JSON.stringify(text)} ${DURATION_HINT}`);
  return durationToMs(t);
}
