import type { PlanArgs } from '../../controller/backend.js';
import { configHash, describeConfigChange, secretDigests } from '../../controller/hash.js';
import { L } from '../../controller/labels.js';
import { adoptCause } from '../../controller/plan-actions.js';
import type { Hold } from '../../controller/plan-types.js';
import { configRef, secretRef, serviceConfig, type DesiredSwarmBottle } from './desired.js';
import { desiredShape, shapeDrift } from './shape.js';
import { planSharedJoins, sharedJoins } from './plan-shared.js';
import type { ObservedConfig, ObservedService } from './observe-types.js';
import { unitKey } from '../../controller/unit-key.js';

/**
 * Plan the services of a swarm bottle (pure). Swarm keeps the tasks running and reschedules
 * them; bottled keeps the declared shape: each service exists with this spec, nothing else of
 * the bottle does. A service's spec hash covers its files' contents, so a file change is an
 * update (new config, task replaced start-first).
 */
export function planSwarm({ acts, d, w, inv, input, index, unitHashes }: PlanArgs<DesiredSwarmBottle>): Hold | undefined {
  if (acts.list.some((a) => a.on === 'network' && a.kind === 'recreate')) {
    return { reason: 'NetworkInUse', message: `a network of this bottle must be recreated (${acts.list.find((a) => a.kind === 'recreate')!.cause}), which its services block on a swarm: remove the bottle (delete its file, reconcile) and declare it again`, failure: true };
  }
  const usedShared = new Set(d.uses.flatMap((u) => input.desired.get(unitKey.shared(u))?.workload?.name ?? []));
  for (const n of d.networks) {
    const ids = new Set((index.networksByName.get(n.name) ?? []).map((o) => o.id));
    // A service on the overlay that is neither the bottle's own nor a SharedSidecar of ours it uses.
    const strangers = [...index.workloadsByName.values()]
      .filter((o): o is ObservedService => o.type === 'service' && !index.mine(d.unit, o) && !(usedShared.has(o.name) && index.claimOf(o).kind === 'ours'))
      .filter((o) => o.service.shape.networks.some((x) => ids.has(x.target)))
      .map((o) => o.name)
      .sort();
    if (d.kind === 'shared') continue; // its users' overlays are joined to it, not the other way
    if (strangers.length) return { reason: 'NetworkInUse', message: `network ${n.name} is joined by services that are not part of the bottle (${strangers.join(', ')}): they could reach the agent; bottled touches nothing until they leave`, failure: true };
  }
  const networkId = (name: string) => (index.networksByName.get(name) ?? []).find((n) => index.claimOf(n).kind === 'ours')?.id;
  const netIds = acts.list.filter((a) => a.on === 'network').map((a) => a.id);
  // A bottle's SharedSidecars join its overlay before any of its services is made (clears).
  if (d.kind === 'bottle') {
    const joined = planSharedJoins(acts, d, input, index, netIds);
    if (!Array.isArray(joined)) return joined;
  }
  const ids = new Map<string, number>();
  const desiredConfigs = new Set<string>();
  const serviceActs: number[] = [];
  for (const s of w.services) {
    const o = index.workloadsByName.get(s.name) as ObservedService | undefined;
    if (o && !index.mine(d.unit, o)) return { reason: 'NameCollision', message: `service ${s.name} exists and is not this bottle's: ${(index.claimOf(o) as { why?: string }).why ?? 'another bottle\'s'}`, failure: true };
    const configs = s.files.map((f) => configRef(input.opts.instance, s.name, f));
    for (const c of configs) desiredConfigs.add(c.name);
    const digests = secretDigests(s.secretEnv, input.secretDigest);
    const secrets = Object.entries(s.secretEnv).map(([k, v]) => secretRef(input.opts.instance, s.name, k, v, digests[k]!));
    for (const x of secrets) desiredConfigs.add(x.name);
    const config = serviceConfig(s, digests, configs);
    const hash = configHash(config);
    unitHashes.push(hash);
    const after = [...netIds, ...s.waitFor.flatMap((x) => ids.get(x) ?? [])];
    const joins = s.role === 'shared' ? sharedJoins(d, input, index, o) : undefined;
    const payload = { desired: s, hash, config, configs, secrets, joins };
    const what = s.role === 'agent' ? 'agent' : `sidecar ${s.component}`;
    if (!o) {
      const where = s.placement.constraints.length ? ` on ${s.placement.constraints.join(', ')}` : '';
      const id = acts.add({ kind: 'create', on: 'service', resource: { type: 'service', name: s.name }, cause: `${what}: ${s.image}, one replica${where}`, after, service: payload }).id;
      ids.set(s.name, id);
      serviceActs.push(id);
      continue;
    }
    const claim = index.claimOf(o);
    const rec = inv?.resources[s.name];
    if (!rec || claim.kind === 'adoptable') {
      acts.add({ kind: 'adopt', on: 'inventory', resource: { type: 'service', name: s.name }, cause: adoptCause(claim), adopt: { type: 'service', role: s.role, specHash: o.labels[L.specHash], applied: o.labels[L.specHash] === hash ? config : undefined, owner: claim.kind === 'adoptable' ? claim.owner : undefined, id: o.service.id } });
    }
    // A SharedSidecar's other networks are its users' overlays (see sharedJoins): any other one was added by hand.
    const extra = (joins ?? []).map((j) => ({ network: j.overlay, aliases: j.aliases }));
    const drift = o.labels[L.specHash] === hash ? shapeDrift(o.service.shape, desiredShape({ ...s, networks: [...s.networks, ...extra] }, configs, secrets, networkId)) : [];
    const stuck = o.service.update && (o.service.update.state === 'paused' || o.service.update.state.startsWith('rollback')) ? o.service.update : undefined;
    if (stuck && !drift.length && o.labels[L.specHash] === hash) {
      // Swarm does not resume a paused update by itself: send the spec again (the cause says why it paused).
      const id = acts.add({ kind: 'update', on: 'service', resource: { type: 'service', name: s.name }, cause: `its last update is ${stuck.state}${stuck.message ? ` (${stuck.message})` : ''}: sent again`, after, service: payload }).id;
      ids.set(s.name, id);
      serviceActs.push(id);
    } else if (drift.length) {
      const id = acts.add({ kind: 'update', on: 'service', resource: { type: 'service', name: s.name }, cause: `changed by hand: ${drift.join(', ')} (put back as declared; Swarm replaces the task)`, after, service: payload }).id;
      ids.set(s.name, id);
      serviceActs.push(id);
    } else if (o.labels[L.specHash] !== hash) {
      const files = s.files.length && rec?.applied && JSON.stringify(rec.applied.files) !== JSON.stringify(config.files) ? ': new configs, Swarm replaces the task (start-first)' : ': Swarm replaces the task (start-first)';
      const id = acts.add({ kind: 'update', on: 'service', resource: { type: 'service', name: s.name }, cause: describeConfigChange(rec?.applied, config, o.labels[L.configHash]) + files, after, service: payload }).id;
      ids.set(s.name, id);
      serviceActs.push(id);
    }
  }
  // What the bottle no longer declares: services of it (a sidecar taken out), then configs no
  // service of it uses once this pass is done.
  const owned = [...index.ownedBy(d.unit).workloads, ...index.adoptableBy(d.unit).workloads];
  const keep = new Set(w.services.map((s) => s.name));
  for (const o of owned) {
    if (o.type !== 'service' || keep.has(o.name)) continue;
    serviceActs.push(acts.add({ kind: 'remove', on: 'service', resource: { type: 'service', name: o.name }, cause: `${o.labels[L.component] ? `sidecar ${o.labels[L.component]}` : 'service'} no longer declared` }).id);
  }
  for (const o of owned) {
    if (o.type === 'config' && !desiredConfigs.has(o.name)) {
      acts.add({ kind: 'remove', on: 'service', resource: { type: 'config', name: o.name }, cause: `no service uses it any more (${(o as ObservedConfig).labels['bottled.path'] ?? 'a file'} changed or went)`, after: serviceActs });
    } else if (o.type === 'secret' && !desiredConfigs.has(o.name)) {
      acts.add({ kind: 'remove', on: 'service', resource: { type: 'secret', name: o.name }, cause: `no service uses it any more (the value of ${o.labels['bottled.variable'] ?? 'a secretEnv variable'} changed, or it went)`, after: serviceActs });
    }
  }
  return undefined;
}
