import type { BottleDoc, ContainerCommon, FileSpec, SharedSidecarDoc, SidecarSpec } from '../specs/model.js';
import type { StatePaths } from '../state/paths.js';
import type { OwnerIdentity } from '../state/owner.js';
import { sha256 } from '../state/fsutil.js';
import type { DesiredContainer, DesiredFile, DesiredMachine, DesiredNetwork, DesiredUnit, PlaceholderRef } from './desired.js';
import { ownershipLabels } from './labels.js';
import { names } from './names.js';
import { scanPlaceholders } from '../specs/placeholders.js';
import { unitKey } from './unit-key.js';

export interface RenderContext {
  prefix: string;
  instance: string;
  /** This state directory: written on every resource as its proof of ownership. */
  owner: OwnerIdentity;
  paths: StatePaths;
}

/** The `${sidecar.*}` placeholders of an env map (the grammar lives in specs/placeholders.ts). */
export function placeholdersIn(env: Record<string, string>, containerOf: (sidecar: string) => string): PlaceholderRef[] {
  return Object.values(env).flatMap((v) =>
    scanPlaceholders(v).placeholders.flatMap((p) =>
      p.ref
        ? [{ token: p.text, sidecar: p.ref.sidecar, target: containerOf(p.ref.sidecar), field: p.ref.field, port: p.ref.field === 'port' ? p.ref.port : undefined }]
        : [],
    ),
  );
}

/** Smallest prefix (not longer than /28) whose block holds `hosts` addresses plus gateway, network, broadcast. */
export function prefixFor(hosts: number): number {
  let prefix = 28;
  while (prefix > 16 && 2 ** (32 - prefix) < hosts + 3) prefix--;
  return prefix;
}

function renderFiles(files: FileSpec[], unit: string, container: string, paths: StatePaths): DesiredFile[] {
  return files.map((f) => ({
    container,
    path: f.path,
    hostPath: paths.renderedFile(unit, container, f.path),
    content: f.content,
    hash: sha256(f.content),
    mode: f.mode,
    ...(f.uid !== undefined && { uid: f.uid }),
    ...(f.gid !== undefined && { gid: f.gid }),
    onChange: f.onChange,
  }));
}

/** What a sidecar and a shared sidecar run with: the same fields, the same meaning. */
function runtimeOf(s: ContainerCommon): Pick<DesiredContainer, 'image' | 'command' | 'env' | 'secretEnv' | 'init' | 'healthcheck' | 'ports'> {
  return { image: s.image, command: s.command, env: s.env, secretEnv: s.secretEnv, init: s.init, healthcheck: s.healthcheck, ports: s.ports };
}

/** A sidecar of a bottle: the same container on either backend, but for the extra networks it joins. */
function renderSidecar(s: SidecarSpec, doc: BottleDoc, ctx: RenderContext, network: string, managedExtras: DesiredContainer['managedExtras']): DesiredContainer {
  const b = doc.metadata.name;
  const name = names.sidecar(ctx.prefix, b, s.name);
  const placeholders = placeholdersIn(s.env, (x) => names.sidecar(ctx.prefix, b, x));
  return {
    type: 'container',
    name,
    role: 'sidecar',
    component: s.name,
    ...runtimeOf(s),
    primary: { network, aliases: s.aliases, ip: s.ip },
    managedExtras,
    externalNetworks: [],
    files: renderFiles(s.files, b, name, ctx.paths),
    labels: ownershipLabels(ctx.instance, ctx.owner, 'bottle', b, 'sidecar', s.name, doc.metadata.labels),
    // A sidecar whose env names another sidecar's address waits for that one.
    waitFor: [...new Set(placeholders.map((p) => names.sidecar(ctx.prefix, b, p.sidecar)))].filter((n) => n !== name),
    placeholders,
  };
}

/** A bottle document -> its desired resource graph. Pure, apart from path arithmetic. */
export function renderBottle(doc: BottleDoc, ctx: RenderContext): DesiredUnit {
  return doc.spec.backend === 'smolvm' ? renderSmolvmBottle(doc, ctx) : renderDockerBottle(doc, ctx);
}

/**
 * smolvm topology: an ordinary bridge with a name-derived /24, sidecars pinned (first at .2,
 * set by the planner once the subnet is known) and published on the host, and the agent as a
 * machine that may reach exactly its sidecars.
 */
function renderSmolvmBottle(doc: BottleDoc, ctx: RenderContext): DesiredUnit {
  const { prefix, instance, paths } = ctx;
  const b = doc.metadata.name;
  const spec = doc.spec;
  const user = doc.metadata.labels;
  const netName = names.bottleNetwork(prefix, b);
  const containers = spec.sidecars.map((s) => renderSidecar(s, doc, ctx, netName, []));
  const a = spec.agent;
  const machineName = names.agent(prefix, b);
  const machine: DesiredMachine = {
    type: 'machine',
    name: machineName,
    image: a.image,
    from: a.fromPath ?? a.from,
    command: a.command,
    env: a.env,
    secretEnv: a.secretEnv,
    cpus: a.resources?.cpus,
    memMiB: a.resources?.memoryMiB,
    labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'agent', undefined, user),
    files: renderFiles(a.files, b, machineName, paths),
    waitFor: containers.map((c) => c.name),
    placeholders: placeholdersIn(a.env, (x) => names.sidecar(prefix, b, x)),
  };
  return {
    unit: b,
    kind: 'bottle',
    name: b,
    origin: doc.origin,
    backend: 'smolvm',
    suspend: spec.suspend,
    networks: [
      {
        type: 'network',
        name: netName,
        role: 'network',
        internal: false,
        options: {},
        labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'network', undefined, user),
        fixedSubnet: spec.network.subnet,
        allocPrefix: 24,
        deriveFrom: b,
      },
    ],
    containers,
    machine,
    uses: spec.uses,
  };
}

function renderDockerBottle(doc: BottleDoc, ctx: RenderContext): DesiredUnit {
  const { prefix, instance, paths } = ctx;
  const b = doc.metadata.name;
  const spec = doc.spec;
  const user = doc.metadata.labels;
  const netName = names.bottleNetwork(prefix, b);
  const egressName = names.egressNetwork(prefix, b);
  const needsEgress = spec.sidecars.some((s) => s.egress);

  const networks: DesiredNetwork[] = [
    {
      type: 'network',
      name: netName,
      role: 'network',
      internal: true,
      // The host keeps no address on the bridge: the agent cannot reach host services
      // through the gateway or docker0 (Internal alone still allows that).
      options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' },
      labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'network', undefined, user),
      fixedSubnet: spec.network.subnet,
      allocPrefix: prefixFor(spec.sidecars.length + 1 + spec.uses.length),
    },
  ];
  if (needsEgress) {
    networks.push({
      type: 'network',
      name: egressName,
      role: 'egress-network',
      internal: false,
      options: {},
      labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'egress-network', undefined, user),
      allocPrefix: prefixFor(spec.sidecars.filter((s) => s.egress).length),
    });
  }

  const containers = spec.sidecars.map((s) => renderSidecar(s, doc, ctx, netName, s.egress ? [{ network: egressName, aliases: [s.name] }] : []));

  const a = spec.agent;
  const agentName = names.agent(prefix, b);
  containers.push({
    type: 'container',
    name: agentName,
    role: 'agent',
    image: a.image ?? '',
    command: a.command,
    env: a.env,
    secretEnv: a.secretEnv,
    init: a.init,
    ports: [],
    resources: a.resources,
    primary: { network: netName, aliases: [] },
    managedExtras: [],
    externalNetworks: a.networks,
    files: renderFiles(a.files, b, agentName, paths),
    labels: ownershipLabels(instance, ctx.owner, 'bottle', b, 'agent', undefined, user),
    // compose's depends_on: sidecars run (and are healthy, when they have a check) before the agent.
    waitFor: spec.sidecars.map((s) => names.sidecar(prefix, b, s.name)),
    placeholders: placeholdersIn(a.env, (x) => names.sidecar(prefix, b, x)),
  });

  return {
    unit: b,
    kind: 'bottle',
    name: b,
    origin: doc.origin,
    backend: spec.backend,
    suspend: spec.suspend,
    networks,
    containers,
    uses: spec.uses,
  };
}

/** State-dir and status key of a SharedSidecar: dots never occur in names, so no clash with a bottle. */
export function sharedUnit(name: string): string {
  return unitKey.shared(name);
}

/** A SharedSidecar: one long-lived container on its own network, joined to the bottles that use it. */
export function renderShared(doc: SharedSidecarDoc, ctx: RenderContext): DesiredUnit {
  const { prefix, instance, paths } = ctx;
  const n = doc.metadata.name;
  const s = doc.spec;
  const unit = sharedUnit(n);
  const user = doc.metadata.labels;
  const netName = names.sharedNetwork(prefix, n);
  const name = names.shared(prefix, n);
  return {
    unit,
    kind: 'shared',
    name: n,
    origin: doc.origin,
    backend: 'docker',
    suspend: false,
    alias: s.alias,
    networks: [
      {
        type: 'network',
        name: netName,
        role: 'network',
        internal: false,
        options: {},
        labels: ownershipLabels(instance, ctx.owner, 'shared', n, 'network', undefined, user),
        allocPrefix: prefixFor(1),
      },
    ],
    containers: [
      {
        type: 'container',
        name,
        role: 'shared',
        ...runtimeOf(s),
        primary: { network: netName, aliases: [s.alias] },
        managedExtras: [],
        externalNetworks: [],
        files: renderFiles(s.files, unit, name, paths),
        labels: ownershipLabels(instance, ctx.owner, 'shared', n, 'shared', undefined, user),
        waitFor: [],
        placeholders: [],
      },
    ],
    uses: [],
  };
}
