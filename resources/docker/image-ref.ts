/** `busybox` -> `busybox:latest`; digests and explicit tags stay as written. Pure: the planner uses it. */
export function normalizeImageRef(ref: string): string {
  let r = ref.replace(/^docker\.io\/(library\/)?/, '');
  if (r.includes('@')) return r;
  const lastSlash = r.lastIndexOf('/');
  if (!r.slice(lastSlash + 1).includes(':')) r += ':latest';
  return r;
}
