import fs from 'node:fs/promises';
import Docker from 'dockerode';
import { DockerError, mapDockerError } from './errors.js';
import { normalizeImageRef } from './image-ref.js';
import { containerCreateBody, type ContainerCreate } from './create-body.js';

export { normalizeImageRef };

export interface ObservedNetwork {
  id: string;
  name: string;
  labels: Record<string, string>;
  subnets: string[];
  internal: boolean;
  options: Record<string, string>;
}

export interface ObservedPort {
  containerPort: number;
  hostPort?: number;
  hostIp?: string;
}

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ObservedContainer {
  id: string;
  name: string;
  image: string;
  imageId: string;
  labels: Record<string, string>;
  state: ContainerState;
  health?: 'healthy' | 'unhealthy' | 'starting';
  exitCode?: number;
  status: string;
  networks: Record<string, { networkId: string; ip?: string }>;
  ports: ObservedPort[];
  /** Docker's restart policy, known only when the pass inspected it (an event named the container). */
  restartPolicy?: string;
}

export interface DockerSnapshot {
  networks: ObservedNetwork[];
  containers: ObservedContainer[];
  /** image reference (normalized, e.g. `busybox:latest`) -> image ID */
  images: Map<string, string>;
  /** image ID -> the image's own labels (a committed bottle container keeps ours in it) */
  imageLabels?: Map<string, Record<string, string>>;
}

export interface NetworkCreate {
  name: string;
  subnet: string;
  gateway?: string;
  /** Where dynamic addresses come from (the rest of the subnet is for pinned ones). */
  ipRange?: string;
  internal: boolean;
  /** `overlay`: a swarm-scoped network (the engine must be a manager); attachable. */
  driver?: 'overlay';
  options: Record<string, string>;
  labels: Record<string, string>;
}

export interface EndpointSpec {
  aliases: string[];
  ip?: string;
}


function healthOf(status: string): ObservedContainer['health'] {
  if (status.includes('(healthy)')) return 'healthy';
  if (status.includes('(unhealthy)')) return 'unhealthy';
  if (status.includes('(health: starting)')) return 'starting';
  return undefined;
}

/**
 * The Docker driver: observation (a constant number of list calls) and single-resource
 * operations. No policy lives here: it does what it is told and maps errors.
 */
export class DockerDriver {
  readonly docker: Docker;
  /** Engine API requests made by this driver (for the no-op budget, tests and the bench). */
  calls = 0;

  /** The engine is reached through a unix socket, so it may run on this host (see signal()). */
  readonly local: boolean;

  constructor(opts: { host?: string } = {}) {
    const conn = dockerConnection(opts.host);
    this.local = !conn.host;
    this.docker = new Docker({ ...conn, version: 'v1.41' } as Docker.DockerOptions);
    const modem = (this.docker as unknown as { modem: { dial: (...a: unknown[]) => unknown } }).modem;
    const dial = modem.dial.bind(modem);
    modem.dial = (...args: unknown[]) => {
      this.calls++;
      return dial(...args);
    };
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapDockerError(e, what);
    }
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.docker.ping());
  }

  /**
   * The OCI runtimes registered with the engine (`runc`, `runsc`, …): one `info` call, kept for a
   * minute (registering one takes a restart of dockerd), so passes keep a constant call count.
   */
  async runtimes(): Promise<string[]> {
    if (this.runtimeCache && Date.now() - this.runtimeCache.at < 60_000) return this.runtimeCache.names;
    const info = (await this.call('info', () => this.docker.info())) as { Runtimes?: Record<string, unknown> };
    this.runtimeCache = { at: Date.now(), names: Object.keys(info.Runtimes ?? {}).sort() };
    return this.runtimeCache.names;
  }
  private runtimeCache?: { at: number; names: string[] };

  /** One snapshot: three list calls, whatever the number of bottles. */
  async snapshot(): Promise<DockerSnapshot> {
    const [nets, ctrs, imgs] = await Promise.all([
      this.call('list networks', () => this.docker.listNetworks()),
      this.call('list containers', () => this.docker.listContainers({ all: true })),
      this.call('list images', () => this.docker.listImages()),
    ]);
    const networks: ObservedNetwork[] = nets.map((n) => ({
      id: n.Id,
      name: n.Name,
      labels: n.Labels ?? {},
      subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => !!s),
      internal: !!n.Internal,
      options: n.Options ?? {},
    }));
    // A swarm task's container belongs to its service (resources/swarm observes those): it is
    // neither a container to plan nor a stranger on the service's overlay.
    const containers: ObservedContainer[] = ctrs.filter((c) => !c.Labels?.['com.docker.swarm.task.id']).map((c) => {
      const exit = /Exited \((-?\d+)\)/.exec(c.Status ?? '');
      const nets = (c.NetworkSettings?.Networks ?? {}) as Record<string, { NetworkID?: string; IPAddress?: string }>;
      return {
        id: c.Id,
        name: (c.Names?.[0] ?? '').replace(/^\//, ''),
        image: c.Image,
        imageId: c.ImageID,
        labels: c.Labels ?? {},
        state: c.State as ContainerState,
        health: healthOf(c.Status ?? ''),
        exitCode: exit ? Number(exit[1]) : undefined,
        status: c.Status ?? '',
        networks: Object.fromEntries(
          Object.entries(nets).map(([name, v]) => [name, { networkId: v.NetworkID ?? '', ip: v.IPAddress || undefined }]),
        ),
        ports: (c.Ports ?? []).map((p) => ({
          containerPort: p.PrivatePort,
          hostPort: p.PublicPort || undefined,
          hostIp: p.IP || undefined,
        })),
      };
    });
    const images = new Map<string, string>();
    const imageLabels = new Map<string, Record<string, string>>();
    for (const i of imgs) {
      if (i.Labels && Object.keys(i.Labels).some((k) => k.startsWith('bottled.'))) imageLabels.set(i.Id, i.Labels);
      for (const t of i.RepoTags ?? []) if (t !== '<none>:<none>') images.set(normalizeImageRef(t), i.Id);
      for (const d of i.RepoDigests ?? []) images.set(normalizeImageRef(d), i.Id);
    }
    return { networks, containers, images, imageLabels };
  }

  /** What an image says about its containers' user and stop signal (one call per image ID; callers cache). */
  async imageConfig(id: string): Promise<{ user?: string; stopSignal?: string }> {
    const info = await this.call(`inspect image ${id}`, () => this.docker.getImage(id).inspect());
    const cfg = (info.Config ?? {}) as { User?: string; StopSignal?: string };
    return { user: cfg.User || undefined, stopSignal: cfg.StopSignal || undefined };
  }

  /** Bytes of one regular file inside a container (created or running), via the archive API. */
  async readFile(name: string, file: string): Promise<Buffer | undefined> {
    try {
      const stream = await this.call(`read ${file} in ${name}`, () => this.docker.getContainer(name).getArchive({ path: file }));
      const chunks: Buffer[] = [];
      for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
      return firstTarEntry(Buffer.concat(chunks));
    } catch (e) {
      if (e instanceof DockerError && e.kind === 'not-found') return undefined;
      throw e;
    }
  }

  /** Host settings changed in place (no restart): the restart policy. */
  async update(name: string, restartPolicy: string): Promise<void> {
    await this.call(`update ${name}`, () => this.docker.getContainer(name).update({ RestartPolicy: { Name: restartPolicy } }));
  }

  async createNetwork(n: NetworkCreate): Promise<string> {
    const net = await this.call(`create network ${n.name}`, () =>
      this.docker.createNetwork({
        Name: n.name,
        Driver: n.driver ?? 'bridge',
        ...(n.driver === 'overlay' ? { Attachable: true } : {}),
        CheckDuplicate: true, // without it Engine 20.10 makes a second network of the same name
        Internal: n.internal,
        Options: n.options,
        Labels: n.labels,
        IPAM: { Driver: 'default', Config: [{ Subnet: n.subnet, ...(n.gateway ? { Gateway: n.gateway } : {}), ...(n.ipRange ? { IPRange: n.ipRange } : {}) }] },
      }),
    );
    return net.id;
  }

  async removeNetwork(name: string): Promise<void> {
    await this.call(`remove network ${name}`, () => this.docker.getNetwork(name).remove());
  }

  /** The body goes in the request body only: dockerode would otherwise copy it into the URL. */
  async createContainer(spec: ContainerCreate): Promise<string> {
    const name = spec.name;
    const body = containerCreateBody(spec);
    const c = await this.call(`create container ${name}`, () =>
      this.docker.createContainer({ _query: { name }, _body: body } as unknown as Docker.ContainerCreateOptions),
    );
    return c.id;
  }

  async connect(network: string, container: string, ep: EndpointSpec): Promise<void> {
    await this.call(`connect ${container} to ${network}`, () =>
      this.docker.getNetwork(network).connect({
        Container: container,
        EndpointConfig: {
          Aliases: ep.aliases,
          ...(ep.ip ? { IPAMConfig: { IPv4Address: ep.ip } } : {}),
        },
      }),
    );
  }

  /** Disconnecting what is not connected counts as done. */
  async disconnect(network: string, container: string): Promise<void> {
    try {
      await this.call(`disconnect ${container} from ${network}`, () =>
        this.docker.getNetwork(network).disconnect({ Container: container, Force: true }),
      );
    } catch (e) {
      if (e instanceof DockerError && (e.kind === 'not-connected' || e.kind === 'not-found')) return;
      throw e;
    }
  }

  async start(name: string): Promise<void> {
    try {
      await this.call(`start ${name}`, () => this.docker.getContainer(name).start());
    } catch (e) {
      if (e instanceof DockerError && e.kind === 'not-modified') return;
      throw e;
    }
  }

  async stop(name: string, timeoutSec = 10): Promise<void> {
    try {
      await this.call(`stop ${name}`, () => this.docker.getContainer(name).stop({ t: timeoutSec }));
    } catch (e) {
      if (e instanceof DockerError && (e.kind === 'not-modified' || e.kind === 'not-found')) return;
      throw e;
    }
  }

  async restart(name: string, timeoutSec = 10): Promise<void> {
    await this.call(`restart ${name}`, () => this.docker.getContainer(name).restart({ t: timeoutSec }));
  }

  /** Removing what is gone counts as done. */
  async removeContainer(name: string): Promise<void> {
    try {
      await this.call(`remove container ${name}`, () => this.docker.getContainer(name).remove({ force: true }));
    } catch (e) {
      if (e instanceof DockerError && e.kind === 'not-found') return;
      throw e;
    }
  }

  /**
   * Deliver a signal to the container's main process. Engine 20.10 treats any signal through its
   * kill API as a manual stop (moby#41302: an `unless-stopped` container is then not restarted
   * after an engine restart, and one without an explicit stop signal not even after a crash). So
   * when the engine runs on this host, the signal goes straight to the container's init process
   * (the process whose cgroup names the container); otherwise through the API, which keeps an
   * `always` policy for containers created with an explicit stop signal.
   */
  async signal(name: string, signal: string, opts: { via?: 'auto' | 'api' } = {}): Promise<'host' | 'api'> {
    if (opts.via !== 'api' && this.local) {
      const info = await this.inspectContainer(name);
      const pid = info.State?.Pid ?? 0;
      if (info.State?.Running && pid > 0 && (await pidBelongsTo(pid, info.Id))) {
        try {
          process.kill(pid, signal as NodeJS.Signals);
          return 'host';
        } catch {
          /* not ours to signal from here (permissions): the API can */
        }
      }
    }
    await this.kill(name, signal);
    return 'api';
  }

  async kill(name: string, signal: string): Promise<void> {
    await this.call(`signal ${signal} to ${name}`, () => this.docker.getContainer(name).kill({ signal }));
  }

  async exec(name: string, cmd: string[], timeoutMs = 60_000): Promise<{ exitCode: number; output: string }> {
    return this.call(`exec in ${name}`, async () => {
      const ex = await this.docker.getContainer(name).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await ex.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`exec timed out after ${timeoutMs}ms`)), timeoutMs);
        stream.on('data', (d: Buffer) => chunks.push(d));
        stream.on('end', () => (clearTimeout(t), resolve()));
        stream.on('error', (e: Error) => (clearTimeout(t), reject(e)));
      });
      const info = await ex.inspect();
      return { exitCode: info.ExitCode ?? -1, output: demux(Buffer.concat(chunks)) };
    });
  }

  async inspectContainer(name: string): Promise<Docker.ContainerInspectInfo> {
    return this.call(`inspect ${name}`, () => this.docker.getContainer(name).inspect());
  }
}

/** Is this host process the init of that container (its cgroup path names the container ID)? */
async function pidBelongsTo(pid: number, containerId: string): Promise<boolean> {
  try {
    const cg = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8');
    return containerId.length >= 12 && cg.includes(containerId);
  } catch {
    return false;
  }
}

/** The content of the first entry of a tar archive (the archive API returns one file as a tar). */
function firstTarEntry(tar: Buffer): Buffer | undefined {
  if (tar.length < 512) return undefined;
  const size = parseInt(tar.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
  const type = String.fromCharCode(tar[156] ?? 48);
  if (type !== '0' && type !== '\0') return undefined; // not a regular file (a link, a directory)
  return tar.subarray(512, 512 + size);
}

/** Strip Docker's 8-byte multiplexing headers from an exec stream. */
function demux(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return Buffer.concat(out).toString('utf8');
}

/** `--docker-host` wins, else DOCKER_HOST (docker-modem reads it), else the default socket. */
export function dockerConnection(host?: string): Docker.DockerOptions {
  if (!host) return {};
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { socketPath: host };
  const u = new URL(host.replace(/^tcp:/, 'http:'));
  return { host: u.hostname, port: Number(u.port || 2375), protocol: 'http' };
}
