import type { FileSpec, HealthcheckSpec, LifetimeSpec, OnChange, Origin } from '../specs/model.js';
import type { Security } from './security.js';

/** The desired resource graph of one unit (a bottle, later also a shared sidecar). */

export interface DesiredNetwork {
  type: 'network';
  name: string;
  role: 'network' | 'egress-network';
  internal: boolean;
  /** `overlay` on a swarm (attachable, so a hand-run container can be told apart); else a bridge. */
  driver?: 'overlay';
  options: Record<string, string>;
  labels: Record<string, string>; // without the spec hash (it depends on the subnet)
  /** The user's `spec.network.subnet`, which wins over allocation. */
  fixedSubnet?: string;
  /** Prefix length to allocate when no subnet is fixed (sized to what the unit needs). */
  allocPrefix: number;
  /** smolvm topology: a 192.168.X.0/24 derived from the bottle name instead of the pool. */
  deriveFrom?: string;
}

export interface DesiredFile {
  container: string;
  path: string;
  hostPath: string;
  content: Buffer;
  hash: string;
  mode: number;
  /** Owner inside the container when the spec names one (else the container's user). */
  uid?: number;
  gid?: number;
  onChange: OnChange;
}

export interface Endpoint {
  network: string;
  aliases: string[];
  ip?: string;
}

export interface PlaceholderRef {
  token: string; // the whole `${...}`
  sidecar: string;
  /** The sidecar's container name. */
  target: string;
  field: 'ip' | 'host' | 'port';
  port?: number;
}

export interface DesiredContainer {
  type: 'container';
  name: string;
  role: 'sidecar' | 'agent' | 'shared';
  component?: string;
  image: string;
  command?: string[];
  env: Record<string, string>; // may hold placeholders
  secretEnv: Record<string, string>; // container var -> reconciler env var
  init: boolean;
  healthcheck?: HealthcheckSpec;
  ports: number[];
  resources?: { cpus?: number; memoryMiB?: number };
  /** Hardening, resolved over the role's defaults (controller/security.ts). */
  security: Security;
  runtime?: string;
  primary: Endpoint;
  /** Networks bottled manages for this unit that the container also joins (part of the hash). */
  managedExtras: Endpoint[];
  /** Pre-existing networks the container also joins (agent.networks): connected in place. */
  externalNetworks: string[];
  files: DesiredFile[];
  labels: Record<string, string>; // without the spec hash
  /** Containers of the same unit that must be running (healthy, if they have a check) first. */
  waitFor: string[];
  placeholders: PlaceholderRef[];
}

/**
 * The agent when a backend other than Docker runs it (controller/backend.ts). The core reads
 * these fields; the rest is the backend's own (resources/<backend>/desired.ts).
 */
export interface DesiredWorkload {
  /** The backend that runs it (`spec.backend`). */
  backend: string;
  /** Its type in the inventory, ownership claims and status (`machine`). */
  type: string;
  name: string;
  /** Container var -> host variable: the core checks each is set before planning. */
  secretEnv: Record<string, string>;
  files: DesiredFile[];
  /** Sidecar containers that must run first. */
  waitFor: string[];
  /** Every object name it is made of, when more than `name` (Swarm: each service), for routing drift. */
  members?: string[];
}

export interface DesiredUnit {
  /** Bottle name, or `shared.<name>` for a SharedSidecar. */
  unit: string;
  kind: 'bottle' | 'shared';
  name: string;
  origin: Origin;
  /** `spec.backend`. */
  backend: string;
  suspend: boolean;
  networks: DesiredNetwork[];
  containers: DesiredContainer[]; // sidecars first, agent last: creation order
  /** The agent when another backend runs it (and `containers` then holds only sidecars). */
  workload?: DesiredWorkload;
  uses: string[];
  /** SharedSidecar: the DNS name it answers to on every bottle network it joins. */
  alias?: string;
  /** `spec.lifetime`: when the bottle expires and what is done then. */
  lifetime?: LifetimeSpec;
  /** `spec.agent.shell`: what `bottled exec NAME` runs without a command (kept in the inventory). */
  shell?: string[];
}

export type { FileSpec };
