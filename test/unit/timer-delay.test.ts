import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/options.js';
import { Endpoint } from '../../src/pool/endpoint.js';
import { OutlierDetector } from '../../src/pool/outlier-detector.js';
import { fullJitterBackoff } from '../../src/retry/backoff.js';
import { MAX_TIMER_MS, timerDelay } from '../../src/timer-delay.js';

describe('timerDelay', () => {
  it('keeps a delay within 0 … 2^31−1', () => {
    expect(MAX_TIMER_MS).toBe(2 ** 31 - 1);
    expect(timerDelay(250)).toBe(250);
    expect(timerDelay(MAX_TIMER_MS)).toBe(MAX_TIMER_MS);
    expect(timerDelay(2 ** 31)).toBe(MAX_TIMER_MS);
    expect(timerDelay(1e10)).toBe(MAX_TIMER_MS);
    expect(timerDelay(Number.POSITIVE_INFINITY)).toBe(MAX_TIMER_MS);
    expect(timerDelay(-5)).toBe(0);
    expect(timerDelay(Number.NaN)).toBe(0);
  });
});

describe('fullJitterBackoff', () => {
  it('stays within 0 … the cap whatever the injected random returns', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0, max: MAX_TIMER_MS }),
        fc.integer({ min: 0, max: MAX_TIMER_MS }),
        fc.oneof(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double()),
        (retry, base, max, r) => {
          const delay = fullJitterBackoff(retry, base, max, () => r);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(max, MAX_TIMER_MS));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('grows by the multiplier (gRFC A6: min(max, initial · multiplier^(n−1))), within 0 … the cap for any multiplier', () => {
    expect(fullJitterBackoff(3, 100, 10_000, () => 0.999999, 3)).toBe(899);
    expect(fullJitterBackoff(3, 100, 10_000, () => 0.999999, 0.5)).toBe(24);
    expect(fullJitterBackoff(1, 100, 10_000, () => 0.5, 1000)).toBe(50);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0, max: MAX_TIMER_MS }),
        fc.integer({ min: 0, max: MAX_TIMER_MS }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: Number.MIN_VALUE, max: 1000, noNaN: true }),
        (retry, base, max, r, multiplier) => {
          const delay = fullJitterBackoff(retry, base, max, () => r, multiplier);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(max, MAX_TIMER_MS));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('ejection length', () => {
  it('is base × times ejected, capped by maxEjectionMs, and never past 2^31−1 after jitter', () => {
    const clock = (): number => 0;
    const endpoint = new Endpoint(
      { id: 'e0', address: '127.0.0.11', addresses: [], port: 80, family: 4, name: undefined, weight: 1, priority: 0 },
      clock,
      { decayMs: 10_000, defaultRttMs: 30 },
    );
    const lengths: number[] = [];
    const config = { ...DEFAULTS.outlierDetection, baseEjectionMs: 2 ** 30, maxEjectionMs: MAX_TIMER_MS, jitter: 1 };
    // random() just under 1: the most jitter upward.
    const detector = new OutlierDetector(
      config,
      clock,
      () => 0.999_999,
      () => 1,
      {
        onEject: (_e, _reason, ms) => lengths.push(ms),
        onReturn: () => {},
        onRecover: () => {},
      },
    );
    for (let n = 0; n < 3; n++) {
      endpoint.finish(endpoint.start(), 'failure');
      expect(detector.onFailure(endpoint, 'not-sent')).toBe(true);
      endpoint.health.state = 'probation'; // back for the next round, without waiting 2^30 ms
      detector.forget([endpoint]);
    }
    expect(lengths).toHaveLength(3);
    for (const ms of lengths) expect(ms).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(lengths[2]).toBe(MAX_TIMER_MS);
  });
});
