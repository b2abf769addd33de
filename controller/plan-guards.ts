import { DOCKER_NETWORKS } from '../specs/fields.js';
import { agentBackend } from '../resources/backends.js';
import type { DesiredUnit } from './desired.js';
import { L } from './labels.js';
import type { SnapshotIndex } from './plan-index.js';
import type { PlanInput } from './plan-input.js';
import type { Hold } from './plan-types.js';
import { REASONS, type Reason } from './reasons.js';
import { unitKey, type UnitKey } from './unit-key.js';

/** What stops a unit before anything is planned: suspend, collisions, missing inputs. */
export function guards(d: DesiredUnit, input: PlanInput, index: SnapshotIndex, claims: Map<string, UnitKey>): Hold | undefined {
  const { snapshot } = input;
  const stop = (reason: Reason, message: string, failure = REASONS[reason].failure): Hold => ({ reason, message, failure });
  if (d.suspend) return stop('Suspended', 'spec.suspend is true: nothing of this bottle is touched', false);
  const agent = d.workload ? agentBackend(d.workload.backend) : undefined;
  if (d.workload) {
    const obs = snapshot.workloads?.get(d.workload.backend);
    if (!agent) return stop('Failed', `backend ${d.workload.backend} is not known to this bottled`);
    if (!obs || obs.error !== undefined) return stop(agent.unavailable, obs?.error ?? `${agent.name} could not be asked what runs`);
  }
  const missingShared = d.uses.filter((n) => !input.desired.has(unitKey.shared(n)));
  if (missingShared.length) return stop('SharedSidecarMissing', `uses ${missingShared.join(', ')}, which no SharedSidecar document declares: not applied (its running resources are left alone)`);

  // Collisions: a resource with one of our names that this unit cannot prove it owns blocks the
  // unit; the other resource is left alone.
  for (const n of d.networks) {
    for (const o of index.networksByName.get(n.name) ?? []) {
      if (!index.mine(d.unit, o)) return stop('NameCollision', `network ${n.name} exists and is not this ${what(d)}'s: ${whyNot(index, o, input)}`);
    }
  }
  for (const c of d.containers) {
    const o = index.containersByName.get(c.name);
    if (o && !index.mine(d.unit, o)) return stop('NameCollision', `container ${c.name} exists and is not this ${what(d)}'s: ${whyNot(index, o, input)}`);
    const claimant = claims.get(c.name);
    if (claimant !== d.unit) return stop('NameCollision', `container name ${c.name} (${roleOf(d, c.name)}) is also the name of the ${roleOf(input.desired.get(claimant!)!, c.name)} of ${describeUnit(claimant!)}: rename one of them`);
  }
  if (d.workload) {
    const w = d.workload;
    const o = index.workloadsByName.get(w.name);
    if (o && !index.mine(d.unit, o)) return stop('NameCollision', `${w.type} ${w.name} exists and is not this bottle's: ${o.labelled ? whyNot(index, o, input) : 'it has no labels'}`);
    for (const [k, v] of Object.entries(w.secretEnv)) {
      if (input.secretDigest(v) === undefined) return stop('SecretMissing', `${w.name}: secretEnv ${k} names ${v}, which is not set in the environment or --secrets-file`);
    }
  }
  for (const c of d.containers) {
    if (c.runtime && snapshot.runtimes && !snapshot.runtimes.includes(c.runtime)) {
      return stop('RuntimeMissing', `${roleOf(d, c.name)} asks for runtime ${c.runtime}, which the engine does not have (registered: ${snapshot.runtimes.join(', ') || 'none'}); register it in /etc/docker/daemon.json, e.g. {"runtimes": {"${c.runtime}": {"path": "/usr/bin/${c.runtime}"}}}, and restart dockerd${c.runtime === 'runsc' ? ' (Debian: apt-get install runsc)' : ''}`);
    }
    for (const [k, v] of Object.entries(c.secretEnv)) {
      if (input.secretDigest(v) === undefined) return stop('SecretMissing', `${c.name}: secretEnv ${k} names ${v}, which is not set in the environment or --secrets-file`);
    }
    for (const [i, ext] of c.externalNetworks.entries()) {
      const where = locate(d, input, `spec.agent.networks.${i}`);
      const obs = index.networksByName.get(ext)?.[0];
      // Invariant 8: an agent never joins a network bottled manages (its own egress network, or
      // another bottle's), nor Docker's own networks (the validator refuses the names it can).
      if (RESERVED_NETWORKS.has(ext) || obs?.labels[L.managedBy] === 'bottled' || index.networkIds.has(ext)) {
        const owner = obs?.labels[L.managedBy] === 'bottled' ? ` (bottled ${obs.labels[L.role] ?? 'network'} of ${obs.labels[L.kind] === 'shared' ? 'SharedSidecar' : 'bottle'} ${obs.labels[L.bottle] ?? '?'}, instance ${obs.labels[L.instance] ?? '?'})` : '';
        return stop('NetworkForbidden', `${where}agent.networks: ${ext} is a network ${owner ? `bottled manages${owner}` : 'of Docker itself'}: joining it would open the agent's seal (agent.networks is for networks of your own, see the README)`);
      }
      if (!obs) return stop('NetworkMissing', `${where}agent.networks: network ${ext} does not exist (bottled never creates it)`);
      if ((index.networksByName.get(ext) ?? []).length > 1) return stop('NetworkAmbiguous', `${where}agent.networks: more than one network is named ${ext}: bottled connects to none of them`);
    }
  }
  return undefined;
}

const RESERVED_NETWORKS: ReadonlySet<string> = new Set(DOCKER_NETWORKS);

function locate(d: DesiredUnit, input: PlanInput, path: string): string {
  const p = input.load.positions?.get(unitKey.toDocKey(d.unit))?.[path];
  return p ? `${d.origin.file}:${p.line}:${p.col}: ` : '';
}

function whyNot(index: SnapshotIndex, o: Parameters<SnapshotIndex['claimOf']>[0], input: PlanInput): string {
  const claim = index.claimOf(o);
  if (claim.kind === 'foreign') return claim.why;
  // Ours, but another unit's: two units render the same name.
  const other = input.desired.get(claim.unit);
  return `it is the ${other ? roleOf(other, o.name) : 'resource'} of ${describeUnit(claim.unit)}`;
}

function what(d: DesiredUnit): string {
  return d.kind === 'shared' ? 'SharedSidecar' : 'bottle';
}

function describeUnit(unit: UnitKey): string {
  return unitKey.kind(unit) === 'shared' ? `SharedSidecar ${unitKey.name(unit)}` : `bottle ${unitKey.name(unit)}`;
}

function roleOf(d: DesiredUnit, name: string): string {
  const c = d.containers.find((x) => x.name === name);
  if (c?.role === 'sidecar') return `sidecar ${c.component}`;
  if (c?.role === 'agent' || d.workload?.name === name) return 'agent';
  if (c?.role === 'shared') return 'shared sidecar container';
  if (d.networks.some((n) => n.name === name)) return 'network';
  return 'resource';
}
