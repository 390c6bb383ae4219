import { randomUUID } from 'node:crypto';
import { InvalidOptionError, describeValue } from '../errors.js';
import { fmix32, hashString } from '../hashing/hash32.js';

/**
 * Deterministic subsetting: which `size` pods of the pool one client routes its non-keyed traffic
 * over, so that N clients × M pods is not a full mesh of connections.
 *
 * Algorithm ("smoothed rings", chosen on measurements: docs/scaling.md, `npm run bench -- subsetting`):
 *
 * - Clients whose id ends in an ordinal (`api-17`, a StatefulSet pod name) are dealt into rounds of
 *   CLIENTS_PER_ROUND consecutive ordinals, as in Google's deterministic subsetting. The round size
 *   is a constant, not a function of the pool size, so a pod joining or leaving never moves a
 *   client to another round (Google's `pods / size` rounds reshuffle every client when it changes).
 * - Each round lays the pods on a ring of its own at hashed positions of their identities (never
 *   ranks: a rank-spaced ring, as Finagle's aperture, re-spaces every pod when one joins). The
 *   positions are then smoothed: each pod is placed at the mean position of the 2w+1 pods around
 *   it (w = size), which evens out the gaps of raw hashing (the reason rendezvous subsets are
 *   unbalanced) while a joining pod moves only its w neighbours on each side, and only a little.
 * - The clients of a round sit at evenly spaced points of the ring, dealt in bit-reversed order so
 *   that a round that is only partly filled (the last one) is spread evenly too. A client's subset
 *   is the `size` pods clockwise from its point; its preference order continues clockwise, so an
 *   ejected member is replaced by the next pod after the subset, at once, and a removed pod by the
 *   same rule. Clients of a round thus tile the ring, and rounds with independent rings even out
 *   what one ring leaves uneven.
 * - A client id without an ordinal (a Deployment pod, a random id) gets a ring and a point of its
 *   own from the id's hash, unsmoothed: as good as rendezvous (random) subsetting, not better.
 *
 * Pure and deterministic: the subset depends on the client id, the size and the set of pod
 * identities, never on the order of the DNS answer or on time.
 */

/** Clients dealt into one round (one ring). A power of two: the bit-reversed points need it. */
export const CLIENTS_PER_ROUND = 64;

/** Largest subset size accepted. Far above any useful size; it bounds the work per pool change. */
export const MAX_SUBSET_SIZE = 10_000;

/** Longest client id accepted (Kubernetes names are at most 253 characters). */
export const MAX_CLIENT_ID_LENGTH = 1024;

/** An ordinal larger than this is not treated as one (the round number must stay exact). */
const MAX_ORDINAL = 2 ** 40;

const TWO_32 = 2 ** 32;
const ROUND_BITS = Math.log2(CLIENTS_PER_ROUND);

export interface SubsetOptions {
  /** Pods per client. An integer from 1 to MAX_SUBSET_SIZE. */
  readonly size: number;
  /**
   * This client's stable id. Default: `defaultClientId()` (the `HOSTNAME` environment variable,
   * which Kubernetes sets to the pod name, else a random id). Ids ending in `-<ordinal>` get the
   * balanced layout; others a hashed one.
   */
  readonly clientId?: string;
}

/**
 * The client id used when none is given: `HOSTNAME` (the pod name in Kubernetes, so StatefulSet
 * clients get their ordinal and each replica differs), else a random id for this process.
 */
export function defaultClientId(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const hostname = env['HOSTNAME']?.trim();
  return hostname !== undefined && hostname.length > 0 && hostname.length <= MAX_CLIENT_ID_LENGTH ? hostname : `client-${randomUUID()}`;
}

/** The ordinal at the end of a StatefulSet-style name (`api-17` → 17), or undefined. */
export function clientOrdinal(clientId: string): number | undefined {
  const match = /-(\d{1,13})$/.exec(clientId);
  if (match === null) return undefined;
  const ordinal = Number(match[1]);
  return ordinal <= MAX_ORDINAL ? ordinal : undefined;
}

/** Checks subset options; throws an InvalidOptionError naming the field and its value. */
export function validateSubsetOptions(options: unknown, field = 'subset'): SubsetOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new InvalidOptionError(field, options, '{ size, clientId? }');
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'size' && key !== 'clientId')
      throw new InvalidOptionError(`${field}.${key}`, record[key], 'no such option (size, clientId)');
  }
  const size = record['size'];
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > MAX_SUBSET_SIZE) {
    throw new InvalidOptionError(`${field}.size`, size, `an integer from 1 to ${MAX_SUBSET_SIZE}`);
  }
  const clientId = record['clientId'];
  if (clientId === undefined) return { size };
  if (typeof clientId !== 'string' || clientId.trim().length === 0 || clientId.length > MAX_CLIENT_ID_LENGTH) {
    throw new InvalidOptionError(`${field}.clientId`, clientId, `a non-blank string of at most ${MAX_CLIENT_ID_LENGTH} characters`);
  }
  return { size, clientId };
}

/** DNS names are case-insensitive and may end in a dot: every client must hash the same string. */
function normalize(identity: string): string {
  const lower = identity.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Reverses the low ROUND_BITS bits: the order in which a round's points are dealt. */
function bitReverse(slot: number): number {
  let reversed = 0;
  for (let bit = 0; bit < ROUND_BITS; bit++) reversed = (reversed << 1) | ((slot >>> bit) & 1);
  return reversed;
}

/** Where a client sits: the seed of its round's ring and its point on it, in [0, 2^32). */
interface Placement {
  readonly seed: number;
  readonly point: number;
  /** Whether the ring is shared with other clients (a round), so that smoothing it pays. */
  readonly shared: boolean;
}

function placement(clientId: string): Placement {
  const ordinal = clientOrdinal(clientId);
  if (ordinal === undefined) {
    const hash = hashString(clientId);
    return { seed: fmix32(hash ^ 0x2545f491), point: fmix32(hash ^ 0x4f1bbcdd) >>> 0, shared: false };
  }
  const round = Math.floor(ordinal / CLIENTS_PER_ROUND);
  const slot = ordinal % CLIENTS_PER_ROUND;
  // Rounds past 2^32 would share seeds: harmless (they are as independent as any two hashes).
  const seed = fmix32(hashString(`subset-round:${round}`));
  const offset = fmix32(seed ^ 0x68e31da4) >>> 0;
  return { seed, point: (offset + bitReverse(slot) * (TWO_32 / CLIENTS_PER_ROUND)) % TWO_32, shared: true };
}

/**
 * All members of `pool` in this client's order of preference: its subset first, then where it
 * goes when members are ejected or removed. Members sharing an identity count once (the first in
 * the pool is kept), so duplicates can neither enlarge a subset nor appear twice.
 */
export function subsetOrder<T>(pool: readonly T[], identityOf: (member: T) => string, clientId: string, size: number): T[] {
  const { seed, point, shared } = placement(clientId);
  const seen = new Set<string>();
  const entries: { member: T; identity: string; position: number }[] = [];
  for (const member of pool) {
    const identity = normalize(identityOf(member));
    if (seen.has(identity)) continue;
    seen.add(identity);
    entries.push({ member, identity, position: fmix32(seed ^ hashString(identity)) >>> 0 });
  }
  const n = entries.length;
  if (n === 0) return [];
  // Identity breaks position ties, so that the order never depends on the pool's order.
  entries.sort((a, b) => a.position - b.position || (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));

  // Smoothing: sum of the unwrapped positions of the 2w+1 pods centred on each pod. Integers below
  // 2^32 · 2^15, so the running sums are exact and every client computes the same values. A ring
  // of one client's own gains nothing from even gaps (nobody tiles it with it): no smoothing there.
  const w = shared ? Math.min(size, Math.floor((n - 1) / 2)) : 0;
  const width = 2 * w + 1;
  const unwrapped = (i: number): number => entries[((i % n) + n) % n]!.position + Math.floor(i / n) * TWO_32;
  const scaledTurn = TWO_32 * width;
  const sums = new Float64Array(n);
  let sum = 0;
  for (let i = -w; i <= w; i++) sum += unwrapped(i);
  for (let i = 0; i < n; i++) {
    sums[i] = ((sum % scaledTurn) + scaledTurn) % scaledTurn;
    sum += unwrapped(i + w + 1) - unwrapped(i - w);
  }
  // The smoothed ring is still in the same cyclic order; find the first pod at or after the
  // client's point (scaled like the sums) and walk clockwise from it.
  const target = point * width;
  let start = 0;
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const ahead = (sums[i]! - target + scaledTurn) % scaledTurn;
    if (ahead < best) {
      best = ahead;
      start = i;
    }
  }
  const order = new Array<T>(n);
  for (let i = 0; i < n; i++) order[i] = entries[(start + i) % n]!.member;
  return order;
}

/**
 * One client's subset of a pool. Construct once per balancer; call `select` on every pool or
 * health change (the order is recomputed only when the set of identities changes).
 */
export class Subset {
  readonly size: number;
  readonly clientId: string;
  /** The ordinal read from the client id, if any: clients with one get the balanced layout. */
  readonly ordinal: number | undefined;
  private cachedKey: string | undefined;
  private cachedOrder: readonly unknown[] = [];

  constructor(options: SubsetOptions, field = 'subset') {
    const checked = validateSubsetOptions(options, field);
    this.size = checked.size;
    this.clientId = checked.clientId ?? defaultClientId();
    this.ordinal = clientOrdinal(this.clientId);
  }

  /** Every member of the pool in this client's order of preference (see `subsetOrder`). */
  order<T>(pool: readonly T[], identityOf: (member: T) => string): readonly T[] {
    // The key is the identities in pool order: a reordered DNS answer recomputes (same result).
    const key = pool.map(identityOf).join('\n');
    if (key !== this.cachedKey) {
      this.cachedOrder = subsetOrder(pool, identityOf, this.clientId, this.size);
      this.cachedKey = key;
    }
    return this.cachedOrder as readonly T[];
  }

  /**
   * The members to route over: the first `size` members in preference order for which `usable`
   * holds (default: all). An unusable member (ejected) is replaced by the next usable one outside
   * the subset, and is back in its place as soon as it is usable again. Fewer than `size` only if
   * the pool has fewer usable members; empty if none is usable (the caller decides on panic mode).
   */
  select<T>(pool: readonly T[], identityOf: (member: T) => string, usable?: (member: T) => boolean): T[] {
    const order = this.order(pool, identityOf);
    const members: T[] = [];
    for (const member of order) {
      if (members.length === this.size) break;
      if (usable === undefined || usable(member)) members.push(member);
    }
    return members;
  }

  toString(): string {
    return `Subset(size ${this.size}, client ${describeValue(this.clientId)})`;
  }
}
