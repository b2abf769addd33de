/**
 * The ids an image's `USER` runs as. Numeric forms need nothing else; names are looked up in the
 * image's own /etc/passwd and /etc/group (read from a created container by the caller).
 */
export function numericUser(user: string | undefined): { uid: number; gid: number } | undefined {
  if (!user) return { uid: 0, gid: 0 };
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  return m ? { uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : Number(m[1]) } : undefined;
}

export function resolveUser(user: string, passwd: string, group: string | undefined): { uid: number; gid: number } | undefined {
  const n = numericUser(user);
  if (n) return n;
  const [name, grp] = user.split(':');
  const row = passwd.split('\n').map((l) => l.split(':')).find((f) => f[0] === name || f[2] === name);
  const uid = row ? Number(row[2]) : /^\d+$/.test(name ?? '') ? Number(name) : NaN;
  if (!Number.isInteger(uid)) return undefined;
  let gid = row ? Number(row[3]) : uid;
  if (grp !== undefined) {
    const g = /^\d+$/.test(grp) ? Number(grp) : Number((group ?? '').split('\n').map((l) => l.split(':')).find((f) => f[0] === grp)?.[2]);
    if (!Number.isInteger(g)) return undefined;
    gid = g;
  }
  return Number.isInteger(gid) ? { uid, gid } : undefined;
}
