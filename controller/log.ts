import pino, { type Logger } from 'pino';

/**
 * pino JSON on stderr (stdout is for command results). Pretty output only when asked
 * (LOG_PRETTY=1) since the transport runs in a worker thread and costs startup time.
 * Secret values never reach a log call; the redact list is a second line of defence.
 */
export function makeLogger(level = 'info', dest?: { write(s: string): unknown }): Logger {
  const redact = { paths: ['env', '*.env', 'secretEnv', '*.secretEnv', 'Env', '*.Env'], censor: '[redacted]' };
  if (process.env.LOG_PRETTY === '1') {
    return pino({ level, redact, transport: { target: 'pino-pretty', options: { destination: 2 } } });
  }
  return pino({ level, redact, base: { pid: process.pid } }, (dest ?? pino.destination({ dest: 2, sync: true })) as pino.DestinationStream);
}

export type { Logger };
