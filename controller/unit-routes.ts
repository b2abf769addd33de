import type { Inventory } from '../state/inventory.js';
import type { Observed } from './observed.js';
import type { Plan } from './plan-types.js';
import { unitKey } from './unit-key.js';

/**
 * Which unit a trigger is about, learned from each pass: Docker's network events carry no
 * labels, a network:connect names only a container ID, and a poll names only a workload.
 */
export class UnitRoutes {
  private readonly networkUsers = new Map<string, Set<string>>();
  private readonly containerUnits = new Map<string, string>();
  /** Agent backends' workloads of declared bottles, by backend: workload name -> bottle. */
  readonly workloads = new Map<string, Map<string, string>>();

  learn(r: { plan: Plan; inventories: Map<string, Inventory>; snapshot: Observed; after?: Observed }): void {
    for (const u of r.plan.units) {
      if (u.expiry?.expired) this.stopped.add(u.unit);
      else this.stopped.delete(u.unit);
    }
    for (const u of r.plan.units) {
      const w = u.desired?.workload;
      if (!w) continue;
      const byName = this.workloads.get(w.backend) ?? new Map<string, string>();
      for (const name of w.members ?? [w.name]) byName.set(name, u.unit);
      this.workloads.set(w.backend, byName);
    }
    const add = (net: string, unit: string) => {
      const s = this.networkUsers.get(net) ?? new Set<string>();
      this.networkUsers.set(net, s.add(unit));
    };
    for (const u of r.plan.units) {
      for (const n of u.desired?.networks ?? []) add(n.name, u.unit);
      for (const c of u.desired?.containers ?? []) for (const n of c.externalNetworks) add(n, u.unit);
    }
    for (const [unit, inv] of r.inventories) for (const [key, res] of Object.entries(inv.resources)) if (res.type === 'network') add(key.replace(/^network\//, ''), unit);
    const planned = new Set(r.plan.units.map((u) => u.unit));
    // What runs after the pass too: a container created in it is routed before the next pass.
    for (const c of [...r.snapshot.containers, ...(r.after?.containers ?? [])]) {
      const u = unitKey.fromLabels(c.labels);
      if (u && planned.has(u)) this.containerUnits.set(c.id, u);
    }
  }

  /** Which bottles use a network. */
  unitsOfNetwork(name: string): string[] {
    return [...(this.networkUsers.get(name) ?? [])];
  }

  unitOfWorkload(backend: string, name: string): string | undefined {
    return this.workloads.get(backend)?.get(name);
  }

  unitsOfBackend(backend: string): string[] {
    return [...new Set(this.workloads.get(backend)?.values() ?? [])];
  }

  isStoppedOnPurpose(unit: string): boolean {
    return this.stopped.has(unit);
  }
  private readonly stopped = new Set<string>();

  /** The unit whose container has this ID. */
  unitOfContainer(id: string): string | undefined {
    return this.containerUnits.get(id);
  }
}
