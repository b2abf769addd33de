import type { ObservedContainer, ObservedNetwork } from '../resources/docker/driver.js';
import type { Inventory } from '../state/inventory.js';
import { L } from './labels.js';
import { ActionList, heldUnit } from './plan-actions.js';
import type { SnapshotIndex } from './plan-index.js';
import type { PlanInput } from './plan-input.js';
import type { UnitPlan } from './plan-types.js';
import { unitKey, type UnitKey } from './unit-key.js';
import { agentBackendOfType, agentBackends } from '../resources/backends.js';

/**
 * A unit no longer declared: remove exactly what it provably owns (machine, then containers,
 * agent first, then networks). Shared sidecars are never stopped by a bottle: they leave its
 * networks; a removed shared sidecar first leaves every bottle network it joined.
 */
export function planRemoval(unit: UnitKey, inv: Inventory | undefined, input: PlanInput, index: SnapshotIndex, why?: string): UnitPlan {
  const owned = index.ownedBy(unit);
  const networks = owned.networks;
  const containers = owned.containers;
  const kind = unitKey.kind(unit);

  // An object the inventory records on a backend that could not be asked is not known to be
  // gone: removing the rest and the inventory would leave it running, unrecorded.
  for (const r of Object.values(inv?.resources ?? {})) {
    const b = agentBackendOfType(r.type);
    const seen = b ? input.snapshot.workloads?.get(b.name) : undefined;
    if (b && (!seen || seen.error !== undefined)) {
      return heldUnit(unit, inv, { reason: b.unavailable, message: `its ${r.type} cannot be removed: ${seen?.error ?? `${b.name} was not asked`}; nothing of it is removed until it can be`, failure: true });
    }
  }

  // A network that still has someone else's container on it cannot be removed: remove nothing
  // rather than leave half a bottle (the foreign container is never touched).
  const blocked = foreignEndpoints(unit, networks, index) ?? agentBackends().map((b) => b.removalBlocked?.(unit, networks, index)).find((x) => x);
  if (blocked) return heldUnit(unit, inv, { reason: 'NetworkInUse', message: `${blocked}: the bottle is not removed while it is attached`, failure: true });

  const acts = new ActionList();
  const ctrIds: number[] = [];
  const cause = why ?? (input.load.elsewhere?.has(unitKey.toDocKey(unit))
    ? `for another host: it does not match --selector ${input.load.selector}`
    : kind === 'shared' ? 'SharedSidecar no longer declared' : 'bottle no longer declared');
  const ownNets = new Set(networks.map((n) => n.name));
  for (const n of networks) {
    for (const c of index.containersOnNetwork.get(n.name) ?? []) {
      if (!containers.includes(c) && index.isOurShared(c)) {
        ctrIds.push(acts.add({ kind: 'disconnect', on: 'container', resource: { type: 'container', name: c.name }, cause: why ? `${unit} ${why}` : `${unit} no longer declared`, networkName: n.name, networkId: n.id }).id);
      }
    }
  }
  for (const c of containers) {
    if (c.labels[L.kind] !== 'shared') continue;
    for (const net of Object.keys(c.networks).sort()) {
      if (ownNets.has(net)) continue;
      ctrIds.push(acts.add({ kind: 'disconnect', on: 'container', resource: { type: 'container', name: c.name }, cause: `leaves ${net} before it is removed`, networkName: net }).id);
    }
  }
  // A backend's shared objects (a Swarm SharedSidecar service) leave the unit's networks first.
  for (const b of agentBackends()) {
    for (const a of b.leaving?.(unit, networks, index) ?? []) ctrIds.push(acts.add(a).id);
  }
  // An agent backend's workload goes first: it is what uses the sidecars. Within it, a higher
  // removal phase waits for the lower ones (a Swarm config for the services that use it).
  const phaseOf = (w: (typeof owned.workloads)[number]) => agentBackendOfType(w.type)?.removalPhase?.(w) ?? 0;
  const earlier: number[] = [];
  for (const phase of [...new Set(owned.workloads.map(phaseOf))].sort((a, b) => a - b)) {
    const ids = owned.workloads.filter((w) => phaseOf(w) === phase).map((w) => acts.add({ ...agentBackendOfType(w.type)!.removal(w, cause), after: [...earlier] }).id);
    ctrIds.push(...ids);
    earlier.push(...ids);
  }
  const roleOrder = (c: ObservedContainer) => (c.labels[L.role] === 'agent' ? 0 : 1);
  for (const c of [...containers].sort((a, b) => roleOrder(a) - roleOrder(b) || a.name.localeCompare(b.name))) {
    ctrIds.push(acts.add({ kind: 'remove', on: 'container', resource: { type: 'container', name: c.name }, cause }).id);
  }
  const roleOrderN = (n: ObservedNetwork) => (n.labels[L.role] === 'network' ? 1 : 0);
  for (const n of [...networks].sort((a, b) => roleOrderN(a) - roleOrderN(b) || a.name.localeCompare(b.name))) {
    acts.add({ kind: 'remove', on: 'network', resource: { type: 'network', name: n.name }, cause, after: ctrIds, networkId: n.id });
  }
  return {
    unit,
    kind,
    name: unitKey.name(unit),
    source: inv?.source?.file,
    revision: input.load.revision ?? inv?.source?.revision, // the revision that no longer declares it
    state: 'removed',
    actions: acts.list,
    subnets: {},
    removeUnit: true,
  };
}

/**
 * Containers on these networks that the unit does not own and bottled will not move off them
 * itself (our shared sidecars leave on their own): `container x (why)`, or undefined.
 */
export function foreignEndpoints(unit: UnitKey, networks: { name: string }[], index: SnapshotIndex): string | undefined {
  for (const n of networks) {
    const foreign = (index.containersOnNetwork.get(n.name) ?? []).filter((c) => !index.mine(unit, c) && !index.isOurShared(c));
    if (foreign.length) {
      const list = foreign.map((c) => c.name).sort().join(', ');
      return `network ${n.name} has ${foreign.length === 1 ? 'a container' : 'containers'} attached that ${foreign.length === 1 ? 'is' : 'are'} not part of it (${list}); ` +
        `disconnect ${foreign.length === 1 ? 'it' : 'them'} (docker network disconnect ${n.name} <container>) to let the change proceed`;
    }
  }
  return undefined;
}
