import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RoundRobinPicker } from '../../../src/pickers/round-robin.js';
import { WeightedRoundRobinPicker } from '../../../src/pickers/weighted-round-robin.js';
import { WeightedSchedule, quantizeWeights } from '../../../src/pickers/weighted-schedule.js';
import type { Endpoint } from '../../../src/pool/endpoint.js';
import { makeEndpoint, request, seededRandom } from './support.js';

const weighted = (weights: readonly number[]): Endpoint[] => weights.map((weight, i) => makeEndpoint({ name: `web-${i}`, weight }));

function sequence(picker: { pick: WeightedRoundRobinPicker['pick'] }, endpoints: readonly Endpoint[], length: number): number[] {
  return Array.from({ length }, () => endpoints.indexOf(picker.pick(endpoints, request())!));
}

describe('WeightedSchedule', () => {
  it('keeps every slot within one pick of its exact share at every prefix', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 20 }), fc.nat(), (weights, rotation) => {
        const total = weights.reduce((a, b) => a + b, 0);
        const schedule = new WeightedSchedule(weights, rotation);
        const picks = new Array<number>(weights.length).fill(0);
        let worstLag = 0;
        for (let k = 1; k <= 3 * total; k++) {
          picks[schedule.next()]!++;
          for (let i = 0; i < weights.length; i++) worstLag = Math.max(worstLag, Math.abs(picks[i]! - (k * weights[i]!) / total));
        }
        expect(worstLag).toBeLessThan(1);
      }),
      { numRuns: 200 },
    );
  });

  it('interleaves a heavy slot instead of sending it a burst', () => {
    const schedule = new WeightedSchedule([5, 1, 1]);
    const order = Array.from({ length: 14 }, () => 'ABC'[schedule.next()]).join('');
    expect(order).toBe('ABAACAAABAACAA');
  });

  it('is plain round-robin from the rotation offset when weights are equal', () => {
    const schedule = new WeightedSchedule([3, 3, 3, 3], 2);
    expect(Array.from({ length: 8 }, () => schedule.next())).toEqual([2, 3, 0, 1, 2, 3, 0, 1]);
  });
});

describe('quantizeWeights', () => {
  it('keeps small integers, zeroes invalid weights and scales the rest', () => {
    expect(quantizeWeights([1, 5, 0, -3, Number.NaN])).toEqual([1, 5, 0, 0, 0]);
    expect(quantizeWeights([0.5, 1.5])).toEqual([21845, 65535]);
    expect(quantizeWeights([100_000, 1])).toEqual([65535, 1]);
  });
});

describe('WeightedRoundRobinPicker', () => {
  it('behaves exactly as round-robin when weights are equal', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 100 }), fc.integer(), (n, weight, seed) => {
        const endpoints = weighted(new Array<number>(n).fill(weight));
        const wrr = new WeightedRoundRobinPicker(seededRandom(seed));
        const rr = new RoundRobinPicker(seededRandom(seed));
        expect(sequence(wrr, endpoints, 3 * n)).toEqual(sequence(rr, endpoints, 3 * n));
      }),
    );
  });

  it('honours weights smoothly', () => {
    const endpoints = weighted([3, 1, 2]);
    const picker = new WeightedRoundRobinPicker(seededRandom(1));
    const picks = sequence(picker, endpoints, 600);
    const counts = [0, 1, 2].map((i) => picks.filter((p) => p === i).length);
    expect(counts).toEqual([300, 100, 200]);
    // Smooth: the heaviest endpoint never gets more than two picks in a row (3 of 6).
    expect(picks.join('')).not.toMatch(/000/);
  });

  it('sends nothing to weight 0 while another endpoint is available, and treats all-zero as equal', () => {
    const endpoints = weighted([2, 0, 1]);
    const picker = new WeightedRoundRobinPicker(seededRandom(2));
    expect(sequence(picker, endpoints, 300)).not.toContain(1);
    const tried = new Set([endpoints[0]!, endpoints[2]!]);
    expect(picker.pick(endpoints, request({ tried, attempt: 3 }))).toBe(endpoints[1]);

    const zeros = weighted([0, 0, 0]);
    expect(new Set(sequence(new WeightedRoundRobinPicker(seededRandom(3)), zeros, 6)).size).toBe(3);
  });

  it('never returns a tried endpoint while an untried one exists', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(11)),
        fc.integer(),
        (weights, triedIndices, seed) => {
          const endpoints = weighted(weights);
          const tried = new Set(triedIndices.filter((i) => i < endpoints.length).map((i) => endpoints[i]!));
          const picker = new WeightedRoundRobinPicker(seededRandom(seed));
          for (let i = 0; i < 20; i++) {
            const chosen = picker.pick(endpoints, request({ tried, attempt: 2 }));
            if (tried.size === endpoints.length) expect(chosen).toBeUndefined();
            else expect(tried.has(chosen!)).toBe(false);
          }
        },
      ),
    );
  });

  it('rebuilds its schedule for a new candidate array', () => {
    const endpoints = weighted([1, 3]);
    const picker = new WeightedRoundRobinPicker(seededRandom(4));
    expect(sequence(picker, endpoints, 8).filter((i) => i === 1)).toHaveLength(6);
    const subset = [endpoints[0]!];
    expect(sequence(picker, subset, 3)).toEqual([0, 0, 0]);
    picker.update();
    expect(sequence(picker, endpoints, 8).filter((i) => i === 1)).toHaveLength(6);
  });
});
