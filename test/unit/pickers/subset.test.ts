import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/errors.js';
import {
  CLIENTS_PER_ROUND,
  MAX_SUBSET_SIZE,
  Subset,
  clientOrdinal,
  defaultClientId,
  subsetOrder,
  validateSubsetOptions,
} from '../../../src/pickers/subset.js';

const pod = (i: number): string => `web-${i}.web-headless.default.svc.cluster.local`;
const podList = (n: number, first = 0): string[] => Array.from({ length: n }, (_, i) => pod(first + i));
const self = (s: string): string => s;

/** Connections per pod over clients api-0 … api-(clients-1). */
function connections(clients: number, pool: readonly string[], size: number): Map<string, number> {
  const counts = new Map(pool.map((p) => [p, 0]));
  for (let i = 0; i < clients; i++) {
    for (const member of new Subset({ size, clientId: `api-${i}` }).select(pool, self)) counts.set(member, counts.get(member)! + 1);
  }
  return counts;
}

describe('Subset', () => {
  it('gives each client `size` distinct pods of the pool', () => {
    const pool = podList(50);
    const members = new Subset({ size: 8, clientId: 'api-3' }).select(pool, self);
    expect(members).toHaveLength(8);
    expect(new Set(members).size).toBe(8);
    for (const m of members) expect(pool).toContain(m);
  });

  it('spreads 1,000 ordinal clients over 300 pods within 1.2× of the mean', () => {
    const counts = [...connections(1000, podList(300), 20).values()];
    const mean = (1000 * 20) / 300;
    expect(Math.max(...counts) / mean).toBeLessThanOrEqual(1.2);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(20_000);
  });

  it('moves about the ideal share of connections when one pod joins', () => {
    const pool = podList(300);
    let moved = 0;
    for (let i = 0; i < 1000; i++) {
      const before = new Set(new Subset({ size: 20, clientId: `api-${i}` }).select(pool, self));
      const after = new Subset({ size: 20, clientId: `api-${i}` }).select([...pool, pod(300)], self);
      moved += after.filter((m) => !before.has(m)).length;
    }
    // Ideal: the new pod takes 1/301 of all 20,000 memberships (≈ 66).
    expect(moved / 20_000).toBeLessThanOrEqual(3 / 301);
    expect(moved).toBeGreaterThan(0);
  });

  it('leaves every other client alone when a client joins', () => {
    const pool = podList(100);
    const before = Array.from({ length: 130 }, (_, i) => new Subset({ size: 10, clientId: `api-${i}` }).select(pool, self));
    const again = Array.from({ length: 130 }, (_, i) => new Subset({ size: 10, clientId: `api-${i}` }).select(pool, self));
    expect(again).toEqual(before);
  });

  it('replaces an ejected member with the next pod outside the subset, and takes it back when usable', () => {
    const pool = podList(40);
    const subset = new Subset({ size: 5, clientId: 'api-9' });
    const order = subset.order(pool, self);
    const members = subset.select(pool, self);
    expect(members).toEqual(order.slice(0, 5));
    const ejected = members[2]!;
    const without = subset.select(pool, self, (m) => m !== ejected);
    expect(without).toEqual([...members.filter((m) => m !== ejected), order[5]]);
    expect(subset.select(pool, self)).toEqual(members);
  });

  it('replaces a removed pod the same way as an ejected one', () => {
    const pool = podList(40);
    const subset = new Subset({ size: 5, clientId: 'api-11' });
    const members = subset.select(pool, self);
    const removed = members[0]!;
    const afterRemoval = new Subset({ size: 5, clientId: 'api-11' }).select(
      pool.filter((m) => m !== removed),
      self,
    );
    expect(afterRemoval).toEqual(subset.select(pool, self, (m) => m !== removed));
  });

  it('returns the whole pool when it is smaller than the size, and nothing for an empty pool', () => {
    expect(new Subset({ size: 10, clientId: 'api-1' }).select(podList(4), self).sort()).toEqual(podList(4).sort());
    expect(new Subset({ size: 10, clientId: 'api-1' }).select([], self)).toEqual([]);
    expect(new Subset({ size: 3, clientId: 'api-1' }).select(podList(5), self, () => false)).toEqual([]);
  });

  it('treats identities case-insensitively and without a trailing dot', () => {
    const pool = podList(30);
    const shouting = pool.map((p) => `${p.toUpperCase()}.`);
    const a = new Subset({ size: 6, clientId: 'api-2' }).select(pool, self);
    const b = new Subset({ size: 6, clientId: 'api-2' }).select(shouting, self);
    expect(b.map((m) => m.toLowerCase().slice(0, -1))).toEqual(a);
  });

  it('selects objects through the identity function, keeping the objects', () => {
    const endpoints = podList(20).map((name, i) => ({ name, address: `10.0.0.${i}` }));
    const members = new Subset({ size: 4, clientId: 'api-0' }).select(endpoints, (e) => e.name);
    expect(members).toHaveLength(4);
    for (const m of members) expect(endpoints).toContain(m);
  });

  it('reads ordinals from StatefulSet-style names only', () => {
    expect(clientOrdinal('api-17')).toBe(17);
    expect(clientOrdinal('api-server-007')).toBe(7);
    expect(clientOrdinal('api')).toBeUndefined();
    expect(clientOrdinal('api-7f9c4d-x2k9q')).toBeUndefined();
    expect(clientOrdinal(`api-${'9'.repeat(20)}`)).toBeUndefined();
    expect(new Subset({ size: 3, clientId: 'api-130' }).ordinal).toBe(130);
  });

  it('defaults the client id to HOSTNAME, else a random id per process', () => {
    expect(defaultClientId({ HOSTNAME: 'api-4' })).toBe('api-4');
    const random = defaultClientId({});
    expect(random).toMatch(/^client-[0-9a-f-]{36}$/);
    expect(defaultClientId({ HOSTNAME: '  ' })).not.toBe('  ');
  });

  it('deals ordinals into rounds of a fixed size', () => {
    expect(CLIENTS_PER_ROUND).toBe(64);
  });
});

describe('Subset options', () => {
  it.each([
    [{ size: 0 }, 'subset.size', 0],
    [{ size: 2.5 }, 'subset.size', 2.5],
    [{ size: Number.NaN }, 'subset.size', Number.NaN],
    [{ size: MAX_SUBSET_SIZE + 1 }, 'subset.size', MAX_SUBSET_SIZE + 1],
    [{ size: 2 ** 53 }, 'subset.size', 2 ** 53],
    [{ size: '20' }, 'subset.size', '20'],
    [{ size: 5, clientId: '' }, 'subset.clientId', ''],
    [{ size: 5, clientId: 17 }, 'subset.clientId', 17],
    [{ size: 5, clientId: 'x'.repeat(2000) }, 'subset.clientId', 'x'.repeat(2000)],
    [{ size: 5, seed: 1 }, 'subset.seed', 1],
  ])('refuses %j naming %s', (options, field, value) => {
    try {
      new Subset(options as never);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).field).toBe(field);
      expect((error as InvalidOptionError).value).toEqual(value);
    }
  });

  it('refuses a non-object under the given field name', () => {
    expect(() => validateSubsetOptions(null, 'options.subset')).toThrow(/options\.subset/);
    expect(() => validateSubsetOptions(20)).toThrow(InvalidOptionError);
  });
});

describe('Subset properties', () => {
  const identity = fc.stringMatching(/^[a-z0-9.-]{1,30}$/);
  const pools = fc.uniqueArray(identity, { minLength: 0, maxLength: 80, selector: (s) => s.toLowerCase().replace(/\.$/, '') });
  const clientIds = fc.oneof(
    fc.nat({ max: 5000 }).map((i) => `api-${i}`),
    fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim().length > 0),
  );
  const sizes = fc.integer({ min: 1, max: 100 });

  it('is deterministic: the same id, size and pool give the same subset', () => {
    fc.assert(
      fc.property(pools, clientIds, sizes, (pool, clientId, size) => {
        expect(new Subset({ size, clientId }).select(pool, self)).toEqual(new Subset({ size, clientId }).select([...pool], self));
      }),
    );
  });

  it('never depends on the order of the pool (the DNS answer)', () => {
    fc.assert(
      fc.property(pools, clientIds, sizes, fc.integer(), (pool, clientId, size, seed) => {
        const shuffled = fc.sample(fc.shuffledSubarray(pool, { minLength: pool.length, maxLength: pool.length }), { seed, numRuns: 1 })[0]!;
        expect(subsetOrder(shuffled, self, clientId, size)).toEqual(subsetOrder(pool, self, clientId, size));
      }),
    );
  });

  it('returns min(size, pool) distinct members of the pool', () => {
    fc.assert(
      fc.property(pools, clientIds, sizes, (pool, clientId, size) => {
        const members = new Subset({ size, clientId }).select(pool, self);
        expect(members).toHaveLength(Math.min(size, pool.length));
        expect(new Set(members).size).toBe(members.length);
        for (const m of members) expect(pool).toContain(m);
      }),
    );
  });

  it('replaces unusable members from outside the subset and keeps the usable ones', () => {
    fc.assert(
      fc.property(pools, clientIds, sizes, fc.func(fc.boolean()), (pool, clientId, size, usableOf) => {
        const subset = new Subset({ size, clientId });
        const base = subset.select(pool, self);
        const usable = (m: string): boolean => usableOf(m);
        const members = subset.select(pool, self, usable);
        const usableCount = pool.filter(usable).length;
        expect(members).toHaveLength(Math.min(size, usableCount));
        for (const m of members) expect(usable(m)).toBe(true);
        // Every usable member of the base subset stays; the rest come from outside it.
        for (const m of base) if (usable(m)) expect(members).toContain(m);
      }),
    );
  });

  it('survives hostile pools: duplicates, case variants, empty and odd strings', () => {
    const hostilePool = fc.array(
      fc.oneof(identity, fc.string({ maxLength: 10 }), fc.constantFrom('', '.', 'A.', 'a', '\u{1F600}', '\uD800')),
      { maxLength: 60 },
    );
    fc.assert(
      fc.property(hostilePool, clientIds, fc.integer({ min: 1, max: MAX_SUBSET_SIZE }), (pool, clientId, size) => {
        const members = new Subset({ size, clientId }).select(pool, self);
        const distinct = new Set(pool.map((p) => p.toLowerCase().replace(/\.$/, '')));
        expect(members).toHaveLength(Math.min(size, distinct.size));
        expect(new Set(members.map((p) => p.toLowerCase().replace(/\.$/, ''))).size).toBe(members.length);
      }),
    );
  });

  it('refuses every invalid size or client id with an InvalidOptionError naming it', () => {
    const badSize = fc.oneof(
      fc.integer({ max: 0 }),
      fc.integer({ min: MAX_SUBSET_SIZE + 1 }),
      fc.double({ noInteger: true }),
      fc.constantFrom<unknown>(Number.NaN, Number.POSITIVE_INFINITY, '5', null, undefined, {}, [], 1n, true),
    );
    fc.assert(
      fc.property(badSize, (size) => {
        expect(() => new Subset({ size } as never)).toThrow(
          expect.objectContaining({ field: 'subset.size', code: 'ERR_HLB_INVALID_OPTION' }),
        );
      }),
    );
    const badId = fc.oneof(fc.constantFrom<unknown>('', '   ', null, 0, {}, []), fc.string({ minLength: 1025, maxLength: 1100 }));
    fc.assert(
      fc.property(badId, (clientId) => {
        expect(() => new Subset({ size: 3, clientId } as never)).toThrow(expect.objectContaining({ field: 'subset.clientId' }));
      }),
    );
  });
});
