// The seal report: what a container can reach and do by construction (networks and whether any
// leads out, published ports, runtime, capabilities), and which planned changes widen it, so a
// reviewer of a GitOps change sees the security effect before it is applied. Pure.
import type { DesiredContainer, DesiredUnit } from './desired.js';
import type { Inventory } from '../state/inventory.js';
import type { SealReport } from '../state/status.js';
import { resolveSecurity, type Security } from './security.js';
import { agentBackend } from '../resources/backends.js';

export type Seal = SealReport;

/** Runtimes that put a kernel of their own between the container and the host's. */
const SANDBOXING = /(runsc|gvisor|kata)/i;

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

/** What Docker gives a container that bottled did not harden (created by a bottled before it did). */
const DOCKER_DEFAULTS: Security = { hardening: 0, capAdd: [], capDrop: [], noNewPrivileges: false, readOnlyRootfs: false, pidsLimit: null, tmpfs: [] };

/** One container or service, as the checks below see it. */
interface Subject {
  who: string;
  role: 'agent' | 'sidecar' | 'shared';
  security: Security;
  runtime?: string;
  /** Networks with a route out that it joins (an egress network). */
  outs: string[];
  externalNetworks: string[];
  ports: number[];
  env: Record<string, string>;
  applied?: { security?: Security; runtime?: string; ports?: number[]; outs: string[] };
  extraNetworks?: string[];
  /** Its unit runs something already (a new container there changes a running bottle). */
  unitRuns: boolean;
  /** No-new-privileges can be set on it (not on a Swarm service). */
  nnp: boolean;
}

function subjects(d: DesiredUnit, inv: Inventory | undefined): Subject[] {
  const runs = !!inv && Object.keys(inv.resources).length > 0;
  const out: Subject[] = [];
  for (const c of d.containers) {
    const rec = inv?.resources[c.name];
    const a = rec?.applied as { security?: Security; runtime?: string; ports?: number[]; managedExtras?: { network: string }[] } | undefined;
    out.push({
      who: c.role === 'agent' ? 'agent' : c.role === 'shared' ? `SharedSidecar ${d.name}` : `sidecar ${c.component}`,
      role: c.role, security: c.security, runtime: c.runtime, outs: c.managedExtras.map((e) => e.network), externalNetworks: c.externalNetworks, ports: c.ports, env: c.env,
      applied: a ? { security: a.security, runtime: a.runtime, ports: a.ports, outs: (a.managedExtras ?? []).map((e) => e.network) } : undefined,
      extraNetworks: rec?.extraNetworks, unitRuns: runs, nnp: true,
    });
  }
  // An agent backend's parts that carry hardening (Swarm's services): the same checks.
  const parts = d.workload ? (agentBackend(d.workload.backend)?.hardenedParts?.(d.workload) ?? []) : [];
  for (const s of parts) {
    const a = inv?.resources[s.name]?.applied as { security?: Security; networks?: { network: string }[] } | undefined;
    out.push({
      who: s.role === 'agent' ? 'agent' : s.role === 'shared' ? `SharedSidecar ${d.name}` : `sidecar ${s.component ?? s.name}`,
      role: s.role, security: s.security, outs: s.outs, externalNetworks: [], ports: [], env: s.env,
      applied: a ? { security: a.security ? { ...DOCKER_DEFAULTS, ...a.security } : undefined, outs: (a.networks ?? []).slice(1).map((n) => n.network) } : undefined,
      unitRuns: runs, nnp: false,
    });
  }
  return out;
}

const isRoot = (user: string | undefined) => user !== undefined && /^(0+|root)(:|$)/.test(user);

/**
 * The ways a planned unit widens what its containers can reach or do, against what runs now
 * (the inventory's record of how each was created), or against the defaults for a new one.
 */
export function widenings(d: DesiredUnit, inv: Inventory | undefined): string[] {
  const out: string[] = [];
  for (const c of subjects(d, inv)) {
    const { who, applied } = c;
    // Created by a bottled that did not harden: it had Docker's defaults.
    const before = applied ? (applied.security ?? DOCKER_DEFAULTS) : resolveSecurity(c.role, undefined, c.env);
    const was = applied ? 'until now' : 'by default';
    const added = c.security.capAdd.filter((x) => !before.capAdd.includes(x));
    if (added.length) out.push(`${who} gains capabilit${added.length === 1 ? 'y' : 'ies'} ${added.join(', ')}`);
    if (before.capDrop.includes('ALL') && !c.security.capDrop.includes('ALL')) out.push(`${who} no longer drops ALL capabilities: it has Docker's defaults${c.security.capDrop.length ? ` but ${c.security.capDrop.join(', ')}` : ''}`);
    else {
      // Dropping ALL drops whatever was dropped before.
      const undropped = c.security.capDrop.includes('ALL') ? [] : before.capDrop.filter((x) => !c.security.capDrop.includes(x));
      if (undropped.length) out.push(`${who} keeps capabilit${undropped.length === 1 ? 'y' : 'ies'} ${undropped.join(', ')} (dropped ${was})`);
    }
    if (c.nnp && before.noNewPrivileges && !c.security.noNewPrivileges) out.push(`${who}: no-new-privileges off (setuid binaries can elevate)`);
    if (before.readOnlyRootfs && !c.security.readOnlyRootfs) out.push(`${who}: its root filesystem is writable again`);
    const newTmpfs = c.security.tmpfs.filter((p) => before.readOnlyRootfs && !before.tmpfs.includes(p));
    if (newTmpfs.length) out.push(`${who} may write to ${newTmpfs.join(', ')}`);
    if (before.pidsLimit !== null && (c.security.pidsLimit === null || c.security.pidsLimit > before.pidsLimit)) out.push(`${who}: pids limit ${before.pidsLimit} -> ${c.security.pidsLimit ?? 'none'}`);
    if (isRoot(c.security.user) && !isRoot(before.user)) out.push(`${who} runs as root (security.user ${c.security.user})`);
    else if (before.user !== undefined && c.security.user === undefined) out.push(`${who} runs as its image's user again (was ${before.user})`);
    if (applied?.runtime && SANDBOXING.test(applied.runtime) && !(c.runtime && SANDBOXING.test(c.runtime))) out.push(`${who} leaves runtime ${applied.runtime} for ${c.runtime ?? 'runc'} (the host's kernel again)`);
    const newOuts = c.outs.filter((n) => !(applied?.outs ?? []).includes(n));
    if (newOuts.length && (applied || c.unitRuns)) out.push(`${who}${applied ? '' : ' (new)'} joins ${newOuts.join(', ')}: a route out`);
    const joins = c.externalNetworks.filter((n) => !(c.extraNetworks ?? []).includes(n));
    if (joins.length) out.push(`${who} joins ${joins.join(', ')} (agent.networks): a network bottled does not seal`);
    const newPorts = c.ports.filter((p) => !(applied?.ports ?? []).includes(p));
    if (newPorts.length && (applied || c.unitRuns)) out.push(`${who} publishes port${newPorts.length === 1 ? '' : 's'} ${newPorts.join(', ')}`);
  }
  return out;
}

/** The SharedSidecars a plan newly joins to a bottle: each sits on a network with a route out. */
export function sharedJoinWidenings(joined: string[]): string[] {
  return joined.map((n) => `the bottle gains SharedSidecar ${n} (uses): it answers the agent, and its own network has a route out`);
}
