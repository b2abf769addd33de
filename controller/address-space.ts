const FOUR_PART = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/** An IPv4 CIDR as integers: [start, end) with end exclusive. */
export interface Range {
  start: number;
  end: number;
}

/** `10.0.0.0/24` -> its range; undefined for anything that is not an IPv4 CIDR (IPv6, junk). */
export function rangeOf(cidr: string): Range | undefined {
  const slash = cidr.indexOf('/');
  if (slash < 0) return undefined;
  const m = FOUR_PART.exec(cidr.slice(0, slash));
  const bitsText = cidr.slice(slash + 1);
  const bits = Number(bitsText);
  // Parsed by hand: ipaddr.js tries IPv6 first and throws on the way, at every call.
  if (!m || !/^\d{1,2}$/.test(bitsText) || bits > 32) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  const size = 2 ** (32 - bits);
  const n = octets.reduce((v, o) => v * 256 + o, 0);
  const start = n - (n % size); // match() compares the first `bits` bits: the block it lies in
  return { start, end: start + size };
}

export function cidrOf(start: number, prefix: number): string {
  return `${[24, 16, 8, 0].map((s) => Math.floor(start / 2 ** s) % 256).join('.')}/${prefix}`;
}

/**
 * The addresses in use, parsed once and kept sorted by start, each with who uses it (a network
 * name, or none for the host's own interfaces). Queries are a binary search and a short scan, so
 * allocating every network of N bottles costs O(N log N), not the O(N³) of re-parsing every
 * used subnet for every candidate.
 */
export class AddressSpace {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly owners: (string | undefined)[] = [];
  /** The CIDR as it was given (some checks skip one exact string). */
  private readonly texts: string[] = [];
  /** maxEnd[i] = the largest end among entries 0..i: where a backward scan may stop. */
  private readonly maxEnd: number[] = [];
  /** First-fit positions already known to be taken, per block size (used only grows). */
  private readonly cursor = new Map<string, number>();

  add(cidr: string, owner?: string): void {
    const r = rangeOf(cidr);
    if (!r) return;
    const i = upperBound(this.starts, r.start);
    this.starts.splice(i, 0, r.start);
    this.ends.splice(i, 0, r.end);
    this.owners.splice(i, 0, owner);
    this.texts.splice(i, 0, cidr);
    this.maxEnd.splice(i, 0, 0);
    for (let j = i; j < this.starts.length; j++) {
      const m = Math.max(this.ends[j]!, j > 0 ? this.maxEnd[j - 1]! : 0);
      if (j > i && this.maxEnd[j] === m) break; // unchanged from here on
      this.maxEnd[j] = m;
    }
  }

  /** Does anything in use overlap `cidr` (entries for which `skip` says true do not count)? */
  overlaps(cidr: string, skip?: Skip): boolean {
    const r = rangeOf(cidr);
    return !!r && this.overlapsRange(r.start, r.end, skip) !== undefined;
  }

  /** Owner of something in use that overlaps [start, end), or undefined. */
  private overlapsRange(start: number, end: number, skip?: Skip): { owner: string | undefined; end: number } | undefined {
    let found: { owner: string | undefined; end: number } | undefined;
    for (let j = lowerBound(this.starts, end) - 1; j >= 0 && this.maxEnd[j]! > start; j--) {
      if (this.ends[j]! > start && !skip?.(this.owners[j], this.texts[j]!)) {
        if (!found || this.ends[j]! > found.end) found = { owner: this.owners[j], end: this.ends[j]! };
      }
    }
    return found;
  }

  /** Names of the networks whose subnets overlap `cidr`, but for `except`. */
  overlappingOwners(cidr: string, except?: string): string[] {
    const r = rangeOf(cidr);
    if (!r) return [];
    const out: string[] = [];
    for (let j = lowerBound(this.starts, r.end) - 1; j >= 0 && this.maxEnd[j]! > r.start; j--) {
      const o = this.owners[j];
      if (this.ends[j]! > r.start && o !== undefined && o !== except) out.push(o);
    }
    return out;
  }

  /** The first of `candidates` that overlaps nothing in use (but what `skip` lets through). */
  firstFreeOf(candidates: Iterable<string>, skip?: Skip): string | undefined {
    for (const c of candidates) if (!this.overlaps(c, skip)) return c;
    return undefined;
  }

  /** The first `/prefix` block of `pool` (aligned, from its start) that overlaps nothing in use. */
  firstFree(pool: string, prefix: number): string | undefined {
    const p = rangeOf(pool);
    const bits = Number(pool.split('/')[1]);
    if (!p || prefix < bits || prefix > 32) return undefined;
    const size = 2 ** (32 - prefix);
    const key = `${p.start}/${prefix}`;
    let c = this.cursor.get(key) ?? p.start;
    while (c + size <= p.end) {
      const hit = this.overlapsRange(c, c + size);
      if (!hit) {
        this.cursor.set(key, c);
        return cidrOf(c, prefix);
      }
      // Jump past what is in the way, to the next aligned block.
      c = p.start + Math.ceil((hit.end - p.start) / size) * size;
    }
    this.cursor.set(key, c);
    return undefined;
  }
}

type Skip = (owner: string | undefined, text: string) => boolean;

/** First index whose value is > x. */
function upperBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose value is >= x. */
function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
