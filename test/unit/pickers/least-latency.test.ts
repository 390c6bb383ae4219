import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPicker } from '../../../src/pickers/index.js';
import { LeastLatencyPicker, latencyCost, meanLatencyCost } from '../../../src/pickers/least-latency.js';
import type { Endpoint } from '../../../src/pool/endpoint.js';
import { ManualClock, closedLoop, countPicks, fail, load, makeEndpoint, measure, pods, request, sample, seededRandom } from './support.js';

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
    measure(fast!, clock, 5);
    measure(slow!, clock, 50);
    const picker = new LeastLatencyPicker(seededRandom(1), estimator);
    expect(pickMany(picker, [fast!, slow!], 1000).get(fast!)).toBe(1000);
  });

  it('weighs latency by load: a busy fast endpoint loses to an idle slower one', () => {
    const clock = new ManualClock();
    const [fast, slow] = pods(2, clock.read);
    measure(fast!, clock, 10);
    measure(slow!, clock, 25);
    load(fast!, 3); // 10 × 4 = 40 > 25 × 1
    const picker = new LeastLatencyPicker(seededRandom(2), estimator);
    expect(picker.pick([fast!, slow!], request())).toBe(slow);
  });

  it('compares health before latency', () => {
    const clock = new ManualClock();
    const [failing, slow] = pods(2, clock.read);
    measure(failing!, clock, 1);
    fail(failing!);
    measure(slow!, clock, 500);
    const picker = new LeastLatencyPicker(seededRandom(3), estimator);
    expect(pickMany(picker, [failing!, slow!], 100).get(slow!)).toBe(100);
  });

  it('probes a new pod at once, one request at a time, before it trusts an estimate of it', () => {
    const clock = new ManualClock();
    const [fast, slow, fresh] = pods(3, clock.read);
    measure(fast!, clock, 5);
    measure(slow!, clock, 100);
    const picker = new LeastLatencyPicker(seededRandom(4), estimator);
    // Without a response, it counts as latency 0: it wins every pair it is drawn in...
    const counts = pickMany(picker, [fast!, slow!, fresh!], 3000);
    expect(counts.get(fresh!)! / 3000).toBeCloseTo(2 / 3, 1);
    expect(counts.get(slow!)).toBeUndefined();
    // ...but only while idle: with its probe in flight it loses every pair, however busy the others.
    load(fresh!, 1);
    load(fast!, 20);
    load(slow!, 20);
    expect(pickMany(picker, [fast!, slow!, fresh!], 1000).get(fresh!)).toBeUndefined();
  });

  it('re-probes an avoided slow endpoint after latency.averageMs of silence, and less often while it stays slow', () => {
    const clock = new ManualClock();
    const [slow, fast] = pods(2, clock.read);
    measure(slow!, clock, 300);
    measure(fast!, clock, 20);
    const picker = new LeastLatencyPicker(seededRandom(5), estimator);
    // The fast one keeps answering in 20 ms; the slow one answers each probe in 300 ms.
    const probes: number[] = [];
    while (clock.now < 60_000) {
      clock.advance(100);
      const chosen = picker.pick([slow!, fast!], request())!;
      if (chosen === slow) probes.push(clock.now);
      sample(chosen, clock, chosen === slow ? 300 : 20);
    }
    // Re-probes (two responses each) after 1 s, 2 s, 4 s, 8 s, then every 10 s (latency.decayMs).
    const rounds = probes.filter((at, i) => i === 0 || at - probes[i - 1]! > 100);
    expect(rounds[0]).toBeGreaterThanOrEqual(1000);
    expect(rounds[0]).toBeLessThanOrEqual(1100);
    const gaps = rounds.slice(1).map((at, i) => at - rounds[i]!);
    expect(gaps.slice(0, 4).map((gap) => Math.round(gap / 1000))).toEqual([2, 4, 8, 10]);
    expect(probes.length).toBeLessThanOrEqual(2 * rounds.length);
    expect(probes.length).toBeLessThan(30); // of 600 picks
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
    expect(() => createPicker({ type: 'least-latency', estimator: 'median' as never }, { random: Math.random, clock: () => 0 })).toThrow(
      /picker\.estimator/,
    );
  });
});

describe.each(['mean', 'peak-ewma'] as const)('least-latency starves no pod (estimator %s)', (estimator) => {
  const share = (counts: readonly number[], of: number): number => Math.min(...counts) / (of / counts.length);

  it('sends traffic to a pod without a response yet at 1 in flight, and gives it its share', () => {
    const clock = new ManualClock();
    const endpoints = pods(4, clock.read);
    const [a, b, c, fresh] = endpoints;
    for (const endpoint of [a!, b!, c!]) measure(endpoint, clock, 1);
    const picker = new LeastLatencyPicker(seededRandom(11), estimator);
    const jitter = seededRandom(12);
    // Sequential calls (1 in flight), every pod answering in about 1 ms. Before the fix the new
    // pod sat at the 30 ms default RTT, never picked, so never measured: 0 of 400.
    const picks = closedLoop(picker, endpoints, clock, { concurrency: 1, picks: 400, latency: () => 1 + 0.2 * jitter() });
    expect(picks.indexOf(fresh!)).toBeLessThan(10);
    expect(share(countPicks(picks, endpoints), picks.length)).toBeGreaterThanOrEqual(0.5);
  });

  it('gives a pod whose first response took 187 ms (connection set-up) its share, at once', () => {
    const clock = new ManualClock();
    const endpoints = pods(4, clock.read);
    const slowStart = endpoints[2]!;
    const picker = new LeastLatencyPicker(seededRandom(13), estimator);
    const jitter = seededRandom(14);
    const picks = closedLoop(picker, endpoints, clock, {
      concurrency: 1,
      picks: 300,
      latency: (endpoint, responses) => (endpoint === slowStart && responses === 0 ? 187 : 1 + 0.2 * jitter()),
    });
    // Its estimate starts from the faster of its first two responses.
    expect(picks.slice(picks.indexOf(slowStart) + 1, picks.indexOf(slowStart) + 21)).toContain(slowStart);
    expect(share(countPicks(picks, endpoints), picks.length)).toBeGreaterThanOrEqual(0.5);
  });

  it('re-probes a measured pod avoided after one 187 ms response within latency.averageMs, and it gets its share back', () => {
    const clock = new ManualClock();
    const endpoints = pods(4, clock.read);
    for (const endpoint of endpoints) measure(endpoint, clock, 1);
    const hiccup = endpoints[1]!;
    const picker = new LeastLatencyPicker(seededRandom(15), estimator);
    const jitter = seededRandom(16);
    const spikeAt = 50; // its 50th response takes 187 ms (a GC pause, a retransmission)
    const picks = closedLoop(picker, endpoints, clock, {
      concurrency: 1,
      picks: 6000, // about 6 s of 1 ms calls
      latency: (endpoint, responses) => (endpoint === hiccup && responses === spikeAt ? 187 : 1 + 0.2 * jitter()),
    });
    const spikePick = picks.reduce(
      (at, endpoint, i) => (endpoint === hiccup && picks.slice(0, i).filter((e) => e === hiccup).length === spikeAt ? i : at),
      -1,
    );
    const nextPick = picks.indexOf(hiccup, spikePick + 1);
    // Avoided for at most latency.averageMs (1 s ≈ 1,000 calls of 1 ms) after its slow response.
    expect(nextPick - spikePick).toBeLessThan(1200);
    const after = picks.slice(nextPick);
    expect(share(countPicks(after, endpoints), after.length)).toBeGreaterThanOrEqual(0.5);
  });

  it('sends a burst to a new pod one probe at a time, not all at once', () => {
    const clock = new ManualClock();
    const endpoints = pods(4, clock.read);
    for (const endpoint of endpoints.slice(0, 3)) measure(endpoint, clock, 5);
    const fresh = endpoints[3]!;
    const picker = new LeastLatencyPicker(seededRandom(17), estimator);
    let toFresh = 0;
    for (let i = 0; i < 16; i++) {
      const chosen = picker.pick(endpoints, request())!;
      chosen.start();
      if (chosen === fresh) toFresh++;
    }
    expect(toFresh).toBe(1);
  });

  it.each([1, 16])('keeps a pod ten times slower at a small share at %i in flight (re-probes back off)', (concurrency) => {
    const clock = new ManualClock();
    const endpoints = pods(4, clock.read);
    const slow = endpoints[0]!;
    const picker = new LeastLatencyPicker(seededRandom(18), estimator);
    const jitter = seededRandom(19);
    // 5 ms pods and a 50 ms one, ±30%, for about 30 s.
    const picks = closedLoop(picker, endpoints, clock, {
      concurrency,
      picks: concurrency === 1 ? 5000 : 80_000,
      latency: (endpoint) => (endpoint === slow ? 50 : 5) * (1 + 0.3 * jitter()),
    });
    const slowShare = picks.filter((e) => e === slow).length / picks.length;
    // Two probes after 1, 2, 4 and 8 s of silence, then every 10 s: about 12 requests in 30 s.
    expect(slowShare).toBeLessThan(concurrency === 1 ? 0.005 : 0.002);
  });

  it('property: pods of equal speed each get at least half their share at 1, 2 and 16 in flight', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }),
        fc.constantFrom(1, 2, 16),
        fc.double({ min: 0.2, max: 20, noNaN: true }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        (n, concurrency, baseMs, jitterShare, seed) => {
          const clock = new ManualClock();
          const endpoints = pods(n, clock.read);
          const picker = new LeastLatencyPicker(seededRandom(seed), estimator);
          const jitter = seededRandom(seed ^ 0x5bd1e995);
          const picks = closedLoop(picker, endpoints, clock, {
            concurrency,
            picks: 200 * n,
            latency: () => baseMs * (1 + jitterShare * jitter()),
          });
          expect(share(countPicks(picks, endpoints), picks.length)).toBeGreaterThanOrEqual(0.5);
        },
      ),
      { numRuns: 60 },
    );
  });
});
