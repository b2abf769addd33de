import type { Security } from '../../controller/security.js';
import type { DesiredFile, DesiredWorkload } from '../../controller/desired.js';
import { HASH_VERSION, hashedLabels } from '../../controller/labels.js';
import type { HealthcheckSpec, PlacementSpec } from '../../specs/model.js';
import { sha256 } from '../../state/fsutil.js';

/** One container of a swarm bottle: a one-replica Swarm service. */
export interface DesiredService {
  name: string;
  role: 'sidecar' | 'agent' | 'shared';
  component?: string;
  image: string;
  command?: string[];
  env: Record<string, string>;
  secretEnv: Record<string, string>;
  init: boolean;
  healthcheck?: HealthcheckSpec;
  resources?: { cpus?: number; memoryMiB?: number };
  /** Overlays it joins, with its DNS names on each (aliases are per network). */
  networks: { network: string; aliases: string[] }[];
  files: DesiredFile[];
  labels: Record<string, string>;
  placement: PlacementSpec;
  /** The hardening Swarm's API (1.41) can carry: capabilities, a pids limit, the user. */
  security: Security;
  /** Services of the bottle that must have a running (and healthy) task first. */
  waitFor: string[];
}

/**
 * A swarm bottle's workload: all of its containers, as services (sidecars first, the agent
 * last). `name` is the agent's service; `secretEnv` is every service's, keyed `service/VAR`, so
 * the core's check that each variable is set covers them all.
 */
export interface DesiredSwarmBottle extends DesiredWorkload {
  backend: 'swarm';
  type: 'service';
  services: DesiredService[];
}

/** A file of a service as a Swarm config (configs are immutable: the name carries the content). */
export interface ConfigRef {
  name: string;
  path: string;
  mode: number;
  uid?: number;
  gid?: number;
  hash: string;
}

/**
 * Swarm caps config names at 64 characters: a digest of who it is for (instance, service, path)
 * and of its content. Its labels say the rest in words.
 */
export function configRef(instance: string, service: string, f: DesiredFile): ConfigRef {
  return {
    name: `bottled-${sha256(`${instance}\0${service}\0${f.path}`).slice(0, 12)}-${f.hash.slice(0, 16)}`,
    path: f.path,
    mode: f.mode,
    ...(f.uid !== undefined && { uid: f.uid }),
    ...(f.gid !== undefined && { gid: f.gid }),
    hash: f.hash,
  };
}

/**
 * A secretEnv variable as a Swarm secret: mounted at /run/secrets/<VAR> and named by <VAR>_FILE,
 * never in the service spec (`docker service inspect` shows the name, not the value). The name
 * carries the value's keyed digest, so a new value is a new secret (added, then the old removed).
 */
export interface SecretRef {
  name: string;
  variable: string;
  /** The reconciler's variable that holds the value. */
  from: string;
}

export const SECRETS_DIR = '/run/secrets';

export function secretRef(instance: string, service: string, variable: string, from: string, digest: string): SecretRef {
  return { name: `bottled-${sha256(`${instance}\0${service}\0${variable}`).slice(0, 12)}-${digest.replace(/^[^:]*:/, '').slice(0, 16)}`, variable, from };
}

/**
 * The configuration of a service, as hashed: any change is a service update (Swarm replaces the
 * task, start-first). Secrets appear only as keyed digests; files by content hash.
 */
export function serviceConfig(s: DesiredService, secretDigests: Record<string, string>, configs: ConfigRef[]): Record<string, unknown> {
  return {
    hashVersion: HASH_VERSION,
    image: s.image,
    command: s.command ?? null,
    env: s.env,
    secretEnv: secretDigests,
    init: s.init,
    healthcheck: s.healthcheck ?? null,
    resources: s.resources ?? null,
    networks: s.networks,
    placement: s.placement,
    files: configs.map((c) => ({ path: c.path, mode: c.mode, uid: c.uid ?? null, gid: c.gid ?? null, content: c.hash })),
    labels: hashedLabels(s.labels),
    security: { hardening: s.security.hardening, capAdd: s.security.capAdd, capDrop: s.security.capDrop, pidsLimit: s.security.pidsLimit, user: s.security.user ?? null },
    // hashVersion stays: a secret's delivery is part of the shape, and only swarm has it.
    secretsAs: 'files',
  };
}
