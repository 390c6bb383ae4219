import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DnsResolver, Resolution } from '../../../src/discovery/dns-resolver.js';
import { DnsDiscovery } from '../../../src/discovery/dns.js';
import type { DiscoveryUpdate } from '../../../src/discovery/source.js';
import type { Target } from '../../../src/target.js';
import { seededRandom } from '../../support/random.js';

/**
 * The refresh schedule behind a caching resolver, against a model of one: a cache keeps a copy of
 * the answer, serves it with the TTL counting down in whole seconds, and asks the authority again
 * only once the copy has expired. Two ways of counting, as real caches do:
 * - 'unbound': whole seconds of the wall clock; a copy fetched at 10.4 s with TTL 5 is served until
 *   16.0 s, its last second as TTL 0 (Unbound, dnsmasq);
 * - 'coredns': the copy lives exactly TTL seconds from its fetch and the TTL is rounded up, never
 *   0 (CoreDNS's cache plugin: `origTTL - int(elapsed seconds)`, served while > 0).
 */
type Counting = 'unbound' | 'coredns';

const TTL = 5;
const SPREAD_MS = 200;
const refresh = { minMs: 1000, maxMs: 30_000, jitter: 0.1 };

function podTargets(count: number): Target[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `127.0.0.${11 + i}:80`,
    address: `127.0.0.${11 + i}`,
    addresses: [`127.0.0.${11 + i}`],
    port: 80,
    family: 4 as const,
    name: undefined,
    weight: 1,
    priority: 0,
  }));
}

interface Copy {
  readonly storedAt: number;
  readonly pods: number;
}

class ModelCache {
  /** What the authority serves now. */
  pods = 2;
  readonly copies: Copy[] = [];
  /** Every lookup that reached the cache: when, and by which client. */
  readonly lookups: { at: number; client: number }[] = [];

  constructor(
    readonly counting: Counting,
    readonly rttMs = 0,
  ) {}

  expiry(copy: Copy): number {
    return this.counting === 'unbound' ? (Math.floor(copy.storedAt / 1000) + TTL + 1) * 1000 : copy.storedAt + TTL * 1000;
  }

  /** The copy current at `at`, if any. */
  copyAt(at: number): Copy | undefined {
    return this.copies.findLast((c) => c.storedAt <= at && at < this.expiry(c));
  }

  resolver(client = 0): DnsResolver {
    return {
      resolve: async (): Promise<Resolution> => {
        if (this.rttMs > 0) await new Promise((resolve) => setTimeout(resolve, this.rttMs / 2));
        const now = Date.now();
        this.lookups.push({ at: now, client });
        let copy = this.copyAt(now);
        if (copy === undefined) {
          copy = { storedAt: now, pods: this.pods };
          this.copies.push(copy);
        }
        const ttl =
          this.counting === 'unbound'
            ? Math.floor(copy.storedAt / 1000) + TTL - Math.floor(now / 1000)
            : TTL - Math.floor((now - copy.storedAt) / 1000);
        if (this.rttMs > 0) await new Promise((resolve) => setTimeout(resolve, this.rttMs / 2));
        return { kind: 'targets', targets: podTargets(copy.pods), ttl, name: 'web', queries: 1 };
      },
    } as unknown as DnsResolver;
  }
}

function startClient(resolver: DnsResolver, random: () => number) {
  const updates: { at: number; update: DiscoveryUpdate }[] = [];
  const discovery = new DnsDiscovery({ service: 'web', resolver, refresh, emptyGraceMs: 0, clock: () => Date.now(), random });
  discovery.start((update) => updates.push({ at: Date.now(), update }));
  return { discovery, updates };
}

/** Answers TTLs from a function of the time, each after `rttMs`. */
function ttlResolver(ttlAt: (now: number) => number, lookups: number[], rttMs = 0): DnsResolver {
  return {
    resolve: async (): Promise<Resolution> => {
      lookups.push(Date.now());
      if (rttMs > 0) await new Promise((resolve) => setTimeout(resolve, rttMs));
      return { kind: 'targets', targets: podTargets(2), ttl: ttlAt(Date.now()), name: 'web', queries: 1 };
    },
  } as unknown as DnsResolver;
}

/** For each copy after the first few: how long after it expired this client's next lookup came. */
function lagsBehindExpiry(cache: ModelCache, client: number, from: number): number[] {
  const mine = cache.lookups.filter((l) => l.client === client).map((l) => l.at);
  const lags: number[] = [];
  for (const copy of cache.copies) {
    const expiry = cache.expiry(copy);
    const next = mine.find((at) => at >= expiry);
    if (copy.storedAt >= from && next !== undefined) lags.push(next - expiry);
  }
  return lags;
}

function gaps(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

describe('DnsDiscovery behind a caching resolver', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('Unbound-style cache: a full TTL as before, TTL 0 to the end of its last second, then aims at the expiry', async () => {
    vi.setSystemTime(10_400);
    const cache = new ModelCache('unbound');
    const { discovery } = startClient(cache.resolver(), () => 0);
    await vi.advanceTimersByTimeAsync(12_000);
    discovery.close();
    expect(cache.lookups.map((l) => l.at)).toEqual([
      10_400, // TTL 5, fresh copy: nothing says a cache is there; the TTL, jittered earlier (random 0: not at all)
      15_400, // TTL 0: the copy counted down. Its last second ends by 16_400 (the floor, 1 s, allows no sooner)
      16_400, // fresh copy, expiring in (21_400, 22_400]: a lookup 4 s before the middle halves that second
      17_900, // TTL 4: (21_900, 22_400]
      19_150, // TTL 2: (21_900, 22_150]
      21_025, // TTL 0: (21_900, 22_025], narrow enough: look at its end
      22_025, // 25 ms after the copy expired (22_000); the next copy expires in (27_900, 28_025]
    ]);
    expect(cache.copies.map((c) => c.storedAt)).toEqual([10_400, 16_400, 22_025]);
  });

  it('CoreDNS-style cache: a counted-down TTL t means t − 1 … t s left', async () => {
    vi.setSystemTime(10_400);
    const cache = new ModelCache('coredns');
    const { discovery } = startClient(cache.resolver(), () => 0.5);
    await vi.advanceTimersByTimeAsync(16_000);
    discovery.close();
    expect(cache.lookups.map((l) => l.at)).toEqual([
      10_400, // TTL 5, fresh copy (expires at 15_400): the TTL brought forward by half the jitter
      15_150, // TTL 1 of the same copy: a cache. Its end (by 15_400) is closer than the floor allows
      16_150, // fresh copy, expiring in (20_150, 21_150]: a lookup 3 s before the middle halves that
      17_650, // TTL 4: (20_650, 21_150]
      18_900, // TTL 3: (20_900, 21_150]
      20_025, // TTL 2: (21_025, 21_150], narrow enough: look at its end plus half the rest of the spread
      21_188, // 38 ms after the copy expired (21_150). The next one, fetched now, expires after
      //         21_025 + 5 s (the last one did after 21_025) and by 26_188: (26_025, 26_188]
      26_207, // 19 ms after it expired: one lookup a copy from now on
    ]);
  });

  it('lags each copy by at most the 200 ms spread, never looks up sooner than the floor, about one lookup a copy', async () => {
    for (const counting of ['unbound', 'coredns'] as const) {
      for (let seed = 1; seed <= 20; seed++) {
        const random = seededRandom(seed);
        const startAt = Math.floor(random() * 10_000);
        vi.setSystemTime(startAt);
        const cache = new ModelCache(counting, 2);
        const { discovery, updates } = startClient(cache.resolver(), random);
        await vi.advanceTimersByTimeAsync(30_000 + random() * 6000);
        cache.pods = 3; // a new pod, at a random point of the copy's life
        const publishedAt = Date.now();
        await vi.advanceTimersByTimeAsync(60_000);
        discovery.close();
        const label = `${counting}, seed ${seed}`;
        // The new pod: seen at most 200 ms (and a round trip) after the cache could first show it.
        const held = cache.copyAt(publishedAt);
        const showable = held === undefined ? publishedAt : Math.max(publishedAt, cache.expiry(held));
        const seen = updates.find((u) => u.update.kind === 'targets' && u.update.targets.length === 3)?.at;
        expect(seen, label).toBeDefined();
        expect(seen! - showable, label).toBeLessThanOrEqual(SPREAD_MS + 2);
        // Every copy after the first cycles is followed within the spread.
        const lags = lagsBehindExpiry(cache, 0, startAt + 15_000);
        expect(lags.length, label).toBeGreaterThan(10);
        expect(Math.max(...lags), label).toBeLessThanOrEqual(SPREAD_MS + 2);
        const times = cache.lookups.map((l) => l.at);
        expect(Math.min(...gaps(times)), label).toBeGreaterThanOrEqual(refresh.minMs);
        // The lookups that narrow the expiry down cost about half a lookup per copy on top.
        expect(times.length / cache.copies.length, label).toBeLessThan(2);
      }
    }
  });
  it('straight from an authority (the TTL never counts down): the TTL brought forward by the jitter, as before', async () => {
    const lookups: number[] = [];
    const { discovery } = startClient(
      ttlResolver(() => TTL, lookups),
      () => 0.5,
    );
    await vi.advanceTimersByTimeAsync(20_000);
    discovery.close();
    expect(gaps(lookups)).toEqual([4750, 4750, 4750, 4750]);
  });

  it('TTL 0 from an authority: the floor, as before', async () => {
    const lookups: number[] = [];
    const { discovery } = startClient(
      ttlResolver(() => 0, lookups),
      () => 0.5,
    );
    await vi.advanceTimersByTimeAsync(5000);
    discovery.close();
    expect(gaps(lookups)).toEqual([1000, 1000, 1000, 1000, 1000]);
  });

  it('a cache that keeps serving TTL 0 (a stale copy while the authority is away): never sooner than the floor', async () => {
    const lookups: number[] = [];
    // A copy fetched at 0 with TTL 5, counted down Unbound-style, then served stale at TTL 0.
    const { discovery } = startClient(
      ttlResolver((now) => Math.max(0, TTL - Math.floor(now / 1000)), lookups),
      () => 0.5,
    );
    await vi.advanceTimersByTimeAsync(30_000);
    discovery.close();
    expect(Math.min(...gaps(lookups))).toBeGreaterThanOrEqual(refresh.minMs);
    expect(lookups.length).toBeLessThanOrEqual(1 + 30);
    expect(lookups.at(-1)! - lookups.at(-2)!).toBe(1000);
  });

  it('goes back to the plain TTL rule when the answers stop counting down (the cache went away)', async () => {
    const cache = new ModelCache('unbound');
    const viaCache = cache.resolver();
    const lookups: number[] = [];
    let straight = false;
    const resolver = {
      resolve: (signal?: AbortSignal) => (straight ? ttlResolver(() => TTL, lookups).resolve(signal) : viaCache.resolve(signal)),
    } as unknown as DnsResolver;
    const { discovery } = startClient(resolver, () => 0.5);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(cache.lookups.length).toBeGreaterThan(5);
    straight = true;
    await vi.advanceTimersByTimeAsync(60_000);
    discovery.close();
    // Until a lookup in the middle of what would be a copy finds the TTL not counted down (at most
    // four copies), then every 4.75 s again.
    const direct = gaps(lookups.filter((at) => at >= 60_000));
    expect(direct.length).toBeGreaterThan(4);
    expect(direct.every((gap) => gap === 4750)).toBe(true);
  });

  it('a lower TTL at the authority (30 s, then 5 s) settles on the new TTL', async () => {
    const lookups: number[] = [];
    const { discovery } = startClient(
      ttlResolver((now) => (now < 40_000 ? 30 : 5), lookups),
      () => 0.5,
    );
    await vi.advanceTimersByTimeAsync(120_000);
    discovery.close();
    const after = gaps(lookups.filter((at) => at >= 60_000));
    expect(after.length).toBeGreaterThan(8);
    expect(after.every((gap) => gap === 4750)).toBe(true);
  });

  it.each(['unbound', 'coredns'] as const)(
    'spreads a fleet behind one %s-style cache over the 200 ms after each expiry',
    async (counting) => {
      const cache = new ModelCache(counting, 2);
      const clients = Array.from({ length: 20 }, (_, i) => {
        const random = seededRandom(100 + i);
        return { i, random, started: false };
      });
      const running: DnsDiscovery[] = [];
      // Clients start at random points of the first 10 s.
      const starts = clients.map((c) => ({ ...c, at: Math.floor(c.random() * 10_000) })).sort((a, b) => a.at - b.at);
      for (const client of starts) {
        await vi.advanceTimersByTimeAsync(client.at - Date.now());
        running.push(startClient(cache.resolver(client.i), client.random).discovery);
      }
      await vi.advanceTimersByTimeAsync(120_000 - Date.now());
      for (const discovery of running) discovery.close();

      let copiesChecked = 0;
      for (const copy of cache.copies.filter((c) => c.storedAt >= 40_000)) {
        const expiry = cache.expiry(copy);
        const firsts = clients
          .map((c) => cache.lookups.find((l) => l.client === c.i && l.at >= expiry)?.at)
          .filter((at) => at !== undefined);
        if (firsts.length < clients.length) continue; // the end of the run
        copiesChecked++;
        // Everyone comes back within the spread after the expiry, not in lockstep before or at it.
        expect(Math.max(...firsts) - expiry).toBeLessThanOrEqual(SPREAD_MS + 2);
        expect(new Set(firsts).size).toBeGreaterThanOrEqual(clients.length / 2);
        expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThanOrEqual(SPREAD_MS / 4);
      }
      expect(copiesChecked).toBeGreaterThan(8);
      // The authority sees one query per copy, whatever the size of the fleet.
      expect(cache.copies.length).toBeLessThan(120_000 / (TTL * 1000) + 2);
    },
  );

  it('two caches taking turns (CoreDNS replicas behind one Service IP): still the floor, and the new pod soon', async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const random = seededRandom(seed);
      const caches = [new ModelCache('coredns', 2), new ModelCache('coredns', 2)];
      const lookups: number[] = [];
      const resolver = {
        resolve: (signal?: AbortSignal) => {
          lookups.push(Date.now());
          return caches[random() < 0.5 ? 0 : 1]!.resolver().resolve(signal);
        },
      } as unknown as DnsResolver;
      vi.setSystemTime(0);
      await vi.advanceTimersByTimeAsync(Math.floor(random() * 5000)); // the second cache's copies at another phase
      const { discovery, updates } = startClient(resolver, random);
      await vi.advanceTimersByTimeAsync(30_000 + random() * 5000);
      for (const cache of caches) cache.pods = 3;
      const publishedAt = Date.now();
      await vi.advanceTimersByTimeAsync(30_000);
      discovery.close();
      const label = `seed ${seed}`;
      expect(Math.min(...gaps(lookups)), label).toBeGreaterThanOrEqual(refresh.minMs);
      expect(lookups.length / ((Date.now() - lookups[0]!) / (TTL * 1000)), label).toBeLessThan(3);
      const seen = updates.find((u) => u.update.kind === 'targets' && u.update.targets.length === 3)?.at;
      expect(seen! - publishedAt, label).toBeLessThan(TTL * 1000 + 1000);
    }
  });

  it('whatever the TTLs and round trips, every lookup is at least the floor and at most the ceiling after the last', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constant(2 ** 32 - 1)), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 30 }), // (a timer of 0 ms is 1 ms)
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        async (ttls, rtts, r) => {
          vi.setSystemTime(0);
          const started: number[] = [];
          let n = 0;
          const resolver = {
            resolve: async (): Promise<Resolution> => {
              started.push(Date.now());
              const i = n++;
              await new Promise((resolve) => setTimeout(resolve, rtts[i % rtts.length]!));
              return { kind: 'targets', targets: podTargets(2), ttl: ttls[i % ttls.length]!, name: 'web', queries: 1 };
            },
          } as unknown as DnsResolver;
          const { discovery } = startClient(resolver, () => r);
          await vi.advanceTimersByTimeAsync(120_000);
          discovery.close();
          for (let i = 1; i < started.length; i++) {
            const sinceAnswer = started[i]! - started[i - 1]! - rtts[(i - 1) % rtts.length]!;
            expect(sinceAnswer).toBeGreaterThanOrEqual(refresh.minMs);
            expect(sinceAnswer).toBeLessThanOrEqual(refresh.maxMs);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
