// The seal report: what a container can reach and do by construction (networks and whether any
// leads out, published ports, runtime, capabilities), and which planned changes widen it, so a
// reviewer of a GitOps change sees the security effect before it is applied. Pure.
import type { DesiredContainer, DesiredUnit } from './desired.js';
import type { Inventory } from '../state/inventory.js';
import { resolveSecurity, type Security } from './security.js';

export interface Seal {
  networks: { name: string; routeOut: boolean }[];
  ports: number[];
  runtime: string;
  capAdd: string[];
  capDrop: string[];
  noNewPrivileges: boolean;
  readOnlyRootfs: boolean;
}

/** Runtimes that put a kernel of their own between the container and the host's. */
const SANDBOXING = /^(runsc|gvisor|kata|kata-runtime|kata-qemu|kata-fc|kata-clh|io\.containerd\.kata)/;

/** A container's seal; `internal(name)` says whether a network has no route out (undefined: not known). */
export function sealOf(c: DesiredContainer, internal: (network: string) => boolean | undefined): Seal {
  const nets = [c.primary.network, ...c.managedExtras.map((e) => e.network), ...c.externalNetworks];
  return {
    networks: nets.map((name) => ({ name, routeOut: internal(name) === false || (internal(name) === undefined && c.externalNetworks.includes(name)) })),
    ports: [...c.ports].sort((a, b) => a - b),
    runtime: c.runtime ?? 'runc',
    capAdd: c.security.capAdd,
    capDrop: c.security.capDrop,
    noNewPrivileges: c.security.noNewPrivileges,
    readOnlyRootfs: c.security.readOnlyRootfs,
  };
}

/** One line of `bottled status NAME`: `agent  net (sealed); runtime runsc; drop NET_RAW, …`. */
export function sealText(s: Seal): string {
  const out = s.networks.some((n) => n.routeOut) ? `route out via ${s.networks.filter((n) => n.routeOut).map((n) => n.name).join(', ')}` : 'no route out';
  const parts = [`networks ${s.networks.map((n) => n.name).join(', ')} (${out})`];
  if (s.ports.length) parts.push(`publishes ${s.ports.join(', ')}`);
  parts.push(`runtime ${s.runtime}`);
  if (s.capAdd.length) parts.push(`adds ${s.capAdd.join(', ')}`);
  parts.push(s.capDrop.length ? `drops ${s.capDrop.join(', ')}` : "Docker's default capabilities");
  parts.push(s.noNewPrivileges ? 'no-new-privileges' : 'setuid can elevate');
  if (s.readOnlyRootfs) parts.push('read-only root');
  return parts.join('; ');
}

/**
 * The ways a planned unit widens what its containers can reach or do, against what runs now
 * (the inventory's record of how each was created), or against the defaults for a new one.
 */
export function widenings(d: DesiredUnit, inv: Inventory | undefined): string[] {
  const out: string[] = [];
  for (const c of d.containers) {
    const rec = inv?.resources[c.name];
    const applied = rec?.applied as { security?: Security; runtime?: string; ports?: number[]; managedExtras?: { network: string }[] } | undefined;
    const who = c.role === 'agent' ? 'agent' : c.role === 'shared' ? `SharedSidecar ${d.name}` : `sidecar ${c.component}`;
    const before = applied ? applied.security : resolveSecurity(c.role, undefined, c.env);
    // Created by a bottled without hardening: it had Docker's defaults, which nothing here widens.
    if (before) {
      const added = c.security.capAdd.filter((x) => !before.capAdd.includes(x));
      // Dropping ALL drops whatever was dropped before.
      const undropped = c.security.capDrop.includes('ALL') ? [] : before.capDrop.filter((x) => !c.security.capDrop.includes(x));
      if (added.length) out.push(`${who} gains capabilit${added.length === 1 ? 'y' : 'ies'} ${added.join(', ')}`);
      if (undropped.length) out.push(`${who} keeps capabilit${undropped.length === 1 ? 'y' : 'ies'} ${undropped.join(', ')} (dropped ${applied ? 'until now' : 'by default'})`);
      if (before.noNewPrivileges && !c.security.noNewPrivileges) out.push(`${who}: no-new-privileges off (setuid binaries can elevate)`);
    }
    const wasRuntime = applied ? applied.runtime : undefined;
    if (applied && wasRuntime && SANDBOXING.test(wasRuntime) && !(c.runtime && SANDBOXING.test(c.runtime))) out.push(`${who} leaves runtime ${wasRuntime} for ${c.runtime ?? 'runc'} (the host's kernel again)`);
    const newExtras = c.managedExtras.filter((e) => !(applied?.managedExtras ?? []).some((x) => x.network === e.network));
    if (applied && newExtras.length) out.push(`${who} joins ${newExtras.map((e) => e.network).join(', ')}: a route out`);
    if (!applied && c.role === 'sidecar' && c.managedExtras.length) {
      // A new sidecar with egress in a bottle that runs: the bottle gains a way out.
      if (inv && Object.keys(inv.resources).length) out.push(`${who} (new) joins ${c.managedExtras.map((e) => e.network).join(', ')}: a route out`);
    }
    const wasNets = rec?.extraNetworks ?? [];
    const joins = c.externalNetworks.filter((n) => !wasNets.includes(n));
    if (joins.length) out.push(`${who} joins ${joins.join(', ')} (agent.networks): a network bottled does not seal`);
    const newPorts = c.ports.filter((p) => !(applied?.ports ?? []).includes(p));
    if (applied && newPorts.length) out.push(`${who} publishes port${newPorts.length === 1 ? '' : 's'} ${newPorts.join(', ')}`);
  }
  return out;
}
