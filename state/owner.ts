import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { StatePaths } from './paths.js';

/**
 * The identity of one state directory. Every resource bottled creates carries it as a label, so
 * a reconciler can tell its own resources from those of another state directory that uses the
 * same `--instance` on the same engine (two users, two projects, a copied crontab). It is
 * created once, by the first command that writes, and never changes.
 */
export interface OwnerIdentity {
  id: string;
  /** The state directory, as a hint in labels and messages (it may move; the id is what counts). */
  dir: string;
}

interface OwnerFile {
  id: string;
  createdAt: string;
}

const ID = /^[0-9a-f]{16}$/;

export async function ownerIdentity(paths: StatePaths, create: boolean): Promise<OwnerIdentity> {
  const existing = await read(paths.owner);
  if (existing) return { id: existing, dir: paths.root };
  // A read-only command on a new state directory owns nothing yet: an id that matches no label.
  if (!create) return { id: `none-${crypto.randomBytes(4).toString('hex')}`, dir: paths.root };
  await fs.mkdir(path.dirname(paths.owner), { recursive: true });
  const file: OwnerFile = { id: crypto.randomBytes(8).toString('hex'), createdAt: new Date().toISOString() };
  try {
    // wx: of two first runs racing, one writes and both read the same id.
    await fs.writeFile(paths.owner, JSON.stringify(file) + '\n', { flag: 'wx', mode: 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const id = await read(paths.owner);
  if (!id) throw new Error(`${paths.owner} is not a valid owner file: remove it only if this state directory owns nothing`);
  return { id, dir: paths.root };
}

async function read(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const id = (JSON.parse(text) as OwnerFile).id;
    return typeof id === 'string' && ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}
