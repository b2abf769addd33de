import type { FileOwner } from './actions.js';
import type { Inventory } from '../../state/inventory.js';
import type { DesiredContainer, DesiredFile } from '../../controller/desired.js';
import type { ActionList } from '../../controller/plan-actions.js';
import type { PlanInput } from '../../controller/plan-input.js';

/** How a running container is told of new content. */
type Delivery = { kind: 'restart' } | { kind: 'signal'; signal: string } | { kind: 'exec'; exec: string[] };

/** The owner a rendered file must have: its own uid/gid, else the container's user (when known). */
export function ownerOf(f: DesiredFile, containerUser: FileOwner | undefined): FileOwner | undefined {
  if (f.uid === undefined && f.gid === undefined) return containerUser;
  return { uid: f.uid ?? containerUser?.uid ?? 0, gid: f.gid ?? containerUser?.gid ?? f.uid ?? 0 };
}

/**
 * Files of a running (or stopped) container whose configuration is unchanged: rewrite in place
 * what differs on disk, then deliver each distinct content once with its onChange.
 */
export function planFiles(
  acts: ActionList,
  c: DesiredContainer,
  inv: Inventory | undefined,
  input: PlanInput,
  running: boolean,
  containerUser: FileOwner | undefined,
  /** The actions of the containers it waits for: it is told of new content after them. */
  waitIds: number[] = [],
): void {
  const delivered = inv?.delivered[c.name] ?? {};
  const pending: ({ key: string; files: DesiredFile[] } & Delivery)[] = [];
  for (const f of c.files) {
    const onDisk = input.fileHashes.get(f.hostPath);
    const owner = ownerOf(f, containerUser);
    const ownerNow = input.fileOwners?.get(f.hostPath);
    const wrongOwner = owner !== undefined && ownerNow !== undefined && (ownerNow.uid !== owner.uid || ownerNow.gid !== owner.gid);
    if (onDisk !== f.hash) {
      const action =
        onDisk === undefined && f.onChange.type !== 'recreate' ? ', then restart (a new file must be bound again)'
        : f.onChange.type === 'signal' ? `, then ${f.onChange.signal}` : f.onChange.type === 'exec' ? ', then exec' : f.onChange.type === 'restart' ? ', then restart' : '';
      acts.add({
        kind: 'rewrite-file',
        on: 'file',
        resource: { type: 'file', name: `${c.name}:${f.path}` },
        cause: `${onDisk === undefined ? 'file missing on host' : 'content changed'}: rewrite in place${action}`,
        file: f,
        fileOwner: owner,
      });
    } else if (wrongOwner) {
      // Same content, same inode: the owner is changed in place and nothing needs telling.
      acts.add({
        kind: 'rewrite-file',
        on: 'file',
        resource: { type: 'file', name: `${c.name}:${f.path}` },
        cause: `owner ${ownerNow!.uid}:${ownerNow!.gid} -> ${owner!.uid}:${owner!.gid}`,
        file: f,
        fileOwner: owner,
      });
    }
    if (f.onChange.type === 'recreate') continue;
    // Delivered = the running container has been told about this content. An adopted container
    // with the right content already on disk is taken as told.
    const told = delivered[f.path] ?? (inv?.resources[c.name] ? undefined : onDisk);
    if (told === f.hash || !running) continue;
    // A file that was missing on the host is written to a new inode, which a running container's
    // single-file bind mount cannot see: only a restart binds it again.
    const rebind = onDisk === undefined;
    const how: Delivery =
      rebind || f.onChange.type === 'restart' ? { kind: 'restart' }
      : f.onChange.type === 'signal' ? { kind: 'signal', signal: f.onChange.signal }
      : { kind: 'exec', exec: f.onChange.command };
    const key = how.kind === 'signal' ? `signal:${how.signal}` : how.kind === 'exec' ? `exec:${JSON.stringify(how.exec)}` : 'restart';
    const existing = pending.find((p) => p.key === key);
    if (existing) existing.files.push(f);
    else pending.push({ ...how, key, files: [f] });
  }
  // A restart delivers everything; signals and execs are then pointless.
  const restart = pending.find((p) => p.kind === 'restart');
  const list = restart ? [{ ...restart, files: pending.flatMap((p) => p.files) }] : pending;
  for (const { key: _key, files, ...how } of list) {
    acts.add({ ...how, on: 'container', resource: { type: 'container', name: c.name }, cause: `${files.map((f) => f.path).join(', ')} changed`, delivers: files, after: waitIds });
  }
}
