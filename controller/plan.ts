import type { LoadResult } from '../specs/model.js';
import type { DockerSnapshot, ObservedContainer, ObservedNetwork } from '../resources/docker.js';
import type { MachineObserved } from '../resources/smolvm.js';
import { normalizeImageRef } from '../resources/docker.js';
import type { Inventory } from '../state/inventory.js';
import { sha256 } from '../state/fsutil.js';
import type { DesiredContainer, DesiredFile, DesiredMachine, DesiredUnit } from './desired.js';
import { configHash, containerConfig, describeConfigChange, machineConfig, networkConfig } from './hash.js';
import { L, isOurs } from './labels.js';
import type { Action, ActionKind, Hold, Plan, UnitPlan } from './plan-types.js';
import { allocate, deriveSubnet, dynamicRange, gatewayOf, hostAddress, overlaps } from './subnets.js';

export interface PlanOptions {
  prefix: string;
  instance: string;
  subnetPool: string;
  publishHost: string;
  allowEmpty: boolean;
  /** A pass that would remove more bottles than this removes none (Infinity: no limit). */
  maxDeletions?: number;
  /** Subnets of the host's own interfaces: never allocated to a bottle network. */
  hostSubnets: string[];
}

/** One observation: Docker, plus smolvm machines when some bottle needs them. */
export interface Observed extends DockerSnapshot {
  /** Undefined when smolvm was not asked (no smolvm bottle) or could not answer. */
  machines?: MachineObserved[];
  /** Why smolvm could not answer (missing binary, too old, ...). */
  machineError?: string;
}

export interface PlanInput {
  load: LoadResult;
  /** Rendered valid bottles, by unit. */
  desired: Map<string, DesiredUnit>;
  snapshot: Observed;
  /** size:mtime of each smolvm `from` artifact, so a rebuilt one recreates its machine. */
  fromStats?: Map<string, string | undefined>;
  inventories: Map<string, Inventory>;
  /** Content hash of each rendered file on disk now (undefined: missing), by host path. */
  fileHashes: Map<string, string | undefined>;
  /** Keyed digest of a secret variable's value; undefined when the variable is not set. */
  secretDigest: (envVar: string) => string | undefined;
  opts: PlanOptions;
  /** Plan only the units this accepts (watch mode works per bottle). */
  include?: (unit: string) => boolean;
}

/**
 * The planner: desired graph + one observed snapshot + inventory -> ordered actions with causes.
 * Pure: no I/O, deterministic for the same input. The executor carries no decision logic.
 */
export function plan(input: PlanInput): Plan {
  const { load, desired, snapshot, inventories, opts } = input;
  const netsByName = groupBy(snapshot.networks, (n) => n.name);
  const ctrsByName = new Map(snapshot.containers.map((c) => [c.name, c] as const));

  // Every unit this instance knows of: declared, in an inventory, or labelled on a resource.
  const known = new Set<string>([...desired.keys(), ...inventories.keys()]);
  for (const r of [...snapshot.networks, ...snapshot.containers, ...(snapshot.machines ?? [])]) {
    const u = isOurs(r.labels, opts.instance) ? unitOfLabels(r.labels) : undefined;
    if (u) known.add(u);
  }
  for (const key of load.held.keys()) known.add(key.startsWith('SharedSidecar/') ? `shared.${key.slice('SharedSidecar/'.length)}` : key.slice('Bottle/'.length));

  const subnets = allocateSubnets(input);
  const claims = nameClaims(input);

  let pruneGuard: string | undefined;
  if (load.fileCount === 0 && !opts.allowEmpty) {
    pruneGuard = `${load.describe} holds no spec files: nothing is pruned without --allow-empty`;
  }

  const units: UnitPlan[] = [];
  for (const unit of [...known].sort()) {
    if (input.include && !input.include(unit)) continue;
    const d = desired.get(unit);
    const inv = inventories.get(unit);
    const heldDiags = load.held.get(unit.startsWith('shared.') ? `SharedSidecar/${unit.slice(7)}` : `Bottle/${unit}`);
    if (heldDiags) {
      units.push(heldUnit(unit, inv, {
        reason: 'InvalidSpec',
        message: heldDiags.map((x) => `${x.file}:${x.line}:${x.col}: ${x.message}`).join('; '),
        failure: false, // reported as invalid spec files (exit 2), not as a failed bottle
      }));
      continue;
    }
    if (!d) {
      const src = inv?.source?.file;
      if (pruneGuard) {
        units.push(heldUnit(unit, inv, { reason: 'EmptySource', message: pruneGuard, failure: false }));
      } else if (load.brokenFiles.size > 0 && (!src || load.brokenFiles.has(src))) {
        units.push(heldUnit(unit, inv, {
          reason: 'InvalidSpec',
          message: src
            ? `${src} cannot be read or parsed: running resources left as they are`
            : `some spec files cannot be parsed (${[...load.brokenFiles].join(', ')}): not pruned until they can`,
          failure: false,
        }));
      } else {
        units.push(planRemoval(unit, inv, input, ctrsByName, netsByName));
      }
      continue;
    }
    units.push(planUnit(withDefaultAddresses(d, subnets), inv, input, ctrsByName, netsByName, subnets, claims));
  }
  const removals = units.filter((u) => u.state === 'removed' && u.kind === 'bottle');
  const max = opts.maxDeletions ?? Infinity;
  if (removals.length > max) {
    const some = removals.slice(0, 8).map((u) => u.name).join(', ') + (removals.length > 8 ? ', …' : '');
    pruneGuard = `this pass would remove ${removals.length} bottles (${some}), more than --max-deletions ${max}: nothing is removed`;
    for (const [i, u] of units.entries()) {
      if (u.state === 'removed') units[i] = heldUnit(u.unit, inventories.get(u.unit), { reason: 'DeletionGuard', message: pruneGuard, failure: true });
    }
  }
  return { units, pruneGuard };
}

/** Labels that make a resource part of this unit (a bottle, or `shared.<name>`). */
function ownedBy(unit: string, instance: string): (labels: Record<string, string>) => boolean {
  const shared = unit.startsWith('shared.');
  const kind = shared ? 'shared' : 'bottle';
  const name = shared ? unit.slice('shared.'.length) : unit;
  return (labels) => isOurs(labels, instance) && labels[L.kind] === kind && labels[L.bottle] === name;
}

function unitOfLabels(labels: Record<string, string>): string | undefined {
  const name = labels[L.bottle];
  if (!name) return undefined;
  if (labels[L.kind] === 'shared') return `shared.${name}`;
  return labels[L.kind] === 'bottle' ? name : undefined;
}

function unitKind(unit: string): 'bottle' | 'shared' {
  return unit.startsWith('shared.') ? 'shared' : 'bottle';
}

function unitName(unit: string): string {
  return unit.startsWith('shared.') ? unit.slice('shared.'.length) : unit;
}

function heldUnit(unit: string, inv: Inventory | undefined, held: Hold, d?: DesiredUnit): UnitPlan {
  return {
    unit,
    kind: unitKind(unit),
    name: unitName(unit),
    source: d?.origin.file ?? inv?.source?.file,
    revision: d?.origin.revision ?? inv?.source?.revision,
    state: 'held',
    held,
    actions: [],
    subnets: {},
    desired: d,
  };
}

class ActionList {
  readonly list: Action[] = [];
  private last = new Map<string, number>(); // resource name -> id of its latest action
  add(a: Omit<Action, 'id' | 'after'> & { after?: number[] }): Action {
    const id = this.list.length + 1;
    const deps = new Set(a.after ?? []);
    const prev = this.last.get(a.resource.name);
    if (prev) deps.add(prev);
    const action: Action = { ...a, id, after: [...deps].sort((x, y) => x - y) };
    this.list.push(action);
    this.last.set(a.resource.name, id);
    if (a.resource.type === 'file') this.last.set(a.file!.container, id);
    return action;
  }
  lastOf(name: string): number | undefined {
    return this.last.get(name);
  }
}

function planRemoval(
  unit: string,
  inv: Inventory | undefined,
  input: PlanInput,
  ctrsByName: Map<string, ObservedContainer>,
  netsByName: Map<string, ObservedNetwork[]>,
): UnitPlan {
  const { opts, snapshot } = input;
  const mine = ownedBy(unit, opts.instance);
  const containers = snapshot.containers.filter((c) => mine(c.labels));
  // Inventory entries whose resource still exists under that name and is ours.
  for (const [name, r] of Object.entries(inv?.resources ?? {})) {
    if (r.type !== 'container') continue;
    const o = ctrsByName.get(name);
    if (o && mine(o.labels) && !containers.includes(o)) containers.push(o);
  }
  const networks = snapshot.networks.filter((n) => mine(n.labels));
  for (const [name, r] of Object.entries(inv?.resources ?? {})) {
    if (r.type !== 'network') continue;
    for (const o of netsByName.get(name) ?? []) if (mine(o.labels) && !networks.includes(o)) networks.push(o);
  }
  const acts = new ActionList();
  const ctrIds: number[] = [];
  const cause = unitKind(unit) === 'shared' ? 'SharedSidecar no longer declared' : 'bottle no longer declared';
  // Shared sidecars are never stopped by a bottle: they leave its networks. A removed shared
  // sidecar first leaves every bottle network it joined.
  const ownNets = new Set(networks.map((n) => n.name));
  for (const c of snapshot.containers) {
    if (!isOurs(c.labels, opts.instance) || c.labels[L.kind] !== 'shared') continue;
    const own = containers.includes(c);
    for (const net of Object.keys(c.networks).sort()) {
      if (own ? ownNets.has(net) : !ownNets.has(net)) continue;
      ctrIds.push(acts.add({ kind: 'disconnect', resource: { type: 'container', name: c.name }, cause: own ? `leaves ${net} before it is removed` : `${unit} no longer declared`, networkName: net }).id);
    }
  }
  // The machine goes first: it is what uses the sidecars.
  for (const m of snapshot.machines ?? []) {
    if (m.hasLabels && mine(m.labels)) ctrIds.push(acts.add({ kind: 'remove', resource: { type: 'machine', name: m.name }, cause }).id);
  }
  const roleOrder = (c: ObservedContainer) => (c.labels[L.role] === 'agent' ? 0 : 1);
  for (const c of [...containers].sort((a, b) => roleOrder(a) - roleOrder(b) || a.name.localeCompare(b.name))) {
    ctrIds.push(acts.add({ kind: 'remove', resource: { type: 'container', name: c.name }, cause }).id);
  }
  const roleOrderN = (n: ObservedNetwork) => (n.labels[L.role] === 'network' ? 1 : 0);
  for (const n of [...networks].sort((a, b) => roleOrderN(a) - roleOrderN(b) || a.name.localeCompare(b.name))) {
    acts.add({ kind: 'remove', resource: { type: 'network', name: n.name }, cause, after: ctrIds });
  }
  return {
    unit,
    kind: unitKind(unit),
    name: unitName(unit),
    source: inv?.source?.file,
    revision: input.load.revision ?? inv?.source?.revision, // the revision that no longer declares it
    state: 'removed',
    actions: acts.list,
    subnets: {},
    removeUnit: true,
  };
}

/** Which unit may use each desired container name; a name two bottles render to goes to the one that has it. */
function nameClaims(input: PlanInput): Map<string, string> {
  const claims = new Map<string, string[]>();
  for (const d of input.desired.values()) {
    for (const c of d.containers) claims.set(c.name, [...(claims.get(c.name) ?? []), d.unit]);
  }
  const owner = new Map<string, string>();
  const observed = new Map(input.snapshot.containers.map((c) => [c.name, c.labels[L.bottle]] as const));
  for (const [name, units] of claims) {
    const has = observed.get(name);
    owner.set(name, units.includes(has ?? '') ? has! : [...units].sort()[0]!);
  }
  return owner;
}

/** Subnet for every desired network: observed > user's > recorded > newly allocated. */
function allocateSubnets(input: PlanInput): Map<string, { subnet?: string; error?: string }> {
  const { desired, snapshot, inventories, opts } = input;
  const out = new Map<string, { subnet?: string; error?: string }>();
  const byName = groupBy(snapshot.networks, (n) => n.name);
  const used: string[] = [...opts.hostSubnets];
  for (const n of snapshot.networks) used.push(...n.subnets);
  const recorded = new Map<string, string>();
  for (const inv of inventories.values()) for (const [net, s] of Object.entries(inv.subnets)) recorded.set(net, s);
  // Recorded subnets of networks that do not exist right now stay reserved for their owner.
  for (const [net, s] of recorded) if (!byName.has(net)) used.push(s);
  const reserve = (net: string, s: string) => {
    if (!used.includes(s)) used.push(s);
    out.set(net, { subnet: s });
  };

  const pending: { name: string; prefix: number }[] = [];
  for (const d of [...desired.values()].sort((a, b) => a.unit.localeCompare(b.unit))) {
    for (const n of d.networks) {
      const obs = (byName.get(n.name) ?? []).find((o) => isOurs(o.labels, opts.instance));
      if (n.fixedSubnet) {
        const clash = snapshot.networks.find((o) => o.name !== n.name && o.subnets.some((s) => overlaps(s, n.fixedSubnet!)));
        out.set(n.name, clash
          ? { error: `spec.network.subnet ${n.fixedSubnet} overlaps network ${clash.name} (${clash.subnets.join(', ')})` }
          : { subnet: n.fixedSubnet });
      } else if (obs?.subnets[0]) {
        out.set(n.name, { subnet: obs.subnets[0] });
      } else {
        const rec = recorded.get(n.name);
        const others = snapshot.networks.filter((o) => o.name !== n.name).flatMap((o) => o.subnets);
        if (rec && !others.some((s) => overlaps(s, rec)) && !opts.hostSubnets.some((s) => overlaps(s, rec))) {
          out.set(n.name, { subnet: rec });
        } else if (n.deriveFrom) {
          const derived = deriveSubnet(n.deriveFrom, used.filter((u) => u !== rec));
          if (derived) reserve(n.name, derived);
          else out.set(n.name, { error: 'no free 192.168.X.0/24 left for the bottle network' });
        } else {
          pending.push({ name: n.name, prefix: n.allocPrefix });
        }
      }
    }
  }
  for (const p of pending) {
    const s = allocate(opts.subnetPool, p.prefix, used);
    if (s) {
      used.push(s);
      out.set(p.name, { subnet: s });
    } else {
      out.set(p.name, { error: `no free /${p.prefix} left in --subnet-pool ${opts.subnetPool}` });
    }
  }
  return out;
}

interface Resolution {
  env: Record<string, string>;
  /** A placeholder cannot be resolved until a sidecar changed in this pass runs. */
  deferred: boolean;
  missing: string[];
}

function resolveEnv(
  c: Pick<DesiredContainer, 'env' | 'placeholders'>,
  d: DesiredUnit,
  ctrsByName: Map<string, ObservedContainer>,
  changing: Set<string>,
  publishHost: string,
): Resolution {
  let deferred = false;
  const missing: string[] = [];
  const value = (ref: DesiredContainer['placeholders'][number]): string | undefined => {
    const target = d.containers.find((x) => x.name === ref.target);
    if (!target) return undefined;
    if (ref.field === 'host') return publishHost;
    if (ref.field === 'ip' && target.primary.ip) return target.primary.ip; // pinned: known now
    if (changing.has(target.name)) {
      deferred = true;
      return undefined;
    }
    const o = ctrsByName.get(target.name);
    if (ref.field === 'ip') return o?.networks[target.primary.network]?.ip;
    const p = o?.ports.find((x) => x.containerPort === ref.port && x.hostPort && (x.hostIp === publishHost || !x.hostIp));
    return p?.hostPort ? String(p.hostPort) : undefined;
  };
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.env)) {
    env[k] = v.replace(/\$\{sidecar\.[^}]+\}/g, (tok) => {
      const ref = c.placeholders.find((p) => p.token === tok);
      const val = ref ? value(ref) : undefined;
      if (val === undefined) {
        if (!deferred) missing.push(tok);
        return tok;
      }
      return val;
    });
  }
  return { env, deferred: deferred || missing.length > 0, missing };
}

function planUnit(
  d: DesiredUnit,
  inv: Inventory | undefined,
  input: PlanInput,
  ctrsByName: Map<string, ObservedContainer>,
  netsByName: Map<string, ObservedNetwork[]>,
  subnets: Map<string, { subnet?: string; error?: string }>,
  claims: Map<string, string>,
): UnitPlan {
  const { opts, snapshot } = input;
  const base: UnitPlan = {
    unit: d.unit,
    kind: d.kind,
    name: d.name,
    source: d.origin.file,
    revision: d.origin.revision,
    state: 'in-sync',
    actions: [],
    subnets: {},
    desired: d,
  };
  const hold = (reason: string, message: string, failure = true): UnitPlan => heldUnit(d.unit, inv, { reason, message, failure }, d);

  if (d.suspend) return hold('Suspended', 'spec.suspend is true: nothing of this bottle is touched', false);
  if (d.machine && !snapshot.machines) return hold('SmolvmUnavailable', snapshot.machineError ?? 'smolvm machines could not be listed');
  const missingShared = d.uses.filter((n) => !input.desired.has(`shared.${n}`));
  if (missingShared.length) return hold('SharedSidecarMissing', `uses ${missingShared.join(', ')}, which no SharedSidecar document declares: not applied (its running resources are left alone)`);

  const mine = ownedBy(d.unit, opts.instance);

  // Collisions first: a foreign resource with one of our names blocks the bottle, untouched.
  for (const n of d.networks) {
    const foreign = (netsByName.get(n.name) ?? []).find((o) => !mine(o.labels));
    if (foreign) return hold('NameCollision', `network ${n.name} exists and is not managed by this bottled instance (${ownerText(foreign.labels)})`);
  }
  for (const c of d.containers) {
    const o = ctrsByName.get(c.name);
    if (o && !mine(o.labels)) return hold('NameCollision', `container ${c.name} exists and is not managed by this bottled instance (${ownerText(o.labels)})`);
    if (claims.get(c.name) !== d.unit) return hold('NameCollision', `container name ${c.name} is also the name of a resource of bottle ${claims.get(c.name)}`);
  }
  const machines = new Map((snapshot.machines ?? []).map((m) => [m.name, m] as const));
  if (d.machine) {
    const o = machines.get(d.machine.name);
    if (o && !mine(o.labels)) return hold('NameCollision', `machine ${d.machine.name} exists and is not managed by this bottled instance (${o.hasLabels ? ownerText(o.labels) : 'it has no labels'})`);
    for (const [k, v] of Object.entries(d.machine.secretEnv)) {
      if (input.secretDigest(v) === undefined) return hold('SecretMissing', `${d.machine.name}: secretEnv ${k} names ${v}, which is not set in the environment or --secrets-file`);
    }
  }
  for (const c of d.containers) {
    for (const [k, v] of Object.entries(c.secretEnv)) {
      if (input.secretDigest(v) === undefined) return hold('SecretMissing', `${c.name}: secretEnv ${k} names ${v}, which is not set in the environment or --secrets-file`);
    }
    for (const ext of c.externalNetworks) {
      if (!netsByName.has(ext)) return hold('NetworkMissing', `agent.networks: network ${ext} does not exist (bottled never creates it)`);
    }
  }

  const acts = new ActionList();
  const netIds: number[] = [];
  let recreateAll = false;
  const unitHashes: string[] = [];

  for (const n of d.networks) {
    const s = subnets.get(n.name);
    if (!s?.subnet) return hold('SubnetUnavailable', s?.error ?? `no subnet for ${n.name}`);
    base.subnets[n.name] = s.subnet;
    const pinned = d.containers.flatMap((c) => (c.primary.network === n.name && c.primary.ip ? [c.primary.ip] : []));
    const ipRange = dynamicRange(s.subnet, pinned);
    const config = networkConfig(n, s.subnet, ipRange);
    const hash = configHash(config);
    unitHashes.push(hash);
    const payload = { desired: n, subnet: s.subnet, gateway: gatewayOf(s.subnet), ipRange, hash, config };
    const obs = (netsByName.get(n.name) ?? [])[0];
    if (!obs) {
      netIds.push(acts.add({ kind: 'create', resource: { type: 'network', name: n.name }, cause: 'not found', network: payload }).id);
      continue;
    }
    if (!inv?.resources[n.name]) {
      acts.add({ kind: 'adopt', resource: { type: 'network', name: n.name }, cause: 'labelled as ours, missing from the inventory', adopt: { type: 'network', role: n.role, specHash: obs.labels[L.specHash] } });
    }
    if (obs.labels[L.specHash] !== hash) {
      recreateAll = true;
      const why = obs.subnets[0] !== s.subnet ? `subnet ${obs.subnets.join(',')} -> ${s.subnet}` : 'network settings changed';
      // Containers must leave the network first: ours are removed now and recreated below; shared
      // sidecars are disconnected and rejoin it below.
      for (const c of snapshot.containers) {
        if (!c.networks[n.name]) continue;
        if (mine(c.labels)) acts.add({ kind: 'remove', resource: { type: 'container', name: c.name }, cause: `its network ${n.name} is recreated` });
        else if (isOurs(c.labels, opts.instance) && c.labels[L.kind] === 'shared') {
          acts.add({ kind: 'disconnect', resource: { type: 'container', name: c.name }, cause: `leaves ${n.name}, which is recreated`, networkName: n.name });
        }
      }
      netIds.push(acts.add({ kind: 'recreate', resource: { type: 'network', name: n.name }, cause: why, network: payload }).id);
    }
  }

  // Shared sidecars join the bottle network before anything of the bottle runs; those no longer used leave.
  if (d.kind === 'bottle') planSharedAttachments(acts, d, input, ctrsByName, netIds, recreateAll);

  // Containers of this bottle that are no longer declared go before anything new needs their address.
  const desiredNames = new Set(d.containers.map((c) => c.name));
  for (const o of snapshot.containers) {
    if (mine(o.labels) && !desiredNames.has(o.name) && !acts.lastOf(o.name)) {
      acts.add({ kind: 'remove', resource: { type: 'container', name: o.name }, cause: 'no longer declared in the bottle' });
    }
  }

  // A container holding another one's pinned address (Docker does not reserve the address of a
  // stopped container) leaves that network first and rejoins it below with a dynamic address.
  const pinnedBy = new Map(d.containers.filter((c) => c.primary.ip).map((c) => [`${c.primary.network}/${c.primary.ip}`, c.name] as const));
  const squatters = new Set<string>();
  for (const c of d.containers) {
    const o = recreateAll ? undefined : ctrsByName.get(c.name);
    const ip = o?.networks[c.primary.network]?.ip;
    const owner = ip ? pinnedBy.get(`${c.primary.network}/${ip}`) : undefined;
    if (o && owner && owner !== c.name) {
      squatters.add(c.name);
      acts.add({ kind: 'disconnect', resource: { type: 'container', name: c.name }, cause: `it holds ${ip}, pinned for ${shortName(owner, d)}`, networkName: c.primary.network, after: netIds });
    }
  }

  const existingNetworkIds = new Set(snapshot.networks.map((n) => n.id));
  const changing = new Set<string>(); // containers created, recreated or started in this pass
  const replaced = new Set<string>(); // containers created or recreated (new endpoints) in this pass
  const withCheck = new Set(d.containers.filter((c) => c.healthcheck).map((c) => c.name));

  for (const c of d.containers) {
    const res = resolveEnv(c, d, ctrsByName, changing, opts.publishHost);
    const secretDigests = Object.fromEntries(Object.entries(c.secretEnv).map(([k, v]) => [k, input.secretDigest(v)!]));
    const config = res.deferred ? undefined : containerConfig(c, res.env, secretDigests, opts.publishHost);
    const hash = config ? configHash(config) : undefined;
    if (hash) unitHashes.push(hash);
    const o = recreateAll ? undefined : ctrsByName.get(c.name);
    const imageId = snapshot.images.get(normalizeImageRef(c.image));
    const waitFor = c.waitFor.filter((w) => desiredNames.has(w));
    const waitIds = waitFor.map((w) => acts.lastOf(w)).filter((x): x is number => !!x);
    const waitNote = waitFor.some((w) => withCheck.has(w)) ? ` (after ${waitFor.map((w) => shortName(w, d)).join(', ')} ${waitFor.length > 1 ? 'are' : 'is'} healthy)` : '';
    const needImage = () => (imageId ? undefined : hold('ImageMissing', `image ${c.image} not found on this engine (bottled does not pull: build or pull it first)`));

    // Create or recreate: files first, the container on its first network, connect the rest, start.
    const replace = (kind: 'create' | 'recreate', cause: string, verifyHash?: string) => {
      acts.add({
        kind,
        resource: { type: 'container', name: c.name },
        cause,
        container: { desired: c, hash, config, verifyHash },
        fileWrites: c.files,
        after: [...netIds, ...waitIds],
        waitFor,
      });
      addConnects(acts, c, [...c.managedExtras, ...c.externalNetworks.map((n) => ({ network: n, aliases: [] }))], 'joins');
      acts.add({ kind: 'start', resource: { type: 'container', name: c.name }, cause: kind === 'create' ? 'new container' : 'recreated', implicit: true, waitFor });
      changing.add(c.name);
      replaced.add(c.name);
    };

    if (!o) {
      const miss = needImage();
      if (miss) return miss;
      if (res.missing.length && !res.deferred) return hold('DependencyNotReady', `${c.name}: cannot resolve ${res.missing.join(', ')}`);
      replace('create', `${c.image} on ${c.primary.network}${c.primary.aliases.length ? ` as ${c.primary.aliases.join(', ')}` : ''}${waitNote}`);
      continue;
    }

    if (!inv?.resources[c.name]) {
      // Files already on disk with the desired content count as delivered: adopting never signals.
      const onDisk = Object.fromEntries(c.files.filter((f) => input.fileHashes.get(f.hostPath) === f.hash).map((f) => [f.path, f.hash]));
      acts.add({ kind: 'adopt', resource: { type: 'container', name: c.name }, cause: 'labelled as ours, missing from the inventory', adopt: { type: 'container', role: c.role, specHash: o.labels[L.specHash], delivered: onDisk } });
    }

    let recreateCause: string | undefined;
    let verifyHash: string | undefined;
    if (res.deferred && res.missing.length === 0) {
      recreateCause = `if its environment changes: ${c.placeholders.map((p) => p.token).join(', ')} may change in this pass`;
      verifyHash = o.labels[L.specHash] ?? '';
    } else if (hash && o.labels[L.specHash] !== hash) {
      recreateCause = describeConfigChange(inv?.resources[c.name]?.applied, config!);
    } else if (imageId && o.imageId !== imageId) {
      recreateCause = `image ${c.image} changed (${shortId(o.imageId)} -> ${shortId(imageId)})`;
    } else if (Object.values(o.networks).some((n) => n.networkId && !existingNetworkIds.has(n.networkId))) {
      recreateCause = 'a network it was attached to no longer exists';
    } else if (o.state === 'dead' || o.state === 'removing') {
      recreateCause = `found ${o.state}`;
    }
    if (recreateCause) {
      const miss = needImage();
      if (miss) return miss;
      replace('recreate', recreateCause, verifyHash);
      continue;
    }

    // Same create-time configuration: fix what can be fixed in place.
    const running = o.state === 'running' || o.state === 'restarting' || o.state === 'paused';
    planFiles(acts, c, inv, input, running);
    const missingNets = [c.primary, ...c.managedExtras].filter((ep) => !o.networks[ep.network] || (squatters.has(c.name) && ep === c.primary));
    addConnects(acts, c, missingNets, 'not connected');
    addConnects(acts, c, c.externalNetworks.filter((n) => !o.networks[n]).map((n) => ({ network: n, aliases: [] })), 'agent.networks adds');
    for (const n of inv?.resources[c.name]?.extraNetworks ?? []) {
      if (!c.externalNetworks.includes(n) && o.networks[n]) {
        acts.add({ kind: 'disconnect', resource: { type: 'container', name: c.name }, cause: `${n} no longer in agent.networks`, networkName: n });
      }
    }
    if (!running) {
      const how = o.state === 'exited' ? `found exited, code ${o.exitCode ?? '?'}` : `found ${o.state}`;
      acts.add({ kind: 'start', resource: { type: 'container', name: c.name }, cause: how, waitFor, after: waitIds });
      changing.add(c.name);
    }
  }

  // A (re)created shared sidecar rejoins, in this pass, every bottle network that uses it.
  if (d.kind === 'shared') {
    const c = d.containers[0]!;
    if (replaced.has(c.name)) {
      for (const b of [...input.desired.values()].filter((x) => x.kind === 'bottle' && x.uses.includes(d.name)).sort((x, y) => x.unit.localeCompare(y.unit))) {
        const net = b.networks[0]!.name;
        if (!netsByName.has(net)) continue; // a new bottle connects it itself
        acts.add({ kind: 'connect', resource: { type: 'container', name: c.name }, cause: `rejoins ${net} as ${d.alias} (used by ${b.name})`, endpoint: { network: net, aliases: [d.alias ?? d.name] }, replaceStale: true });
      }
    }
  }

  if (d.machine) {
    const held = planMachine(acts, d, d.machine, machines.get(d.machine.name), inv, input, ctrsByName, changing, unitHashes);
    if (held) return hold(held.reason, held.message);
  }

  // Networks of this bottle that are no longer needed (e.g. no sidecar has egress any more).
  const desiredNets = new Set(d.networks.map((n) => n.name));
  const ctrActionIds = acts.list.filter((a) => a.resource.type !== 'network').map((a) => a.id);
  for (const n of snapshot.networks) {
    if (mine(n.labels) && !desiredNets.has(n.name)) {
      acts.add({ kind: 'remove', resource: { type: 'network', name: n.name }, cause: 'no longer needed by the bottle', after: ctrActionIds });
    }
  }

  base.actions = acts.list;
  base.state = acts.list.length ? 'changes' : 'in-sync';
  base.specHash = sha256(unitHashes.join(','));
  return base;
}

function planFiles(
  acts: ActionList,
  c: DesiredContainer,
  inv: Inventory | undefined,
  input: PlanInput,
  running: boolean,
): void {
  const delivered = inv?.delivered[c.name] ?? {};
  const pending: { kind: ActionKind; key: string; files: DesiredFile[]; signal?: string; exec?: string[] }[] = [];
  for (const f of c.files) {
    const onDisk = input.fileHashes.get(f.hostPath);
    if (onDisk !== f.hash) {
      const action =
        onDisk === undefined && f.onChange.type !== 'recreate' ? ', then restart (a new file must be bound again)'
        : f.onChange.type === 'signal' ? `, then ${f.onChange.signal}` : f.onChange.type === 'exec' ? ', then exec' : f.onChange.type === 'restart' ? ', then restart' : '';
      acts.add({
        kind: 'rewrite-file',
        resource: { type: 'file', name: `${c.name}:${f.path}` },
        cause: `${onDisk === undefined ? 'file missing on host' : 'content changed'}: rewrite in place${action}`,
        file: f,
      });
    }
    if (f.onChange.type === 'recreate') continue;
    // Delivered = the running container has been told about this content. An adopted container
    // with the right content already on disk is taken as told.
    const told = delivered[f.path] ?? (inv?.resources[c.name] ? undefined : onDisk);
    if (told === f.hash || !running) continue;
    // A file that was missing on the host is written to a new inode, which a running container's
    // single-file bind mount cannot see: only a restart binds it again.
    const rebind = onDisk === undefined;
    const type = rebind ? 'restart' : f.onChange.type;
    const key = type === 'signal' && f.onChange.type === 'signal' ? `signal:${f.onChange.signal}` : type === 'exec' && f.onChange.type === 'exec' ? `exec:${JSON.stringify(f.onChange.command)}` : 'restart';
    const existing = pending.find((p) => p.key === key);
    if (existing) existing.files.push(f);
    else pending.push({
      kind: type as ActionKind,
      key,
      files: [f],
      signal: type === 'signal' && f.onChange.type === 'signal' ? f.onChange.signal : undefined,
      exec: type === 'exec' && f.onChange.type === 'exec' ? f.onChange.command : undefined,
    });
  }
  // A restart delivers everything; signals and execs are then pointless.
  const restart = pending.find((p) => p.kind === 'restart');
  const list = restart ? [{ ...restart, files: pending.flatMap((p) => p.files) }] : pending;
  for (const p of list) {
    const paths = p.files.map((f) => f.path).join(', ');
    acts.add({
      kind: p.kind,
      resource: { type: 'container', name: c.name },
      cause: `${paths} changed`,
      delivers: p.files,
      signal: p.signal,
      exec: p.exec,
    });
  }
}

function addConnects(acts: ActionList, c: DesiredContainer, eps: { network: string; aliases: string[]; ip?: string }[], why: string): void {
  for (const ep of eps) {
    acts.add({
      kind: 'connect',
      resource: { type: 'container', name: c.name },
      cause: `${why} ${ep.network}${ep.aliases.length ? ` as ${ep.aliases.join(', ')}` : ''}`,
      endpoint: ep,
    });
  }
}

function ownerText(labels: Record<string, string>): string {
  if (labels[L.managedBy] === 'bottled') return `bottled instance ${labels[L.instance] ?? '?'}, bottle ${labels[L.bottle] ?? '?'}`;
  return 'not created by bottled';
}

function shortName(container: string, d: DesiredUnit): string {
  return d.containers.find((c) => c.name === container)?.component ?? container;
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) m.set(key(i), [...(m.get(key(i)) ?? []), i]);
  return m;
}

/** smolvm topology: the first sidecar sits at .2 of the bottle subnet unless it pins an address. */
function withDefaultAddresses(d: DesiredUnit, subnets: Map<string, { subnet?: string }>): DesiredUnit {
  if (!d.machine || !d.containers.length || d.containers[0]!.primary.ip) return d;
  const subnet = subnets.get(d.networks[0]!.name)?.subnet;
  if (!subnet) return d;
  const [first, ...rest] = d.containers;
  return { ...d, containers: [{ ...first!, primary: { ...first!.primary, ip: hostAddress(subnet, 2) } }, ...rest] };
}

/** Plan the agent machine of a smolvm bottle; returns a hold when it cannot be planned. */
function planMachine(
  acts: ActionList,
  d: DesiredUnit,
  m: DesiredMachine,
  o: MachineObserved | undefined,
  inv: Inventory | undefined,
  input: PlanInput,
  ctrsByName: Map<string, ObservedContainer>,
  changing: Set<string>,
  unitHashes: string[],
): { reason: string; message: string } | undefined {
  const { opts } = input;
  // Addresses the machine may reach: each sidecar, and the publish host when ports are published.
  let deferred = false;
  const allow: string[] = [];
  for (const c of d.containers) {
    const ip = c.primary.ip ?? (changing.has(c.name) ? undefined : ctrsByName.get(c.name)?.networks[c.primary.network]?.ip);
    if (!ip) deferred = true;
    else allow.push(`${ip}/32`);
  }
  if (d.containers.some((c) => c.ports.length)) allow.push(`${opts.publishHost}/32`);
  const res = resolveEnv(m, d, ctrsByName, changing, opts.publishHost);
  deferred ||= res.deferred;
  const secretDigests = Object.fromEntries(Object.entries(m.secretEnv).map(([k, v]) => [k, input.secretDigest(v)!]));
  const fromStat = m.from ? input.fromStats?.get(m.from) : undefined;
  if (m.from && input.fromStats && fromStat === undefined) return { reason: 'ArtifactMissing', message: `agent.from ${m.from} does not exist` };
  const config = deferred ? undefined : machineConfig(m, res.env, secretDigests, allow, fromStat);
  const hash = config ? configHash(config) : undefined;
  if (hash) unitHashes.push(hash);
  const waitIds = m.waitFor.map((w) => acts.lastOf(w)).filter((x): x is number => !!x);
  const payload = { desired: m, hash, config };
  // After a (re)create the copy itself is the delivery: the machine starts with the content.
  const copyAll = (why: string) => {
    for (const f of m.files) {
      acts.add({ kind: 'rewrite-file', resource: { type: 'file', name: `${m.name}:${f.path}` }, cause: why, file: f, intoMachine: m.name, delivers: [f] });
    }
  };

  if (!o) {
    acts.add({ kind: 'create', resource: { type: 'machine', name: m.name }, cause: `${m.image ?? m.from} with access to ${m.waitFor.length} sidecar${m.waitFor.length === 1 ? '' : 's'}`, machine: payload, after: waitIds, waitFor: m.waitFor });
    acts.add({ kind: 'start', resource: { type: 'machine', name: m.name }, cause: 'new machine', implicit: true, machine: { desired: m } });
    copyAll('copy in after start');
    return undefined;
  }
  if (!inv?.resources[m.name]) {
    acts.add({ kind: 'adopt', resource: { type: 'machine', name: m.name }, cause: 'labelled as ours, missing from the inventory', adopt: { type: 'machine', role: 'agent', specHash: o.labels[L.specHash] } });
  }
  let recreate: string | undefined;
  let verifyHash: string | undefined;
  if (deferred && res.missing.length === 0) {
    recreate = 'if its sidecar addresses or ports change in this pass';
    verifyHash = o.labels[L.specHash] ?? '';
  } else if (hash && o.labels[L.specHash] !== hash) {
    recreate = describeConfigChange(inv?.resources[m.name]?.applied, config!);
  }
  if (recreate) {
    acts.add({ kind: 'recreate', resource: { type: 'machine', name: m.name }, cause: recreate, machine: { ...payload, verifyHash }, after: waitIds, waitFor: m.waitFor });
    acts.add({ kind: 'start', resource: { type: 'machine', name: m.name }, cause: 'recreated', implicit: true, machine: { desired: m } });
    copyAll('copy in after recreate');
    return undefined;
  }
  if (o.state !== 'running') {
    // A stopped, crashed (stale pid) or unreachable machine: stop (kills a zombie), then start.
    const how = o.state === 'stopped' && o.stalePid ? 'found stopped with a stale pid (crashed)' : `found ${o.rawState}`;
    acts.add({ kind: 'restart', resource: { type: 'machine', name: m.name }, cause: how, after: waitIds, machine: { desired: m } });
  }
  const delivered = inv?.delivered[m.name] ?? {};
  const execs = new Map<string, { cmd: string[]; files: DesiredFile[] }>();
  let restart: DesiredFile[] | undefined;
  for (const f of m.files) {
    if (delivered[f.path] === f.hash) continue;
    const then = f.onChange.type === 'exec' ? ', then exec' : f.onChange.type === 'restart' ? ', then restart' : '';
    acts.add({ kind: 'rewrite-file', resource: { type: 'file', name: `${m.name}:${f.path}` }, cause: `content changed: copy in${then}`, file: f, intoMachine: m.name, delivers: f.onChange.type === 'recreate' ? [f] : undefined });
    if (f.onChange.type === 'exec') {
      const key = JSON.stringify(f.onChange.command);
      execs.set(key, { cmd: f.onChange.command, files: [...(execs.get(key)?.files ?? []), f] });
    } else if (f.onChange.type === 'restart') restart = [...(restart ?? []), f];
  }
  if (restart) {
    acts.add({ kind: 'restart', resource: { type: 'machine', name: m.name }, cause: `${restart.map((f) => f.path).join(', ')} changed`, delivers: [...restart, ...[...execs.values()].flatMap((e) => e.files)], machine: { desired: m } });
  } else {
    for (const e of execs.values()) acts.add({ kind: 'exec', resource: { type: 'machine', name: m.name }, cause: `${e.files.map((f) => f.path).join(', ')} changed`, exec: e.cmd, delivers: e.files });
  }
  return undefined;
}

/** Connect the shared sidecars a bottle uses to its network (under their alias); disconnect the rest. */
function planSharedAttachments(
  acts: ActionList,
  d: DesiredUnit,
  input: PlanInput,
  ctrsByName: Map<string, ObservedContainer>,
  netIds: number[],
  networkRecreated: boolean,
): void {
  const net = d.networks[0]!.name;
  const used = new Set<string>();
  for (const n of d.uses) {
    const s = input.desired.get(`shared.${n}`)!;
    const c = s.containers[0]!;
    used.add(c.name);
    const o = ctrsByName.get(c.name);
    if (o?.networks[net] && !networkRecreated) continue;
    acts.add({
      kind: 'connect',
      resource: { type: 'container', name: c.name },
      cause: `shared sidecar joins ${net} as ${s.alias}`,
      endpoint: { network: net, aliases: [s.alias ?? s.name] },
      replaceStale: true,
      waitFor: [c.name],
      after: netIds,
    });
  }
  for (const o of ctrsByName.values()) {
    if (networkRecreated || !isOurs(o.labels, input.opts.instance) || o.labels[L.kind] !== 'shared' || used.has(o.name) || !o.networks[net]) continue;
    acts.add({ kind: 'disconnect', resource: { type: 'container', name: o.name }, cause: `${d.name} no longer uses ${o.labels[L.bottle]}`, networkName: net });
  }
}
