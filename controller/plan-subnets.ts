import { AddressSpace, rangeOf } from './address-space.js';
import type { PlanInput } from './plan-input.js';
import type { SnapshotIndex } from './plan-index.js';
import { derivedCandidates } from './subnets.js';

export type SubnetChoice = { subnet?: string; error?: string };

/**
 * Subnet for every desired network: observed > user's > recorded > newly allocated. Every used
 * subnet is parsed once into an AddressSpace; the order of decisions is what it always was, so
 * the same input gives the same subnets (test/unit/subnets-property.test.ts).
 */
export function allocateSubnets(input: PlanInput, index: SnapshotIndex): Map<string, SubnetChoice> {
  const { desired, snapshot, inventories, opts } = input;
  const out = new Map<string, SubnetChoice>();
  // What others hold: observed networks (by name) and the host's interfaces (no name).
  const held = new AddressSpace();
  const hosts = new AddressSpace();
  // Everything that may not be handed out again: the above, recorded subnets, and what this
  // pass reserves or allocates.
  const used = new AddressSpace();
  for (const s of opts.hostSubnets) {
    held.add(s);
    hosts.add(s);
    used.add(s);
  }
  snapshot.networks.forEach((n) => {
    for (const s of n.subnets) {
      held.add(s, n.name);
      used.add(s, n.name);
    }
  });
  const recorded = new Map<string, string>();
  for (const inv of inventories.values()) for (const [net, s] of Object.entries(inv.subnets)) recorded.set(net, s);
  // Recorded subnets of networks that do not exist right now stay reserved for their owner.
  for (const [net, s] of recorded) if (!index.networksByName.has(net)) used.add(s, net);

  const pending: { name: string; prefix: number }[] = [];
  for (const d of [...desired.values()].sort((a, b) => a.unit.localeCompare(b.unit))) {
    for (const n of d.networks) {
      const obs = (index.networksByName.get(n.name) ?? []).find((o) => index.mine(d.unit, o));
      if (n.fixedSubnet) {
        const names = new Set(held.overlappingOwners(n.fixedSubnet, n.name));
        // The first such network in the engine's order (the one named before).
        const clash = names.size === 0 ? undefined : snapshot.networks.find((o) => names.has(o.name) && o.subnets.some((s) => rangesMeet(s, n.fixedSubnet!)));
        out.set(n.name, clash
          ? { error: `spec.network.subnet ${n.fixedSubnet} overlaps network ${clash.name} (${clash.subnets.join(', ')})` }
          : { subnet: n.fixedSubnet });
      } else if (obs?.subnets[0]) {
        out.set(n.name, { subnet: obs.subnets[0] });
      } else {
        const rec = recorded.get(n.name);
        if (rec && !held.overlaps(rec, (owner) => owner === undefined || owner === n.name) && !hosts.overlaps(rec)) {
          out.set(n.name, { subnet: rec });
        } else if (n.deriveFrom) {
          // As before: the recorded string itself does not count against the derived choice.
          const derived = used.firstFreeOf(derivedCandidates(n.deriveFrom), (_o, text) => text === rec);
          if (derived) {
            used.add(derived, n.name);
            out.set(n.name, { subnet: derived });
          } else out.set(n.name, { error: 'no free 192.168.X.0/24 left for the bottle network' });
        } else {
          pending.push({ name: n.name, prefix: n.allocPrefix });
        }
      }
    }
  }
  for (const p of pending) {
    const s = used.firstFree(opts.subnetPool, p.prefix);
    if (s) {
      used.add(s, p.name);
      out.set(p.name, { subnet: s });
    } else {
      out.set(p.name, { error: `no free /${p.prefix} left in --subnet-pool ${opts.subnetPool}` });
    }
  }
  return out;
}

function rangesMeet(a: string, b: string): boolean {
  const x = rangeOf(a);
  const y = rangeOf(b);
  return !!x && !!y && x.start < y.end && y.start < x.end;
}
