import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/options.js';
import { Endpoint } from '../../../src/pool/endpoint.js';
import { OutlierDetector, type OutlierDetectionConfig } from '../../../src/pool/outlier-detector.js';

// Envoy-like defaults as shipped, with no jitter so that ejection lengths are exact.
const config: OutlierDetectionConfig = { ...DEFAULTS.outlierDetection, jitter: 0 };

function setup(size = 4, overrides: Partial<OutlierDetectionConfig> = {}) {
  let now = 0;
  const clock = () => now;
  const endpoints = Array.from(
    { length: size },
    (_, i) =>
      new Endpoint(
        { id: `e${i}`, address: `127.0.0.${11 + i}`, addresses: [], port: 80, family: 4, name: undefined, weight: 1, priority: 0 },
        clock,
        { decayMs: 10_000, defaultRttMs: 30 },
      ),
  );
  const events: string[] = [];
  const detector = new OutlierDetector(
    { ...config, ...overrides },
    clock,
    () => 0.5,
    () => endpoints.length,
    {
      onEject: (e, reason, ms) => events.push(`eject ${e.id} ${reason} ${ms}`),
      onReturn: (e) => events.push(`return ${e.id}`),
      onRecover: (e) => events.push(`recover ${e.id}`),
    },
  );
  const fail = (e: Endpoint, kind: 'not-sent' | 'maybe-sent' = 'maybe-sent') => {
    e.finish(e.start(), 'failure');
    return detector.onFailure(e, kind);
  };
  const succeed = (e: Endpoint) => {
    e.finish(e.start(), 'success');
    detector.onSuccess(e);
  };
  return { endpoints, detector, events, fail, succeed, advance: (ms: number) => (now += ms), now: () => now };
}

describe('OutlierDetector', () => {
  it('ejects on exactly the 5th consecutive failure', () => {
    const { endpoints, fail, events } = setup();
    const e = endpoints[0]!;
    for (let i = 0; i < 4; i++) expect(fail(e)).toBe(false);
    expect(fail(e)).toBe(true);
    expect(e.state).toBe('ejected');
    expect(events).toEqual(['eject e0 consecutive-failures 30000']);
  });

  it('ejects at once on a refused connection', () => {
    const { endpoints, fail } = setup();
    expect(fail(endpoints[1]!, 'not-sent')).toBe(true);
    expect(endpoints[1]!.state).toBe('ejected');
  });

  it('ejects on the failure rate over the window', () => {
    const { endpoints, fail, succeed, events } = setup();
    const e = endpoints[0]!;
    for (let i = 0; i < 10; i++) {
      succeed(e);
      fail(e); // never 5 in a row
    }
    expect(e.state).toBe('ejected');
    expect(events[0]).toContain('failure-rate');
  });

  it('never ejects more than the cap, but at least one', () => {
    const { endpoints, fail, detector } = setup(4);
    for (const e of endpoints) fail(e, 'not-sent');
    expect(detector.ejectedCount).toBe(2);
    const single = setup(1);
    expect(single.fail(single.endpoints[0]!, 'not-sent')).toBe(true);
  });

  it('returns on probation after base × n, recovers on a success, and is ejected longer after a probation failure', () => {
    const { endpoints, fail, succeed, detector, advance, events } = setup();
    const e = endpoints[0]!;
    fail(e, 'not-sent');
    advance(29_999);
    expect(detector.expire()).toBe(false);
    advance(1);
    expect(detector.expire()).toBe(true);
    expect(e.state).toBe('probation');
    fail(e);
    expect(e.state).toBe('ejected');
    expect(events.at(-1)).toBe('eject e0 probation-failure 60000');
    advance(60_000);
    detector.expire();
    succeed(e);
    expect(e.state).toBe('healthy');
    expect(events.slice(-2)).toEqual(['return e0', 'recover e0']);
  });

  it('caps the ejection length and forgives past ejections after healthy time', () => {
    const { endpoints, fail, succeed, detector, advance, events } = setup(4, { maxEjectionMs: 90_000 });
    const e = endpoints[0]!;
    for (let n = 0; n < 5; n++) {
      fail(e, 'not-sent');
      advance(300_000);
      detector.expire();
    }
    expect(events.filter((x) => x.startsWith('eject')).map((x) => Number(x.split(' ').at(-1)))).toEqual([
      30_000, 60_000, 90_000, 90_000, 90_000,
    ]);
    succeed(e);
    advance(10 * 30_000); // healthy long enough to forgive every past ejection
    fail(e, 'not-sent');
    expect(events.at(-1)).toBe('eject e0 connect-failure 30000');
  });
});
