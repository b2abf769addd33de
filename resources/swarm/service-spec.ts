import { L } from '../../controller/labels.js';
import type { ConfigRef, DesiredService, SecretRef } from './desired.js';
import { serviceEnv } from './shape.js';

const NS = 1_000_000;

/**
 * The Swarm ServiceSpec of a service (pure). dnsrr: no VIP (IPVS is often missing, and a bottle
 * needs none); restart always, quickly; updates start the new task before the old one stops,
 * with a short monitor, so a sidecar's alias is without a task as briefly as Swarm allows (the
 * agent stops first).
 */
export function serviceSpec(
  s: DesiredService,
  opts: { hash: string; secretFreeHash: string; configs: (ConfigRef & { id: string })[]; secrets: (SecretRef & { id: string })[]; stopTimeoutSec: number; extraNetworks?: { Target: string; Aliases?: string[] }[] },
): Record<string, unknown> {
  const hc = s.healthcheck;
  return {
    Name: s.name,
    Labels: { ...s.labels, [L.specHash]: opts.hash, [L.configHash]: opts.secretFreeHash },
    TaskTemplate: {
      ContainerSpec: {
        Image: s.image,
        ...(s.command ? { Args: s.command } : {}), // replaces the image's CMD, as on the docker backend
        Env: serviceEnv(s),
        Init: s.init,
        ...(s.security.capAdd.length ? { CapabilityAdd: s.security.capAdd.map(cap) } : {}),
        ...(s.security.capDrop.length ? { CapabilityDrop: s.security.capDrop.map(cap) } : {}),
        ...(s.security.user !== undefined ? { User: s.security.user } : {}),
        StopGracePeriod: opts.stopTimeoutSec * 1_000 * NS,
        ...(hc
          ? { Healthcheck: { Test: hc.test, Interval: ns(hc.intervalMs), Timeout: ns(hc.timeoutMs), Retries: hc.retries, StartPeriod: ns(hc.startPeriodMs) } }
          : {}),
        Configs: opts.configs.map((c) => ({
          File: { Name: c.path, UID: String(c.uid ?? 0), GID: String(c.gid ?? c.uid ?? 0), Mode: c.mode },
          ConfigID: c.id,
          ConfigName: c.name,
        })),
        // Readable by the container's processes whatever their user, as its environment is.
        Secrets: opts.secrets.map((x) => ({ File: { Name: x.variable, UID: '0', GID: '0', Mode: 0o444 }, SecretID: x.id, SecretName: x.name })),
      },
      Resources: {
        Limits: {
          ...(s.resources?.cpus ? { NanoCPUs: Math.round(s.resources.cpus * 1e9) } : {}),
          ...(s.resources?.memoryMiB ? { MemoryBytes: s.resources.memoryMiB * 1024 * 1024 } : {}),
          ...(s.security.pidsLimit !== null ? { Pids: s.security.pidsLimit } : {}),
        },
      },
      RestartPolicy: { Condition: 'any', Delay: 1_000 * NS, MaxAttempts: 0 },
      Placement: {
        Constraints: s.placement.constraints,
        Preferences: s.placement.preferences.map((p) => ({ Spread: { SpreadDescriptor: p.spread } })),
      },
      Networks: [...s.networks.map((n) => ({ Target: n.network, Aliases: n.aliases })), ...(opts.extraNetworks ?? [])],
    },
    Mode: { Replicated: { Replicas: 1 } },
    // A sidecar's successor starts before it stops (its alias is never without a task for long);
    // the agent stops first: two agents at once would both act.
    UpdateConfig: { Parallelism: 1, Order: s.role === 'agent' ? 'stop-first' : 'start-first', Monitor: 1_000 * NS, FailureAction: 'pause' },
    EndpointSpec: { Mode: 'dnsrr' },
  };
}

/** Swarm writes capabilities with their CAP_ prefix (Docker's container API without). */
function cap(c: string): string {
  return c === 'ALL' ? 'ALL' : `CAP_${c}`;
}

function ns(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : ms * NS;
}
