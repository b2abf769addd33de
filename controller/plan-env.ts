import { substitutePlaceholders } from '../specs/placeholders.js';
import type { DesiredContainer, DesiredUnit } from './desired.js';
import type { SnapshotIndex } from './plan-index.js';

export interface Resolution {
  env: Record<string, string>;
  /** A placeholder cannot be resolved until a sidecar changed in this pass runs. */
  deferred: boolean;
  missing: string[];
}

/** `${sidecar.*}` placeholders resolved from what runs now (the executor resolves deferred ones). */
export function resolveEnv(
  c: Pick<DesiredContainer, 'env' | 'placeholders'>,
  d: DesiredUnit,
  index: SnapshotIndex,
  changing: Set<string>,
  publishHost: string,
): Resolution {
  let deferred = false;
  const missing: string[] = [];
  const value = (ref: DesiredContainer['placeholders'][number]): string | undefined => {
    const target = d.containers.find((x) => x.name === ref.target);
    if (!target) return undefined;
    if (ref.field === 'host') return publishHost;
    if (ref.field === 'ip' && target.primary.ip) return target.primary.ip; // pinned: known now
    if (changing.has(target.name)) {
      deferred = true;
      return undefined;
    }
    const o = index.containersByName.get(target.name);
    if (o && !index.mine(d.unit, o)) return undefined;
    if (ref.field === 'ip') return o?.networks[target.primary.network]?.ip;
    const p = o?.ports.find((x) => x.containerPort === ref.port && x.hostPort && (x.hostIp === publishHost || !x.hostIp));
    return p?.hostPort ? String(p.hostPort) : undefined;
  };
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.env)) {
    // The same grammar as the schema and the executor (specs/placeholders.ts).
    const r = substitutePlaceholders(v, (ref) => {
      const p = c.placeholders.find((x) => x.sidecar === ref.sidecar && x.field === ref.field && (ref.field !== 'port' || x.port === ref.port));
      const val = p ? value(p) : undefined;
      if (val === undefined && !deferred) missing.push(p?.token ?? `\${sidecar.${ref.sidecar}.${ref.field}}`);
      return val;
    });
    env[k] = 'value' in r ? r.value : v;
  }
  return { env, deferred: deferred || missing.length > 0, missing };
}
