import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeastRequestPicker } from '../../../src/pickers/least-request.js';
import { secondIndex } from '../../../src/pickers/p2c.js';
import type { Endpoint } from '../../../src/pool/endpoint.js';
import { fail, load, pods, request, seededRandom } from './support.js';

/** A PRNG that replays `values`, then repeats the last one. */
function replay(values: readonly number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}

describe('P2C pair', () => {
  it('draws two distinct indices in range for every n ≥ 2 and every draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, u, v) => {
          const a = Math.floor(u * n);
          const b = secondIndex(a, n, () => v);
          expect(b).not.toBe(a);
          expect(b).toBeGreaterThanOrEqual(0);
          expect(b).toBeLessThan(n);
        },
      ),
    );
  });

  it('draws every unordered pair equally often', () => {
    const random = seededRandom(7);
    const n = 4;
    const counts = new Map<string, number>();
    for (let i = 0; i < 60_000; i++) {
      const a = Math.floor(random() * n);
      const b = secondIndex(a, n, random);
      const pair = `${Math.min(a, b)}${Math.max(a, b)}`;
      counts.set(pair, (counts.get(pair) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const count of counts.values()) expect(count / 10_000).toBeCloseTo(1, 1);
  });
});

describe('LeastRequestPicker', () => {
  it('returns undefined for no endpoints and the only one for one', () => {
    const picker = new LeastRequestPicker(seededRandom(1));
    expect(picker.pick([], request())).toBeUndefined();
    const [only] = pods(1);
    expect(picker.pick([only!], request())).toBe(only);
  });

  it('with two endpoints always picks the less busy one (distinct pair, never 25% wrong)', () => {
    const [a, b] = pods(2);
    load(a!, 3);
    load(b!, 1);
    const picker = new LeastRequestPicker(seededRandom(2));
    for (let i = 0; i < 1000; i++) expect(picker.pick([a!, b!], request())).toBe(b);
  });

  it('never picks the single busiest endpoint when n ≥ 2', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(20), { minLength: 2, maxLength: 30 }), fc.integer(), (loads, seed) => {
        const endpoints = pods(loads.length);
        loads.forEach((count, i) => load(endpoints[i]!, count));
        const max = Math.max(...loads);
        const busiest = loads.filter((l) => l === max).length === 1 ? endpoints[loads.indexOf(max)] : undefined;
        const picker = new LeastRequestPicker(seededRandom(seed));
        for (let i = 0; i < 50; i++) {
          const chosen = picker.pick(endpoints, request());
          expect(chosen).toBeDefined();
          if (busiest !== undefined) expect(chosen).not.toBe(busiest);
        }
      }),
    );
  });

  it('compares health before load', () => {
    const [failing, busy] = pods(2);
    fail(failing!);
    load(busy!, 10);
    const picker = new LeastRequestPicker(seededRandom(3));
    for (let i = 0; i < 100; i++) expect(picker.pick([failing!, busy!], request())).toBe(busy);
  });

  it('spreads picks evenly over idle endpoints', () => {
    const endpoints = pods(5);
    const picker = new LeastRequestPicker(seededRandom(4));
    const counts = new Map<Endpoint, number>();
    for (let i = 0; i < 50_000; i++) {
      const chosen = picker.pick(endpoints, request())!;
      counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
    }
    for (const count of counts.values()) expect(count / 10_000).toBeCloseTo(1, 1);
  });

  it('never returns a tried endpoint while an untried one exists', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 40 })
          .chain((n) =>
            fc.tuple(fc.constant(n), fc.array(fc.nat(n - 1), { maxLength: n + 5 }), fc.array(fc.nat(9), { minLength: n, maxLength: n })),
          ),
        fc.integer(),
        ([n, triedIndices, loads], seed) => {
          const endpoints = pods(n);
          loads.forEach((count, i) => load(endpoints[i]!, count));
          const tried = new Set(triedIndices.map((i) => endpoints[i]!));
          const picker = new LeastRequestPicker(seededRandom(seed));
          const chosen = picker.pick(endpoints, request({ tried, attempt: 2 }));
          if (tried.size === n) expect(chosen).toBeUndefined();
          else {
            expect(chosen).toBeDefined();
            expect(tried.has(chosen!)).toBe(false);
          }
        },
      ),
    );
  });

  it('uses two distinct untried endpoints when most are tried', () => {
    const endpoints = pods(10);
    const [x, y] = [endpoints[3]!, endpoints[7]!];
    load(x, 5);
    const tried = new Set(endpoints.filter((e) => e !== x && e !== y));
    // Draws that always land on tried endpoints force the counting path.
    const picker = new LeastRequestPicker(replay([0, 0, 0, 0, 0, 0, 0, 0, 0, 0.99]));
    expect(picker.pick(endpoints, request({ tried, attempt: 2 }))).toBe(y);
  });
});
