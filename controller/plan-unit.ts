import { resourceKey, type Inventory } from '../state/inventory.js';
import { sha256 } from '../state/fsutil.js';
import type { DesiredUnit } from './desired.js';
import { configHash, networkConfig } from './hash.js';
import { L } from './labels.js';
import { ActionList, adoptCause, heldUnit } from './plan-actions.js';
import { planContainers } from '../resources/docker/plan-containers.js';
import type { SnapshotIndex } from './plan-index.js';
import { agentBackend } from '../resources/backends.js';
import { guards } from './plan-guards.js';
import { foreignEndpoints } from './plan-removal.js';
import { planSharedAttachments, planSharedRejoin } from './plan-shared.js';
import type { SubnetChoice } from './plan-subnets.js';
import type { PlanInput } from './plan-input.js';
import type { UnitPlan } from './plan-types.js';
import { dynamicRange, gatewayOf } from './subnets.js';
import type { UnitKey } from './unit-key.js';
import { REASONS, type Reason } from './reasons.js';
import { sharedJoinWidenings, widenings } from './seal.js';
import { names } from './names.js';

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
  // Said also when the unit is held: a held change applies later, when nobody looks at plan.
  const widens = widenings(d, inv);
  const hold = (reason: Reason, message: string, failure = REASONS[reason].failure): UnitPlan => ({ ...heldUnit(d.unit, inv, { reason, message, failure }, d), ...(widens.length && { widens }) });
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
        if (acts.lastOf(c.name)) continue; // already leaving for another of its networks
        if (index.mine(d.unit, c)) acts.add({ kind: 'remove', on: 'container', resource: { type: 'container', name: c.name }, cause: `its network ${n.name} is recreated` });
        else if (index.isOurShared(c)) acts.add({ kind: 'disconnect', on: 'container', resource: { type: 'container', name: c.name }, cause: `leaves ${n.name}, which is recreated`, networkName: n.name });
      }
      netIds.push(acts.add({ kind: 'recreate', on: 'network', resource: { type: 'network', name: n.name }, cause: why, network: payload, networkId: obs.id }).id);
    }
  }

  if (recreateAll) {
    // Every container is created anew, also one that is not on the recreated network (the
    // agent, when only the egress network changes): it goes first, or its create meets its name.
    for (const c of [...index.ownedBy(d.unit).containers, ...index.adoptableBy(d.unit).containers]) {
      if (!acts.lastOf(c.name)) acts.add({ kind: 'remove', on: 'container', resource: { type: 'container', name: c.name }, cause: 'the bottle\'s networks are recreated: every container is created anew' });
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
  const sharedNames = new Map(d.uses.map((n) => [names.shared(input.opts.prefix, n), n] as const));
  // A running bottle whose network stays, joined by a SharedSidecar it did not use: a new `uses`
  // (the joins after a network is made or made again are those of what it already used).
  const netChanges = acts.list.some((a) => a.on === 'network' && (a.kind === 'create' || a.kind === 'recreate'));
  const runs = !!inv && Object.keys(inv.resources).length > 0;
  const joined = runs && !netChanges ? [...new Set(acts.list.filter((a) => (a.kind === 'connect' || a.kind === 'join') && sharedNames.has(a.resource.name)).map((a) => sharedNames.get(a.resource.name)!))] : [];
  const all = acts.list.length ? [...widens, ...sharedJoinWidenings(joined)] : [];
  if (all.length) base.widens = all;
  base.specHash = sha256(unitHashes.join(','));
  return base;
}

/** The unit as its agent backend places it once subnets are chosen (Docker: as rendered). */
export function withDefaultAddresses(d: DesiredUnit, subnets: Map<string, SubnetChoice>): DesiredUnit {
  const agent = d.workload ? agentBackend(d.workload.backend) : undefined;
  return agent?.withAddresses ? agent.withAddresses(d, subnets) : d;
}
