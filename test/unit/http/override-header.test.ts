import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/index.js';
import {
  MAX_HEADER_LENGTH,
  parseOverrideHeader,
  PER_REQUEST_HEADER_KEYS,
  resolvePerRequestHeader,
  type PerRequestHeaderKey,
} from '../../../src/http/override-header.js';
import { checkRequestOptions, mergeOverrides } from '../../../src/http/request-options.js';
import { MAX_TIMER_MS } from '../../../src/timer-delay.js';

const ALL = new Set(PER_REQUEST_HEADER_KEYS);

function parse(value: string, allowed: ReadonlySet<PerRequestHeaderKey> = ALL) {
  const { hedgeField: _, ...overrides } = parseOverrideHeader(value, allowed);
  return overrides;
}

function rejects(value: string, field: string, allowed: ReadonlySet<PerRequestHeaderKey> = ALL): InvalidOptionError {
  try {
    parseOverrideHeader(value, allowed);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).field).toBe(field);
    return error as InvalidOptionError;
  }
  throw new Error(`${JSON.stringify(value)} was accepted`);
}

describe('the x-headless-lb header', () => {
  it('reads every key', () => {
    expect(parse('retries=1, timeout-ms=500, attempt-timeout-ms=200, idempotent, hedge-delay-ms=30')).toEqual({
      idempotent: true,
      retries: 1,
      timeoutMs: 500,
      attemptTimeoutMs: 200,
      hedge: { delayMs: 30 },
    });
    expect(parse('idempotent=?0,hedge=?0')).toMatchObject({ idempotent: false, hedge: false });
    expect(parse(' \tidempotent=?1 ')).toMatchObject({ idempotent: true });
    expect(parse('hedge-percentile=0.95,hedge-delay-ms=5')).toMatchObject({ hedge: { delayMs: 5, percentile: 0.95 } });
    expect(parse('hedge-percentile=1')).toMatchObject({ hedge: { percentile: 1 } });
    expect(parse('backoff-ms=50')).toMatchObject({ backoff: { initialMs: 50 } });
    expect(parse('backoff-max-ms=0, backoff-ms=2000').backoff).toEqual({ initialMs: 2000, maxMs: 0 });
    expect(parse('retries=1').backoff).toBeUndefined();
    expect(parse(`retries=100, timeout-ms=${MAX_TIMER_MS}, attempt-timeout-ms=0`)).toMatchObject({
      retries: 100,
      timeoutMs: MAX_TIMER_MS,
      attemptTimeoutMs: 0,
    });
  });

  it('names the key and the value of what it refuses', () => {
    expect(rejects('retries=101', 'x-headless-lb: retries').value).toBe('101');
    expect(rejects('retries=-1', 'x-headless-lb: retries').message).toMatch(/"-1".*0 to 100/);
    expect(rejects('retries', 'x-headless-lb: retries').value).toBeUndefined();
    rejects('retries=1.5', 'x-headless-lb: retries');
    rejects('retries=+1', 'x-headless-lb: retries');
    rejects(`timeout-ms=${MAX_TIMER_MS + 1}`, 'x-headless-lb: timeout-ms');
    rejects('timeout-ms=99999999999', 'x-headless-lb: timeout-ms');
    rejects('timeout-ms=1e3', 'x-headless-lb: timeout-ms');
    rejects('attempt-timeout-ms=', 'x-headless-lb: attempt-timeout-ms');
    rejects('idempotent=true', 'x-headless-lb: idempotent');
    rejects('hedge', 'x-headless-lb: hedge');
    rejects('hedge=?0, hedge-delay-ms=5', 'x-headless-lb: hedge');
    rejects('hedge-percentile=1.5', 'x-headless-lb: hedge-percentile');
    rejects('hedge-percentile=0.9999', 'x-headless-lb: hedge-percentile');
    rejects(`backoff-ms=${MAX_TIMER_MS + 1}`, 'x-headless-lb: backoff-ms');
    rejects('backoff-ms', 'x-headless-lb: backoff-ms');
    rejects('backoff-ms=1.5', 'x-headless-lb: backoff-ms');
    rejects('backoff-max-ms=-1', 'x-headless-lb: backoff-max-ms');
    rejects('backoff-ms=1, backoff-ms=2', 'x-headless-lb: backoff-ms');
    expect(rejects('backoff=5', 'x-headless-lb: backoff').message).toMatch(/known key/);
    rejects('backoff-multiplier=3', 'x-headless-lb: backoff-multiplier');
    // unknown and repeated keys, upper case (keys are lower case), grammar
    expect(rejects('retry=1', 'x-headless-lb: retry').message).toMatch(/known key/);
    rejects('Retries=1', 'x-headless-lb');
    expect(rejects('retries=1, retries=2', 'x-headless-lb: retries').message).toMatch(/once/);
    rejects('', 'x-headless-lb');
    rejects('retries=1,', 'x-headless-lb');
    rejects('retries=1;idempotent', 'x-headless-lb: retries');
    rejects('retries = 1', 'x-headless-lb');
    rejects('retries=1\n', 'x-headless-lb');
    const long = rejects(`retries=1,${' '.repeat(MAX_HEADER_LENGTH)}`, 'x-headless-lb');
    expect(long.message).toMatch(/at most 256/);
  });

  it('refuses keys the dispatcher does not allow', () => {
    const only = new Set<PerRequestHeaderKey>(['retries', 'timeout-ms']);
    expect(parse('retries=0, timeout-ms=100', only)).toMatchObject({ retries: 0, timeoutMs: 100 });
    expect(rejects('idempotent', 'x-headless-lb: idempotent', only).message).toMatch(/perRequestHeader allows \(retries, timeout-ms\)/);
    rejects('hedge-delay-ms=5', 'x-headless-lb: hedge-delay-ms', only);
    rejects('hedge=?0', 'x-headless-lb: hedge', only);
    rejects('backoff-ms=5', 'x-headless-lb: backoff-ms', only);
    rejects('backoff-max-ms=5', 'x-headless-lb: backoff-max-ms', only);
    expect(parse('backoff-ms=5, backoff-max-ms=9', new Set(['backoff']))).toMatchObject({ backoff: { initialMs: 5, maxMs: 9 } });
  });

  it('checks the perRequestHeader option', () => {
    expect(resolvePerRequestHeader(undefined)).toBeUndefined();
    expect(resolvePerRequestHeader(false)).toBeUndefined();
    expect([...resolvePerRequestHeader(true)!]).toEqual(PER_REQUEST_HEADER_KEYS);
    expect([...resolvePerRequestHeader(['retries', 'retries'])!]).toEqual(['retries']);
    expect(() => resolvePerRequestHeader(['retries', 'hedge-delay-ms'])).toThrow(/perRequestHeader\[1\]/);
    expect(() => resolvePerRequestHeader(['backoff-ms'])).toThrow(/perRequestHeader\[0\]/);
    expect([...resolvePerRequestHeader(['backoff'])!]).toEqual(['backoff']);
    expect(() => resolvePerRequestHeader([])).toThrow(/perRequestHeader/);
    expect(() => resolvePerRequestHeader('yes')).toThrow(/perRequestHeader/);
  });

  it('gives a valid override or an InvalidOptionError, whatever the header (property)', () => {
    const keys = [
      'idempotent',
      'retries',
      'timeout-ms',
      'attempt-timeout-ms',
      'hedge',
      'hedge-delay-ms',
      'hedge-percentile',
      'backoff-ms',
      'backoff-max-ms',
      'backoff',
      'x',
      'Retries',
    ];
    const values = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom('?0', '?1', '0', '1', '100', '101', '0.95', '2147483647', '2147483648', '', '-1', '1e3', ' 1'),
      fc.integer({ min: 0, max: 2 ** 32 }).map(String),
      fc.string({ maxLength: 12 }),
    );
    const member = fc.tuple(fc.constantFrom(...keys), values).map(([k, v]) => (v === undefined ? k : `${k}=${v}`));
    const header = fc.oneof(
      fc
        .array(member, { minLength: 1, maxLength: 6 })
        .chain((members) => fc.constantFrom(', ', ',', ' ,\t', ';').map((sep) => members.join(sep))),
      // mutations of a valid header: a character replaced, inserted or deleted
      fc.tuple(fc.nat(100), fc.string({ maxLength: 1, unit: 'binary' }), fc.boolean()).map(([at, ch, insert]) => {
        const valid = 'retries=1, timeout-ms=500, attempt-timeout-ms=20, idempotent, hedge-delay-ms=5, backoff-ms=50, backoff-max-ms=80';
        const i = at % valid.length;
        return valid.slice(0, i) + ch + valid.slice(insert ? i : i + 1);
      }),
      fc.string({ maxLength: 300, unit: 'binary' }),
    );
    const allowed = fc.subarray([...PER_REQUEST_HEADER_KEYS], { minLength: 1 }).map((keys) => new Set(keys));
    fc.assert(
      fc.property(header, allowed, (value, allow) => {
        let overrides;
        try {
          overrides = parseOverrideHeader(value, allow);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidOptionError);
          expect((error as InvalidOptionError).field).toMatch(/^x-headless-lb(: [a-z][a-z0-9-]*)?$/);
          return;
        }
        // Accepted: every value is in range and what the header said is what a dispatch option may say.
        const { hedgeField: _, ...fields } = overrides;
        const asOption: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(fields)) if (v !== undefined) asOption[k] = v;
        expect(checkRequestOptions(asOption)).toMatchObject(fields);
        if (fields.retries !== undefined) expect(allow.has('retries')).toBe(true);
        if (fields.idempotent !== undefined) expect(allow.has('idempotent')).toBe(true);
        if (fields.hedge !== undefined) expect(allow.has('hedge')).toBe(true);
        if (fields.backoff !== undefined) {
          expect(allow.has('backoff')).toBe(true);
          expect(Object.keys(fields.backoff).length).toBeGreaterThan(0);
          for (const ms of Object.values(fields.backoff)) expect(ms).toBeLessThanOrEqual(MAX_TIMER_MS);
        }
        if (fields.timeoutMs !== undefined) expect(fields.timeoutMs).toBeLessThanOrEqual(MAX_TIMER_MS);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('the headlessLb dispatch option', () => {
  it('reads every field and names the one it refuses', () => {
    expect(checkRequestOptions({ idempotent: true, retries: 0, timeoutMs: 5, attemptTimeoutMs: 1, hedge: { delayMs: 2 } })).toMatchObject({
      idempotent: true,
      retries: 0,
      timeoutMs: 5,
      attemptTimeoutMs: 1,
      hedge: { delayMs: 2 },
    });
    expect(checkRequestOptions({ hedge: false }).hedge).toBe(false);
    expect(checkRequestOptions({ backoff: { initialMs: 50, maxMs: 500, multiplier: 1.5 } }).backoff).toEqual({
      initialMs: 50,
      maxMs: 500,
      multiplier: 1.5,
    });
    expect(checkRequestOptions({ backoff: {} }).backoff).toEqual({});
    const cases: [unknown, string][] = [
      [{ retries: 101 }, 'headlessLb.retries'],
      [{ retries: 1.5 }, 'headlessLb.retries'],
      [{ timeoutMs: -1 }, 'headlessLb.timeoutMs'],
      [{ attemptTimeoutMs: MAX_TIMER_MS + 1 }, 'headlessLb.attemptTimeoutMs'],
      [{ idempotent: 'yes' }, 'headlessLb.idempotent'],
      [{ hedge: true }, 'headlessLb.hedge'],
      [{ hedge: {} }, 'headlessLb.hedge'],
      [{ hedge: { delayMs: -1 } }, 'headlessLb.hedge.delayMs'],
      [{ retry: 1 }, 'headlessLb.retry'],
      [{ backoff: 50 }, 'headlessLb.backoff'],
      [{ backoff: { initialMs: -1 } }, 'headlessLb.backoff.initialMs'],
      [{ backoff: { maxMs: MAX_TIMER_MS + 1 } }, 'headlessLb.backoff.maxMs'],
      [{ backoff: { multiplier: 0 } }, 'headlessLb.backoff.multiplier'],
      [{ backoff: { multiplier: 1001 } }, 'headlessLb.backoff.multiplier'],
      [{ backoff: { initial: 5 } }, 'headlessLb.backoff.initial'],
      ['fast', 'headlessLb'],
      [null, 'headlessLb'],
    ];
    for (const [value, field] of cases) {
      expect(() => checkRequestOptions(value), JSON.stringify(value)).toThrow(InvalidOptionError);
      try {
        checkRequestOptions(value);
      } catch (error) {
        expect((error as InvalidOptionError).field).toBe(field);
      }
    }
  });

  it('wins over the header, field by field', () => {
    const header = parseOverrideHeader('retries=3, timeout-ms=100, hedge-delay-ms=5', ALL);
    const merged = mergeOverrides(header, checkRequestOptions({ retries: 0, hedge: false }));
    expect(merged).toMatchObject({ retries: 0, timeoutMs: 100, hedge: false, hedgeField: 'headlessLb.hedge' });
    // backoff: field by field inside it too
    const backoff = mergeOverrides(
      parseOverrideHeader('backoff-ms=5, backoff-max-ms=50', ALL),
      checkRequestOptions({ backoff: { maxMs: 900, multiplier: 3 } }),
    ).backoff;
    expect(backoff).toEqual({ initialMs: 5, maxMs: 900, multiplier: 3 });
    expect(mergeOverrides(parseOverrideHeader('backoff-ms=5', ALL), checkRequestOptions({})).backoff).toEqual({ initialMs: 5 });
  });
});
