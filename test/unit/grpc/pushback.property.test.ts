import { Metadata } from '@grpc/grpc-js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePushback, pushbackOf, PUSHBACK_KEY } from '../../../src/grpc/pushback.js';

/** gRFC A6's server pushback, read from a pod's trailers: hostile input. */
describe('pushbackOf', () => {
  const trailers = (...values: string[]): Metadata => {
    const metadata = new Metadata();
    for (const value of values) metadata.add(PUSHBACK_KEY, value);
    return metadata;
  };

  it('reads one non-negative decimal integer as the wait in ms', () => {
    expect(pushbackOf(trailers('0'))).toBe(0);
    expect(pushbackOf(trailers('250'))).toBe(250);
    expect(pushbackOf(trailers('007'))).toBe(7);
    expect(pushbackOf(trailers(String(2 ** 31 - 1)))).toBe(2 ** 31 - 1);
  });

  it('has nothing to say without the trailer', () => {
    expect(pushbackOf(undefined)).toBeUndefined();
    expect(pushbackOf(new Metadata())).toBeUndefined();
  });

  it('says stop for a negative, malformed, too large or repeated value', () => {
    for (const value of ['-1', '-0', '+5', ' 5', '5 ', '5.0', '1e3', '0x10', '', 'abc', '12abc', 'Infinity', 'NaN'])
      expect([value, pushbackOf(trailers(value))]).toEqual([value, 'stop']);
    expect(parsePushback('٣')).toBe('stop');
    expect(pushbackOf(trailers(String(2 ** 31)))).toBe('stop');
    expect(pushbackOf(trailers('99999999999999999999'))).toBe('stop');
    expect(pushbackOf(trailers('5', '5'))).toBe('stop');
  });

  it('maps any value to a wait a timer holds or to stop, never a throw or NaN (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^-?[0-9]{0,12}$/), fc.anything()), (value) => {
        const result = parsePushback(value);
        if (result === 'stop') return;
        expect(Number.isInteger(result)).toBe(true);
        expect(result).toBeGreaterThanOrEqual(0);
        expect(result).toBeLessThanOrEqual(2 ** 31 - 1);
        expect(String(result)).toBe(String(value).replace(/^0+(?=\d)/, ''));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads any set of entries without throwing (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[\x20-\x7e]*$/), { maxLength: 3 }), (values) => {
        const result = pushbackOf(trailers(...values));
        if (values.length === 0) expect(result).toBeUndefined();
        else if (values.length > 1) expect(result).toBe('stop');
        else expect(result === 'stop' || (Number.isInteger(result) && result! >= 0)).toBe(true);
      }),
    );
  });
});
