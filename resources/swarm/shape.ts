// What of a service's spec bottled declares, in one comparable form: from the desired service
// (planner) and from the spec the manager returns (observation). The spec hash label says what
// bottled last wrote; this says whether someone changed it since (`docker service update`).
import { SECRETS_DIR, type DesiredService, type SecretRef } from './desired.js';

export interface ServiceShape {
  image: string;
  args: string[] | null;
  /** `KEY=value`, sorted. */
  env: string[];
  /** Swarm secrets by name and the file they are (`/run/secrets/<VAR>`). */
  secrets: { name: string; file: string }[];
  init: boolean;
  /** Network (name, or ID as the manager stores it) and its aliases, sorted. */
  networks: { target: string; aliases: string[] }[];
  constraints: string[];
  preferences: string[];
  configs: { name: string; path: string }[];
  replicas: number | null;
  endpointMode: string;
  /** What bottled never sets, and whose addition opens the seal: a host mount, a published port, a capability, a user or entrypoint. */
  mounts: string[];
  ports: number[];
  capAdd: string[];
  capDrop: string[];
  pids: number | null;
  user: string | null;
  entrypoint: string[] | null;
  hosts: string[];
}

export interface RawServiceSpec {
  TaskTemplate?: {
    ContainerSpec?: {
      Image?: string;
      Args?: string[];
      Env?: string[];
      Init?: boolean;
      Configs?: { ConfigName?: string; File?: { Name?: string } }[];
      Secrets?: { SecretName?: string; File?: { Name?: string } }[];
      Mounts?: { Source?: string; Target?: string }[];
      CapabilityAdd?: string[];
      CapabilityDrop?: string[];
      User?: string;
      Command?: string[];
      Hosts?: string[];
    };
    Networks?: { Target: string; Aliases?: string[] }[];
    Placement?: { Constraints?: string[]; Preferences?: { Spread?: { SpreadDescriptor?: string } }[] };
    Resources?: { Limits?: { Pids?: number } };
  };
  Mode?: { Replicated?: { Replicas?: number } };
  EndpointSpec?: { Mode?: string; Ports?: { TargetPort?: number; PublishedPort?: number }[] };
}

/** The shape of the spec the manager returns. */
export function observedShape(spec: RawServiceSpec): ServiceShape {
  const c = spec.TaskTemplate?.ContainerSpec ?? {};
  return {
    // The manager pins the digest it resolved (`img:tag@sha256:…`): the tag is what was declared.
    image: (c.Image ?? '').replace(/@sha256:[0-9a-f]{64}$/, ''),
    args: c.Args?.length ? c.Args : null,
    env: [...(c.Env ?? [])].sort(),
    secrets: (c.Secrets ?? []).map((x) => ({ name: x.SecretName ?? '', file: x.File?.Name ?? '' })).sort((a, b) => a.file.localeCompare(b.file)),
    init: !!c.Init,
    networks: (spec.TaskTemplate?.Networks ?? []).map((n) => ({ target: n.Target, aliases: [...(n.Aliases ?? [])].sort() })).sort((a, b) => a.target.localeCompare(b.target)),
    constraints: [...(spec.TaskTemplate?.Placement?.Constraints ?? [])].sort(),
    preferences: (spec.TaskTemplate?.Placement?.Preferences ?? []).map((p) => p.Spread?.SpreadDescriptor ?? ''),
    configs: (c.Configs ?? []).map((x) => ({ name: x.ConfigName ?? '', path: x.File?.Name ?? '' })).sort((a, b) => a.path.localeCompare(b.path)),
    replicas: spec.Mode?.Replicated?.Replicas ?? null,
    endpointMode: spec.EndpointSpec?.Mode ?? 'vip',
    mounts: (c.Mounts ?? []).map((m) => `${m.Source ?? ''}:${m.Target ?? ''}`).sort(),
    ports: (spec.EndpointSpec?.Ports ?? []).map((p) => p.PublishedPort ?? p.TargetPort ?? 0).sort((a, b) => a - b),
    capAdd: [...(c.CapabilityAdd ?? [])].map(plain).sort(),
    capDrop: [...(c.CapabilityDrop ?? [])].map(plain).sort(),
    pids: spec.TaskTemplate?.Resources?.Limits?.Pids || null,
    user: c.User || null,
    entrypoint: c.Command?.length ? c.Command : null,
    hosts: [...(c.Hosts ?? [])].sort(),
  };
}

/** The shape the desired service has once applied (networks by the ID the manager knows them by). */
export function desiredShape(s: DesiredService, configs: { name: string; path: string }[], secrets: SecretRef[], networkId: (name: string) => string | undefined): ServiceShape {
  return {
    image: s.image.replace(/@sha256:[0-9a-f]{64}$/, ''),
    args: s.command?.length ? s.command : null,
    env: serviceEnv(s).sort(),
    secrets: secrets.map((x) => ({ name: x.name, file: x.variable })).sort((a, b) => a.file.localeCompare(b.file)),
    init: s.init,
    networks: s.networks.map((n) => ({ target: networkId(n.network) ?? n.network, aliases: [...n.aliases].sort() })).sort((a, b) => a.target.localeCompare(b.target)),
    constraints: [...s.placement.constraints].sort(),
    preferences: s.placement.preferences.map((p) => p.spread),
    configs: [...configs].map((c) => ({ name: c.name, path: c.path })).sort((a, b) => a.path.localeCompare(b.path)),
    replicas: 1,
    endpointMode: 'dnsrr',
    mounts: [],
    ports: [],
    capAdd: [...s.security.capAdd].sort(),
    capDrop: [...s.security.capDrop].sort(),
    pids: s.security.pidsLimit,
    user: s.security.user ?? null,
    entrypoint: null,
    hosts: [],
  };
}

/** `CAP_NET_RAW` as the manager stores it -> `NET_RAW` as the spec writes it. */
function plain(c: string): string {
  return c.replace(/^CAP_/, '');
}

/** The service's environment: env as declared, and `<VAR>_FILE` naming each secret's file. */
export function serviceEnv(s: DesiredService): string[] {
  return [...Object.entries(s.env).map(([k, v]) => `${k}=${v}`), ...Object.keys(s.secretEnv).map((k) => `${k}_FILE=${SECRETS_DIR}/${k}`)];
}

/** Fields that differ (empty: as declared). */
export function shapeDrift(observed: ServiceShape, desired: ServiceShape): string[] {
  return (Object.keys(desired) as (keyof ServiceShape)[]).filter((k) => JSON.stringify(observed[k]) !== JSON.stringify(desired[k]));
}
