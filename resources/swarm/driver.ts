import type Docker from 'dockerode';
import { DockerDriver } from '../docker/driver.js';
import { DockerError, mapDockerError } from '../docker/errors.js';
import { L } from '../../controller/labels.js';

/** What the Engine API returns for a service, a task, a node, a config: the fields read here. */
export interface RawService {
  ID: string;
  Version: { Index: number };
  Spec: { Name: string; Labels?: Record<string, string>; TaskTemplate?: { ContainerSpec?: { Configs?: { ConfigName?: string }[] }; Networks?: { Target: string }[] } };
  ServiceStatus?: { RunningTasks: number; DesiredTasks: number };
  UpdateStatus?: { State?: string; Message?: string };
}
export interface RawTask {
  ID: string;
  ServiceID: string;
  NodeID?: string;
  DesiredState: string;
  CreatedAt: string;
  Status: { State: string; Message?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
  NetworksAttachments?: { Network?: { ID?: string } }[];
}
export interface RawNode {
  ID: string;
  Description?: { Hostname?: string };
  Status?: { State?: string; Addr?: string };
}
export interface RawConfig {
  ID: string;
  Spec: { Name: string; Labels?: Record<string, string> };
}

// Bodies go as `_body`: dockerode copies the options of a path ending in `?` (secrets, configs,
// service updates) into the query string, where a proxy or a debug-level dockerd would log a
// secret's value; and `createService` with one argument sends its spec as X-Registry-Auth.

/**
 * The Swarm driver: a manager's services, tasks, nodes and configs, through the same Engine API
 * connection as the docker driver (`--docker-host`). No policy: it does what it is told.
 */
export class SwarmDriver {
  private readonly engine: DockerDriver;

  constructor(opts: { host?: string } = {}) {
    this.engine = new DockerDriver(opts);
  }

  /** Engine API requests made (for the no-op budget and the bench). */
  get calls(): number {
    return this.engine.calls;
  }

  private get docker(): Docker {
    return this.engine.docker;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapDockerError(e, what);
    }
  }

  /** Services, nodes, our configs and secrets at once, then the running tasks: 5 calls. */
  async observe(): Promise<{ services: RawService[]; tasks: RawTask[]; nodes: RawNode[]; configs: RawConfig[]; secrets: RawConfig[]; all: RawService[] }> {
    const ours = JSON.stringify({ label: [`${L.managedBy}=bottled`] });
    const [all, nodes, configs, secrets] = await Promise.all([
      // Every service, not only ours: one on our overlay that is not ours is a stranger to report.
      this.call('list services', () => this.docker.listServices({ status: true } as Docker.ServiceListOptions) as unknown as Promise<RawService[]>),
      this.call('list nodes', () => this.docker.listNodes() as unknown as Promise<RawNode[]>),
      this.call('list configs', () => this.docker.listConfigs({ filters: ours } as never) as unknown as Promise<RawConfig[]>),
      this.call('list secrets', () => this.docker.listSecrets({ filters: ours } as never) as unknown as Promise<RawConfig[]>),
    ]);
    const services = all.filter((s) => s.Spec.Labels?.[L.managedBy] === 'bottled');
    // Not filtered by service (a service removed since the list above would fail the call) nor
    // by desired state: between a failed task and its successor (the restart delay) no task is
    // meant to run, and the failed one holds Swarm's words for why. History is bounded by Swarm.
    const ids = new Set(services.map((s) => s.ID));
    const tasks = services.length ? (await this.call('list tasks', () => this.docker.listTasks() as unknown as Promise<RawTask[]>)).filter((t) => ids.has(t.ServiceID)) : [];
    return { services, tasks, nodes, configs, secrets, all };
  }

  /** The service's tasks, newest first (none for a service that does not exist). */
  async tasks(service: string): Promise<RawTask[]> {
    const all = await this.call(`list tasks of ${service}`, () => this.docker.listTasks({ filters: JSON.stringify({ service: [service] }) } as never) as unknown as Promise<RawTask[]>).catch((e) => {
      if (e instanceof DockerError && e.kind === 'not-found') return [];
      throw e;
    });
    return all.sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt));
  }

  async inspectService(name: string): Promise<RawService> {
    return this.call(`inspect service ${name}`, () => this.docker.getService(name).inspect() as Promise<RawService>);
  }

  async createService(spec: Record<string, unknown>): Promise<string> {
    const r = await this.call(`create service ${String(spec.Name)}`, () => this.docker.createService(undefined as never, spec as never) as unknown as Promise<{ ID?: string; id?: string }>);
    return r.ID ?? r.id ?? '';
  }

  async updateService(name: string, version: number, spec: Record<string, unknown>): Promise<void> {
    const svc = this.docker.getService(name) as unknown as { update: (auth: undefined, opts: unknown) => Promise<unknown> };
    await this.call(`update service ${name}`, () => svc.update(undefined, { _query: { version }, _body: spec }));
  }

  async removeService(name: string): Promise<void> {
    await this.call(`remove service ${name}`, () => this.docker.getService(name).remove());
  }

  /** The ID by which a service spec names this network. */
  async networkId(name: string): Promise<string> {
    const n = await this.call(`inspect network ${name}`, () => this.docker.getNetwork(name).inspect() as Promise<{ Id: string }>);
    return n.Id;
  }

  async findConfig(name: string): Promise<string | undefined> {
    const found = await this.call(`list configs ${name}`, () => this.docker.listConfigs({ filters: JSON.stringify({ name: [name] }) } as never) as unknown as Promise<RawConfig[]>);
    return found.find((c) => c.Spec.Name === name)?.ID;
  }

  async createConfig(name: string, data: Buffer, labels: Record<string, string>): Promise<string> {
    const r = await this.call(`create config ${name}`, () => this.docker.createConfig({ _query: {}, _body: { Name: name, Labels: labels, Data: data.toString('base64') } } as never) as unknown as Promise<{ ID?: string; id?: string }>);
    return r.ID ?? r.id ?? '';
  }

  async findSecret(name: string): Promise<string | undefined> {
    const found = await this.call(`list secrets ${name}`, () => this.docker.listSecrets({ filters: JSON.stringify({ name: [name] }) } as never) as unknown as Promise<RawConfig[]>);
    return found.find((c) => c.Spec.Name === name)?.ID;
  }

  /** The value goes in the request body only: never in a label, a name or a log line. */
  async createSecret(name: string, value: string, labels: Record<string, string>): Promise<string> {
    const r = await this.call(`create secret ${name}`, () => this.docker.createSecret({ _query: {}, _body: { Name: name, Labels: labels, Data: Buffer.from(value).toString('base64') } } as never) as unknown as Promise<{ ID?: string; id?: string }>);
    return r.ID ?? r.id ?? '';
  }

  async removeSecret(name: string): Promise<void> {
    await this.call(`remove secret ${name}`, () => this.docker.getSecret(name).remove());
  }

  async removeConfig(name: string): Promise<void> {
    await this.call(`remove config ${name}`, () => this.docker.getConfig(name).remove());
  }
}
