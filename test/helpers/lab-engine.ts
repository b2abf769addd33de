import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { docker as hostDocker, ROOT } from './harness.js';

const run = promisify(execFile);

/**
 * Throwaway Docker Engines of a test's own (invariant 9: a test never stops, restarts or
 * reconfigures an engine it did not start). Each node is a dockerd in its own network
 * namespace, with its own data root, exec root, pidfile and socket, on a bridge that lives in a
 * namespace of its own too: nothing touches the host's engine or network. Recipe and pitfalls:
 * shared/reference/engine-lab.md. Images are copied in from the host engine (save | load).
 */
export interface LabNode {
  name: string;
  netns: string;
  dir: string;
  sock: string;
  /** `unix://…`, for `--docker-host`. */
  host: string;
  addr: string;
  docker: Docker;
  launcher?: ChildProcess;
  logFile: string;
}

export interface LabOptions {
  /** Host images to load into every node. */
  images?: string[];
  /** Extra dockerd arguments (e.g. `--config-file F`). */
  dockerdArgs?: string[];
  /** Extra dockerd arguments that need the node (e.g. `--dns` at its own address). */
  dockerdArgsFor?: (node: LabNode) => string[];
  /**
   * Debian's docker-registry on the lab bridge (`registry` below), which every node trusts over
   * plain HTTP: images reach a swarm's nodes the way they do for real users.
   */
  registry?: boolean;
}

export class Lab {
  readonly id = crypto.randomBytes(3).toString('hex');
  readonly base = `/tmp/bl${this.id}`; // short: a unix socket path is limited to 107 bytes
  readonly bridgeNs = `bl${this.id}br`;
  /** 10.252.X.0/24, X per run: two suites may run labs at once. */
  private readonly net = `10.252.${crypto.randomInt(1, 254)}`;
  readonly nodes: LabNode[] = [];
  /** `ADDR:5000` of the lab's registry (with `registry: true`). */
  readonly registry = `${this.net}.1:5000`;
  private registryProc?: ChildProcess;

  private constructor(private readonly opts: LabOptions) {}

  static async start(count: number, opts: LabOptions = {}): Promise<Lab> {
    const lab = new Lab(opts);
    try {
      await lab.up(count);
    } catch (e) {
      await lab.stop();
      throw e;
    }
    return lab;
  }

  private async up(count: number): Promise<void> {
    await fs.mkdir(this.base, { recursive: true });
    await ip('netns', 'add', this.bridgeNs);
    await ip('-n', this.bridgeNs, 'link', 'set', 'lo', 'up');
    await ip('-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', this.bridgeNs, 'addr', 'add', `${this.net}.1/24`, 'dev', 'br0');
    await ip('-n', this.bridgeNs, 'link', 'set', 'br0', 'up');
    if (this.opts.registry) await this.startRegistry();
    for (let i = 1; i <= count; i++) {
      const name = `n${i}`;
      const netns = `bl${this.id}${name}`;
      const dir = `${this.base}/${name}`;
      await fs.mkdir(dir, { recursive: true });
      await ip('netns', 'add', netns);
      await ip('-n', netns, 'link', 'set', 'lo', 'up');
      // The veth is made inside the bridge namespace and its peer moved straight into the node's:
      // the host namespace is never touched. No default route: nothing leaves the lab.
      await ip('-n', this.bridgeNs, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
      await ip('-n', this.bridgeNs, 'link', 'set', `p${i}`, 'master', 'br0', 'up');
      await ip('-n', netns, 'addr', 'add', `${this.net}.${10 + i}/24`, 'dev', 'eth0');
      await ip('-n', netns, 'link', 'set', 'eth0', 'up');
      const sock = `${dir}/d.sock`;
      const node: LabNode = { name, netns, dir, sock, host: `unix://${sock}`, addr: `${this.net}.${10 + i}`, docker: new Docker({ socketPath: sock, version: 'v1.41' } as Docker.DockerOptions), logFile: `${dir}/dockerd.log` };
      this.nodes.push(node);
      await this.launch(node);
    }
    for (const n of this.nodes) await this.loadImages(n);
  }

  /** dockerd in the node's namespace. `ip netns exec` would hide the cgroup mounts; this does not. */
  private async launch(node: LabNode): Promise<void> {
    await fs.rm(`${node.dir}/exec`, { recursive: true, force: true }); // stale netns files slow a restart
    const script =
      `hostname ${node.name} && mkdir -p ${node.dir}/cg && mount --rbind /sys/fs/cgroup ${node.dir}/cg && ` +
      `mount -t sysfs sysfs /sys && mount --rbind ${node.dir}/cg /sys/fs/cgroup && umount -l ${node.dir}/cg && exec "$@"`;
    const log = await fs.open(node.logFile, 'a');
    node.launcher = spawn(
      'nsenter',
      [`--net=/run/netns/${node.netns}`, 'unshare', '-m', '-u', '--propagation', 'slave', 'sh', '-c', script, 'sh',
        'dockerd', '--data-root', `${node.dir}/data`, '--exec-root', `${node.dir}/exec`, '--pidfile', `${node.dir}/docker.pid`,
        '-H', node.host, ...(this.opts.registry ? ['--insecure-registry', this.registry] : []), ...(this.opts.dockerdArgs ?? []), ...(this.opts.dockerdArgsFor?.(node) ?? [])],
      { stdio: ['ignore', log.fd, log.fd], detached: true },
    );
    node.launcher.unref();
    await log.close();
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await node.docker.ping();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`lab dockerd ${node.name} did not answer within 60 s: ${readFileSync(node.logFile, 'utf8').slice(-800)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private async loadImages(node: LabNode): Promise<void> {
    for (const image of this.opts.images ?? []) {
      const stream = await hostDocker.getImage(image).get();
      const out = await node.docker.loadImage(stream);
      await new Promise<void>((resolve, reject) => node.docker.modem.followProgress(out, (e: Error | null) => (e ? reject(e) : resolve())));
    }
  }

  /** The registry serves on the bridge namespace's address only: nothing outside the lab sees it. */
  private async startRegistry(): Promise<void> {
    const bin = registryBinary();
    if (!bin) throw new Error('no docker-registry (scripts/setup.sh unpacks Debian\'s into .cache/tools)');
    const dir = `${this.base}/registry`;
    await fs.mkdir(`${dir}/data`, { recursive: true });
    await fs.writeFile(`${dir}/config.yml`, `version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: ${dir}/data}}\nhttp: {addr: ${this.registry}}\n`);
    const log = await fs.open(`${dir}/registry.log`, 'a');
    this.registryProc = spawn('ip', ['netns', 'exec', this.bridgeNs, bin, 'serve', `${dir}/config.yml`], { stdio: ['ignore', log.fd, log.fd], detached: true });
    this.registryProc.unref();
    await log.close();
  }

  /**
   * Push host images into the lab registry (through node 1's engine, the only way into the lab)
   * and return their names there: `bottled/busybox:local` -> `ADDR:5000/bottled/busybox:local`.
   */
  async pushImages(images: string[]): Promise<Map<string, string>> {
    const n1 = this.nodes[0]!;
    const out = new Map<string, string>();
    for (const image of images) {
      const stream = await hostDocker.getImage(image).get();
      await follow(n1.docker, await n1.docker.loadImage(stream));
      const [repo, tag] = image.split(':') as [string, string];
      await n1.docker.getImage(image).tag({ repo: `${this.registry}/${repo}`, tag });
      const ref = `${this.registry}/${repo}:${tag}`;
      for (let tries = 0; ; tries++) {
        try {
          await follow(n1.docker, await n1.docker.getImage(ref).push({ authconfig: { serveraddress: this.registry } }));
          break;
        } catch (e) {
          if (tries > 50) throw e; // the registry may still be starting
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      out.set(image, ref);
    }
    return out;
  }

  /**
   * A swarm of every node: node 1 the manager, the others workers, with short heartbeats so a
   * lost node is noticed in seconds. Its address pool stays clear of the tests' subnet pools.
   */
  async swarm(): Promise<void> {
    const [m, ...workers] = this.nodes as [LabNode, ...LabNode[]];
    await m.docker.swarmInit({ ListenAddr: `${m.addr}:2377`, AdvertiseAddr: m.addr, DefaultAddrPool: ['10.190.0.0/16'], SubnetSize: 24, Spec: { Dispatcher: { HeartbeatPeriod: 1_000_000_000 } } });
    const token = ((await m.docker.swarmInspect()) as { JoinTokens: { Worker: string } }).JoinTokens.Worker;
    for (const w of workers) await w.docker.swarmJoin({ ListenAddr: `${w.addr}:2377`, AdvertiseAddr: w.addr, RemoteAddrs: [`${m.addr}:2377`], JoinToken: token });
    // Each node by its hostname, for placement constraints and status.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const nodes = (await m.docker.listNodes()) as { Status: { State: string } }[];
      if (nodes.length === this.nodes.length && nodes.every((n) => n.Status.State === 'ready')) return;
      if (Date.now() > deadline) throw new Error(`swarm nodes not ready: ${JSON.stringify(nodes.map((n) => n.Status))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Set labels on a swarm node (by hostname, `n1`…), as an operator does for placement. */
  async labelNode(name: string, labels: Record<string, string>): Promise<void> {
    const m = this.nodes[0]!.docker;
    const nodes = (await m.listNodes()) as { ID: string; Version: { Index: number }; Spec: Record<string, unknown>; Description: { Hostname: string } }[];
    const n = nodes.find((x) => x.Description.Hostname === name);
    if (!n) throw new Error(`no swarm node ${name}`);
    await m.getNode(n.ID).update({ version: n.Version.Index, ...n.Spec, Labels: labels });
  }

  /** The dockerd we started for this node (from its pidfile): the only process a test may signal. */
  private dockerdPid(node: LabNode): number | undefined {
    try {
      return Number(readFileSync(`${node.dir}/docker.pid`, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }

  /** Stop the node's engine (SIGTERM to the dockerd we started) and wait until it is gone. */
  async stopEngine(node: LabNode): Promise<void> {
    const pid = this.dockerdPid(node);
    if (pid && alive(pid)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 60_000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    await waitGone(node.launcher);
  }

  /** A node lost: SIGKILL to its dockerd (its containers keep running, as on a real crash). */
  async killEngine(node: LabNode): Promise<void> {
    const pid = this.dockerdPid(node);
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    await waitGone(node.launcher);
  }

  async startEngine(node: LabNode): Promise<void> {
    await this.launch(node);
  }

  async restartEngine(node: LabNode): Promise<void> {
    await this.stopEngine(node);
    await this.startEngine(node);
  }

  /** Everything the lab made goes: engines, their containers' processes, namespaces, files. */
  async stop(): Promise<void> {
    for (const n of this.nodes) await this.stopEngine(n).catch(() => {});
    if (this.registryProc?.pid && alive(this.registryProc.pid)) this.registryProc.kill('SIGKILL');
    for (const ns of [...this.nodes.map((n) => n.netns), this.bridgeNs]) {
      // Whatever still runs in a namespace of ours (a shim, a container) was started by us.
      for (let tries = 0; tries < 50; tries++) {
        const pids = await netnsPids(ns);
        if (!pids.length) break;
        for (const p of pids) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await ip('netns', 'del', ns).catch(() => {});
    }
    await fs.rm(this.base, { recursive: true, force: true }).catch(() => {});
  }
}

function registryBinary(): string | undefined {
  for (const p of ['/usr/bin/docker-registry', `${ROOT}/.cache/tools/registry/usr/bin/docker-registry`]) if (existsSync(p)) return p;
  return undefined;
}

async function follow(d: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    d.modem.followProgress(stream, (e: Error | null, out: { error?: string }[]) => {
      const failed = e ?? (out.find((x) => x.error) ? new Error(out.find((x) => x.error)!.error) : null);
      return failed ? reject(failed) : resolve();
    }),
  );
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

async function netnsPids(ns: string): Promise<number[]> {
  if (!existsSync(`/run/netns/${ns}`)) return [];
  try {
    const { stdout } = await run('ip', ['netns', 'pids', ns]);
    return stdout.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 10_000);
    p.once('exit', () => (clearTimeout(t), resolve()));
  });
}

/** Debian's runsc: installed, or unpacked into .cache/tools by scripts/setup.sh. */
function runscBinary(): string | undefined {
  return ['/usr/bin/runsc', `${ROOT}/.cache/tools/runsc/usr/bin/runsc`].find((p) => existsSync(p));
}

/**
 * runsc's runtime arguments for this machine. Its default network mode refuses to start where
 * `/proc/1/ns/net` cannot be read (a sandboxed machine: it takes that for the root network
 * namespace); `--network=host` then keeps the sandbox in the container's own namespace, so
 * Docker's isolation is unchanged (engine-lab.md). Detected, not assumed.
 */
async function runscArgs(): Promise<string[]> {
  try {
    await fs.readlink('/proc/1/ns/net');
    return [];
  } catch {
    return ['--network=host'];
  }
}

/**
 * A dockerd config file registering runsc (`dockerd --config-file FILE`), with the runtime
 * arguments this machine needs. Returns those arguments.
 */
export async function writeRunscConfig(file: string): Promise<string[]> {
  const bin = runscBinary();
  if (!bin) throw new Error("no runsc: scripts/setup.sh unpacks Debian's into .cache/tools");
  const args = await runscArgs();
  await fs.writeFile(file, JSON.stringify({ runtimes: { runsc: { path: bin, ...(args.length && { runtimeArgs: args }) } } }));
  return args;
}
