// Pure parsing of smolvm's output and building of its argv (no process is run here).

import { SmolvmError } from './errors.js';
import { KNOWN_STATES, type CreateMachineOptions, type MachineObserved, type MachineState } from './types.js';

export function parseVersion(text: string): [number, number, number] | null {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a) ?? [0, 0, 0];
  const y = parseVersion(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strArray = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** One `ls --json` / `status --json` element → MachineObserved (null if it has no name). */
export function parseMachine(raw: unknown): MachineObserved | null {
  if (!isRecord(raw) || typeof raw.name !== 'string') return null;
  const rawState = typeof raw.state === 'string' ? raw.state : '';
  const state: MachineState = (KNOWN_STATES as readonly string[]).includes(rawState) ? (rawState as MachineState) : 'unknown';
  const labels: Record<string, string> = {};
  if (isRecord(raw.labels)) {
    for (const [k, v] of Object.entries(raw.labels)) if (typeof v === 'string') labels[k] = v;
  }
  const pid = num(raw.pid);
  const m: MachineObserved = {
    name: raw.name,
    state,
    rawState,
    ready: state === 'running',
    stalePid: pid !== undefined && state !== 'running' && state !== 'unreachable' && state !== 'frozen',
    labels,
    hasLabels: isRecord(raw.labels),
    raw,
  };
  if (pid !== undefined) m.pid = pid;
  const cpus = num(raw.cpus);
  if (cpus !== undefined) m.cpus = cpus;
  const mem = num(raw.memory_mib);
  if (mem !== undefined) m.memMiB = mem;
  if (typeof raw.image === 'string' || raw.image === null) m.image = raw.image;
  if (typeof raw.network === 'boolean') m.network = raw.network;
  const ports = num(raw.ports);
  if (ports !== undefined) m.ports = ports;
  const mounts = num(raw.mounts);
  if (mounts !== undefined) m.mounts = mounts;
  const createdAt = num(raw.created_at);
  if (createdAt !== undefined) m.createdAt = createdAt;
  if (typeof raw.ephemeral === 'boolean') m.ephemeral = raw.ephemeral;
  const entrypoint = strArray(raw.entrypoint);
  if (entrypoint) m.entrypoint = entrypoint;
  const cmd = strArray(raw.cmd);
  if (cmd) m.cmd = cmd;
  return m;
}

/** `ls --json` output → machines sorted by name. Throws 'failed' on malformed JSON. */
export function parseMachineList(stdout: string): MachineObserved[] {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch (e) {
    throw new SmolvmError('failed', `smolvm machine ls --json printed invalid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!Array.isArray(data)) throw new SmolvmError('failed', 'smolvm machine ls --json did not print a JSON array');
  const out: MachineObserved[] = [];
  for (const el of data) {
    const m = parseMachine(el);
    if (m) out.push(m);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export const ENV_KEY = /^[^=\0]+$/;

export function sortedEntries(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The exact `machine create` argv (exported for tests). Contains no secret values. */
export function buildCreateArgs(opts: CreateMachineOptions): string[] {
  const bad = (msg: string) => new SmolvmError('usage', `invalid create options for '${opts.name}': ${msg}`, { machine: opts.name });
  if (!opts.name) throw bad('name is required');
  if (opts.image !== undefined && opts.from !== undefined) throw bad('image and from are exclusive');
  const args = ['machine', 'create', '--name', opts.name];
  if (opts.from !== undefined) args.push('--from', opts.from);
  else if (opts.image !== undefined) args.push('--image', opts.image);
  if (opts.net) args.push('--net');
  for (const c of opts.allowCidrs) {
    if (!c || c.startsWith('-')) throw bad(`invalid CIDR ${JSON.stringify(c)}`);
    args.push('--allow-cidr', c);
  }
  for (const [k, v] of sortedEntries(opts.env)) {
    if (!ENV_KEY.test(k)) throw bad(`invalid env key ${JSON.stringify(k)}`);
    args.push('-e', `${k}=${v}`);
  }
  for (const [g, h] of sortedEntries(opts.secretEnv)) {
    if (!ENV_KEY.test(g) || !ENV_KEY.test(h)) throw bad(`invalid secretEnv entry for ${JSON.stringify(g)}`);
    args.push('--secret-env', `${g}=${h}`);
  }
  if (opts.cpus !== undefined) {
    if (!Number.isInteger(opts.cpus) || opts.cpus < 1 || opts.cpus > 255) throw bad(`cpus must be an integer 1..255`);
    args.push('--cpus', String(opts.cpus));
  }
  if (opts.memMiB !== undefined) {
    if (!Number.isInteger(opts.memMiB) || opts.memMiB < 64) throw bad(`memMiB must be an integer >= 64`);
    args.push('--mem', String(opts.memMiB));
  }
  for (const [k, v] of sortedEntries(opts.labels)) {
    if (!ENV_KEY.test(k)) throw bad(`invalid label key ${JSON.stringify(k)}`);
    args.push('--label', `${k}=${v}`);
  }
  if (opts.command && opts.command.length) args.push('--', ...opts.command);
  return args;
}
