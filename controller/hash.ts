import stringify from 'safe-stable-stringify';
import { sha256 } from '../state/fsutil.js';
import type { DesiredContainer, DesiredNetwork } from './desired.js';
import { HASH_VERSION, hashedLabels } from './labels.js';
import { securityText, type Security } from './security.js';

/**
 * The create-time configuration of a container: everything that can only change by recreating
 * it. Secrets appear only as keyed digests; files whose onChange is not `recreate` appear by
 * path and mode only (their content is delivered in place), so editing them never recreates.
 */
export function containerConfig(
  c: DesiredContainer,
  resolvedEnv: Record<string, string>,
  secretDigests: Record<string, string>,
  publishHost: string,
): Record<string, unknown> {
  return {
    hashVersion: HASH_VERSION,
    image: c.image,
    command: c.command ?? null,
    env: resolvedEnv,
    secretEnv: secretDigests,
    init: c.init,
    healthcheck: c.healthcheck ?? null,
    ports: [...c.ports].sort((a, b) => a - b),
    publishHost: c.ports.length ? publishHost : null,
    resources: c.resources ?? null,
    security: c.security,
    ...(c.runtime && { runtime: c.runtime }),
    network: c.primary,
    managedExtras: c.managedExtras,
    // The host side is part of the bind: a moved state dir means new mounts.
    mounts: c.files.map((f) => ({ path: f.path, source: f.hostPath, mode: f.mode, ...(f.onChange.type === 'recreate' ? { content: f.hash } : {}) })),
    labels: hashedLabels(c.labels),
  };
}

export function networkConfig(n: DesiredNetwork, subnet: string, ipRange?: string): Record<string, unknown> {
  // An overlay is recreated only with its services (a swarm bottle is held rather than taken
  // down for it): a user label changed on the bottle is not a reason, its services carry labels.
  const labels = n.driver === 'overlay' ? Object.fromEntries(Object.entries(hashedLabels(n.labels)).filter(([k]) => !k.startsWith('bottled.user.'))) : hashedLabels(n.labels);
  return { hashVersion: HASH_VERSION, subnet, ...(ipRange ? { ipRange } : {}), ...(n.driver ? { driver: n.driver } : {}), internal: n.internal, options: n.options, labels };
}

export function configHash(config: Record<string, unknown>): string {
  return sha256(stringify(config) ?? '');
}

/**
 * The same configuration with secrets reduced to which variables exist (label
 * `bottled.config-hash`). It needs no key, so it still proves "nothing but secrets changed"
 * when the state directory, and with it the HMAC key, is gone.
 */
export function secretFreeHash(config: Record<string, unknown>): string {
  const secrets = config.secretEnv;
  const names = secrets && typeof secrets === 'object' ? Object.keys(secrets).sort() : [];
  return configHash({ ...config, secretEnv: names });
}

/** Human causes for a recreate: what differs between the applied and the desired config. */
export function describeConfigChange(
  applied: Record<string, unknown> | undefined,
  desired: Record<string, unknown>,
  /** Without a record: the resource's `bottled.config-hash` label, if it has one. */
  observedSecretFree?: string,
): string {
  if (!applied) {
    // Say what is really known: the label says whether anything but secrets differs.
    if (observedSecretFree === undefined) {
      return 'cannot prove it unchanged: this state directory has no record of how it was created, and its labels (from an older bottled) hold no secret-free hash';
    }
    return observedSecretFree === secretFreeHash(desired)
      ? '(secret changed)'
      : 'configuration changed since it was created (this state directory has no record of the previous settings)';
  }
  const out: string[] = [];
  const keys = new Set([...Object.keys(applied), ...Object.keys(desired)]);
  for (const k of [...keys].sort()) {
    const a = applied[k];
    const d = desired[k];
    if (stringify(a) === stringify(d)) continue;
    if (k === 'secretEnv') {
      out.push('(secret changed)');
    } else if (k === 'image' || k === 'init') {
      out.push(`${k} ${String(a)} -> ${String(d)}`);
    } else if (k === 'env' && isRecord(a) && isRecord(d)) {
      const changed = [...new Set([...Object.keys(a), ...Object.keys(d)])].filter((e) => a[e] !== d[e]).sort();
      out.push(`env ${changed.join(', ')} changed`);
    } else if (k === 'mounts') {
      out.push('files changed');
    } else if (k === 'security') {
      const was = isRecord(a) ? (a as unknown as Security) : undefined;
      // Created before these settings, or under older defaults: the defaults moved, not the spec.
      out.push(!was || was.hardening !== (d as Security).hardening ? `hardening defaults changed: ${securityText(d as Security)}` : `security: ${securityText(d as Security)}`);
    } else if (k === 'runtime') {
      out.push(`runtime ${a === undefined ? 'default' : String(a)} -> ${d === undefined ? 'default' : String(d)}`);
    } else {
      out.push(`${k} changed`);
    }
  }
  return out.length ? out.join('; ') : 'configuration changed';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Keyed digests of a workload's secret values, as its configuration hash holds them (the
 * planner and the executor both derive them here). An unset variable digests to ''.
 */
export function secretDigests(secretEnv: Record<string, string>, digest: (variable: string) => string | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(secretEnv).map(([k, v]) => [k, digest(v) ?? '']));
}

/** How an artifact file is stamped in a hash: a change of size or mtime means a new artifact. */
export function artifactStamp(st: { size: number; mtimeMs: number }): string {
  return `${st.size}:${Math.round(st.mtimeMs)}`;
}
