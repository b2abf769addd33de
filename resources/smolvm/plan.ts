import type { PlanArgs } from '../../controller/backend.js';
import type { DesiredFile } from '../../controller/desired.js';
import { configHash, describeConfigChange, secretDigests, secretFreeHash } from '../../controller/hash.js';
import { L } from '../../controller/labels.js';
import { adoptCause } from '../../controller/plan-actions.js';
import { resolveEnv } from '../../controller/plan-env.js';
import type { Hold } from '../../controller/plan-types.js';
import { machineAllowList } from './allow-list.js';
import { machineConfig, type DesiredMachine } from './desired.js';
import type { ObservedMachine, SmolvmFacts } from './observe-types.js';

/** Plan the agent machine of a smolvm bottle (pure); returns a hold when it cannot be planned. */
export function planMachine({ acts, d, w: m, inv, input, index, changed, unitHashes }: PlanArgs<DesiredMachine>): Hold | undefined {
  const observed = index.workloadsByName.get(m.name) as ObservedMachine | undefined;
  const o = observed?.machine;
  const fromStats = (input.snapshot.workloads?.get('smolvm')?.facts as SmolvmFacts | undefined)?.fromStats;
  const { changing } = changed;
  const { opts } = input;
  // Addresses the machine may reach: each sidecar, and the publish host when ports are published.
  let deferred = false;
  const ips: string[] = [];
  for (const c of d.containers) {
    const ip = c.primary.ip ?? (changing.has(c.name) ? undefined : index.containersByName.get(c.name)?.networks[c.primary.network]?.ip);
    if (!ip) deferred = true;
    else ips.push(ip);
  }
  const allow = machineAllowList(ips, d.containers.some((c) => c.ports.length > 0), opts.publishHost);
  const res = resolveEnv(m, d, index, changing, opts.publishHost);
  deferred ||= res.deferred;
  const fromStat = m.from ? fromStats?.get(m.from) : undefined;
  if (m.from && fromStats && fromStat === undefined) return { reason: 'ArtifactMissing', message: `agent.from ${m.from} does not exist`, failure: true };
  const config = deferred ? undefined : machineConfig(m, res.env, secretDigests(m.secretEnv, input.secretDigest), allow, fromStat);
  const hash = config ? configHash(config) : undefined;
  if (hash) unitHashes.push(hash);
  const waitIds = m.waitFor.map((w) => acts.lastOf(w)).filter((x): x is number => !!x);
  const payload = { desired: m, hash, config };
  // After a (re)create the copy itself is the delivery: the machine starts with the content.
  const copyAll = (why: string) => {
    for (const f of m.files) {
      acts.add({ kind: 'rewrite-file', on: 'machine', resource: { type: 'file', name: `${m.name}:${f.path}` }, cause: why, file: f, machineName: m.name, delivers: [f] });
    }
  };

  if (!o || !observed) {
    acts.add({ kind: 'create', on: 'machine', resource: { type: 'machine', name: m.name }, cause: `${m.image ?? m.from} with access to ${m.waitFor.length} sidecar${m.waitFor.length === 1 ? '' : 's'}`, machine: payload, after: waitIds, waitFor: m.waitFor });
    acts.add({ kind: 'start', on: 'machine', resource: { type: 'machine', name: m.name }, cause: 'new machine', implicit: true, machine: m });
    copyAll('copy in after start');
    return undefined;
  }
  const claim = index.claimOf(observed);
  const rec = inv?.resources[m.name];
  let observedHash = o.labels[L.specHash];
  if (!rec || claim.kind === 'adoptable') {
    // A machine's secrets are references read at each start, so its secret-free hash is enough
    // to prove it unchanged when the HMAC key of its spec hash is gone.
    const proven = hash !== undefined && observedHash !== hash && o.labels[L.configHash] === secretFreeHash(config!);
    acts.add({ kind: 'adopt', on: 'inventory', resource: { type: 'machine', name: m.name }, cause: adoptCause(claim), adopt: { type: 'machine', role: 'agent', specHash: proven ? hash : observedHash, labelHash: proven ? observedHash : undefined, applied: proven || observedHash === hash ? config : undefined, owner: claim.kind === 'adoptable' ? claim.owner : undefined } });
    if (proven) observedHash = hash;
  } else if (rec.labelHash && rec.labelHash === observedHash) {
    observedHash = rec.specHash;
  }
  let recreate: string | undefined;
  let verifyHash: string | undefined;
  if (deferred && res.missing.length === 0) {
    recreate = 'if its sidecar addresses or ports change in this pass';
    verifyHash = observedHash ?? '';
  } else if (hash && observedHash !== hash) {
    recreate = describeConfigChange(rec?.applied, config!, o.labels[L.configHash]);
  }
  if (recreate) {
    acts.add({ kind: 'recreate', on: 'machine', resource: { type: 'machine', name: m.name }, cause: recreate, machine: { ...payload, verifyHash }, after: waitIds, waitFor: m.waitFor });
    acts.add({ kind: 'start', on: 'machine', resource: { type: 'machine', name: m.name }, cause: 'recreated', implicit: true, machine: m });
    copyAll('copy in after recreate');
    return undefined;
  }
  if (o.state !== 'running') {
    // A stopped, crashed (stale pid) or unreachable machine: stop (kills a zombie), then start.
    const how = o.state === 'stopped' && o.stalePid ? 'found stopped with a stale pid (crashed)' : `found ${o.rawState}`;
    acts.add({ kind: 'restart', on: 'machine', resource: { type: 'machine', name: m.name }, cause: how, after: waitIds, machine: m });
  }
  const delivered = inv?.delivered[m.name] ?? {};
  const execs = new Map<string, { cmd: string[]; files: DesiredFile[] }>();
  let restart: DesiredFile[] | undefined;
  for (const f of m.files) {
    if (delivered[f.path] === f.hash) continue;
    const then = f.onChange.type === 'exec' ? ', then exec' : f.onChange.type === 'restart' ? ', then restart' : '';
    acts.add({ kind: 'rewrite-file', on: 'machine', resource: { type: 'file', name: `${m.name}:${f.path}` }, cause: `content changed: copy in${then}`, file: f, machineName: m.name, delivers: f.onChange.type === 'recreate' ? [f] : undefined });
    if (f.onChange.type === 'exec') {
      const key = JSON.stringify(f.onChange.command);
      execs.set(key, { cmd: f.onChange.command, files: [...(execs.get(key)?.files ?? []), f] });
    } else if (f.onChange.type === 'restart') restart = [...(restart ?? []), f];
  }
  if (restart) {
    acts.add({ kind: 'restart', on: 'machine', resource: { type: 'machine', name: m.name }, cause: `${restart.map((f) => f.path).join(', ')} changed`, delivers: [...restart, ...[...execs.values()].flatMap((e) => e.files)], machine: m });
  } else {
    for (const e of execs.values()) acts.add({ kind: 'exec', on: 'machine', resource: { type: 'machine', name: m.name }, cause: `${e.files.map((f) => f.path).join(', ')} changed`, exec: e.cmd, delivers: e.files, after: waitIds });
  }
  return undefined;
}

