// Hardened defaults (issue 12): a container of a bottle gets Docker's default capabilities minus
// those an agent has no use for and an attacker does, no-new-privileges, a pids limit, and on
// request a read-only root filesystem. Pure: the renderer resolves a container's `security:`
// against these, and the configuration hash carries the result, so a new default recreates
// each container once and plan says why.
import type { SecuritySpec } from '../specs/model.js';

/** Bumped whenever a default below changes: the hash (and plan's cause) says "hardening defaults changed". */
export const HARDENING_VERSION = 1;

/**
 * Dropped from Docker's defaults for the agent:
 * - NET_RAW: raw sockets forge packets on the bottle network (ARP, spoofed sources to its sidecars);
 * - MKNOD: device nodes; AUDIT_WRITE: writing the host's audit log;
 * - SETFCAP: giving file capabilities to binaries; SYS_CHROOT: chroot, which agents do not need.
 * Kept: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETUID, SETGID, SETPCAP, KILL, NET_BIND_SERVICE:
 * package managers, `su` to drop privileges, and dev servers on low ports use them.
 */
export const AGENT_DROP: readonly string[] = ['AUDIT_WRITE', 'MKNOD', 'NET_RAW', 'SETFCAP', 'SYS_CHROOT'];
/** Sidecars (proxies, gates, MCP servers): the same minus what some of them do use (chroot in a jail, setfcap in an entrypoint). */
export const SIDECAR_DROP: readonly string[] = ['AUDIT_WRITE', 'MKNOD', 'NET_RAW'];
/** Enough for a build with `make -j` and a language server; stops a fork bomb from taking the host. */
export const AGENT_PIDS = 4096;
export const SIDECAR_PIDS = 1024;
/** Writable with `readOnlyRootfs` (besides each `security.writable` path and $HOME). */
export const TMPFS_DEFAULT: readonly string[] = ['/tmp', '/run', '/var/tmp'];

export interface Security {
  hardening: number;
  capAdd: string[];
  capDrop: string[];
  noNewPrivileges: boolean;
  readOnlyRootfs: boolean;
  /** null: no limit. */
  pidsLimit: number | null;
  /** tmpfs mounts (only with readOnlyRootfs). */
  tmpfs: string[];
  /** Instead of the image's user. */
  user?: string;
}

/** A container's effective settings: its `security:` over the defaults of its role. */
export function resolveSecurity(role: 'agent' | 'sidecar' | 'shared', spec: SecuritySpec | undefined, env: Record<string, string>): Security {
  const agent = role === 'agent';
  const readOnlyRootfs = spec?.readOnlyRootfs ?? false;
  const home = env.HOME && env.HOME.startsWith('/') && env.HOME.replace(/\/+$/, '') !== '' ? [env.HOME.replace(/\/+$/, '')] : [];
  const pids = spec?.pidsLimit ?? (agent ? AGENT_PIDS : SIDECAR_PIDS);
  return {
    hardening: HARDENING_VERSION,
    capAdd: [...new Set(spec?.capAdd ?? [])].sort(),
    capDrop: [...new Set(spec?.capDrop ?? (agent ? AGENT_DROP : SIDECAR_DROP))].sort(),
    noNewPrivileges: spec?.noNewPrivileges ?? true,
    readOnlyRootfs,
    pidsLimit: pids === 0 ? null : pids,
    tmpfs: readOnlyRootfs ? [...new Set([...TMPFS_DEFAULT, ...home, ...(spec?.writable ?? [])])].sort() : [],
    ...(spec?.user !== undefined && { user: spec.user }),
  };
}

/** "drop AUDIT_WRITE, NET_RAW; no-new-privileges; pids limit 4096": what the settings do, for plan. */
export function securityText(s: Security): string {
  const parts: string[] = [];
  if (s.capDrop.length) parts.push(`drop ${s.capDrop.join(', ')}`);
  if (s.capAdd.length) parts.push(`add ${s.capAdd.join(', ')}`);
  if (s.noNewPrivileges) parts.push('no-new-privileges');
  parts.push(s.pidsLimit === null ? 'no pids limit' : `pids limit ${s.pidsLimit}`);
  if (s.readOnlyRootfs) parts.push(`read-only root (writable: ${s.tmpfs.join(', ')})`);
  if (s.user !== undefined) parts.push(`user ${s.user}`);
  return parts.join('; ');
}
