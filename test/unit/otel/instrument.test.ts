import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { callTracerOf } from '../../../src/diagnostics.js';
import { createBalancer, InvalidOptionError, type Balancer } from '../../../src/index.js';
import { errorType, failureKind } from '../../../src/otel/attributes.js';
import { instrumentBalancer } from '../../../src/otel/index.js';

/**
 * instrumentBalancer's arguments and the attribute helpers under hostile input (fast-check): an
 * instrumentation is made, or InvalidOptionError names the field; the helpers never throw.
 * Without an SDK (the API's no-ops) an instrumented balancer still runs its calls.
 */
const balancers: Balancer[] = [];
const staticBalancer = (): Balancer => {
  const lb = createBalancer({ service: 'unit', endpoints: [{ address: '127.0.0.1', port: 9 }] });
  balancers.push(lb);
  return lb;
};
afterEach(async () => {
  for (const lb of balancers.splice(0)) await lb.close();
});

const hostile = fc.constantFrom<unknown>(
  Number.NaN,
  -1,
  '100',
  '',
  null,
  true,
  false,
  0,
  {},
  [],
  1n,
  Symbol('x'),
  () => 1,
  { getMeter: 1 },
  { getTracer: () => ({}) },
);

describe('instrumentBalancer(lb, options)', () => {
  it('either instruments (disposable) or throws InvalidOptionError naming an option', () => {
    fc.assert(
      fc.property(
        fc.record(
          { meterProvider: hostile, tracerProvider: hostile, metrics: hostile, traces: hostile, zzUnknown: hostile },
          { requiredKeys: [] },
        ),
        (options) => {
          const lb = staticBalancer();
          try {
            instrumentBalancer(lb, options as never).dispose();
            expect(callTracerOf(lb)).toBeUndefined();
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidOptionError);
            expect(Object.keys(options)).toContain((error as InvalidOptionError).field);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses what is not a balancer, naming lb', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        expect(() => instrumentBalancer(value as Balancer)).toThrow(InvalidOptionError);
      }),
    );
  });

  it('with no SDK registered (the API no-ops), calls still run, and the channel is fed only while instrumented', async () => {
    const lb = staticBalancer();
    let ends = 0;
    const count = (): void => {
      ends++;
    };
    subscribe('headless-lb:attempt:end', count);
    try {
      const otel = instrumentBalancer(lb);
      await expect(lb.run(async (endpoint, { attempt }) => `${endpoint.address}#${attempt}`)).resolves.toBe('127.0.0.1#1');
      otel.dispose();
      expect(ends).toBe(1);
    } finally {
      unsubscribe('headless-lb:attempt:end', count);
    }
  });
});

describe('attribute helpers', () => {
  it('errorType and failureKind never throw and give a non-empty string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.record({ code: fc.anything(), name: fc.anything() })), (error) => {
        expect(errorType(error)).toMatch(/./);
        expect(['not-sent', 'maybe-sent', 'fatal']).toContain(failureKind(error));
      }),
    );
  });

  it('errorType is the code, else the class name', () => {
    expect(errorType(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(errorType(new TypeError('x'))).toBe('TypeError');
    expect(errorType('text')).toBe('_OTHER');
  });
});
