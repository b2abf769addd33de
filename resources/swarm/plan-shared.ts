// Swarm SharedSidecars and the bottles that use them (pure): a bottle's plan joins the shared
// service to its overlay and takes it off when the bottle lets it go or goes, as the docker
// backend connects and disconnects a shared container.
import type { DistributiveOmitAction } from '../../controller/backend.js';
import type { DesiredUnit } from '../../controller/desired.js';
import { L } from '../../controller/labels.js';
import type { ActionList } from '../../controller/plan-actions.js';
import type { SnapshotIndex } from '../../controller/plan-index.js';
import type { PlanInput } from '../../controller/plan-input.js';
import type { Hold } from '../../controller/plan-types.js';
import { unitKey } from '../../controller/unit-key.js';
import type { ObservedService } from './observe-types.js';

/** Our SharedSidecar services, as observed. */
function sharedServices(index: SnapshotIndex): ObservedService[] {
  return [...index.workloadsByName.values()].filter((w): w is ObservedService => w.type === 'service' && w.labels[L.kind] === 'shared' && index.claimOf(w).kind === 'ours');
}

/** Join the SharedSidecars this bottle uses to its overlay; take off the ones it no longer uses. Returns the join ids. */
export function planSharedJoins(acts: ActionList, d: DesiredUnit, input: PlanInput, index: SnapshotIndex, netIds: number[]): number[] | Hold {
  const net = d.networks[0]!.name;
  const netId = index.networksByName.get(net)?.find((n) => index.mine(d.unit, n))?.id;
  const used = new Set<string>();
  const ids: number[] = [];
  for (const name of d.uses) {
    const s = input.desired.get(unitKey.shared(name));
    if (s?.workload?.backend !== 'swarm') continue; // the validator refuses a docker one
    const svc = s.workload.name;
    used.add(svc);
    const o = index.workloadsByName.get(svc) as ObservedService | undefined;
    if (o && !index.mine(s.unit, o)) return { reason: 'SharedSidecarUnavailable', message: `uses ${name}, but service ${svc} is not that SharedSidecar's: it is not joined`, failure: true };
    const alias = [s.alias ?? s.name];
    if (o && netId && o.service.shape.networks.some((n) => n.target === netId && JSON.stringify(n.aliases) === JSON.stringify(alias))) continue;
    ids.push(acts.add({ kind: 'join', on: 'service', resource: { type: 'service', name: svc }, cause: `shared sidecar joins ${net} as ${s.alias} (Swarm replaces its task, start-first)`, overlay: net, aliases: alias, after: netIds }, { clears: true }).id);
  }
  if (netId) {
    for (const o of sharedServices(index)) {
      if (used.has(o.name) || !o.service.shape.networks.some((n) => n.target === netId)) continue;
      acts.add({ kind: 'leave', on: 'service', resource: { type: 'service', name: o.name }, cause: `${d.name} no longer uses ${o.labels[L.bottle]}`, overlay: net, aliases: [] });
    }
  }
  return ids;
}

/** A service of someone else's on a removed unit's overlay: the removal waits (nothing is half removed). */
export function removalBlocked(unit: string, networks: { name: string; id: string }[], index: SnapshotIndex): string | undefined {
  for (const n of networks) {
    const strangers = [...index.workloadsByName.values()]
      .filter((o): o is ObservedService => o.type === 'service' && !index.mine(unit, o) && !(o.labels[L.kind] === 'shared' && index.claimOf(o).kind === 'ours'))
      .filter((o) => o.service.shape.networks.some((x) => x.target === n.id));
    if (strangers.length) return `network ${n.name} is joined by services that are not part of it (${strangers.map((o) => o.name).sort().join(', ')}); take them off it (docker service update --network-rm ${n.name} <service>) to let the change proceed`;
  }
  return undefined;
}

/** A removed unit's overlays are left by every SharedSidecar service joined to them, first. */
export function sharedLeaving(unit: string, networks: { name: string; id: string }[], index: SnapshotIndex): DistributiveOmitAction[] {
  const out: DistributiveOmitAction[] = [];
  for (const o of sharedServices(index)) {
    if (index.owns(unit, o)) continue; // a SharedSidecar removed itself leaves with its service
    for (const n of networks) {
      if (o.service.shape.networks.some((x) => x.target === n.id)) out.push({ kind: 'leave', on: 'service', resource: { type: 'service', name: o.name }, cause: `leaves ${n.name}, which is removed`, overlay: n.name, aliases: [] });
    }
  }
  return out;
}

/**
 * The bottle overlays a SharedSidecar service keeps across its own updates (and is created with,
 * if it was removed by hand): those of declared swarm bottles that use it and exist, under its
 * current alias, and those it is joined to of bottles of ours not declared in this pass (held for
 * an invalid file, or being removed: their own plans take it off). Any other network goes.
 */
export function sharedJoins(d: DesiredUnit, input: PlanInput, index: SnapshotIndex, o: ObservedService | undefined): { overlay: string; aliases: string[] }[] {
  const out = new Map<string, string[]>();
  const alias = [d.alias ?? d.name];
  for (const b of input.desired.values()) {
    if (b.kind !== 'bottle' || b.workload?.backend !== 'swarm' || !b.uses.includes(d.name)) continue;
    const net = b.networks[0]!.name;
    if ((index.networksByName.get(net) ?? []).some((n) => index.mine(b.unit, n))) out.set(net, alias);
  }
  for (const j of o?.service.shape.networks ?? []) {
    const n = [...index.networksByName.values()].flat().find((x) => x.id === j.target);
    const claim = n ? index.claimOf(n) : undefined;
    if (!n || claim?.kind !== 'ours' || claim.unit === d.unit || out.has(n.name)) continue;
    if (!input.desired.has(claim.unit)) out.set(n.name, j.aliases);
  }
  return [...out].sort(([a], [b]) => a.localeCompare(b)).map(([overlay, aliases]) => ({ overlay, aliases }));
}
