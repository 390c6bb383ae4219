import { hashString } from '../hashing/hash32.js';
import type { Endpoint, InflightTotal } from '../pool/endpoint.js';
import type { Picker, PickRequest } from './picker.js';
import { RoundRobinPicker } from './round-robin.js';

/** Choices kept per key in the lookup table: the owner and the next ones, for failover and spill. */
const CACHED_CHOICES = 4;

/** Ways per set of the lookup table: 4-way set-associative, so a few colliding hot keys do not evict each other. */
const WAYS = 4;

/** In `tableChoices`: no further endpoint (-1), or choices after the owner not computed yet (-2). */
const NONE = -1;
const PENDING = -2;

/** Capacity factor c of bounded-load mode when it is switched on with `true` (Vimeo/HAProxy use 1.25). */
export const DEFAULT_BOUNDED_LOAD = 1.25;

/** Entries of the key → choices lookup table by default (a power of two; 84 KiB). */
export const DEFAULT_SHARD_CACHE_SIZE = 4096;

export interface ShardKeyPickerConfig {
  /** Picks for requests without a key. Default: round-robin. */
  readonly fallback?: Picker;
  /**
   * Bounded-load capacity factor c (≥ 1): an endpoint takes a key's request only while its
   * in-flight count is below ⌈c · (in-flight of all candidates + 1) / candidates⌉; otherwise the
   * request spills to the key's next endpoint. Off when undefined.
   */
  readonly boundedLoad?: number | undefined;
  /** Entries of the lookup table that caches each key's first choices; rounded up to a power of two ≥ 4; 0 disables it. */
  readonly cacheSize?: number | undefined;
}

/**
 * The identity a shard key is hashed against: the pod's DNS name (SRV mode, or the `name` given in
 * a static list), else the endpoint id. Never the IP, so a pod restarted with a new IP keeps its
 * keys. Lower-cased (DNS names are case-insensitive) and without a trailing dot, so that every
 * client computes the same value.
 */
export function shardIdentity(endpoint: Endpoint): string {
  const identity = (endpoint.name ?? endpoint.id).toLowerCase();
  return identity.endsWith('.') ? identity.slice(0, -1) : identity;
}

/**
 * Every endpoint in the order a key prefers them: the owner first, then where the key goes when
 * the owner is ejected or fails, and so on. A pure function of the key and the endpoints'
 * identities (not of their order, addresses or load). Allocates; meant for tooling and tests.
 */
export function shardKeyOrder(key: string, endpoints: readonly Endpoint[]): Endpoint[] {
  const keyMix = premix(hashString(key));
  return byIdentity(endpoints)
    .map(({ endpoint, identityHash }, slot) => ({ endpoint, slot, score: score(keyMix, premix(identityHash)) }))
    .sort((a, b) => b.score - a.score || a.slot - b.slot)
    .map((entry) => entry.endpoint);
}

/**
 * Shard-key picker: the same key reaches the same pod for as long as that pod exists.
 *
 * Algorithm: rendezvous (highest-random-weight) hashing over the endpoints' stable identities
 * (Thaler & Ravishankar 1998): score(key, endpoint) = fmix32(hash(key) ^ hash(identity)), and
 * the highest score owns the key. Chosen over a ring, Maglev and multi-probe hashing on
 * measurements (docs/benchmarks.md, `bench/shard-key.ts --compare`): it is the only one that
 * moves exactly the keys of the endpoint that joined or left (≈ 1/n) *and* spreads keys as
 * evenly as random assignment, and it gives every key a complete, stable preference order for
 * free: the second-highest score is where the key fails over to, on every client, whatever the
 * order of the endpoint list.
 *
 * Cost: a lookup table (4-way set-associative on the 32-bit key hash, `cacheSize` entries) keeps
 * recent keys' choices, so a hit costs one string hash and a few array reads; a miss scores
 * every endpoint once (≈ 1 ns per endpoint). A table rather than `lru-cache`: with keys parsed
 * from each request (fresh strings), an lru-cache lookup costs about as much as the whole pick,
 * and the table keeps no key strings alive, never allocates, and holds entries that are a pure
 * function of (key hash, identities), so a collision can only evict, never mislead.
 * Bounded-load mode reads the pool's in-flight total from the endpoints' shared `InflightTotal`
 * in O(1) when the balancer keeps one, and sums it in O(n) otherwise.
 *
 * Candidates: the ranking covers the pool reported by `update()`; `pick` walks the key's order
 * and skips endpoints that are not among the candidates it is given (ejected, unhealthy), are
 * in `request.tried`, or (bounded-load mode) are at capacity. The walk is equivalent to
 * rendezvous over the acceptable endpoints, so once the owner is back, the key returns to it.
 */
export class ShardKeyPicker implements Picker {
  readonly name = 'shard-key';
  readonly fallback: Picker;
  readonly boundedLoad: number | undefined;

  /** The pool sorted by identity, and `premix(hash(identity))` of each. */
  private ranked: Endpoint[] = [];
  private identityMix = new Int32Array(0);
  private slotOf = new Map<Endpoint, number>();
  private pool: readonly Endpoint[] = [];

  /** Which ranked slots are among the candidates of `usableFor` (rebuilt when the array changes). */
  private usableFor: readonly Endpoint[] | undefined;
  private usable = new Uint8Array(0);
  /** The in-flight total shared by every ranked endpoint, if they share one. */
  private sharedTotal: InflightTotal | undefined;
  /** Ranked slots that are not candidates: subtracted from `sharedTotal`. */
  private outsideSlots = new Int32Array(0);

  /**
   * Lookup table: entry e caches key hash `tableKeys[e]`'s choices at `CACHED_CHOICES · e`.
   * Set s holds entries WAYS·s … WAYS·s + WAYS − 1; `tableVictim[s]` is the next one replaced.
   */
  private readonly tableSetMask: number;
  private readonly tableKeys: Int32Array;
  private readonly tableFilled: Uint8Array;
  private readonly tableVictim: Uint8Array;
  /** Ranked slots, best first (NONE past the end, PENDING until needed); one more entry of scratch space. */
  private readonly tableChoices: Int32Array;
  private readonly scratchBase: number;
  private readonly topScores = new Int32Array(CACHED_CHOICES);

  constructor(options: ShardKeyPickerConfig = {}) {
    this.fallback = options.fallback ?? new RoundRobinPicker();
    this.boundedLoad = options.boundedLoad;
    const requested = options.cacheSize ?? DEFAULT_SHARD_CACHE_SIZE;
    const entries = requested > 0 ? Math.max(WAYS, 2 ** Math.ceil(Math.log2(requested))) : 0;
    this.tableSetMask = entries / WAYS - 1;
    this.tableKeys = new Int32Array(entries);
    this.tableFilled = new Uint8Array(entries);
    this.tableVictim = new Uint8Array(entries / WAYS);
    this.tableChoices = new Int32Array((entries + 1) * CACHED_CHOICES);
    this.scratchBase = entries * CACHED_CHOICES;
  }

  update(endpoints: readonly Endpoint[]): void {
    this.rank(endpoints);
    this.fallback.update?.(endpoints);
  }

  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
    const key = request.key;
    if (key === undefined) return this.fallback.pick(endpoints, request);
    if (endpoints.length === 0) return undefined;
    if (endpoints !== this.usableFor) this.markUsable(endpoints);

    const keyHash = hashString(key);
    const keyMix = premix(keyHash);
    const tried = request.tried !== undefined && request.tried.size > 0 ? request.tried : undefined;
    const bounded = this.boundedLoad !== undefined;
    let capacity = bounded ? -1 : Infinity; // computed on first need

    // The key's first choices, from the table.
    const choices = this.tableChoices;
    const base = this.lookup(keyHash, keyMix);
    for (let r = 0; r < CACHED_CHOICES; r++) {
      let slot = choices[base + r]!;
      if (slot === PENDING) {
        this.topChoices(keyMix, base);
        slot = choices[base + r]!;
      }
      if (slot === NONE) break;
      if (this.usable[slot] === 0) continue;
      const endpoint = this.ranked[slot]!;
      if (tried !== undefined && tried.has(endpoint)) continue;
      if (bounded) {
        const inflight = endpoint.inflight;
        // An idle endpoint is always under capacity (capacity ≥ 1).
        if (inflight > 0) {
          if (capacity < 0) capacity = this.capacity(endpoints);
          if (inflight >= capacity) continue;
        }
      }
      return endpoint;
    }

    // None of those: the best acceptable endpoint in the key's order (rare: failover, spill).
    if (bounded && capacity < 0) capacity = this.capacity(endpoints);
    return this.bestAcceptable(keyMix, tried, capacity) ?? (bounded ? this.bestAcceptable(keyMix, tried, Infinity) : undefined);
  }

  /**
   * ⌈c · (in-flight + 1) / n⌉ over the candidates (Mirrokni, Thorup & Zadimoghaddam 2018): the
   * `+ 1` counts the request being placed, so the total capacity always exceeds the load.
   */
  private capacity(endpoints: readonly Endpoint[]): number {
    let total = 1;
    const shared = this.sharedTotal;
    if (shared !== undefined) {
      total += shared.count;
      const outside = this.outsideSlots;
      for (let i = 0; i < outside.length; i++) total -= this.ranked[outside[i]!]!.inflight;
    } else {
      for (let i = 0; i < endpoints.length; i++) total += endpoints[i]!.inflight;
    }
    return Math.ceil((this.boundedLoad! * total) / endpoints.length);
  }

  /** Offset in `tableChoices` of the key's choices; on a miss, computes the owner. */
  private lookup(keyHash: number, keyMix: number): number {
    if (this.tableSetMask < 0) {
      this.firstChoice(keyMix, this.scratchBase);
      return this.scratchBase;
    }
    const set = keyHash & this.tableSetMask;
    const first = set * WAYS;
    const keys = this.tableKeys;
    const filled = this.tableFilled;
    for (let entry = first; entry < first + WAYS; entry++) {
      if (keys[entry] === keyHash && filled[entry] === 1) return entry * CACHED_CHOICES;
    }
    const way = this.tableVictim[set]!;
    this.tableVictim[set] = (way + 1) % WAYS;
    const entry = first + way;
    this.firstChoice(keyMix, entry * CACHED_CHOICES);
    keys[entry] = keyHash;
    filled[entry] = 1;
    return entry * CACHED_CHOICES;
  }

  /** The owner only (the common case needs nothing else); the next choices are left PENDING. */
  private firstChoice(keyMix: number, base: number): void {
    const mixes = this.identityMix;
    const n = mixes.length;
    let best = NONE;
    let bestScore = -0x80000000;
    let i = 0;
    // This loop is the whole cost of a miss: score() inlined and unrolled by four (≈ 15% faster
    // on V8), comparing in slot order so that equal scores keep the lower slot.
    for (; i + 4 <= n; i += 4) {
      let x0 = Math.imul(keyMix ^ mixes[i]!, 0x85ebca6b);
      let x1 = Math.imul(keyMix ^ mixes[i + 1]!, 0x85ebca6b);
      let x2 = Math.imul(keyMix ^ mixes[i + 2]!, 0x85ebca6b);
      let x3 = Math.imul(keyMix ^ mixes[i + 3]!, 0x85ebca6b);
      x0 ^= x0 >>> 13;
      x1 ^= x1 >>> 13;
      x2 ^= x2 >>> 13;
      x3 ^= x3 >>> 13;
      x0 = Math.imul(x0, 0xc2b2ae35);
      x1 = Math.imul(x1, 0xc2b2ae35);
      x2 = Math.imul(x2, 0xc2b2ae35);
      x3 = Math.imul(x3, 0xc2b2ae35);
      x0 ^= x0 >>> 16;
      x1 ^= x1 >>> 16;
      x2 ^= x2 >>> 16;
      x3 ^= x3 >>> 16;
      if (x0 > bestScore || best === NONE) {
        best = i;
        bestScore = x0;
      }
      if (x1 > bestScore) {
        best = i + 1;
        bestScore = x1;
      }
      if (x2 > bestScore) {
        best = i + 2;
        bestScore = x2;
      }
      if (x3 > bestScore) {
        best = i + 3;
        bestScore = x3;
      }
    }
    for (; i < n; i++) {
      const x = score(keyMix, mixes[i]!);
      if (x > bestScore || best === NONE) {
        best = i;
        bestScore = x;
      }
    }
    const choices = this.tableChoices;
    choices[base] = best;
    choices[base + 1] = n > 1 ? PENDING : NONE;
  }

  /** Writes the CACHED_CHOICES ranked slots with the highest scores (ties: lower slot first) at `base`. */
  private topChoices(keyMix: number, base: number): void {
    const mixes = this.identityMix;
    const choices = this.tableChoices;
    const scores = this.topScores;
    const n = mixes.length;
    const kept = n < CACHED_CHOICES ? n : CACHED_CHOICES;
    for (let r = kept; r < CACHED_CHOICES; r++) choices[base + r] = NONE;
    if (kept === 0) return;
    // Seed the list with the first slots; after that only scores above its last one get in.
    for (let i = 0; i < kept; i++) this.insertTop(score(keyMix, mixes[i]!), i, i, base);
    let threshold = scores[kept - 1]!;
    for (let i = kept; i < n; i++) {
      const x = score(keyMix, mixes[i]!);
      if (x > threshold) {
        this.insertTop(x, i, kept - 1, base);
        threshold = scores[kept - 1]!;
      }
    }
  }

  /** Inserts `slot` with score `x` into the sorted top list at position `from` or above; `>` keeps the earlier slot first on ties. */
  private insertTop(x: number, slot: number, from: number, base: number): void {
    const scores = this.topScores;
    const choices = this.tableChoices;
    let j = from;
    while (j > 0 && x > scores[j - 1]!) {
      scores[j] = scores[j - 1]!;
      choices[base + j] = choices[base + j - 1]!;
      j--;
    }
    scores[j] = x;
    choices[base + j] = slot;
  }

  /** Highest-scoring candidate that is untried and below `capacity` in flight. O(n). */
  private bestAcceptable(keyMix: number, tried: ReadonlySet<Endpoint> | undefined, capacity: number): Endpoint | undefined {
    const mixes = this.identityMix;
    let best = NONE;
    let bestScore = 0;
    for (let i = 0; i < mixes.length; i++) {
      if (this.usable[i] === 0) continue;
      const endpoint = this.ranked[i]!;
      if (tried !== undefined && tried.has(endpoint)) continue;
      if (capacity !== Infinity && endpoint.inflight >= capacity) continue;
      const x = score(keyMix, mixes[i]!);
      if (best === NONE || x > bestScore) {
        best = i;
        bestScore = x;
      }
    }
    return best === NONE ? undefined : this.ranked[best];
  }

  /** Rebuilds the ranking over `endpoints` (the pool). */
  private rank(endpoints: readonly Endpoint[]): void {
    const entries = byIdentity(endpoints);
    this.pool = endpoints;
    this.ranked = entries.map((entry) => entry.endpoint);
    this.identityMix = Int32Array.from(entries, (entry) => premix(entry.identityHash));
    this.slotOf = new Map(this.ranked.map((endpoint, slot) => [endpoint, slot]));
    this.usable = new Uint8Array(this.ranked.length);
    this.usableFor = undefined;
    this.tableFilled.fill(0);
    const shared = this.ranked[0]?.inflightTotal;
    this.sharedTotal = shared !== undefined && this.ranked.every((endpoint) => endpoint.inflightTotal === shared) ? shared : undefined;
  }

  /** Marks which ranked endpoints are candidates; O(n), once per distinct candidate array. */
  private markUsable(candidates: readonly Endpoint[]): void {
    if (candidates !== this.pool) {
      let unknown = false;
      for (const endpoint of candidates) if (!this.slotOf.has(endpoint)) unknown = true;
      // pick() before update(), or candidates outside the pool: rank them too.
      if (unknown) this.rank(mergeEndpoints(this.pool, candidates));
    }
    if (candidates === this.pool) {
      this.usable.fill(1);
      this.outsideSlots = new Int32Array(0);
    } else {
      this.usable.fill(0);
      for (const endpoint of candidates) this.usable[this.slotOf.get(endpoint)!] = 1;
      const outside: number[] = [];
      this.usable.forEach((isUsable, slot) => {
        if (isUsable === 0) outside.push(slot);
      });
      this.outsideSlots = Int32Array.from(outside);
    }
    this.usableFor = candidates;
  }
}

/**
 * The first step of fmix32 distributes over XOR (`(k ^ s) ^ ((k ^ s) >>> 16)` equals
 * `premix(k) ^ premix(s)`), so it is applied once per key and once per identity, not per pair.
 */
function premix(hash: number): number {
  return hash ^ (hash >>> 16);
}

/** fmix32(keyHash ^ identityHash), given both premixed: the rendezvous score, compared as int32. */
function score(keyMix: number, identityMix: number): number {
  let x = Math.imul(keyMix ^ identityMix, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return x ^ (x >>> 16);
}

interface IdentityEntry {
  readonly endpoint: Endpoint;
  readonly identity: string;
  readonly identityHash: number;
}

/**
 * Endpoints sorted by identity (then id, for duplicates). Equal scores happen only between equal
 * identity hashes and go to the lower slot, so the order does not depend on the input order.
 */
function byIdentity(endpoints: readonly Endpoint[]): IdentityEntry[] {
  return endpoints
    .map((endpoint) => {
      const identity = shardIdentity(endpoint);
      return { endpoint, identity, identityHash: hashString(identity) };
    })
    .sort((a, b) => compareStrings(a.identity, b.identity) || compareStrings(a.endpoint.id, b.endpoint.id));
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function mergeEndpoints(a: readonly Endpoint[], b: readonly Endpoint[]): Endpoint[] {
  const merged = new Set(a);
  for (const endpoint of b) merged.add(endpoint);
  return [...merged];
}
