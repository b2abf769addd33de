// Rules that look at more than one field: they run on the parsed (typed) spec, after every
// field on its own is valid, and report problems at the path of the field to change.
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type { BottleSpec, FileSpec, SecuritySpec, SidecarSpec } from './model.js';
import { didYouMean } from './did-you-mean.js';
import { placeholderRefs, scanPlaceholders } from './placeholders.js';

export type FieldPath = (string | number)[];
/** `at: 'key'` points the diagnostic at the key of the field rather than at its value. */
export type Report = (path: FieldPath, message: string, options?: { at?: 'key' }) => void;

interface ContainerFields {
  env: Record<string, string>;
  secretEnv: Record<string, string>;
  files: FileSpec[];
}

/** Rules of one container (sidecar, agent or shared sidecar); paths are relative to it. */
export function checkContainer(container: ContainerFields, report: Report): void {
  const firstIndexOfPath = new Map<string, number>();
  container.files.forEach((file, index) => {
    const first = firstIndexOfPath.get(file.path);
    if (first === undefined) firstIndexOfPath.set(file.path, index);
    else report(['files', index, 'path'], `${file.path} is already used by files[${first}] of this container`);
  });
  // A file cannot also be a directory holding another file.
  container.files.forEach((file, index) => {
    for (let dir = path.posix.dirname(file.path); dir !== '/'; dir = path.posix.dirname(dir)) {
      const other = firstIndexOfPath.get(dir);
      if (other !== undefined) {
        report(['files', index, 'path'], `${file.path} would be inside ${dir}, which is the file of files[${other}]: a path cannot be both a file and a directory`);
        break;
      }
    }
  });
  for (const name of Object.keys(container.secretEnv)) {
    if (name in container.env) {
      report(['secretEnv', name], 'is also set in env: a variable comes from either env or secretEnv', { at: 'key' });
    }
  }
}

export function checkSharedSidecarEnv(env: Record<string, string>, report: Report): void {
  for (const [name, value] of Object.entries(env)) {
    if (scanPlaceholders(value).placeholders.length > 0) {
      report(['env', name], 'placeholders name sidecars of a Bottle and are not available in a SharedSidecar');
    }
  }
}

/** A SharedSidecar on swarm is a service: the same refusals as a swarm bottle's sidecar. */
export function checkSharedSidecarBackend(spec: { backend?: 'docker' | 'swarm'; ports: number[]; files: FileSpec[]; placement?: unknown; security?: unknown; runtime?: string }, report: Report): void {
  if (spec.backend !== 'swarm') {
    if (spec.placement) report(['placement'], 'applies only to the swarm backend (this SharedSidecar runs on docker, one host)', { at: 'key' });
    return;
  }
  swarmSecurity(spec.security as SecuritySpec | undefined, [], report);
  if (spec.runtime) report(['runtime'], "is not available on the swarm backend yet: a runtime is a setting of each node's engine", { at: 'key' });
  if (spec.ports.length > 0) report(['ports'], "published ports are not available on the swarm backend (they need the routing mesh, which bottled's dnsrr services do not use)", { at: 'key' });
  spec.files.forEach((f, i) => {
    if (f.onChange.type === 'signal' || f.onChange.type === 'exec') {
      report(['files', i, 'onChange'], `${f.onChange.type} is not available on the swarm backend: a file is a Swarm config, which cannot change in place, so a change replaces the task; use restart (or recreate, the same there)`);
    }
  });
}

/** Rules of a whole Bottle spec; paths are relative to `spec`. */
export function checkBottle(spec: BottleSpec, report: Report): void {
  spec.sidecars.forEach((s, i) => checkSecurity(s.security, s.files, ['sidecars', i], report));
  checkSecurity(spec.agent.security, spec.agent.files, ['agent'], report);
  checkSidecarNames(spec.sidecars, report);
  checkAliases(spec.sidecars, report);
  checkAddresses(spec, report);
  checkAgentForBackend(spec, report);
  checkPlaceholderTargets(spec, report);
  checkPlaceholderCycles(spec.sidecars, report);
}

function checkSidecarNames(sidecars: SidecarSpec[], report: Report): void {
  const firstIndex = new Map<string, number>();
  sidecars.forEach((sidecar, index) => {
    const first = firstIndex.get(sidecar.name);
    if (first === undefined) firstIndex.set(sidecar.name, index);
    else report(['sidecars', index, 'name'], `"${sidecar.name}" is already the name of sidecars[${first}]`);
  });
}

/** Two sidecars answering to one DNS name would make the name resolve to either. */
function checkAliases(sidecars: SidecarSpec[], report: Report): void {
  const owner = new Map<string, string>();
  sidecars.forEach((sidecar, index) => {
    sidecar.aliases.forEach((alias, aliasIndex) => {
      const key = alias.toLowerCase(); // DNS names are case-insensitive
      const previous = owner.get(key);
      const here = `sidecars[${index}] (${sidecar.name})`;
      if (previous === undefined) owner.set(key, here);
      else report(['sidecars', index, 'aliases', aliasIndex], `"${alias}" is already an alias of ${previous === here ? 'this sidecar' : previous}`);
    });
  });
}

function checkAddresses(spec: BottleSpec, report: Report): void {
  const subnetText = spec.network.subnet;
  const subnet = subnetText === undefined ? undefined : ipaddr.IPv4.parseCIDR(subnetText);
  const takenBy = new Map<string, string>();
  spec.sidecars.forEach((sidecar, index) => {
    if (sidecar.ip === undefined) return;
    const where: FieldPath = ['sidecars', index, 'ip'];
    if (subnet === undefined || subnetText === undefined) {
      if (spec.backend === 'docker') {
        report(
          where,
          'a pinned ip needs an explicit spec.network.subnet with the docker backend: otherwise bottled ' +
            'allocates the subnet from --subnet-pool when it creates the network, so no address written ' +
            'here can be known to lie inside it',
        );
      }
      return; // smolvm: the subnet derived from the name is checked when the bottle is planned
    }
    const problem = addressProblem(sidecar.ip, subnet, subnetText);
    if (problem) return report(where, problem);
    const previous = takenBy.get(sidecar.ip);
    if (previous !== undefined) return report(where, `${sidecar.ip} is already the ip of ${previous}`);
    takenBy.set(sidecar.ip, `sidecars[${index}] (${sidecar.name})`);
  });

  // smolvm pins the first sidecar at .2 when it has no ip: nobody else may claim that address.
  const first = spec.sidecars[0];
  if (spec.backend === 'smolvm' && subnet !== undefined && first !== undefined && first.ip === undefined) {
    const defaultIp = addressAt(subnet[0], 2);
    spec.sidecars.forEach((sidecar, index) => {
      if (index > 0 && sidecar.ip === defaultIp) {
        report(
          ['sidecars', index, 'ip'],
          `${defaultIp} is the address the first sidecar (${first.name}) gets by default with the smolvm backend; pin spec.sidecars[0].ip to another address or pick another one here`,
        );
      }
    });
  }
}

function addressProblem(ip: string, subnet: [ipaddr.IPv4, number], subnetText: string): string | undefined {
  const address = ipaddr.IPv4.parse(ip);
  if (!address.match(subnet)) return `${ip} is outside spec.network.subnet ${subnetText}`;
  const network = subnet[0];
  if (ip === network.toString()) return `${ip} is the network address of ${subnetText}`;
  if (ip === ipaddr.IPv4.broadcastAddressFromCIDR(subnetText).toString()) return `${ip} is the broadcast address of ${subnetText}`;
  if (ip === addressAt(network, 1)) return `${ip} is the gateway of ${subnetText} (the network's first address belongs to its gateway)`;
  return undefined;
}

function addressAt(network: ipaddr.IPv4, offset: number): string {
  const value = network.toByteArray().reduce((sum, byte) => sum * 256 + byte, 0) + offset;
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function checkAgentForBackend(spec: BottleSpec, report: Report): void {
  const { agent } = spec;
  if (spec.backend !== 'swarm') {
    // Never accepted and ignored: only Swarm places containers on nodes.
    spec.sidecars.forEach((s, i) => s.placement && report(['sidecars', i, 'placement'], `applies only to the swarm backend (this bottle runs on ${spec.backend}, one host)`, { at: 'key' }));
    if (agent.placement) report(['agent', 'placement'], `applies only to the swarm backend (this bottle runs on ${spec.backend}, one host)`, { at: 'key' });
  }
  if (spec.backend === 'swarm') return checkSwarm(spec, report);
  if (spec.backend === 'docker') {
    if (agent.image === undefined) report(['agent', 'image'], 'is required with the docker backend');
    if (agent.from !== undefined) report(['agent', 'from'], 'is only for the smolvm backend; the docker backend runs agent.image');
    return;
  }
  if (agent.image === undefined && agent.from === undefined) {
    report(['agent'], 'needs either image: or from: with the smolvm backend');
  } else if (agent.image !== undefined && agent.from !== undefined) {
    report(['agent', 'from'], 'give either image or from, not both', { at: 'key' });
  }
  if (agent.networks.length > 0) {
    report(['agent', 'networks'], 'applies only to the docker backend (a smolvm machine joins no Docker network)');
  }
  if (agent.security) report(['agent', 'security'], 'applies to containers: a smolvm machine is isolated by its own kernel (the sidecars may have security:)', { at: 'key' });
  if (agent.runtime) report(['agent', 'runtime'], 'applies to containers: a smolvm agent is a microVM already', { at: 'key' });
  agent.files.forEach((file, index) => {
    if (file.onChange.type === 'signal') {
      report(
        ['agent', 'files', index, 'onChange'],
        'signal is not available for smolvm machines: use {exec: [command, args...]}, e.g. {exec: [pkill, -HUP, myapp]}',
      );
    }
  });
}

/**
 * What Swarm cannot do is refused here, located, rather than accepted and dropped (engine-lab.md:
 * a task's fixed IP is silently dropped; no IPVS here, so no published ports through the routing
 * mesh; no API to signal or exec into a task without its node's engine).
 */
function checkSwarm(spec: BottleSpec, report: Report): void {
  const { agent } = spec;
  if (agent.image === undefined) report(['agent', 'image'], 'is required with the swarm backend');
  if (agent.from !== undefined) report(['agent', 'from'], 'is only for the smolvm backend; the swarm backend runs agent.image', { at: 'key' });
  if (agent.networks.length > 0) report(['agent', 'networks'], 'is not available on the swarm backend yet: the agent joins only its bottle overlay', { at: 'key' });
  // Not yet applied to services: refused rather than accepted and dropped.
  for (const [path, c] of [...spec.sidecars.map((s, i) => [['sidecars', i], s] as const), [['agent'], agent] as const]) {
    swarmSecurity(c.security, [...path], report);
    if (c.runtime) report([...path, 'runtime'], 'is not available on the swarm backend yet: a runtime is a setting of each node\'s engine', { at: 'key' });
  }
  if (spec.lifetime?.onExpiry === 'stop') {
    // A service scaled to nothing keeps no container: there would be nothing stopped to keep.
    report(['lifetime'], 'onExpiry: stop (the default) is not available on the swarm backend: Swarm keeps no stopped task to look into; write onExpiry: remove', { at: 'key' });
  }
  const containers: { path: FieldPath; env: Record<string, string>; files: FileSpec[] }[] = [
    ...spec.sidecars.map((s, i) => ({ path: ['sidecars', i] as FieldPath, env: s.env, files: s.files })),
    { path: ['agent'], env: agent.env, files: agent.files },
  ];
  spec.sidecars.forEach((s, i) => {
    if (s.ip !== undefined) report(['sidecars', i, 'ip'], 'a pinned ip is not possible on the swarm backend: Swarm drops a task\'s fixed address and gives it a new one at every restart; reach the sidecar by its aliases', { at: 'key' });
    if (s.ports.length > 0) report(['sidecars', i, 'ports'], 'published ports are not available on the swarm backend (they need the routing mesh, which this bottle\'s dnsrr services do not use)', { at: 'key' });
  });
  for (const c of containers) {
    for (const [name, value] of Object.entries(c.env)) {
      if (scanPlaceholders(value).placeholders.some((p) => p.ref)) {
        report([...c.path, 'env', name], 'placeholders are not available on the swarm backend: a task\'s address changes at every restart and no port is published; use the sidecar\'s alias as its host name');
      }
    }
    c.files.forEach((f, i) => {
      if (f.onChange.type === 'signal' || f.onChange.type === 'exec') {
        report([...c.path, 'files', i, 'onChange'], `${f.onChange.type} is not available on the swarm backend: a file is a Swarm config, which cannot change in place, so a change replaces the task; use restart (or recreate, the same there)`);
      }
      if ((f.mode & 0o004) === 0 && f.uid === undefined) {
        report([...c.path, 'files', i, 'mode'], "on the swarm backend a file is owned by root unless uid: says otherwise (the manager cannot read the image's user): give uid: (and gid:) for a mode others cannot read");
      }
    });
  }
}

/** What Docker would refuse at create time (after the old container is gone): refused here. */
export function checkSecurity(sec: SecuritySpec | undefined, files: FileSpec[], path: FieldPath, report: Report): void {
  if (!sec) return;
  if (sec.writable && !sec.readOnlyRootfs) report([...path, 'security', 'writable'], 'applies only with readOnlyRootfs: true (everything is writable without it)', { at: 'key' });
  sec.writable?.forEach((w, i) => {
    const p = w.replace(/\/+$/, '') || '/';
    if (p === '/') report([...path, 'security', 'writable', i], 'cannot be / (a tmpfs over the root hides the image)');
    else if (files.some((f) => f.path === p || f.path.startsWith(`${p}/`))) report([...path, 'security', 'writable', i], `would hide a file bottled mounts there (${files.find((f) => f.path === p || f.path.startsWith(`${p}/`))!.path})`);
  });
  const ids = sec.user?.split(':').filter((x) => /^\d+$/.test(x)).map(Number) ?? [];
  if (ids.some((n) => n > 4_294_967_294)) report([...path, 'security', 'user'], 'a uid or gid must be at most 4294967294');
  if (sec.pidsLimit !== undefined && sec.pidsLimit > 0 && sec.pidsLimit < 8) report([...path, 'security', 'pidsLimit'], 'must be 0 (no limit) or at least 8 (init, a shell and a command need a few)');
}

/** What the Swarm API of Engine 20.10 (1.41) cannot carry: refused, not dropped. */
function swarmSecurity(s: SecuritySpec | undefined, path: FieldPath, report: Report): void {
  if (s?.noNewPrivileges !== undefined) report([...path, 'security', 'noNewPrivileges'], 'is not available on the swarm backend: a service cannot set no-new-privileges through the Swarm API of this engine (1.41)', { at: 'key' });
  if (s?.readOnlyRootfs !== undefined) report([...path, 'security', 'readOnlyRootfs'], 'is not available on the swarm backend yet', { at: 'key' });
  if (s?.writable !== undefined) report([...path, 'security', 'writable'], 'is not available on the swarm backend yet', { at: 'key' });
}

interface EnvOwner {
  path: FieldPath;
  env: Record<string, string>;
}

function envOwners(spec: BottleSpec): EnvOwner[] {
  return [
    ...spec.sidecars.map((sidecar, index) => ({ path: ['sidecars', index], env: sidecar.env })),
    { path: ['agent'], env: spec.agent.env },
  ];
}

function checkPlaceholderTargets(spec: BottleSpec, report: Report): void {
  const byName = new Map(spec.sidecars.map((sidecar) => [sidecar.name, sidecar]));
  for (const owner of envOwners(spec)) {
    for (const [name, value] of Object.entries(owner.env)) {
      for (const placeholder of scanPlaceholders(value).placeholders) {
        const ref = placeholder.ref;
        if (!ref) continue; // reported by the env value schema
        const target = byName.get(ref.sidecar);
        const where = [...owner.path, 'env', name];
        if (target === undefined) {
          const declared = byName.size > 0 ? `declared: ${[...byName.keys()].join(', ')}` : 'it declares none';
          report(where, `${placeholder.text} names sidecar "${ref.sidecar}", which this bottle does not declare${didYouMean(ref.sidecar, byName.keys())} (${declared})`);
        } else if (ref.field === 'port' && !target.ports.includes(ref.port)) {
          const ports = target.ports.length > 0 ? `its ports: ${target.ports.join(', ')}` : 'it publishes none';
          report(where, `${placeholder.text}: sidecar "${ref.sidecar}" does not publish port ${ref.port} (${ports}); add it to that sidecar's ports`);
        }
      }
    }
  }
}

/** A sidecar waits for the sidecars its env names: a cycle would wait forever. */
function checkPlaceholderCycles(sidecars: SidecarSpec[], report: Report): void {
  const known = new Set(sidecars.map((sidecar) => sidecar.name));
  const waitsFor = new Map<string, Set<string>>();
  for (const sidecar of sidecars) {
    const targets = waitsFor.get(sidecar.name) ?? new Set(); // merged: a duplicate name is reported elsewhere
    for (const value of Object.values(sidecar.env)) {
      for (const ref of placeholderRefs(value)) if (known.has(ref.sidecar)) targets.add(ref.sidecar);
    }
    waitsFor.set(sidecar.name, targets);
  }
  sidecars.forEach((sidecar, index) => {
    for (const [name, value] of Object.entries(sidecar.env)) {
      for (const target of new Set(placeholderRefs(value).map((ref) => ref.sidecar))) {
        const back = target === sidecar.name ? [] : pathBetween(target, sidecar.name, waitsFor);
        if (back === undefined) continue;
        const chain = [sidecar.name, target, ...back.slice(1)].join(' → ');
        const message =
          target === sidecar.name
            ? `sidecar "${sidecar.name}" would wait for itself: a sidecar's own ip, host or port is not known before it runs`
            : `sidecars wait for each other through placeholders (${chain}), so none of them could start`;
        report(['sidecars', index, 'env', name], message);
      }
    }
  });
}

/** Shortest chain of waits from `from` to `to` (both included), if there is one. */
function pathBetween(from: string, to: string, waitsFor: Map<string, Set<string>>): string[] | undefined {
  const previous = new Map<string, string | undefined>([[from, undefined]]);
  const queue = [from];
  while (queue.length > 0) {
    const current = queue.shift() as string;
    if (current === to) {
      const chain: string[] = [];
      for (let at: string | undefined = current; at !== undefined; at = previous.get(at)) chain.unshift(at);
      return chain;
    }
    for (const next of waitsFor.get(current) ?? []) {
      if (!previous.has(next)) {
        previous.set(next, current);
        queue.push(next);
      }
    }
  }
  return undefined;
}
