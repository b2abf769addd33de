// Pieces of rendering that every backend's renderer shares: files, sidecars, placeholders.
import { resolveSecurity } from './security.js';
import type { BottleDoc, ContainerCommon, FileSpec, SharedSidecarDoc, SidecarSpec } from '../specs/model.js';
import { scanPlaceholders } from '../specs/placeholders.js';
import { sha256 } from '../state/fsutil.js';
import type { StatePaths } from '../state/paths.js';
import type { OwnerIdentity } from '../state/owner.js';
import type { DesiredContainer, DesiredFile, DesiredNetwork, DesiredUnit, PlaceholderRef } from './desired.js';
import { ownershipLabels } from './labels.js';
import { names } from './names.js';
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

export function renderFiles(files: FileSpec[], unit: string, container: string, paths: StatePaths): DesiredFile[] {
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
export function runtimeOf(s: ContainerCommon, role: 'sidecar' | 'shared'): Pick<DesiredContainer, 'image' | 'command' | 'env' | 'secretEnv' | 'init' | 'healthcheck' | 'ports' | 'security' | 'runtime'> {
  return { image: s.image, command: s.command, env: s.env, secretEnv: s.secretEnv, init: s.init, healthcheck: s.healthcheck, ports: s.ports, security: resolveSecurity(role, s.security, s.env), ...(s.runtime && { runtime: s.runtime }) };
}

/** A sidecar of a bottle: the same container on either backend, but for the extra networks it joins. */
export function renderSidecar(s: SidecarSpec, doc: BottleDoc, ctx: RenderContext, network: string, managedExtras: DesiredContainer['managedExtras']): DesiredContainer {
  const b = doc.metadata.name;
  const name = names.sidecar(ctx.prefix, b, s.name);
  const placeholders = placeholdersIn(s.env, (x) => names.sidecar(ctx.prefix, b, x));
  return {
    type: 'container',
    name,
    role: 'sidecar',
    component: s.name,
    ...runtimeOf(s, 'sidecar'),
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


/**
 * A bottle's internal network and, when a sidecar asks for it, its egress network: the same on
 * every backend that makes them, but for the driver, the bridge options and the sizes.
 */
export function bottleNetworks(
  doc: BottleDoc,
  ctx: RenderContext,
  o: { driver?: 'overlay'; internalOptions: Record<string, string>; hosts: number; egressHosts: number },
): DesiredNetwork[] {
  const b = doc.metadata.name;
  const labels = (role: string) => ownershipLabels(ctx.instance, ctx.owner, 'bottle', b, role, undefined, doc.metadata.labels);
  const driver = o.driver ? { driver: o.driver } : {};
  const networks: DesiredNetwork[] = [
    { type: 'network', name: names.bottleNetwork(ctx.prefix, b), role: 'network', internal: true, ...driver, options: o.internalOptions, labels: labels('network'), fixedSubnet: doc.spec.network.subnet, allocPrefix: prefixFor(o.hosts) },
  ];
  if (doc.spec.sidecars.some((s) => s.egress)) {
    networks.push({ type: 'network', name: names.egressNetwork(ctx.prefix, b), role: 'egress-network', internal: false, ...driver, options: {}, labels: labels('egress-network'), allocPrefix: prefixFor(o.egressHosts) });
  }
  return networks;
}

/** What a SharedSidecar's desired graph says of it and its own network, on either backend. */
export function sharedUnitBase(doc: SharedSidecarDoc, ctx: RenderContext, o: { backend: 'docker' | 'swarm'; driver?: 'overlay'; hosts: number }): Pick<DesiredUnit, 'unit' | 'kind' | 'name' | 'origin' | 'backend' | 'suspend' | 'alias' | 'networks' | 'uses'> {
  const n = doc.metadata.name;
  return {
    unit: unitKey.shared(n),
    kind: 'shared',
    name: n,
    origin: doc.origin,
    backend: o.backend,
    suspend: false,
    alias: doc.spec.alias,
    networks: [
      {
        type: 'network',
        name: names.sharedNetwork(ctx.prefix, n),
        role: 'network',
        internal: false,
        ...(o.driver ? { driver: o.driver } : {}),
        options: {},
        labels: ownershipLabels(ctx.instance, ctx.owner, 'shared', n, 'network', undefined, doc.metadata.labels),
        allocPrefix: prefixFor(o.hosts),
      },
    ],
    uses: [],
  };
}

/** What every bottle's desired graph says of the bottle itself, whichever backend renders it. */
export function bottleUnitBase(doc: BottleDoc): Pick<DesiredUnit, 'unit' | 'kind' | 'name' | 'origin' | 'backend' | 'suspend' | 'uses' | 'lifetime' | 'shell'> {
  const b = doc.metadata.name;
  return { unit: b, kind: 'bottle', name: b, origin: doc.origin, backend: doc.spec.backend, suspend: doc.spec.suspend, uses: doc.spec.uses, ...(doc.spec.lifetime && { lifetime: doc.spec.lifetime }), ...(doc.spec.agent.shell && { shell: doc.spec.agent.shell }) };
}
