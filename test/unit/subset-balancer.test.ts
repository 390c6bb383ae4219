import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBalancer, InvalidOptionError, type Balancer, type BalancerOptions } from '../../src/index.js';
import { refused, staticEndpoints } from './support.js';

/** The `subset` option wired into the balancer (the algorithm itself: test/unit/pickers/subset.test.ts). */

let lb: Balancer | undefined;
afterEach(async () => {
  vi.unstubAllEnvs();
  await lb?.close();
  lb = undefined;
});

function balancer(options: Partial<BalancerOptions> = {}, count = 30): Balancer {
  lb = createBalancer({ endpoints: staticEndpoints(count), random: () => 0.5, ...options } as BalancerOptions);
  return lb;
}

function members(lb: Balancer): string[] {
  return [...lb.stats().subset!.members];
}

describe('subset option', () => {
  it('sends requests without a key only to the subset members, evenly', async () => {
    const lb = balancer({ subset: { size: 5, clientId: 'api-3' } });
    const seen = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      await lb.run(async (endpoint) => {
        seen.set(endpoint.id, (seen.get(endpoint.id) ?? 0) + 1);
      });
    }
    const subset = lb.stats().subset!;
    expect(subset.size).toBe(5);
    expect(subset.clientId).toBe('api-3');
    expect(subset.members).toHaveLength(5);
    expect([...seen.keys()].sort()).toEqual([...subset.members].sort());
    for (const count of seen.values()) expect(count).toBe(100);
  });

  it('gives different client ids different subsets, the same id the same one', () => {
    const a = members(balancer({ subset: { size: 5, clientId: 'api-0' } }));
    const again = createBalancer({ endpoints: staticEndpoints(30).reverse(), subset: { size: 5, clientId: 'api-0' } });
    const other = createBalancer({ endpoints: staticEndpoints(30), subset: { size: 5, clientId: 'api-1' } });
    try {
      expect(members(again).sort()).toEqual([...a].sort());
      expect(members(other).filter((id) => a.includes(id)).length).toBeLessThan(5);
    } finally {
      void again.close();
      void other.close();
    }
  });

  it('replaces an ejected member at once from outside the subset, and takes it back when it returns', async () => {
    let now = 0;
    const lb = balancer({
      subset: { size: 5, clientId: 'api-7' },
      clock: () => now,
      outlierDetection: { baseEjectionMs: 1000, jitter: 0 },
    });
    const before = members(lb);
    const victim = before[2]!;
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      await lb.run(async (endpoint) => {
        seen.add(endpoint.id);
        if (endpoint.id === victim) throw refused();
      });
    }
    const during = members(lb);
    expect(during).toHaveLength(5);
    expect(during).not.toContain(victim);
    // The four others stay; one pod from outside the subset comes in.
    expect(during.filter((id) => before.includes(id))).toHaveLength(4);
    const replacement = during.find((id) => !before.includes(id))!;
    expect(seen.has(replacement)).toBe(true);
    expect([...seen].filter((id) => !before.includes(id))).toEqual([replacement]);
    now = 2000; // the ejection ran out
    expect(members(lb).sort()).toEqual([...before].sort());
  });

  it('keeps keyed requests on their owner in the whole pool (shard-key stickiness unchanged)', () => {
    const full = createBalancer({ endpoints: staticEndpoints(30), picker: 'shard-key' });
    try {
      const lb = balancer({ picker: 'shard-key', subset: { size: 3, clientId: 'api-5' } });
      const subset = new Set(members(lb));
      let outside = 0;
      for (let i = 0; i < 200; i++) {
        const key = `user-${i}`;
        const owner = full.pick({ key }).id;
        expect(lb.pick({ key }).id).toBe(owner);
        if (!subset.has(owner)) outside++;
      }
      expect(outside).toBeGreaterThan(150);
      // Without a key, the shard-key picker's fallback stays in the subset.
      for (let i = 0; i < 30; i++) expect(subset.has(lb.pick().id)).toBe(true);
    } finally {
      void full.close();
    }
  });

  it('in panic mode picks over the subset members whatever their health', async () => {
    const lb = balancer({ subset: { size: 4, clientId: 'api-9' }, outlierDetection: { maxEjectedPercent: 100 } }, 6);
    const order = members(lb);
    const panics: boolean[] = [];
    lb.on('panic', ({ active }) => panics.push(active));
    // Everything refuses: the pool ejects down to panic.
    for (let i = 0; i < 20; i++) await lb.run(async () => Promise.reject(refused())).catch(() => undefined);
    expect(panics).toEqual([true]);
    expect(members(lb).sort()).toEqual([...order].sort());
    for (let i = 0; i < 20; i++) expect(order).toContain(lb.pick().id);
  });

  it('is off by default; the client id defaults to HOSTNAME', () => {
    expect(balancer().stats().subset).toBeUndefined();
    void lb?.close();
    vi.stubEnv('HOSTNAME', 'checkout-12');
    expect(balancer({ subset: { size: 3 } }).stats().subset!.clientId).toBe('checkout-12');
    void lb?.close();
    vi.stubEnv('HOSTNAME', '');
    expect(balancer({ subset: { size: 3 } }).stats().subset!.clientId).toMatch(/^client-[0-9a-f-]{36}$/);
  });

  it('uses every pod when the pool is smaller than the subset', () => {
    expect(members(balancer({ subset: { size: 10, clientId: 'api-1' } }, 4)).sort()).toEqual(['web-0', 'web-1', 'web-2', 'web-3']);
  });

  it.each([
    [5, 'subset'],
    [null, 'subset'],
    [{}, 'subset.size'],
    [{ size: 0 }, 'subset.size'],
    [{ size: 2.5 }, 'subset.size'],
    [{ size: Number.NaN }, 'subset.size'],
    [{ size: 3, clientId: '  ' }, 'subset.clientId'],
    [{ size: 3, clientId: 7 }, 'subset.clientId'],
    [{ size: 3, clients: 7 }, 'subset.clients'],
  ])('refuses subset %j naming %s', (subset, field) => {
    let error: unknown;
    try {
      createBalancer({ endpoints: staticEndpoints(3), subset } as unknown as BalancerOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).field).toBe(field);
  });

  it('refuses any hostile subset value with an InvalidOptionError naming a subset field, or accepts a valid one', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.record({ size: fc.anything(), clientId: fc.anything() }, { requiredKeys: [] })), (subset) => {
        let made: Balancer | undefined;
        try {
          made = createBalancer({ endpoints: staticEndpoints(3), subset } as unknown as BalancerOptions);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidOptionError);
          expect((error as InvalidOptionError).field).toMatch(/^subset(\.|$)/);
          return;
        }
        try {
          const stats = made.stats().subset;
          if (subset === undefined) {
            expect(stats).toBeUndefined(); // off
          } else {
            expect(Number.isInteger(stats!.size) && stats!.size >= 1).toBe(true);
            expect(stats!.members.length).toBe(Math.min(3, stats!.size));
          }
        } finally {
          void made.close();
        }
      }),
    );
  });

  it('whatever pods are ejected, keyless picks go to `size` members none of which is ejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.nat({ max: 200 }),
        fc.uniqueArray(fc.nat({ max: 19 }), { maxLength: 20 }),
        async (size, ordinal, down) => {
          const lb = createBalancer({
            endpoints: staticEndpoints(20),
            subset: { size, clientId: `api-${ordinal}` },
            outlierDetection: { maxEjectedPercent: 100 },
            panicThreshold: 0,
            retry: { retries: 0 },
          });
          try {
            // Keyed calls pick over the whole pool: each refused one ejects the pod it reached.
            for (const i of down) await lb.run(async () => Promise.reject(refused()), { key: `k${i}` }).catch(() => undefined);
            const ejected = new Set(
              lb
                .endpoints()
                .filter((e) => e.state === 'ejected')
                .map((e) => e.id),
            );
            const members = lb.stats().subset!.members;
            const alive = 20 - ejected.size;
            expect(members).toHaveLength(alive === 0 ? Math.min(size, 20) : Math.min(size, alive));
            if (alive > 0) for (const id of members) expect(ejected.has(id)).toBe(false);
            for (let i = 0; i < 2 * size; i++) expect(members).toContain(lb.pick().id);
          } finally {
            await lb.close();
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});
