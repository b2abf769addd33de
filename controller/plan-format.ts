import type { Action, Plan, UnitPlan } from './plan-types.js';

const SYMBOL: Record<Action['kind'], string> = {
  create: '+',
  recreate: '-/+',
  remove: '-',
  connect: '⇄',
  disconnect: '⇄',
  start: '↻',
  restart: '↻',
  'rewrite-file': '~',
  signal: '~',
  exec: '~',
  adopt: '=',
  update: '~',
  join: '⇄',
  leave: '⇄',
  stop: '■',
};

interface Colors {
  add: (s: string) => string;
  del: (s: string) => string;
  chg: (s: string) => string;
  dim: (s: string) => string;
}

function colors(on: boolean): Colors {
  const w = (code: number) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { add: w(32), del: w(31), chg: w(33), dim: w(2) };
}

function paint(a: Action, c: Colors): (s: string) => string {
  if (a.kind === 'create') return c.add;
  if (a.kind === 'remove' || a.kind === 'recreate') return c.del;
  return c.chg;
}

function verb(a: Action): string {
  if (a.kind === 'rewrite-file') return 'rewrite';
  if (a.kind === 'connect') return `connect ${a.endpoint.network}`;
  if (a.kind === 'disconnect') return `disconnect ${a.networkName}`;
  if (a.kind === 'signal') return `signal ${a.signal}`;
  if (a.kind === 'exec') return `exec ${JSON.stringify(a.exec)}`;
  return a.kind;
}

function header(u: UnitPlan): string {
  if (u.expiry?.expired && u.state !== 'held') return `bottle ${u.name}  (expired at ${u.expiry.at}: onExpiry ${u.expiry.onExpiry})`;
  if (u.state === 'removed') return `bottle ${u.name}  (no longer declared)`;
  if (u.state === 'held' && u.held?.reason === 'InvalidSpec') return `bottle ${u.name}  (${u.held.message})`;
  return `bottle ${u.name}  (${u.source ?? 'no source'}${u.revision ? ` @ ${u.revision.slice(0, 12)}` : ''})`;
}

/** Human plan text (see design/plan-output.md): grouped by bottle, a line per action, a summary. */
export function formatPlan(p: Plan, opts: { color: boolean; verbose?: boolean; now?: number }): string {
  const c = colors(opts.color);
  const lines: string[] = [];
  const now = opts.now ?? Date.now();
  for (const u of p.units) {
    const upcoming = u.expiry && !u.expiry.expired ? u.expiry : undefined;
    if (u.state === 'in-sync' && !opts.verbose && !u.alerts?.length && !upcoming) continue;
    lines.push(header(u));
    if (upcoming) lines.push(`  ${c.chg('⏲')} ${expiresText(upcoming, now)}`);
    if (u.state === 'held') {
      const msg = u.held!.reason === 'InvalidSpec' ? 'invalid spec, running resources left as they are' : `${u.held!.reason}: ${u.held!.message}`;
      lines.push(`  ${c.chg('!')} held: ${msg}`);
    }
    for (const a of u.alerts ?? []) lines.push(`  ${c.del('!')} alert: ${a}`);
    for (const w of u.widens ?? []) lines.push(`  ${c.del('!')} widens the seal: ${w}`);
    if (u.state === 'in-sync' && !u.alerts?.length) lines.push(c.dim('  = in sync'));
    for (const a of u.actions) {
      if (a.implicit) continue;
      const sym = SYMBOL[a.kind];
      const type = a.resource.type.padEnd(10);
      lines.push(`  ${paint(a, c)(sym.padEnd(3))} ${type} ${a.resource.name.padEnd(30)} ${verb(a).padEnd(8)}  ${c.dim(a.cause)}`);
    }
    lines.push('');
  }
  lines.push(summary(p));
  if (p.pruneGuard) lines.push(`Note: ${p.pruneGuard}.`);
  return lines.join('\n') + '\n';
}

export function summary(p: Plan): string {
  const n = { create: 0, recreate: 0, start: 0, files: 0, signals: 0, execs: 0, restarts: 0, remove: 0, connect: 0, adopt: 0, update: 0, stop: 0 };
  for (const u of p.units) {
    for (const a of u.actions) {
      if (a.implicit) continue;
      if (a.kind === 'create') n.create++;
      else if (a.kind === 'recreate') n.recreate++;
      else if (a.kind === 'start') n.start++;
      else if (a.kind === 'rewrite-file') n.files++;
      else if (a.kind === 'signal') n.signals++;
      else if (a.kind === 'exec') n.execs++;
      else if (a.kind === 'restart') n.restarts++;
      else if (a.kind === 'remove') n.remove++;
      else if (a.kind === 'connect' || a.kind === 'disconnect') n.connect++;
      else if (a.kind === 'adopt') n.adopt++;
      else if (a.kind === 'update') n.update++;
      else if (a.kind === 'stop') n.stop++;
    }
  }
  const held = p.units.filter((u) => u.state === 'held').length;
  const parts: string[] = [];
  if (n.create) parts.push(`${n.create} to create`);
  if (n.recreate) parts.push(`${n.recreate} to recreate`);
  if (n.start) parts.push(`${n.start} to start`);
  if (n.connect) parts.push(`${n.connect} to connect/disconnect`);
  if (n.files) {
    const extra = [n.signals && `${n.signals} signal${n.signals > 1 ? 's' : ''}`, n.execs && `${n.execs} exec${n.execs > 1 ? 's' : ''}`, n.restarts && `${n.restarts} restart${n.restarts > 1 ? 's' : ''}`].filter(Boolean);
    parts.push(`${n.files} file${n.files > 1 ? 's' : ''} to rewrite${extra.length ? ` (${extra.join(', ')})` : ''}`);
  } else {
    if (n.signals) parts.push(`${n.signals} signal${n.signals > 1 ? 's' : ''} to deliver`);
    if (n.execs) parts.push(`${n.execs} exec${n.execs > 1 ? 's' : ''} to run`);
    if (n.restarts) parts.push(`${n.restarts} to restart`);
  }
  if (n.stop) parts.push(`${n.stop} to stop (expired)`);
  if (n.remove) parts.push(`${n.remove} to remove`);
  if (n.adopt) parts.push(`${n.adopt} to adopt`);
  if (n.update) parts.push(`${n.update} to update in place`);
  const body = parts.length ? `Plan: ${parts.join(', ')}.` : 'Plan: nothing to do.';
  return held ? `${body} ${held} bottle${held > 1 ? 's' : ''} held.` : body;
}

/** `--json`: the same content as data (design/plan-output.md). No secret values: causes never hold them. */
export function planJson(p: Plan): unknown {
  return {
    bottles: p.units.map((u) => ({
      name: u.name,
      source: u.source ?? null,
      revision: u.revision ?? null,
      state: u.state,
      ...(u.held ? { held: u.held } : {}),
      ...(u.alerts ? { alerts: u.alerts } : {}),
      ...(u.widens ? { widens: u.widens } : {}),
      ...(u.expiry ? { expiry: { at: u.expiry.at, onExpiry: u.expiry.onExpiry, expired: u.expiry.expired } } : {}),
      actions: u.actions.map((a) => ({
        id: a.id,
        kind: a.kind,
        resource: a.resource,
        cause: a.cause,
        after: a.after,
        ...(a.implicit ? { implicit: true } : {}),
        ...(a.kind === 'signal' ? { signal: a.signal } : {}),
        ...(a.kind === 'exec' ? { exec: a.exec } : {}),
        ...(a.kind === 'connect' ? { network: a.endpoint.network } : a.kind === 'disconnect' ? { network: a.networkName } : {}),
      })),
    })),
    summary: summary(p),
    ...(p.pruneGuard ? { pruneGuard: p.pruneGuard } : {}),
  };
}

export function hasChanges(p: Plan): boolean {
  return p.units.some((u) => u.state === 'changes' || u.state === 'removed');
}

/** `expires in 2h13m (2026-12-01T22:00:00.000Z, then stop)`. */
export function expiresText(e: NonNullable<UnitPlan['expiry']>, now: number): string {
  const left = Date.parse(e.at) - now;
  const when = e.fromNow ? `${roughDuration(left)} after it is created` : `in ${roughDuration(left)}`;
  return `expires ${when} (${e.at}, then ${e.onExpiry})`;
}

/** A duration to the minute once it is over one (`3d4h`, `2h13m`, `45s`). */
export function roughDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ''}`;
}
