import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecayingMean } from '../../../src/pool/decaying-mean.js';
import { LatencyTracker } from '../../../src/pool/latency-tracker.js';
import { ManualClock, makeEndpoint, measure, sample } from '../pickers/support.js';

const OPTIONS = { decayMs: 10_000, defaultRttMs: 30, averageMs: 1000 };

describe('LatencyTracker', () => {
  it('has no current estimate before its second response, then starts from the faster of the first two', () => {
    const tracker = new LatencyTracker(OPTIONS, 0);
    expect(tracker.current(true, true, 0)).toBe(0);
    tracker.observe(187, 200); // the first response paid for a connection set-up
    expect(tracker.current(true, true, 200)).toBe(0);
    expect(tracker.current(false, true, 200)).toBe(0);
    tracker.observe(1, 201);
    expect(tracker.current(true, true, 201)).toBe(1);
    expect(tracker.current(false, true, 201)).toBe(1);
    // A slower second response does not lower the first: the estimate is the faster one.
    const slowSecond = new LatencyTracker(OPTIONS, 0);
    slowSecond.observe(4, 0);
    slowSecond.observe(9, 5);
    expect(slowSecond.current(true, false, 5)).toBe(4);
  });

  it('reports its estimates as before (the getters behind latencyMs and meanLatencyMs) from the first response', () => {
    const tracker = new LatencyTracker(OPTIONS, 0);
    expect(tracker.peakEwma.value(0)).toBe(30);
    tracker.observe(40, 10);
    expect(tracker.peakEwma.value(10)).toBe(40);
    expect(tracker.mean.value(10)).toBe(40);
  });

  it('stops being current after latency.averageMs without a response while idle, not while busy', () => {
    const tracker = new LatencyTracker(OPTIONS, 0);
    tracker.observe(5, 0);
    tracker.observe(5, 10);
    expect(tracker.current(true, true, 1009)).toBeGreaterThan(0);
    expect(tracker.current(true, true, 1010)).toBe(0);
    // With a request in flight the old estimate stands: the answer is just slow to come.
    expect(tracker.current(true, false, 5000)).toBeGreaterThan(0);
  });

  it('restarts from the responses after a silence, whatever it estimated before', () => {
    const tracker = new LatencyTracker(OPTIONS, 0);
    tracker.observe(300, 0);
    tracker.observe(300, 10);
    tracker.observe(2, 5000);
    expect(tracker.current(false, true, 5000)).toBe(0); // one response: probing again
    tracker.observe(3, 5003);
    expect(tracker.current(false, true, 5003)).toBe(2);
    expect(tracker.current(true, true, 5003)).toBe(2);
  });

  it('re-probes a pod that stays avoided less and less often (×2 per silence, up to latency.decayMs), and every averageMs again once it is used', () => {
    const tracker = new LatencyTracker(OPTIONS, 0);
    let now = 0;
    const probe = (): void => {
      tracker.observe(50, now);
      tracker.observe(50, now + 50);
      now += 50;
    };
    probe();
    const silences: number[] = [];
    for (let i = 0; i < 6; i++) {
      const from = now;
      while (tracker.current(true, true, now) !== 0) now += 10;
      silences.push(now - from);
      probe();
    }
    expect(silences).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    // Once it is in regular use again, a new silence is re-probed after averageMs.
    tracker.observe(50, now + 10);
    now += 10;
    const from = now;
    while (tracker.current(true, true, now) !== 0) now += 10;
    expect(now - from).toBe(1000);
  });
});

describe('Endpoint latency', () => {
  it('probes a readdressed endpoint (a new container) again', () => {
    const clock = new ManualClock();
    const endpoint = makeEndpoint({ name: 'web-0', address: '10.0.0.1' }, clock.read);
    measure(endpoint, clock, 5);
    expect(endpoint.currentLatency(true, clock.now)).toBe(5);
    endpoint.update({
      id: 'web-0',
      name: 'web-0',
      address: '10.0.0.2',
      addresses: ['10.0.0.2'],
      port: 8080,
      family: 4,
      weight: 1,
      priority: 0,
    });
    expect(endpoint.currentLatency(true, clock.now)).toBe(0);
    measure(endpoint, clock, 7);
    expect(endpoint.currentLatency(true, clock.now)).toBe(7);
  });

  it('decays by elapsed time, not by sample count, once measured: many samples and one give the same estimate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 999 }), (count, span) => {
        const clock = new ManualClock();
        const often = makeEndpoint({ name: 'often' }, clock.read);
        const once = makeEndpoint({ name: 'once' }, clock.read);
        measure(often, clock, 100);
        measure(once, clock, 100);
        for (let i = 1; i <= count; i++) {
          clock.now = (span * i) / count;
          sample(often, clock, 10);
        }
        sample(once, clock, 10);
        expect(often.latencyMs).toBeCloseTo(once.latencyMs, 6);
        expect(often.meanLatencyMs).toBeCloseTo(once.meanLatencyMs, 6);
        expect(often.currentLatency(false, clock.now)).toBeCloseTo(once.currentLatency(false, clock.now), 6);
      }),
    );
  });
});

describe('DecayingMean', () => {
  it('weighs each sample by the time since the previous one, and restarts from a sample', () => {
    const mean = new DecayingMean(1000, 10_000, 30, 0);
    expect(mean.value(0)).toBe(30);
    mean.observe(100, 0);
    mean.observe(10, 1000);
    expect(mean.value(1000)).toBeCloseTo(10 + 90 * Math.exp(-1), 6);
    mean.restart(4, 1000);
    expect(mean.value(1000)).toBe(4);
    expect(mean.value(11_000)).toBeCloseTo(4 * Math.exp(-1), 6);
  });
});

describe('LatencyTracker.observeAtLeast (a request abandoned unanswered)', () => {
  it('raises the estimates to the lower bound, and never lowers them', () => {
    const tracker = new LatencyTracker(OPTIONS, 0);
    tracker.observe(5, 0);
    tracker.observe(5, 10);
    const before = [tracker.current(false, false, 20), tracker.current(true, false, 20)];
    tracker.observeAtLeast(3, 20); // below the estimates: nothing new
    expect([tracker.current(false, false, 20), tracker.current(true, false, 20)]).toEqual(before);
    tracker.observeAtLeast(50, 30);
    expect(tracker.current(false, false, 30)).toBe(50); // peak-EWMA jumps to it
    expect(tracker.current(true, false, 30)).toBeGreaterThan(5);
    const peak = tracker.current(false, false, 40);
    tracker.observeAtLeast(20, 40); // above the mean, below the peak: the peak would fall
    expect(tracker.current(false, false, 40)).toBe(peak);
  });

  it('never lowers either estimate, whatever the lower bounds (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 200 })), {
          minLength: 1,
          maxLength: 40,
        }),
        (steps) => {
          const tracker = new LatencyTracker(OPTIONS, 0);
          let now = 0;
          for (const [bound, latency, gap] of steps) {
            now += gap;
            const before = [tracker.current(false, false, now), tracker.current(true, false, now)];
            if (!bound) {
              tracker.observe(latency, now);
              continue;
            }
            tracker.observeAtLeast(latency, now);
            const after = [tracker.current(false, false, now), tracker.current(true, false, now)];
            // A current estimate stays or rises; one that was not current may start.
            if (before[0]! > 0 && after[0]! > 0) expect(after[0]!).toBeGreaterThanOrEqual(before[0]!);
            if (before[1]! > 0 && after[1]! > 0) expect(after[1]!).toBeGreaterThanOrEqual(before[1]!);
          }
        },
      ),
    );
  });
});
