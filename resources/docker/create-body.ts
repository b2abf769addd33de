import type { Endpoint } from '../../controller/desired.js';
import type { Security } from '../../controller/security.js';

/** Everything a container is created with, decided before the driver is called. */
export interface ContainerCreate {
  name: string;
  image: string;
  command?: string[];
  /** Plain environment (placeholders resolved). */
  env: Record<string, string>;
  /** Secret environment, values resolved: it goes into the create call and nowhere else. */
  secretEnv: Record<string, string>;
  labels: Record<string, string>;
  /**
   * Explicit (the image's own, or Docker's default): with one set, Engine 20.10 keeps the
   * restart policy when another signal arrives through its kill API (moby#11065/#41302).
   */
  stopSignal: string;
  /** Container ports published on `publishHost` at a free host port. */
  ports: number[];
  publishHost: string;
  healthcheck?: { test: string[]; intervalMs?: number; timeoutMs?: number; retries?: number; startPeriodMs?: number };
  init: boolean;
  /** Read-only single-file bind mounts: host path -> path in the container. */
  binds: { host: string; path: string }[];
  resources?: { cpus?: number; memoryMiB?: number };
  security: Security;
  runtime?: string;
  /** API 1.41 honours one network at create; the others are connected before start. */
  primary: Endpoint;
}

const toNs = (ms?: number) => (ms === undefined ? undefined : ms * 1_000_000);

/** The Engine API (1.41) body of a container create. */
export function containerCreateBody(c: ContainerCreate): Record<string, unknown> {
  const portKeys = c.ports.map((p) => `${p}/tcp`);
  return {
    Image: c.image,
    ...(c.command ? { Cmd: c.command } : {}),
    ...(c.security.user !== undefined ? { User: c.security.user } : {}),
    Env: [...Object.entries(c.env), ...Object.entries(c.secretEnv)].map(([k, v]) => `${k}=${v}`),
    Labels: c.labels,
    StopSignal: c.stopSignal,
    ...(portKeys.length ? { ExposedPorts: Object.fromEntries(portKeys.map((k) => [k, {}])) } : {}),
    ...(c.healthcheck
      ? {
          Healthcheck: {
            Test: c.healthcheck.test,
            Interval: toNs(c.healthcheck.intervalMs),
            Timeout: toNs(c.healthcheck.timeoutMs),
            Retries: c.healthcheck.retries,
            StartPeriod: toNs(c.healthcheck.startPeriodMs),
          },
        }
      : {}),
    HostConfig: {
      Init: c.init,
      // Survive crashes, engine restarts and host reboots even when no reconciler is running.
      // `always`, not `unless-stopped`: Engine 20.10 marks a container that got any signal
      // through its API as manually stopped, which `unless-stopped` honours for good.
      RestartPolicy: { Name: 'always' },
      Binds: c.binds.map((b) => `${b.host}:${b.path}:ro`),
      ...(portKeys.length ? { PortBindings: Object.fromEntries(portKeys.map((k) => [k, [{ HostIp: c.publishHost, HostPort: '' }]])) } : {}),
      ...(c.resources?.cpus ? { NanoCpus: Math.round(c.resources.cpus * 1e9) } : {}),
      ...(c.resources?.memoryMiB ? { Memory: c.resources.memoryMiB * 1024 * 1024 } : {}),
      ...(c.security.capAdd.length ? { CapAdd: c.security.capAdd } : {}),
      ...(c.security.capDrop.length ? { CapDrop: c.security.capDrop } : {}),
      ...(c.security.noNewPrivileges ? { SecurityOpt: ['no-new-privileges:true'] } : {}),
      ...(c.security.pidsLimit !== null ? { PidsLimit: c.security.pidsLimit } : {}),
      ...(c.security.readOnlyRootfs ? { ReadonlyRootfs: true, Tmpfs: Object.fromEntries(c.security.tmpfs.map((p) => [p, 'rw,exec,nosuid,nodev'])) } : {}),
      ...(c.runtime ? { Runtime: c.runtime } : {}),
    },
    NetworkingConfig: {
      EndpointsConfig: {
        [c.primary.network]: {
          Aliases: c.primary.aliases,
          ...(c.primary.ip ? { IPAMConfig: { IPv4Address: c.primary.ip } } : {}),
        },
      },
    },
  };
}
