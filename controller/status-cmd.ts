// `bottled status [NAME] [--json] [--source] [--watch]`: what the state directory says, read from
// its files only (no engine call): a terminal user keeps `status --watch` open in a pane.
import { EventLog } from '../state/events.js';
import { readJson } from '../state/fsutil.js';
import type { StatePaths } from '../state/paths.js';
import { readServes } from '../state/serves.js';
import { readSourceStatuses, type SourceStatus } from '../state/source-status.js';
import { readAllStatus, readStatus, type UnitStatus } from '../state/status.js';
import type { CommonFlags } from './cli-options.js';
import { EXIT } from './exit-codes.js';
import type { NotifyState } from './notify-pass.js';
import { roughDuration } from './plan-format.js';
import { sealText } from './seal.js';

export async function cmdStatus(name: string | undefined, f: CommonFlags, paths: StatePaths): Promise<number> {
  if (!f.watch) {
    const out = await render(name, f, paths, Date.now());
    if (out.error) process.stderr.write(out.error);
    else process.stdout.write(out.text);
    return out.error ? EXIT.error : EXIT.ok;
  }
  return watchStatus(name, f, paths);
}

/**
 * Redraw every second while the text changes: in place on a terminal, appended otherwise (a
 * log of every change). Ctrl-C or SIGTERM ends it with exit 0.
 */
async function watchStatus(name: string | undefined, f: CommonFlags, paths: StatePaths): Promise<number> {
  const tty = process.stdout.isTTY && !f.json;
  let last = '';
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => (stop = r));
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (;;) {
      // What changed, ages aside (rendered at a fixed clock): on a terminal the ages move on
      // every second; a pipe gets a new table only when something else did.
      const key = await render(name, f, paths, 0);
      const changed = (key.error ?? key.text) !== last;
      last = key.error ?? key.text;
      if (tty || changed) {
        const out = await render(name, f, paths, Date.now());
        const text = out.error ?? out.text;
        if (tty) process.stdout.write(`\x1b[H\x1b[2J${text}\n(every 1s, Ctrl-C to quit)\n`);
        else process.stdout.write(`${f.json ? '' : `--- ${new Date().toISOString()}\n`}${text}`);
      }
      const tick = new Promise<'tick'>((r) => setTimeout(() => r('tick'), 1000));
      if ((await Promise.race([tick, stopped.then(() => 'stop' as const)])) === 'stop') return EXIT.ok;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function render(name: string | undefined, f: CommonFlags, paths: StatePaths, now: number): Promise<{ text: string; error?: string }> {
  const age = (iso?: string) => ageAt(iso, now);
  const sourceLines = (src: SourceStatus) => sourceLinesAt(src, now);
  const sources = (await readSourceStatuses(paths)).sort((a, b) => (b.updatedAt ?? '').localeCompare(a.updatedAt ?? ''));
  if (f.source) {
    const events = await new EventLog(paths).tail('source', 10);
    const serves = await readServes(paths);
    if (f.json) return { text: JSON.stringify({ sources, events, serves: serves ?? null }, null, 2) + '\n' };
    const out = sources.length ? sources.flatMap((x) => sourceLines(x)) : ['no git source recorded in this state directory'];
    out.push('', 'Events:', ...events.map((e) => `  ${e.time}  ${e.result.padEnd(6)} ${e.action.padEnd(10)} ${e.error ?? e.cause ?? ''}`));
    return { text: out.join('\n') + '\n' };
  }
  if (name) return renderOne(name, f, paths, now);
  const all = await readAllStatus(paths);
  // An array, as before; what this reconciler serves is in `status --source --json`.
  if (f.json) return { text: JSON.stringify(all, null, 2) + '\n' };
  const expiring = all.some((s) => s.expiresAt);
  const rows = [['NAME', 'READY', 'REASON', 'REVISION', 'AGE', ...(expiring ? ['EXPIRES'] : []), 'MESSAGE']];
  for (const s of all) {
    const ready = cond(s, 'Ready');
    rows.push([s.unit, ready?.status ?? 'Unknown', ready?.reason ?? '-', s.observedRevision?.slice(0, 12) ?? '-', age(s.createdAt), ...(expiring ? [expires(s, now)] : []), ready?.message ?? '']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  let text = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
  // The source the bottles come from, the most recent one read: what is applied, what is wrong.
  if (sources[0]) text += '\n' + sourceLines(sources[0]).join('\n') + '\n';
  const serves = await readServes(paths);
  if (serves) text += `\nServes: ${serves.selector !== undefined ? `the bottles matching --selector ${serves.selector}` : 'every bottle of the source'} (since ${serves.since})\n`;
  const said = await readJson<NotifyState>(paths.notifyState);
  const open = Object.entries(said?.holds ?? {});
  for (const [, h] of open) text += `\n! pass held since ${age(h.since)} ago: ${h.reason}: ${h.message}\n`;
  if (said?.last) text += `\nLast notification: ${said.last.event} (${said.last.reason}) ${age(said.last.time)} ago\n`;
  return { text };
}

async function renderOne(name: string, f: CommonFlags, paths: StatePaths, now: number): Promise<{ text: string; error?: string }> {
  const age = (iso?: string) => ageAt(iso, now);
  const s = await readStatus(paths, name);
  if (!s) return { text: '', error: `no status for ${name}\n` };
  const events = await new EventLog(paths).tail(name, 10);
  if (f.json) return { text: JSON.stringify({ ...s, events }, null, 2) + '\n' };
  const out: string[] = [`bottle ${s.unit}  (${s.source ?? '-'}${s.observedRevision ? ` @ ${s.observedRevision.slice(0, 12)}` : ''})`, '', 'Conditions:'];
  for (const c of s.conditions) out.push(`  ${c.type.padEnd(12)} ${c.status.padEnd(8)} ${c.reason.padEnd(22)} ${age(c.lastTransitionTime).padEnd(5)} ${c.message}`);
  out.push('', 'Resources:');
  for (const r of s.resources) out.push(`  ${r.type.padEnd(10)} ${r.name.padEnd(34)} ${r.health}${r.detail ? `  (${r.detail})` : ''}`);
  const sealed = s.resources.filter((r) => r.seal);
  if (sealed.length) {
    out.push('', 'Seal (what each container can reach and do, by construction):');
    const width = Math.max(...sealed.map((r) => r.name.length));
    for (const r of sealed) out.push(`  ${r.name.padEnd(width)}  ${sealText(r.seal!)}`);
  }
  if (s.expiresAt) out.push('', `Expires: ${expires(s, now)} (${s.expiresAt}, then ${s.onExpiry})`);
  if (s.lastNotification) out.push(`Last notification: ${s.lastNotification.event} (${s.lastNotification.reason}) ${age(s.lastNotification.time)} ago`);
  if (s.lastError) out.push('', `Last error: ${s.lastError}`);
  if (s.nextRetryAt) out.push(`Next retry: ${s.nextRetryAt}`);
  out.push('', 'Events:');
  for (const e of events) out.push(`  ${e.time}  ${e.result.padEnd(6)} ${e.action.padEnd(12)} ${e.resource ?? ''}  ${e.error ?? e.cause ?? ''}`);
  return { text: out.join('\n') + '\n' };
}

function expires(s: UnitStatus, now: number): string {
  if (!s.expiresAt) return '-';
  const left = Date.parse(s.expiresAt) - now;
  return left <= 0 ? 'expired' : `in ${roughDuration(left)}`;
}

function sourceLinesAt(src: SourceStatus, now: number): string[] {
  const age = (iso?: string) => ageAt(iso, now);
  const out = [`source ${src.describe}: ${src.applied ? `applied ${src.applied.slice(0, 12)}` : 'nothing applied'}${src.fetched ? `, newest ${src.fetched.revision.slice(0, 12)} (seen ${age(src.fetched.at)} ago)` : ''}${src.verified ? `, last verified ${src.verified.revision.slice(0, 12)} by ${src.verified.signer}` : ''}`];
  if (src.failing) out.push(`  ! fetching fails since ${age(src.failing.since)} ago (${src.failing.attempts} attempt${src.failing.attempts === 1 ? '' : 's'}): ${src.failing.error}`);
  if (src.refused) out.push(`  ! ${src.refused.revision.slice(0, 12)} is not applied (since ${age(src.refused.since)} ago): ${src.refused.problem}`);
  if (src.forced) out.push(`  history rewritten ${age(src.forced.at)} ago: ${src.forced.from.slice(0, 12)} -> ${src.forced.to.slice(0, 12)} (forced push)`);
  return out;
}

function ageAt(iso: string | undefined, now: number): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function cond(s: UnitStatus, type: string) {
  return s.conditions.find((c) => c.type === type);
}
