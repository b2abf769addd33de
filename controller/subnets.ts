import crypto from 'node:crypto';
import { AddressSpace, rangeOf } from './address-space.js';

/**
 * Subnet allocation for bottle networks. Docker 20.10's default pools hold only ~31 bridge
 * networks, so bottled picks each subnet itself from its own pool, sized to the need, skipping
 * anything already in use. Pure: the caller passes everything that counts as used.
 */

export const DEFAULT_SUBNET_POOL = '10.231.0.0/16';

/** Whether two CIDRs share an address (each is the block its address lies in). */
export function overlaps(a: string, b: string): boolean {
  const x = rangeOf(a);
  const y = rangeOf(b);
  return !!x && !!y && x.start < y.end && y.start < x.end;
}

function prefixOf(cidr: string): number {
  return Number(cidr.slice(cidr.indexOf('/') + 1));
}

function fromInt(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export function gatewayOf(subnet: string): string {
  const r = rangeOf(subnet);
  if (!r) throw new Error(`not an IPv4 CIDR: ${subnet}`);
  return fromInt(r.start + 1);
}

export function validatePool(pool: string): string | undefined {
  const r = rangeOf(pool);
  if (!r) return `--subnet-pool ${pool} is not an IPv4 CIDR`;
  const bits = prefixOf(pool);
  if (fromInt(r.start) !== pool.slice(0, pool.indexOf('/'))) return `--subnet-pool ${pool} has host bits set`;
  if (bits > 28) return `--subnet-pool ${pool} is too small (at most /28)`;
  if (bits < 8) return `--subnet-pool ${pool} is too large (at least /8): it would shadow addresses the host routes elsewhere`;
  // Addresses with a meaning of their own: a bridge there breaks the host, not just the bottle.
  for (const [range, what] of SPECIAL_RANGES) {
    if (overlaps(pool, range)) return `--subnet-pool ${pool} overlaps ${range} (${what}): use private addresses, e.g. ${DEFAULT_SUBNET_POOL}`;
  }
  return undefined;
}

const SPECIAL_RANGES: [string, string][] = [
  ['0.0.0.0/8', '"this network"'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
];

/** First block of `/prefix` inside `pool` that overlaps nothing in `used`, or undefined when full. */
export function allocate(pool: string, prefix: number, used: string[]): string | undefined {
  const space = new AddressSpace();
  for (const u of used) space.add(u);
  return space.firstFree(pool, prefix);
}

/** The n-th address of a subnet (1 = gateway, 2 = first sidecar in the smolvm topology). */
export function hostAddress(subnet: string, n: number): string {
  return fromInt(rangeOf(subnet)!.start + n);
}

/**
 * smolvm topology: `192.168.X.0/24` with X from a stable hash of the bottle name, skipping 17
 * (a common Docker default) and anything in use; the caller records the result so it never moves.
 */
export function deriveSubnet(name: string, used: string[]): string | undefined {
  const space = new AddressSpace();
  for (const u of used) space.add(u);
  return space.firstFreeOf(derivedCandidates(name));
}

/** The candidates of deriveSubnet, in the order they are tried. */
export function* derivedCandidates(name: string): Generator<string> {
  const start = crypto.createHash('sha256').update(name).digest().readUInt16BE(0) % 254;
  for (let i = 0; i < 254; i++) {
    const x = ((start + i) % 254) + 1;
    if (x !== 17) yield `192.168.${x}.0/24`;
  }
}

/**
 * Where Docker may hand out dynamic addresses on a network with pinned ones: the half of the
 * subnet that holds no pinned address. Docker's IPAM does not reserve the address of a stopped
 * container, so without this a container started first (e.g. after an engine restart) can take
 * a sidecar's pinned address and the sidecar then fails with "Address already in use".
 */
export function dynamicRange(subnet: string, pinned: string[]): string | undefined {
  const r = rangeOf(subnet);
  const bits = prefixOf(subnet);
  if (!r || !pinned.length || bits >= 30) return undefined;
  const half = 2 ** (32 - bits - 1);
  for (const start of [r.start + half, r.start]) {
    const range = `${fromInt(start)}/${bits + 1}`;
    if (!pinned.some((ip) => overlaps(`${ip}/32`, range))) return range;
  }
  return undefined;
}
