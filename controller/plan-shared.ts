import type { DesiredUnit } from './desired.js';
import { L } from './labels.js';
import type { ActionList, Changed } from './plan-actions.js';
import type { SnapshotIndex } from './plan-index.js';
import type { PlanInput } from './plan-input.js';
import { unitKey } from './unit-key.js';
import type { Reason } from './reasons.js';

/**
 * Connect the shared sidecars a bottle uses to its network (under their alias); disconnect the
 * ones it no longer uses. Returns a hold when a used shared sidecar's name is taken by a
 * container that is not ours: connecting that one would change someone else's container.
 */
export function planSharedAttachments(
  acts: ActionList,
  d: DesiredUnit,
  input: PlanInput,
  index: SnapshotIndex,
  netIds: number[],
  networkRecreated: boolean,
): { reason: Reason; message: string } | undefined {
  const net = d.networks[0]!.name;
  const used = new Set<string>();
  for (const n of d.uses) {
    const s = input.desired.get(unitKey.shared(n))!;
    const c = s.containers[0];
    if (!c) continue; // a SharedSidecar of another backend (Swarm) is joined by that backend's plan
    used.add(c.name);
    const o = index.containersByName.get(c.name);
    if (o && !index.mine(s.unit, o)) {
      return { reason: 'SharedSidecarUnavailable', message: `uses ${n}, but container ${c.name} is not that SharedSidecar's (${claimWhy(index, o)}): it is not connected` };
    }
    if (o?.networks[net] && !networkRecreated) continue;
    acts.add({
      kind: 'connect',
      on: 'container',
      resource: { type: 'container', name: c.name },
      cause: `shared sidecar joins ${net} as ${s.alias}`,
      endpoint: { network: net, aliases: [s.alias ?? s.name] },
      replaceStale: true,
      waitFor: [c.name],
      after: netIds,
    }, { clears: true }); // the bottle's own containers start only once the shared sidecar answers on its network
  }
  if (networkRecreated) return undefined;
  for (const o of index.containersOnNetwork.get(net) ?? []) {
    if (!index.isOurShared(o) || used.has(o.name)) continue;
    acts.add({ kind: 'disconnect', on: 'container', resource: { type: 'container', name: o.name }, cause: `${d.name} no longer uses ${o.labels[L.bottle]}`, networkName: net });
  }
  return undefined;
}

/** A (re)created shared sidecar rejoins, in this pass, every bottle network that uses it. */
export function planSharedRejoin(acts: ActionList, d: DesiredUnit, input: PlanInput, index: SnapshotIndex, changed: Changed): void {
  const c = d.containers[0];
  if (!c || !changed.replaced.has(c.name)) return;
  for (const b of [...input.desired.values()].filter((x) => x.kind === 'bottle' && x.uses.includes(d.name)).sort((x, y) => x.unit.localeCompare(y.unit))) {
    const net = b.networks[0]!.name;
    if (!(index.networksByName.get(net) ?? []).some((n) => index.mine(b.unit, n))) continue; // a new bottle connects it itself
    acts.add({ kind: 'connect', on: 'container', resource: { type: 'container', name: c.name }, cause: `rejoins ${net} as ${d.alias} (used by ${b.name})`, endpoint: { network: net, aliases: [d.alias ?? d.name] }, replaceStale: true });
  }
}

function claimWhy(index: SnapshotIndex, o: Parameters<SnapshotIndex['claimOf']>[0]): string {
  const c = index.claimOf(o);
  return c.kind === 'foreign' ? c.why : `it belongs to ${c.unit}`;
}
