// Leaf schemas of spec v1: names, addresses, durations, file modes, env maps.
// Messages are written for the person editing the YAML; the loader prefixes each one with
// the dotted path of the field (`spec.agent.image: ...`), so they do not repeat it.
import { z } from 'zod';
import ipaddr from 'ipaddr.js';
import { closest, didYouMean } from './did-you-mean.js';
import { scanPlaceholders, SUPPORTED_PLACEHOLDERS } from './placeholders.js';

export const API_VERSION = 'bottled.dev/v1';
export const KINDS = ['Bottle', 'SharedSidecar'] as const;

/** Message of an unknown key: a suggestion when one is close, else the keys that are allowed. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const hint = didYouMean(key, known);
  return hint ? `unknown key${hint}` : `unknown key (allowed here: ${known.join(', ')})`;
}

/**
 * `z.strictObject` whose unknown-key issue says what was meant. zod reports all unknown keys
 * of an object in one issue; its message holds one line per key, in `issue.keys` order, so
 * the loader can point a diagnostic at each key (a key's message never contains a newline).
 */
export function strictObject<Shape extends z.ZodRawShape>(shape: Shape) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => unknownKeyMessage(key, known)).join('\n')
        : undefined,
  });
}

/**
 * A string that can reach a process: environment, arguments and labels are C strings, so a NUL
 * would be cut there (Docker then fails to start the container) or silently truncate.
 */
export const cString = z.string().refine((v) => !v.includes('\0'), { error: 'must not contain a NUL character (\\u0000)' });

// ---------------------------------------------------------------------------------- names

/** metadata.name of both kinds, and the entries of `uses`. */
export const resourceName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,39}$/, {
    abort: true,
    error: 'must start with a lowercase letter and hold only lowercase letters, digits and "-" (at most 40 characters)',
  })
  .refine((name) => !name.includes('--'), { error: 'must not contain "--"', abort: true })
  .refine((name) => !name.endsWith('-'), { error: 'must not end with "-"' });

export const sidecarName = z.string().regex(/^[a-z][a-z0-9-]{0,19}$/, {
  error: 'must start with a lowercase letter and hold only lowercase letters, digits and "-" (at most 20 characters)',
});

/** A DNS label (RFC 1123): what a container can be called on a Docker network. */
export const dnsLabel = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, {
  error: 'must be a DNS label: letters, digits and "-", not starting or ending with "-", at most 63 characters',
});

export const dockerNetworkName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, {
  error: 'must be a Docker network name: letters, digits, "_", "." and "-", starting with a letter or digit',
});

/** Docker's own networks: an agent on one of them is no longer behind its sidecars. */
export const DOCKER_NETWORKS = ['bridge', 'host', 'none', 'docker_gwbridge', 'ingress'] as const;

/** An `agent.networks` entry: a network of the user's own (the loader also refuses bottled's). */
export const agentNetworkName = dockerNetworkName
  .refine((n) => !(DOCKER_NETWORKS as readonly string[]).includes(n), {
    error: (issue) => `${JSON.stringify(issue.input)} is one of Docker's own networks: an agent on it reaches past its sidecars (the host, other containers); agent.networks is for networks of your own`,
    abort: true,
  })
  // Docker resolves a network reference as a full ID before a name (and again when a container
  // starts): a network named like an ID is whichever network has that ID.
  .refine((n) => !/^[0-9a-fA-F]{64}$/.test(n), { error: 'looks like a Docker network ID: Docker would take it for the network with that ID, not one of that name' });

export const imageReference = z
  .string()
  .min(1, { error: 'must not be empty', abort: true })
  .regex(/^\S+$/, { error: 'must not contain whitespace' });

export const nonEmptyString = z.string().min(1, { error: 'must not be empty' });

// ----------------------------------------------------------------------- network addresses

export const ipv4Address = z
  .string()
  .refine((ip) => ipaddr.IPv4.isValidFourPartDecimal(ip), {
    error: (issue) => `${JSON.stringify(issue.input)} is not an IPv4 address like 192.168.211.2`,
  })
  .meta({ format: 'ipv4' });

/** Largest prefix that still leaves room for a gateway and one container. */
const MAX_SUBNET_PREFIX = 30;

export const ipv4Subnet = z
  .string()
  .superRefine((cidr, ctx) => {
    const problem = subnetProblem(cidr);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: cidr });
  })
  .meta({ pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$' });

function subnetProblem(cidr: string): string | undefined {
  const [address, prefixText, ...rest] = cidr.split('/');
  const prefix = Number(prefixText);
  const isPrefix = prefixText !== undefined && /^[0-9]{1,2}$/.test(prefixText) && prefix <= 32;
  if (rest.length > 0 || address === undefined || !ipaddr.IPv4.isValidFourPartDecimal(address) || !isPrefix) {
    return `${JSON.stringify(cidr)} is not an IPv4 subnet in CIDR form like 192.168.211.0/24`;
  }
  const network = ipaddr.IPv4.networkAddressFromCIDR(cidr).toString();
  if (network !== address) {
    return `${cidr} has host bits set: the subnet's network address is ${network}/${prefix}`;
  }
  if (prefix > MAX_SUBNET_PREFIX) {
    return `/${prefix} is too small for a bottle network (at most /${MAX_SUBNET_PREFIX}: a gateway and at least one container)`;
  }
  return undefined;
}

export const port = z
  .number()
  .int({ error: 'must be a whole port number' })
  .min(1, { error: 'must be a port number from 1 to 65535' })
  .max(65535, { error: 'must be a port number from 1 to 65535' });

// ------------------------------------------------------------------------------ env maps

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const envName = z.string().regex(ENV_NAME, {
  error: 'is not a valid environment variable name (letters, digits and "_", not starting with a digit)',
});

/** Env values may hold placeholders; which sidecars they name is checked per bottle. */
const envValue = cString.superRefine((value, ctx) => {
  const scan = scanPlaceholders(value);
  for (const placeholder of scan.placeholders) {
    if (placeholder.ref) continue;
    ctx.addIssue({
      code: 'custom',
      input: value,
      message: `unknown placeholder ${placeholder.text}: the supported placeholders are ${SUPPORTED_PLACEHOLDERS}`,
    });
  }
  if (scan.unterminatedAt !== undefined) {
    ctx.addIssue({
      code: 'custom',
      input: value,
      message: `"\${" at character ${scan.unterminatedAt + 1} has no closing "}" (placeholders look like \${sidecar.<name>.ip})`,
    });
  }
});

export const envMap = z.record(envName, envValue);

export const secretEnvMap = z.record(
  envName,
  z.string().regex(ENV_NAME, {
    error: "must be the name of a variable in the reconciler's environment (letters, digits and \"_\", not starting with a digit)",
  }),
);

export const labelsMap = z.record(
  z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, {
    error: 'is not a valid label key: letters, digits, "_", "." and "-", starting with a letter or digit, at most 63 characters',
  }),
  cString,
);

// ------------------------------------------------------------------------------ durations

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
/** The same syntax as the CLI's duration flags (architecture.md): one number, one optional unit. */
export const DURATION = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/;
export const DURATION_HINT = 'must be a duration like 500ms, 2s, 5m, 1h, or a number of seconds';

/** `500ms`, `2s`, `5m`, `1h`, or a bare number of seconds; parsed to milliseconds. */
export const duration = z
  .union(
    [
      z.number().positive({ error: 'must be greater than 0 (omit it to use the default)' }),
      z.string().regex(DURATION, { error: DURATION_HINT }),
    ],
    { error: DURATION_HINT },
  )
  .transform((value, ctx) => {
    const ms = durationToMs(value);
    if (ms <= 0) {
      ctx.addIssue({ code: 'custom', input: value, message: 'must be greater than 0 (omit it to use the default)' });
      return z.NEVER;
    }
    return ms;
  });

/** Milliseconds of a duration the schema accepted. */
export function durationToMs(value: number | string): number {
  if (typeof value === 'number') return Math.round(value * 1000);
  const [, amount, unit] = DURATION.exec(value) ?? [];
  return Math.round(Number(amount) * DURATION_UNITS_MS[(unit ?? 's') as keyof typeof DURATION_UNITS_MS]);
}

// ---------------------------------------------------------------------------- file modes

/**
 * `mode: "0644"`. YAML 1.2 reads an unquoted 0644 as the decimal number 644, which would
 * silently become a different mode, so numbers are refused with the quoted form to write.
 */
export const fileMode = z
  .string({ error: (issue) => (typeof issue.input === 'number' ? modeNumberMessage(issue.input) : undefined) })
  .regex(/^[0-7]{3,4}$/, { error: 'must be 3 or 4 octal digits, quoted, like "0644"' })
  .transform((mode) => parseInt(mode, 8));

function modeNumberMessage(written: number): string {
  const digits = String(written);
  if (/^[0-7]{1,4}$/.test(digits)) {
    const quoted = digits.padStart(4, '0'); // 0600 and 600 both arrive as 600
    return `must be a quoted octal string: write mode: "${quoted}" (unquoted, YAML 1.2 reads ${quoted} as the decimal number ${written})`;
  }
  // 0o755 arrives as 493: its octal digits are what was meant.
  const quoted = Number.isInteger(written) && written >= 0 && written <= 0o7777 ? written.toString(8).padStart(4, '0') : '0644';
  return `must be a quoted octal string: write mode: "${quoted}" (an unquoted number is not read as octal)`;
}

// -------------------------------------------------------------------------------- signals

const SIGNALS = [
  'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'IOT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV',
  'USR2', 'PIPE', 'ALRM', 'TERM', 'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU',
  'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF', 'WINCH', 'IO', 'POLL', 'PWR', 'SYS',
];

/** `SIGHUP`, `HUP` or `hup` → `SIGHUP`; undefined for anything that is not a signal name. */
export function normalizeSignal(name: string): string | undefined {
  const bare = name.toUpperCase().replace(/^SIG/, '');
  return SIGNALS.includes(bare) ? `SIG${bare}` : undefined;
}

/** Compares bare names: "SIGFOO" is far from "SIGHUP" but the shared "SIG" would hide that. */
function signalSuggestion(written: string): string {
  const suggestion = closest(written.toUpperCase().replace(/^SIG/, ''), SIGNALS);
  return suggestion === undefined ? '' : ` (did you mean "SIG${suggestion}"?)`;
}

export const signalName = z
  .string()
  .refine((name) => normalizeSignal(name) !== undefined, {
    error: (issue) =>
      `${JSON.stringify(issue.input)} is not a signal name${signalSuggestion(String(issue.input))}; use a name like SIGHUP, SIGUSR1 or SIGTERM`,
  })
  .transform((name) => normalizeSignal(name) as string);

// ------------------------------------------------------------------ commands, healthchecks

export const commandList = z
  .array(cString, {
    error: (issue) =>
      typeof issue.input === 'string'
        ? 'must be a list, e.g. ["/app/run", "--flag"] (a single string is not split into arguments)'
        : undefined,
  })
  .min(1, { error: 'must not be empty (omit it to keep the default)' });

/** Docker's three forms of a healthcheck test. */
function healthcheckTestProblem([form, ...rest]: string[]): string | undefined {
  switch (form) {
    case 'NONE':
      return rest.length > 0 ? '["NONE"] takes no further items' : undefined;
    case 'CMD':
      return rest.length === 0 ? '["CMD", ...] needs a command after "CMD"' : undefined;
    case 'CMD-SHELL':
      return rest.length !== 1 ? '["CMD-SHELL", "..."] takes exactly one shell command string' : undefined;
    default:
      return 'must start with "CMD", "CMD-SHELL" or "NONE", e.g. ["CMD", "nc", "-z", "127.0.0.1", "8888"]';
  }
}

export const healthcheckTest = commandList.superRefine((test, ctx) => {
  const problem = healthcheckTestProblem(test);
  if (problem) ctx.addIssue({ code: 'custom', input: test, message: problem });
});

/** Docker takes nanoseconds in an int64; a healthcheck period beyond a day is a mistake anyway. */
const MAX_HEALTHCHECK_MS = 24 * 3_600_000;
const healthcheckDuration = duration.refine((ms) => ms <= MAX_HEALTHCHECK_MS, { error: 'must be at most 24h' });

/** Durations of a healthcheck in milliseconds, as the model stores them. */
export const healthcheck = strictObject({
  test: healthcheckTest,
  interval: healthcheckDuration.optional(),
  timeout: healthcheckDuration.optional(),
  retries: z.number().int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(10_000, { error: 'must be at most 10000' }).optional(),
  startPeriod: healthcheckDuration.optional(),
}).transform(({ test, interval, timeout, retries, startPeriod }) => ({
  test,
  ...(interval !== undefined && { intervalMs: interval }),
  ...(timeout !== undefined && { timeoutMs: timeout }),
  ...(retries !== undefined && { retries }),
  ...(startPeriod !== undefined && { startPeriodMs: startPeriod }),
}));

/** Unique items; the issue points at the repeated item. */
export function uniqueItems<T>(describe: (item: T) => string) {
  return (items: T[], ctx: z.RefinementCtx) => {
    const seen = new Map<string, number>();
    items.forEach((item, index) => {
      const key = describe(item);
      const first = seen.get(key);
      if (first === undefined) seen.set(key, index);
      else ctx.addIssue({ code: 'custom', path: [index], input: item, message: `${key} is already listed at [${first}]` });
    });
  };
}
