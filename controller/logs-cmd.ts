// `bottled logs NAME [--container C] [-f] [--since 10m] [--tail N] [--json]`: a bottle's
// containers interleaved in time order with compose's `name |` prefix. Follow mode picks up a
// container recreated by a pass (same name, new ID) and stops cleanly on SIGINT/SIGTERM.
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { DockerDriver } from '../resources/docker/driver.js';
import { readInventory } from '../state/inventory.js';
import { StatePaths, defaultStateDir } from '../state/paths.js';
import type { CommonFlags } from './cli-options.js';
import { parseDuration } from './duration.js';
import { checkNames } from './exec-cmd.js';
import { UsageError } from './flags.js';
import { names } from './names.js';

export interface LogsFlags extends CommonFlags {
  container?: string;
  follow?: boolean;
  since?: string;
  tail?: string;
}

interface Line {
  container: string;
  stream: 'stdout' | 'stderr';
  time: string;
  text: string;
}

const COLORS = [36, 33, 32, 35, 34, 31];

export async function cmdLogs(name: string, f: LogsFlags): Promise<number> {
  checkNames(name, f.container === 'agent' ? undefined : f.container);
  if (f.tail !== undefined && !/^\d+$/.test(f.tail)) throw new UsageError(`--tail ${f.tail}: a whole number of lines`);
  const paths = new StatePaths(f.stateDir ?? defaultStateDir());
  const inv = await readInventory(paths, name);
  if (!inv) {
    process.stderr.write(`bottled: no bottle ${name} in ${paths.root}\n`);
    return 1;
  }
  const agent = names.agent(f.prefix, name);
  // Label each container as compose does: the sidecar's name, or `agent`.
  // Containers, or Swarm services (their logs come from the manager, across tasks and nodes).
  const all = Object.entries(inv.resources).filter(([, r]) => r.type === 'container' || r.type === 'service').map(([k, r]) => ({ name: k, service: r.type === 'service', label: k === agent ? 'agent' : k.slice(`${f.prefix}-${name}-`.length) }));
  const picked = f.container ? all.filter((c) => c.label === f.container) : all;
  if (!picked.length) {
    process.stderr.write(`bottled: bottle ${name} has no container${f.container ? ` ${f.container} (it has: ${all.map((c) => c.label).sort().join(', ')})` : 's with logs'}${inv.resources[agent]?.type === 'machine' ? '; its smolvm agent has no log stream (smolvm has no machine logs)' : ''}\n`);
    return 1;
  }
  const docker = new DockerDriver({ host: f.dockerHost ?? process.env.DOCKER_HOST }).docker;
  let since: number | undefined;
  try {
    since = f.since ? Math.floor((Date.now() - parseDuration(f.since)) / 1000) : undefined;
  } catch (e) {
    throw new UsageError(`--since ${(e as Error).message}`);
  }
  const tail = f.tail !== undefined ? Number(f.tail) : undefined;
  const width = Math.max(...picked.map((c) => c.label.length));
  const color = !f.json && !!process.stdout.isTTY && !process.env.NO_COLOR;
  const print = (l: Line) => {
    if (f.json) return void process.stdout.write(JSON.stringify(l) + '\n');
    const i = picked.findIndex((c) => c.label === l.container);
    const prefix = `${l.container.padEnd(width)} |`;
    process.stdout.write(`${color ? `\x1b[${COLORS[i % COLORS.length]}m${prefix}\x1b[0m` : prefix} ${l.text}\n`);
  };
  // Labels can be copied onto anything; the ID the inventory recorded cannot (no ID recorded: a
  // crash right after the create, which the labels prove).
  const ours: Ours = async (labels, id, resource) => {
    if (labels?.['bottled.instance'] !== f.instance || labels?.['bottled.bottle'] !== name) return false;
    const rec = (await readInventory(paths, name))?.resources[resource];
    return !rec?.id || rec.id === id;
  };
  const source = (c: (typeof all)[number]): LogSource => (c.service ? serviceSource(docker, c.name, ours) : containerSource(docker, c.name, ours));
  if (!f.follow) {
    // What exists is shown; a container gone or not bottled's is said, not fatal to the others.
    const got = await Promise.allSettled(picked.map((c) => readAll(source(c), c.label, since, tail)));
    const lines = got.flatMap((g) => (g.status === 'fulfilled' ? g.value : []));
    lines.sort((a, b) => a.time.localeCompare(b.time));
    for (const l of lines) print(l);
    got.forEach((g, i) => g.status === 'rejected' && process.stderr.write(`bottled: ${picked[i]!.label}: ${(g.reason as Error).message}\n`));
    return got.some((g) => g.status === 'rejected') ? 1 : 0;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await Promise.all(picked.map((c) => follow(docker, source(c), c.label, since, tail, print, stop.signal)));
  } catch (e) {
    stop.abort();
    process.stderr.write(`bottled: ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}

/** Where one container's (or one Swarm service's) logs come from. */
interface LogSource {
  what: string;
  /** Its ID if it exists and is bottled's; undefined if it is not there; throws on an engine error. */
  find(): Promise<string | undefined>;
  /** False when something else took the name: shown as such, never read. */
  ours(id: string): Promise<boolean>;
  logs(id: string, opts: Record<string, unknown>): Promise<unknown>;
}

const notFound = (e: unknown) => (e as { statusCode?: number }).statusCode === 404;

/** Its labels say it is this bottle's, and it is the one the inventory recorded (read again at each reattach: a pass may have recreated it). */
type Ours = (labels: Record<string, string> | undefined, id: string, name: string) => Promise<boolean>;

/** One container's or one Swarm service's logs, found by name and proven bottled's. */
function logSource(what: string, name: string, inspect: () => Promise<{ id: string; labels?: Record<string, string> }>, logs: LogSource['logs'], ours: Ours): LogSource {
  const byId = new Map<string, boolean>();
  return {
    what,
    async find() {
      try {
        const { id, labels } = await inspect();
        byId.set(id, await ours(labels, id, name));
        return id;
      } catch (e) {
        if (notFound(e)) return undefined;
        throw e;
      }
    },
    ours: async (id) => byId.get(id) ?? false,
    logs,
  };
}

function containerSource(docker: Docker, name: string, ours: Ours): LogSource {
  const inspect = async () => {
    const i = await docker.getContainer(name).inspect();
    return { id: i.Id, labels: i.Config.Labels };
  };
  return logSource(`container ${name}`, name, inspect, (id, opts) => docker.getContainer(id).logs(opts as never) as unknown as Promise<unknown>, ours);
}

function serviceSource(docker: Docker, name: string, ours: Ours): LogSource {
  const inspect = async () => {
    const i = (await docker.getService(name).inspect()) as { ID: string; Spec?: { Labels?: Record<string, string> } };
    return { id: i.ID, labels: i.Spec?.Labels };
  };
  return logSource(`service ${name}`, name, inspect, (id, opts) => docker.getService(id).logs(opts as never) as unknown as Promise<unknown>, ours);
}

async function readAll(src: LogSource, label: string, since: number | undefined, tail: number | undefined): Promise<Line[]> {
  const id = await src.find();
  if (!id) throw new Error(`${src.what} is not there`);
  if (!(await src.ours(id))) throw new Error(`${src.what} is not the one bottled made (its labels say otherwise): not shown`);
  const buf = (await src.logs(id, { stdout: true, stderr: true, timestamps: true, follow: false, ...(since ? { since } : {}), ...(tail !== undefined ? { tail } : {}) })) as Buffer;
  return demuxBuffer(buf).flatMap(([stream, chunk]) => toLines(chunk.toString('utf8'), label, stream));
}

/**
 * Follow one container by name: when its stream ends (a pass recreated it, or it stopped), wait
 * for a container of that name to run again and go on from the last line seen.
 */
async function follow(docker: Docker, src: LogSource, label: string, since: number | undefined, tail: number | undefined, print: (l: Line) => void, signal: AbortSignal): Promise<void> {
  let from = since;
  // The last line printed, per stream: stdout and stderr arrive apart, each in its own order.
  const last = { stdout: '', stderr: '' };
  let first = true;
  let said = false;
  while (!signal.aborted) {
    // Only one that is not there (yet) is waited for; an engine that fails is an error. One that
    // took the name is not followed.
    let id = await src.find();
    if (id && !(await src.ours(id))) id = undefined;
    if (!id && !said) {
      process.stderr.write(`bottled: ${label}: waiting for ${src.what} to run again\n`);
      said = true;
    }
    if (id) {
      said = false;
      const stream = (await src.logs(id, { stdout: true, stderr: true, timestamps: true, follow: true, ...(from ? { since: from } : {}), ...(first && tail !== undefined ? { tail } : {}) })) as Readable;
      first = false;
      const out = new PassThrough();
      const err = new PassThrough();
      docker.modem.demuxStream(stream, out, err);
      const onLine = (s: 'stdout' | 'stderr') => {
        let rest = '';
        return (d: Buffer) => {
          const text = rest + d.toString('utf8');
          const parts = text.split('\n');
          rest = parts.pop() ?? '';
          for (const l of toLines(parts.join('\n') + (parts.length ? '\n' : ''), label, s)) {
            if (l.time <= last[s]) continue; // seen before a reattach
            last[s] = l.time;
            print(l);
          }
        };
      };
      out.on('data', onLine('stdout'));
      err.on('data', onLine('stderr'));
      await new Promise<void>((resolve) => {
        const done = () => resolve();
        stream.on('end', done);
        stream.on('close', done);
        stream.on('error', done);
        signal.addEventListener('abort', () => {
          (stream as Readable & { destroy: () => void }).destroy();
          done();
        }, { once: true });
      });
      // Reattach from the earlier of the two (seconds are Docker's granularity); repeats are skipped above.
      const seen = [last.stdout, last.stderr].filter(Boolean).sort()[0];
      if (seen) from = Math.floor(Date.parse(seen) / 1000);
    }
    if (!signal.aborted) await new Promise((r) => setTimeout(r, 500));
  }
}

/** Docker's multiplexed log frames (8-byte header: stream, 0, 0, 0, size) of a non-TTY container. */
function demuxBuffer(buf: Buffer): ['stdout' | 'stderr', Buffer][] {
  const out: ['stdout' | 'stderr', Buffer][] = [];
  for (let i = 0; i + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(i + 4);
    out.push([buf[i] === 2 ? 'stderr' : 'stdout', buf.subarray(i + 8, i + 8 + len)]);
    i += 8 + len;
  }
  return out;
}

/** `2026-12-01T19:00:00.123456789Z text` lines -> Line. */
function toLines(text: string, container: string, stream: 'stdout' | 'stderr'): Line[] {
  return text.split('\n').filter((l) => l.length).map((l) => {
    const sp = l.indexOf(' ');
    return { container, stream, time: sp > 0 ? l.slice(0, sp) : '', text: sp > 0 ? l.slice(sp + 1) : l };
  });
}
