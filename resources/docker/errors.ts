/**
 * Docker Engine errors, mapped by status code and message (Engine 20.10 / API 1.41 table in
 * node20-dependencies.md §1.7). dockerode's `reason` is missing or misleading for several
 * codes, so only `statusCode` and `json.message` are read.
 */
export type DockerErrorKind =
  | 'unreachable' // no engine at the socket / host
  | 'not-modified' // 304: already started / stopped
  | 'not-found' // 404 container / network
  | 'no-such-image' // 404 on create
  | 'name-conflict' // 409 name taken
  | 'not-running' // 409 kill a stopped container
  | 'active-endpoints' // 403 network still in use
  | 'pool-overlap' // 403 subnet overlaps
  | 'address-in-use' // 403 pinned IP taken
  | 'already-connected' // 403 endpoint exists
  | 'not-connected' // 500 disconnect when not connected
  | 'bad-request'
  | 'failed';

export class DockerError extends Error {
  constructor(
    readonly kind: DockerErrorKind,
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
    this.name = 'DockerError';
  }
}

interface RawDockerError {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
  message?: string;
}

const UNREACHABLE_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EACCES', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE']);

export function mapDockerError(err: unknown, what: string): DockerError {
  if (err instanceof DockerError) return err;
  const e = (err ?? {}) as RawDockerError;
  const msg = (e.json?.message ?? e.message ?? String(err)).trim();
  const status = e.statusCode;
  if (status === undefined) {
    if (e.code && UNREACHABLE_CODES.has(e.code)) {
      return new DockerError('unreachable', `cannot reach the Docker Engine (${e.code}): ${msg}`);
    }
    return new DockerError('failed', `${what}: ${msg}`);
  }
  const m = msg.toLowerCase();
  let kind: DockerErrorKind = 'failed';
  if (status === 304) kind = 'not-modified';
  else if (status === 404) kind = m.includes('no such image') ? 'no-such-image' : 'not-found';
  else if (status === 409 && m.includes('is not running')) kind = 'not-running';
  else if (status === 409) kind = 'name-conflict';
  else if (status === 403 && m.includes('active endpoints')) kind = 'active-endpoints';
  else if (status === 403 && m.includes('pool overlaps')) kind = 'pool-overlap';
  else if (status === 403 && m.includes('address already in use')) kind = 'address-in-use';
  else if (status === 403 && m.includes('already exists in network')) kind = 'already-connected';
  else if (status === 500 && m.includes('is not connected to')) kind = 'not-connected';
  else if (status === 400) kind = 'bad-request';
  return new DockerError(kind, `${what}: ${msg || `HTTP ${status}`}`, status);
}
