import type { PlanInput } from './plan.js';
import type { SnapshotIndex } from './plan-index.js';
import { allocate, deriveSubnet, overlaps } from './subnets.js';

export type SubnetChoice = { subnet?: string; error?: string };

/** Subnet for every desired network: observed > user's > recorded > newly allocated. */
export function allocateSubnets(input: PlanInput, index: SnapshotIndex): Map<string, SubnetChoice> {
  const { desired, snapshot, inventories, opts } = input;
  const out = new Map<string, SubnetChoice>();
  const used: string[] = [...opts.hostSubnets];
  for (const n of snapshot.networks) used.push(...n.subnets);
  const recorded = new Map<string, string>();
  for (const inv of inventories.values()) for (const [net, s] of Object.entries(inv.subnets)) recorded.set(net, s);
  // Recorded subnets of networks that do not exist right now stay reserved for their owner.
  for (const [net, s] of recorded) if (!index.networksByName.has(net)) used.push(s);
  const reserve = (net: string, s: string) => {
    if (!used.includes(s)) used.push(s);
    out.set(net, { subnet: s });
  };

  const pending: { name: string; prefix: number }[] = [];
  for (const d of [...desired.values()].sort((a, b) => a.unit.localeCompare(b.unit))) {
    for (const n of d.networks) {
      const obs = (index.networksByName.get(n.name) ?? []).find((o) => index.mine(d.unit, o));
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
