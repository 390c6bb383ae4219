import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPicker } from '../../../src/pickers/index.js';
import { LeastLatencyPicker, latencyCost, meanLatencyCost } from '../../../src/pickers/least-latency.js';
import type { Endpoint } from '../../../src/pool/endpoint.js';
import { ManualClock, fail, load, makeEndpoint, pods, request, sample, seededRandom } from './support.js';

function pickMany(picker: LeastLatencyPicker, endpoints: readonly Endpoint[], times: number): Map<Endpoint, number> {
  const counts = new Map<Endpoint, number>();
  for (let i = 0; i < times; i++) {
    const chosen = picker.pick(endpoints, request())!;
    counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
  }
  return counts;
}

describe('latencyCost', () => {
  it('is peak-EWMA latency × (in-flight + 1)', () => {
    const clock = new ManualClock();
    const endpoint = makeEndpoint({ name: 'a' }, clock.read);
    sample(endpoint, clock, 40);
    expect(latencyCost(endpoint)).toBe(40);
    load(endpoint, 2);
    expect(latencyCost(endpoint)).toBe(120);
  });

  it('starts unseeded endpoints at the default RTT', () => {
    const endpoint = makeEndpoint({ name: 'a' }, () => 0, { decayMs: 10_000, defaultRttMs: 30 });
    expect(endpoint.hasLatency).toBe(false);
    expect(latencyCost(endpoint)).toBe(30);
  });

  it('never lets an endpoint with pending requests look free once its estimate reached zero', () => {
    const clock = new ManualClock();
    const endpoint = makeEndpoint({ name: 'a' }, clock.read);
    sample(endpoint, clock, 0);
    load(endpoint, 1);
    expect(latencyCost(endpoint)).toBeGreaterThan(1e12);
  });
});

describe.each(['mean', 'peak-ewma'] as const)('LeastLatencyPicker (estimator %s)', (estimator) => {
  it('with two endpoints always picks the cheaper one', () => {
    const clock = new ManualClock();
    const [fast, slow] = pods(2, clock.read);
    sample(fast!, clock, 5);
    sample(slow!, clock, 50);
    const picker = new LeastLatencyPicker(seededRandom(1), estimator);
    expect(pickMany(picker, [fast!, slow!], 1000).get(fast!)).toBe(1000);
  });

  it('weighs latency by load: a busy fast endpoint loses to an idle slower one', () => {
    const clock = new ManualClock();
    const [fast, slow] = pods(2, clock.read);
    sample(fast!, clock, 10);
    sample(slow!, clock, 25);
    load(fast!, 3); // 10 × 4 = 40 > 25 × 1
    const picker = new LeastLatencyPicker(seededRandom(2), estimator);
    expect(picker.pick([fast!, slow!], request())).toBe(slow);
  });

  it('compares health before latency', () => {
    const clock = new ManualClock();
    const [failing, slow] = pods(2, clock.read);
    sample(failing!, clock, 1);
    fail(failing!);
    sample(slow!, clock, 500);
    const picker = new LeastLatencyPicker(seededRandom(3), estimator);
    expect(pickMany(picker, [failing!, slow!], 100).get(slow!)).toBe(100);
  });

  it('neither floods nor starves a new pod: it sits at the default RTT between fast and slow ones', () => {
    const clock = new ManualClock();
    const [fast, slow, fresh] = pods(3, clock.read);
    sample(fast!, clock, 5);
    sample(slow!, clock, 100);
    const picker = new LeastLatencyPicker(seededRandom(4), estimator);
    const counts = pickMany(picker, [fast!, slow!, fresh!], 3000);
    // P2C over 3: the best wins 2/3 of pairs, the middle 1/3, the worst never.
    expect(counts.get(fast!)! / 3000).toBeCloseTo(2 / 3, 1);
    expect(counts.get(fresh!)! / 3000).toBeCloseTo(1 / 3, 1);
    expect(counts.get(slow!)).toBeUndefined();
  });

  it('probes an avoided slow endpoint again once its estimate decays (by elapsed time)', () => {
    const clock = new ManualClock();
    const [slow, fast] = pods(2, clock.read);
    sample(slow!, clock, 300);
    sample(fast!, clock, 20);
    const picker = new LeastLatencyPicker(seededRandom(5), estimator);
    // The fast one keeps answering in 20 ms; the slow one gets no traffic and decays toward 0:
    // 300 · e^(−t/10 s) < 20 once t > 10 s · ln 15 ≈ 27.1 s.
    const step = 100;
    let firstProbe: number | undefined;
    while (clock.now < 60_000 && firstProbe === undefined) {
      clock.advance(step);
      const chosen = picker.pick([slow!, fast!], request())!;
      if (chosen === slow) firstProbe = clock.now;
      else sample(fast!, clock, 20);
    }
    expect(firstProbe).toBeGreaterThan(27_000);
    expect(firstProbe).toBeLessThanOrEqual(27_200);
  });

  it('decays by elapsed time, not by sample count: many samples and one give the same estimate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 60_000 }), (count, span) => {
        const clock = new ManualClock();
        const [often, once] = pods(2, clock.read);
        sample(often!, clock, 100);
        sample(once!, clock, 100);
        for (let i = 1; i <= count; i++) {
          clock.now = (span * i) / count;
          sample(often!, clock, 10);
        }
        sample(once!, clock, 10);
        expect(often!.latencyMs).toBeCloseTo(once!.latencyMs, 6);
      }),
    );
  });

  it('never returns a tried endpoint while an untried one exists', () => {
    const clock = new ManualClock();
    const endpoints = pods(6, clock.read);
    endpoints.forEach((e, i) => sample(e, clock, 10 + i));
    const picker = new LeastLatencyPicker(seededRandom(6), estimator);
    const tried = new Set<Endpoint>();
    for (let attempt = 1; attempt <= 6; attempt++) {
      const chosen = picker.pick(endpoints, request({ tried, attempt }));
      expect(chosen).toBeDefined();
      expect(tried.has(chosen!)).toBe(false);
      tried.add(chosen!);
    }
    expect(picker.pick(endpoints, request({ tried, attempt: 7 }))).toBeUndefined();
  });
});

describe('least-latency with the mean estimator', () => {
  it('compares mean latency × (1 + in-flight / 2), and a peak does not stick', () => {
    let now = 0;
    const clock = () => now;
    const fast = makeEndpoint({ name: 'fast' }, clock);
    const slow = makeEndpoint({ name: 'slow' }, clock);
    // fast: mostly 5 ms with one 80 ms stall; slow: 50 ms
    for (let i = 0; i < 200; i++) {
      now += 2;
      fast.finish(fast.start() - (i === 100 ? 80 : 5), 'success');
      if (i % 20 === 0) slow.finish(slow.start() - 50, 'success');
    }
    expect(fast.meanLatencyMs).toBeLessThan(10);
    expect(fast.latencyMs).toBeGreaterThan(50); // the peak rule still remembers the stall
    expect(meanLatencyCost(fast)).toBeLessThan(meanLatencyCost(slow));
    const picker = createPicker({ type: 'least-latency', estimator: 'mean' }, { random: seededRandom(1), clock });
    let slowPicks = 0;
    for (let i = 0; i < 1000; i++) if (picker.pick([fast, slow], { key: undefined, tried: undefined, attempt: 1 }) === slow) slowPicks++;
    expect(slowPicks).toBe(0);
  });

  it('rejects an unknown estimator, naming the field', () => {
    expect(() => createPicker({ type: 'least-latency', estimator: 'median' as never }, { random: Math.random, clock: () => 0 })).toThrow(/picker\.estimator/);
  });
});
