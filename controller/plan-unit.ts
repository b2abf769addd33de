import { resourceKey, type Inventory } from '../state/inventory.js';
import { sha256 } from '../state/fsutil.js';
import type { DesiredUnit } from './desired.js';
import { configHash, networkConfig } from './hash.js';
import { L } from './labels.js';
import { ActionList, adoptCause, heldUnit } from './plan-actions.js';
import { planContainers } from '../resources/docker/plan-containers.js';
import type { SnapshotIndex } from './plan-index.js';
import { agentBackend } from '../resources/backends.js';
import { foreignEndpoints } from './plan-removal.js';
import { planSharedAttachments, planSharedRejoin } from './plan-shared.js';
import type { SubnetChoice } from './plan-subnets.js';
import type { PlanInput } from './plan-input.js';
import type { Hold, UnitPlan } from './plan-types.js';
import { dynamicRange, gatewayOf } from './subnets.js';
import { unitKey, type UnitKey } from './unit-key.js';
import { DOCKER_NETWORKS } from '../specs/fields.js';
import { REASONS, type Reason } from './reasons.js';

/** The actions that bring one declared unit from what runs to what its spec says. */
export function planUnit(
  d: DesiredUnit,
  inv: Inventory | undefined,
  input: PlanInput,
  index: SnapshotIndex,
  subnets: Map<string, SubnetChoice>,
  claims: Map<string, UnitKey>,
): UnitPlan {
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
  const hold = (reason: Reason, message: string, failure = REASONS[reason].failure): UnitPlan => heldUnit(d.unit, inv, { reason, message, failure }, d);
  const guard = guards(d, input, index, claims);
  if (guard) return hold(guard.reason, guard.message, guard.failure);

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
    const obs = (index.networksByName.get(n.name) ?? []).find((o) => index.mine(d.unit, o));
    if (!obs) {
      netIds.push(acts.add({ kind: 'create', on: 'network', resource: { type: 'network', name: n.name }, cause: 'not found', network: payload }).id);
      continue;
    }
    const claim = index.claimOf(obs);
    if (!inv?.resources[resourceKey('network', n.name)] || claim.kind === 'adoptable') {
      acts.add({ kind: 'adopt', on: 'inventory', resource: { type: 'network', name: n.name }, cause: adoptCause(claim), adopt: { type: 'network', role: n.role, specHash: obs.labels[L.specHash], owner: claim.kind === 'adoptable' ? claim.owner : undefined, id: obs.id } });
    }
    if (obs.labels[L.specHash] !== hash) {
      const why = obs.subnets[0] !== s.subnet ? `subnet ${obs.subnets.join(',')} -> ${s.subnet}` : 'network settings changed';
      // Check what would block the recreate before removing anything: a change that cannot
      // complete must not take the bottle down.
      const blocked = foreignEndpoints(d.unit, [n], index);
      if (blocked) return hold('NetworkInUse', `${n.name} must be recreated (${why}), but ${blocked}; nothing was changed`);
      recreateAll = true;
      // Containers must leave the network first: ours are removed now and recreated below; shared
      // sidecars are disconnected and rejoin it below.
      for (const c of index.containersOnNetwork.get(n.name) ?? []) {
        if (index.mine(d.unit, c)) acts.add({ kind: 'remove', on: 'container', resource: { type: 'container', name: c.name }, cause: `its network ${n.name} is recreated` });
        else if (index.isOurShared(c)) acts.add({ kind: 'disconnect', on: 'container', resource: { type: 'container', name: c.name }, cause: `leaves ${n.name}, which is recreated`, networkName: n.name });
      }
      netIds.push(acts.add({ kind: 'recreate', on: 'network', resource: { type: 'network', name: n.name }, cause: why, network: payload, networkId: obs.id }).id);
    }
  }

  // Shared sidecars join the bottle network before anything of the bottle runs; those no longer used leave.
  if (d.kind === 'bottle') {
    const blocked = planSharedAttachments(acts, d, input, index, netIds, recreateAll);
    if (blocked) return hold(blocked.reason, blocked.message);
  }

  const replaced = planContainers(acts, d, inv, input, index, { netIds, recreateAll, unitHashes });
  if ('reason' in replaced) return hold(replaced.reason, replaced.message);

  if (d.kind === 'shared') planSharedRejoin(acts, d, input, index, replaced);

  if (d.workload) {
    const held = agentBackend(d.workload.backend)!.plan({ acts, d, w: d.workload, inv, input, index, changed: replaced, unitHashes });
    if (held) return hold(held.reason, held.message, held.failure);
  }

  // Networks of this unit that are no longer needed (e.g. no sidecar has egress any more).
  const desiredNets = new Set(d.networks.map((n) => n.name));
  const stale = [...index.ownedBy(d.unit).networks, ...index.adoptableBy(d.unit).networks].filter((n) => !desiredNets.has(n.name));
  const blocked = foreignEndpoints(d.unit, stale, index);
  if (blocked) return hold('NetworkInUse', `${blocked}; it is no longer needed but is not removed while it is attached`);
  const ctrActionIds = acts.list.filter((a) => a.resource.type !== 'network').map((a) => a.id);
  for (const n of stale) {
    acts.add({ kind: 'remove', on: 'network', resource: { type: 'network', name: n.name }, cause: 'no longer needed by the bottle', after: ctrActionIds, networkId: n.id });
  }

  // Invariant 8 from the other side: nobody else's container sits on the bottle's networks.
  const alerts: string[] = [];
  for (const n of d.networks) {
    if (recreateAll) break;
    const foreign = (index.containersOnNetwork.get(n.name) ?? []).filter((c) => index.claimOf(c).kind === 'foreign');
    if (foreign.length) alerts.push(`network ${n.name} has ${foreign.length === 1 ? 'a container' : 'containers'} attached that ${foreign.length === 1 ? 'is' : 'are'} not part of the bottle (${foreign.map((c) => c.name).sort().join(', ')}): it can reach the agent and answer to its sidecars' names; bottled does not touch it`);
  }
  if (alerts.length) base.alerts = alerts;

  base.actions = acts.list;
  base.state = acts.list.length ? 'changes' : 'in-sync';
  base.specHash = sha256(unitHashes.join(','));
  return base;
}

/** What stops a unit before anything is planned: suspend, collisions, missing inputs. */
function guards(d: DesiredUnit, input: PlanInput, index: SnapshotIndex, claims: Map<string, UnitKey>): Hold | undefined {
  const { snapshot } = input;
  const stop = (reason: Reason, message: string, failure = REASONS[reason].failure): Hold => ({ reason, message, failure });
  if (d.suspend) return stop('Suspended', 'spec.suspend is true: nothing of this bottle is touched', false);
  const agent = d.workload ? agentBackend(d.workload.backend) : undefined;
  if (d.workload) {
    const obs = snapshot.workloads?.get(d.workload.backend);
    if (!agent) return stop('Failed', `backend ${d.workload.backend} is not known to this bottled`);
    if (!obs || obs.error !== undefined) return stop(agent.unavailable, obs?.error ?? `${agent.name} could not be asked what runs`);
  }
  const missingShared = d.uses.filter((n) => !input.desired.has(unitKey.shared(n)));
  if (missingShared.length) return stop('SharedSidecarMissing', `uses ${missingShared.join(', ')}, which no SharedSidecar document declares: not applied (its running resources are left alone)`);

  // Collisions: a resource with one of our names that this unit cannot prove it owns blocks the
  // unit; the other resource is left alone.
  for (const n of d.networks) {
    for (const o of index.networksByName.get(n.name) ?? []) {
      if (!index.mine(d.unit, o)) return stop('NameCollision', `network ${n.name} exists and is not this ${what(d)}'s: ${whyNot(index, o, input)}`);
    }
  }
  for (const c of d.containers) {
    const o = index.containersByName.get(c.name);
    if (o && !index.mine(d.unit, o)) return stop('NameCollision', `container ${c.name} exists and is not this ${what(d)}'s: ${whyNot(index, o, input)}`);
    const claimant = claims.get(c.name);
    if (claimant !== d.unit) return stop('NameCollision', `container name ${c.name} (${roleOf(d, c.name)}) is also the name of the ${roleOf(input.desired.get(claimant!)!, c.name)} of ${describeUnit(claimant!)}: rename one of them`);
  }
  if (d.workload) {
    const w = d.workload;
    const o = index.workloadsByName.get(w.name);
    if (o && !index.mine(d.unit, o)) return stop('NameCollision', `${w.type} ${w.name} exists and is not this bottle's: ${o.labelled ? whyNot(index, o, input) : 'it has no labels'}`);
    for (const [k, v] of Object.entries(w.secretEnv)) {
      if (input.secretDigest(v) === undefined) return stop('SecretMissing', `${w.name}: secretEnv ${k} names ${v}, which is not set in the environment or --secrets-file`);
    }
  }
  for (const c of d.containers) {
    for (const [k, v] of Object.entries(c.secretEnv)) {
      if (input.secretDigest(v) === undefined) return stop('SecretMissing', `${c.name}: secretEnv ${k} names ${v}, which is not set in the environment or --secrets-file`);
    }
    for (const [i, ext] of c.externalNetworks.entries()) {
      const where = locate(d, input, `spec.agent.networks.${i}`);
      const obs = index.networksByName.get(ext)?.[0];
      // Invariant 8: an agent never joins a network bottled manages (its own egress network, or
      // another bottle's), nor Docker's own networks (the validator refuses the names it can).
      if (RESERVED_NETWORKS.has(ext) || obs?.labels[L.managedBy] === 'bottled' || index.networkIds.has(ext)) {
        const owner = obs?.labels[L.managedBy] === 'bottled' ? ` (bottled ${obs.labels[L.role] ?? 'network'} of ${obs.labels[L.kind] === 'shared' ? 'SharedSidecar' : 'bottle'} ${obs.labels[L.bottle] ?? '?'}, instance ${obs.labels[L.instance] ?? '?'})` : '';
        return stop('NetworkForbidden', `${where}agent.networks: ${ext} is a network ${owner ? `bottled manages${owner}` : 'of Docker itself'}: joining it would open the agent's seal (agent.networks is for networks of your own, see the README)`);
      }
      if (!obs) return stop('NetworkMissing', `${where}agent.networks: network ${ext} does not exist (bottled never creates it)`);
      if ((index.networksByName.get(ext) ?? []).length > 1) return stop('NetworkAmbiguous', `${where}agent.networks: more than one network is named ${ext}: bottled connects to none of them`);
    }
  }
  return undefined;
}

const RESERVED_NETWORKS: ReadonlySet<string> = new Set(DOCKER_NETWORKS);

function locate(d: DesiredUnit, input: PlanInput, path: string): string {
  const p = input.load.positions?.get(unitKey.toDocKey(d.unit))?.[path];
  return p ? `${d.origin.file}:${p.line}:${p.col}: ` : '';
}

function whyNot(index: SnapshotIndex, o: Parameters<SnapshotIndex['claimOf']>[0], input: PlanInput): string {
  const claim = index.claimOf(o);
  if (claim.kind === 'foreign') return claim.why;
  // Ours, but another unit's: two units render the same name.
  const other = input.desired.get(claim.unit);
  return `it is the ${other ? roleOf(other, o.name) : 'resource'} of ${describeUnit(claim.unit)}`;
}

function what(d: DesiredUnit): string {
  return d.kind === 'shared' ? 'SharedSidecar' : 'bottle';
}

function describeUnit(unit: UnitKey): string {
  return unitKey.kind(unit) === 'shared' ? `SharedSidecar ${unitKey.name(unit)}` : `bottle ${unitKey.name(unit)}`;
}

function roleOf(d: DesiredUnit, name: string): string {
  const c = d.containers.find((x) => x.name === name);
  if (c?.role === 'sidecar') return `sidecar ${c.component}`;
  if (c?.role === 'agent' || d.workload?.name === name) return 'agent';
  if (c?.role === 'shared') return 'shared sidecar container';
  if (d.networks.some((n) => n.name === name)) return 'network';
  return 'resource';
}

/** The unit as its agent backend places it once subnets are chosen (Docker: as rendered). */
export function withDefaultAddresses(d: DesiredUnit, subnets: Map<string, SubnetChoice>): DesiredUnit {
  const agent = d.workload ? agentBackend(d.workload.backend) : undefined;
  return agent?.withAddresses ? agent.withAddresses(d, subnets) : d;
}
