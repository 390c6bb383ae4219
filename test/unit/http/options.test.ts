import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/errors.js';
import { HTTP_DEFAULTS, resolveHttpOptions, type HttpDispatcherOptions } from '../../../src/http/options.js';

function invalid(options: unknown): InvalidOptionError {
  try {
    resolveHttpOptions(options as HttpDispatcherOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('resolveHttpOptions', () => {
  it('applies the defaults', () => {
    const o = resolveHttpOptions(undefined);
    expect([...o.failureStatusCodes]).toEqual(HTTP_DEFAULTS.failureStatusCodes);
    expect([...o.idempotentMethods]).toEqual(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
    expect(o).toMatchObject({
      keyHeader: undefined,
      key: undefined,
      retries: undefined,
      backoff: undefined,
      hedge: undefined,
      timeoutMs: undefined,
      drainTimeoutMs: 30_000,
      idleTimeoutMs: 60_000,
      pool: {},
    });
  });

  it('normalizes names', () => {
    const o = resolveHttpOptions({ keyHeader: 'X-User-Id', idempotentMethods: ['get', 'Post'] });
    expect(o.keyHeader).toBe('x-user-id');
    expect([...o.idempotentMethods]).toEqual(['GET', 'POST']);
  });

  it.each([
    [{ keyHedaer: 'x' }, 'keyHedaer'],
    [{ keyHeader: 'bad header' }, 'keyHeader'],
    [{ keyHeader: 7 }, 'keyHeader'],
    [{ key: 'x-user' }, 'key'],
    [{ failureStatusCodes: 503 }, 'failureStatusCodes'],
    [{ failureStatusCodes: [503, 99] }, 'failureStatusCodes[1]'],
    [{ failureStatusCodes: [503.5] }, 'failureStatusCodes[0]'],
    [{ idempotentMethods: ['GET', 'NOT A METHOD'] }, 'idempotentMethods[1]'],
    [{ retries: -1 }, 'retries'],
    [{ retries: 1.5 }, 'retries'],
    [{ timeoutMs: Number.NaN }, 'timeoutMs'],
    [{ attemptTimeoutMs: -5 }, 'attemptTimeoutMs'],
    [{ servername: '10.0.0.1' }, 'servername'],
    [{ servername: 'bad_name!' }, 'servername'],
    [{ hedge: {} }, 'hedge'],
    [{ hedge: { delayMs: -1 } }, 'hedge.delayMs'],
    [{ hedge: { percentile: 2 } }, 'hedge.percentile'],
    [{ hedge: { delay: 5 } }, 'hedge.delay'],
    [{ backoff: 25 }, 'backoff'],
    [{ backoff: { initial: 5 } }, 'backoff.initial'],
    [{ backoff: { initialMs: -1 } }, 'backoff.initialMs'],
    [{ backoff: { multiplier: Number.NaN } }, 'backoff.multiplier'],
    [{ pool: 'x' }, 'pool'],
    [{ pool: { connections: -1 } }, 'pool'],
    // checked by undici's Client, not its Pool: caught at creation by a second probe
    [{ pool: { maxHeaderSize: -1 } }, 'pool'],
    [{ pool: { allowH2: 'yes' } }, 'pool'],
    [{ pool: { factory: () => undefined } }, 'pool.factory'],
    [{ pool: { socketPath: '/tmp/x' } }, 'pool.socketPath'],
    [{ drainTimeoutMs: -1 }, 'drainTimeoutMs'],
    [{ idleTimeoutMs: 'soon' }, 'idleTimeoutMs'],
  ])('rejects %j naming %s', (options, field) => {
    const error = invalid(options);
    expect(error.field).toBe(field);
    expect(error.code).toBe('ERR_HLB_INVALID_OPTION');
  });

  it('rejects a non-object', () => {
    expect(invalid('fast').field).toBe('options');
  });

  it('accepts undici Pool options', () => {
    const o = resolveHttpOptions({ pool: { connections: 8, keepAliveTimeout: 1000, connect: { rejectUnauthorized: true } } });
    expect(o.pool).toMatchObject({ connections: 8 });
  });
});

describe('resolveHttpOptions: milliseconds up to 2^31−1', () => {
  const MAX_MS = 2 ** 31 - 1;
  /** `{ a: { b: value } }` for the path 'a.b'. */
  const at = (path: string, value: unknown): Record<string, unknown> =>
    path.split('.').reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as Record<string, unknown>;

  it.each([
    'timeoutMs',
    'attemptTimeoutMs',
    'drainTimeoutMs',
    'idleTimeoutMs',
    'hedge.delayMs',
    'backoff.initialMs',
    'backoff.maxMs',
    'pool.connectTimeout',
    'pool.headersTimeout',
    'pool.bodyTimeout',
    'pool.keepAliveTimeout',
    'pool.keepAliveMaxTimeout',
    'pool.keepAliveTimeoutThreshold',
    'pool.clientTtl',
    'pool.autoSelectFamilyAttemptTimeout',
    'pool.connect.timeout',
    'pool.connect.keepAliveInitialDelay',
  ])('%s: 2^31−1 accepted, 2^31 rejected naming it', (path) => {
    expect(() => resolveHttpOptions(at(path, MAX_MS) as HttpDispatcherOptions)).not.toThrow();
    const error = invalid(at(path, 2 ** 31));
    expect(error.field).toBe(path);
    expect(error.value).toBe(2 ** 31);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -2, '100']) {
      expect(invalid(at(path, bad)).field.startsWith(path.startsWith('pool.') ? 'pool' : path)).toBe(true);
    }
  });

  it('leaves a connector function alone', () => {
    const connect = (): void => {};
    expect(resolveHttpOptions({ pool: { connect } as never }).pool).toMatchObject({ connect });
  });
});
