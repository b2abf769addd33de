import fs from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';

/** Write our own JSON state atomically (tmp + rename): a crash never leaves half a file. */
export async function writeJsonAtomic(file: string, data: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(data, null, 2) + '\n');
  await fs.rename(tmp, file);
}

export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (e instanceof SyntaxError) return undefined; // a torn file from a foreign writer: treat as absent
    throw e;
  }
}

export function sha256(data: string | Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/**
 * Rewrite a bind-mounted file in place: truncate and write on the same inode. A rename would
 * be invisible to a running container (single-file bind mounts pin the inode on Linux).
 */
export async function writeInPlace(file: string, content: Buffer, mode: number, owner?: { uid: number; gid: number }): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'w', mode); // O_TRUNC keeps the inode
  } catch (e) {
    // Docker creates a missing bind-mount source as a directory when it starts a container
    // (e.g. after the state dir was wiped). Nothing of ours is ever a directory there.
    if ((e as NodeJS.ErrnoException).code !== 'EISDIR') throw e;
    await fs.rm(file, { recursive: true, force: true });
    fh = await fs.open(file, 'w', mode);
  }
  try {
    await fh.writeFile(content);
    if (owner) await fh.chown(owner.uid, owner.gid);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}

export async function fileHash(file: string): Promise<string | undefined> {
  try {
    return sha256(await fs.readFile(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
    throw e;
  }
}

/** Content hash and owner of a rendered file, or undefined when it is missing. */
export async function fileStamp(file: string): Promise<{ hash: string; uid: number; gid: number } | undefined> {
  try {
    const [buf, st] = await Promise.all([fs.readFile(file), fs.stat(file)]);
    return { hash: sha256(buf), uid: st.uid, gid: st.gid };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
    throw e;
  }
}
