import type { Reason } from '../../controller/reasons.js';
import { normalizeImageRef } from './image-ref.js';
import type { Inventory } from '../../state/inventory.js';
import type { DesiredContainer, DesiredUnit, Endpoint } from '../../controller/desired.js';
import { configHash, containerConfig, describeConfigChange, secretDigests, secretFreeHash } from '../../controller/hash.js';
import { L } from '../../controller/labels.js';
import { type ActionList, adoptCause, type Changed, shortId, shortName } from '../../controller/plan-actions.js';
import { resolveEnv } from '../../controller/plan-env.js';
import type { FileOwner } from './actions.js';
import { planFiles } from './plan-files.js';
import { numericUser } from '../../controller/image-user.js';
import type { SnapshotIndex } from '../../controller/plan-index.js';
import type { PlanInput } from '../../controller/plan-input.js';

export interface ContainerPhase {
  netIds: number[];
  /** A network of the unit is recreated: every container of it is created anew. */
  recreateAll: boolean;
  unitHashes: string[];
}

/** Containers of one unit: create, recreate, adopt, or fix in place what differs. */
export function planContainers(
  acts: ActionList,
  d: DesiredUnit,
  inv: Inventory | undefined,
  input: PlanInput,
  index: SnapshotIndex,
  phase: ContainerPhase,
): Changed | { reason: Reason; message: string } {
  const { opts, snapshot } = input;
  const { netIds, recreateAll, unitHashes } = phase;

  // Containers of this unit that are no longer declared go before anything new needs their address.
  const desiredNames = new Set(d.containers.map((c) => c.name));
  for (const o of [...index.ownedBy(d.unit).containers, ...index.adoptableBy(d.unit).containers]) {
    if (!desiredNames.has(o.name) && !acts.lastOf(o.name)) {
      acts.add({ kind: 'remove', on: 'container', resource: { type: 'container', name: o.name }, cause: 'no longer declared in the bottle' });
    }
  }

  // A container holding another one's pinned address (Docker does not reserve the address of a
  // stopped container) leaves that network first and rejoins it below with a dynamic address.
  const pinnedBy = new Map(d.containers.filter((c) => c.primary.ip).map((c) => [`${c.primary.network}/${c.primary.ip}`, c.name] as const));
  const squatters = new Set<string>();
  for (const c of d.containers) {
    const o = recreateAll ? undefined : index.containersByName.get(c.name);
    const ip = o?.networks[c.primary.network]?.ip;
    const owner = ip ? pinnedBy.get(`${c.primary.network}/${ip}`) : undefined;
    if (o && owner && owner !== c.name) {
      squatters.add(c.name);
      acts.add({ kind: 'disconnect', on: 'container', resource: { type: 'container', name: c.name }, cause: `it holds ${ip}, pinned for ${shortName(owner, d)}`, networkName: c.primary.network, after: netIds });
    }
  }

  const changing = new Set<string>();
  const replaced = new Set<string>();
  const withCheck = new Set(d.containers.filter((c) => c.healthcheck).map((c) => c.name));

  for (const c of d.containers) {
    const res = resolveEnv(c, d, index, changing, opts.publishHost);
    const digests = secretDigests(c.secretEnv, input.secretDigest);
    const config = res.deferred ? undefined : containerConfig(c, res.env, digests, opts.publishHost);
    const hash = config ? configHash(config) : undefined;
    if (hash) unitHashes.push(hash);
    const o = recreateAll ? undefined : index.containersByName.get(c.name);
    const imageId = snapshot.images.get(normalizeImageRef(c.image));
    const image = imageId ? input.images?.get(imageId) : undefined;
    const waitFor = c.waitFor.filter((w) => desiredNames.has(w));
    const waitIds = waitFor.map((w) => acts.lastOf(w)).filter((x): x is number => !!x);
    const waitNote = waitFor.some((w) => withCheck.has(w)) ? ` (after ${waitFor.map((w) => shortName(w, d)).join(', ')} ${waitFor.length > 1 ? 'are' : 'is'} healthy)` : '';
    const rec = inv?.resources[c.name];
    // security.user runs it as someone else than the image says: its files are that user's.
    const user = c.security.user ?? image?.user;
    // The recorded owner is that of the user it was created as: not when that user changes.
    const sameUser = (rec?.applied as { security?: { user?: string } } | undefined)?.security?.user === c.security.user;
    const owner = c.security.user !== undefined ? numericUser(c.security.user) : fileOwner(sameUser ? rec : undefined, image);
    const missingImage = () => (imageId ? undefined : { reason: 'ImageMissing' as const, message: `image ${c.image} not found on this engine (bottled does not pull: build or pull it first)` });

    // Create or recreate: files first, the container on its first network, connect the rest, start.
    const replace = (kind: 'create' | 'recreate', cause: string, verifyHash?: string) => {
      acts.add({
        kind,
        on: 'container',
        resource: { type: 'container', name: c.name },
        cause,
        container: { desired: c, hash, config, verifyHash, stopSignal: image?.stopSignal || 'SIGTERM' },
        fileWrites: c.files,
        fileOwner: owner ?? (user ? { user } : undefined),
        after: [...netIds, ...waitIds],
        waitFor,
      });
      connects(acts, c, c.managedExtras, 'joins');
      connects(acts, c, c.externalNetworks.map((n) => ({ network: n, aliases: [] })), 'joins', index);
      // A pinned address is taken only at start: a sidecar started beside it could take it first
      // when the network has no dynamic range of its own.
      acts.add({ kind: 'start', on: 'container', resource: { type: 'container', name: c.name }, cause: kind === 'create' ? 'new container' : 'recreated', implicit: true, waitFor }, { clears: !!c.primary.ip });
      changing.add(c.name);
      replaced.add(c.name);
    };

    if (!o) {
      const miss = missingImage();
      if (miss) return miss;
      if (res.missing.length && !res.deferred) return { reason: 'DependencyNotReady', message: `${c.name}: cannot resolve ${res.missing.join(', ')}` };
      replace('create', `${c.image} on ${c.primary.network}${c.primary.aliases.length ? ` as ${c.primary.aliases.join(', ')}` : ''}${waitNote}`);
      continue;
    }

    const claim = index.claimOf(o);
    let observedHash = o.labels[L.specHash];
    if (!rec || claim.kind === 'adoptable') {
      // Adopting: prove it unchanged if we can. Its spec-hash label holds secrets keyed with the
      // HMAC key of the state directory that created it; when that key is gone, the secret-free
      // hash and the secret values found in the container prove the same thing.
      const sameNow = hash !== undefined && observedHash === hash;
      const secretFree = config ? secretFreeHash(config) : undefined;
      const provenWithoutKey = !sameNow && hash !== undefined && secretFree !== undefined && o.labels[L.configHash] === secretFree && secretsMatch(input.observedSecrets?.get(c.name), digests);
      // Files already on disk with the desired content count as delivered: adopting never signals.
      const onDisk = Object.fromEntries(c.files.filter((f) => input.fileHashes.get(f.hostPath) === f.hash).map((f) => [f.path, f.hash]));
      acts.add({
        kind: 'adopt',
        on: 'inventory',
        resource: { type: 'container', name: c.name },
        cause: adoptCause(claim),
        adopt: {
          type: 'container',
          role: c.role,
          specHash: provenWithoutKey ? hash : observedHash,
          labelHash: provenWithoutKey ? observedHash : undefined,
          applied: sameNow || provenWithoutKey ? config : undefined,
          delivered: onDisk,
          owner: claim.kind === 'adoptable' ? claim.owner : undefined,
          id: o.id,
        },
      });
      if (provenWithoutKey) observedHash = hash;
    } else if (rec.labelHash && rec.labelHash === observedHash) {
      observedHash = rec.specHash; // proven equal at adoption (see above)
    }

    let recreateCause: string | undefined;
    let verifyHash: string | undefined;
    if (res.deferred && res.missing.length === 0) {
      recreateCause = `if its environment changes: ${c.placeholders.map((p) => p.token).join(', ')} may change in this pass`;
      verifyHash = observedHash ?? '';
    } else if (hash && observedHash !== hash) {
      recreateCause = describeConfigChange(rec?.applied, config!, o.labels[L.configHash]);
    } else if (imageId && o.imageId !== imageId) {
      recreateCause = `image ${c.image} changed (${shortId(o.imageId)} -> ${shortId(imageId)})`;
    } else if (Object.values(o.networks).some((n) => n.networkId && !index.networkIds.has(n.networkId))) {
      recreateCause = 'a network it was attached to no longer exists';
    } else if (o.state === 'dead' || o.state === 'removing') {
      recreateCause = `found ${o.state}`;
    }
    if (recreateCause) {
      const miss = missingImage();
      if (miss) return miss;
      replace('recreate', recreateCause, verifyHash);
      continue;
    }

    // Same create-time configuration: fix what can be fixed in place.
    const running = o.state === 'running' || o.state === 'restarting' || o.state === 'paused';
    planFiles(acts, c, inv, input, running, owner, waitIds);
    const missingNets = [c.primary, ...c.managedExtras].filter((ep) => !o.networks[ep.network] || (squatters.has(c.name) && ep === c.primary));
    connects(acts, c, missingNets, 'not connected');
    connects(acts, c, c.externalNetworks.filter((n) => !o.networks[n]).map((n) => ({ network: n, aliases: [] })), 'agent.networks adds', index);
    // Invariant 8: a container's networks are exactly the declared ones. A shared sidecar's
    // endpoints on bottle networks are the bottles' business (they connect and disconnect it).
    const declared = new Set([c.primary.network, ...c.managedExtras.map((e) => e.network), ...c.externalNetworks]);
    for (const net of Object.keys(o.networks).sort()) {
      if (declared.has(net) || (d.kind === 'shared' && index.isOurNetwork(net))) continue;
      const was = rec?.extraNetworks?.includes(net);
      acts.add({ kind: 'disconnect', on: 'container', resource: { type: 'container', name: c.name }, cause: was ? `${net} no longer in agent.networks` : `${net} is not declared (connected by hand): a bottle reaches only what it declares`, networkName: net, networkId: o.networks[net]!.networkId || undefined });
    }
    // Created before bottled set `always` with an explicit stop signal: a signal through the kill
    // API on Docker 20.10 marks such a container stopped, so a later crash or engine restart
    // would leave it down (moby#41302). Changed in place, once.
    if (rec?.restartPolicy === 'no') {
      acts.add({ kind: 'update', on: 'container', resource: { type: 'container', name: c.name }, cause: 'restart policy no (stopped at its expiry) -> always', restartPolicy: 'always' });
    } else if (!o.labels[L.createId] && rec?.restartPolicy !== 'always') {
      acts.add({ kind: 'update', on: 'container', resource: { type: 'container', name: c.name }, cause: 'restart policy unless-stopped -> always (so a signal never turns off Docker\'s restarts)', restartPolicy: 'always' });
    }
    if (!running) {
      const how = o.state === 'exited' ? `found exited, code ${o.exitCode ?? '?'}` : `found ${o.state}`;
      acts.add({ kind: 'start', on: 'container', resource: { type: 'container', name: c.name }, cause: how, waitFor, after: waitIds });
      changing.add(c.name);
    }
  }
  return { changing, replaced };
}

/** Every secret found in the container has the value it would be given now. */
function secretsMatch(found: Record<string, string | undefined> | undefined, wanted: Record<string, string>): boolean {
  if (!found) return false;
  return Object.entries(wanted).every(([k, v]) => found[k] !== undefined && found[k] === v);
}

/** uid/gid of the container's user, for files that do not name their own (known, or undefined). */
function fileOwner(rec: Inventory['resources'][string] | undefined, image: { uid?: number; gid?: number } | undefined): FileOwner | undefined {
  if (rec?.fileOwner) return rec.fileOwner;
  if (image?.uid !== undefined) return { uid: image.uid, gid: image.gid ?? image.uid };
  return undefined;
}

/** `existing`: the networks exist already (agent.networks): connect by their observed ID. */
export function connects(acts: ActionList, c: DesiredContainer, eps: Endpoint[], why: string, existing?: SnapshotIndex): void {
  for (const ep of eps) {
    acts.add({
      kind: 'connect',
      on: 'container',
      resource: { type: 'container', name: c.name },
      cause: `${why} ${ep.network}${ep.aliases.length ? ` as ${ep.aliases.join(', ')}` : ''}`,
      endpoint: ep,
      networkId: existing?.networksByName.get(ep.network)?.[0]?.id,
    });
  }
}
