import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/errors.js';
import { resolveGrpcOptions, type GrpcChannelOptions } from '../../../src/grpc/options.js';

/** resolveGrpcOptions alone (no pods): ranges of the millisecond options, channelOptions, authority. */
const credentials = grpc.credentials.createInsecure();
const MAX_MS = 2 ** 31 - 1;

function invalid(options: Record<string, unknown>): InvalidOptionError {
  try {
    resolveGrpcOptions({ credentials, ...options } as GrpcChannelOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('resolveGrpcOptions', () => {
  it.each([
    ['attemptTimeoutMs', (v: unknown) => ({ attemptTimeoutMs: v })],
    ['drainTimeoutMs', (v: unknown) => ({ drainTimeoutMs: v })],
    ['channelOptions.grpc.keepalive_time_ms', (v: unknown) => ({ channelOptions: { 'grpc.keepalive_time_ms': v } })],
    ['channelOptions.grpc.keepalive_timeout_ms', (v: unknown) => ({ channelOptions: { 'grpc.keepalive_timeout_ms': v } })],
    ['channelOptions.grpc.max_reconnect_backoff_ms', (v: unknown) => ({ channelOptions: { 'grpc.max_reconnect_backoff_ms': v } })],
    ['channelOptions.grpc.client_idle_timeout_ms', (v: unknown) => ({ channelOptions: { 'grpc.client_idle_timeout_ms': v } })],
  ])('%s: 2^31−1 accepted, 2^31 rejected naming it', (field, make) => {
    expect(() => resolveGrpcOptions({ credentials, ...make(MAX_MS) } as GrpcChannelOptions)).not.toThrow();
    expect(invalid(make(2 ** 31))).toMatchObject({ field, value: 2 ** 31 });
    for (const bad of [3e9, Number.NaN, Number.POSITIVE_INFINITY, -2, '100']) expect(invalid(make(bad)).field).toBe(field);
  });

  it("takes -1, grpc's unset, for a channel option in ms", () => {
    expect(
      resolveGrpcOptions({ credentials, channelOptions: { 'grpc.keepalive_time_ms': -1 } }).channelOptions['grpc.keepalive_time_ms'],
    ).toBe(-1);
  });

  it('lets grpc-js refuse a bad service config at creation', () => {
    expect(invalid({ channelOptions: { 'grpc.service_config': '{not json' } }).field).toBe('channelOptions');
    expect(resolveGrpcOptions({ credentials, channelOptions: { 'grpc.service_config': '{}' } }).podCallsSingleAttempt).toBe(false);
  });

  it('hedge: idempotent methods only, maxAttempts 2 to 5, named in the error', () => {
    expect(invalid({ hedge: { delayMs: 10 } })).toMatchObject({ field: 'hedge' });
    expect(invalid({ idempotent: false, hedge: { delayMs: 10 } })).toMatchObject({ field: 'hedge' });
    expect(invalid({ idempotent: true, hedge: {} })).toMatchObject({ field: 'hedge' });
    expect(invalid({ idempotent: true, hedge: { delayMs: 10, every: 3 } }).field).toBe('hedge.every');
    for (const bad of [1, 6, 2.5, '3'])
      expect(invalid({ idempotent: true, hedge: { delayMs: 10, maxAttempts: bad } }).field).toBe('hedge.maxAttempts');
    expect(invalid({ idempotent: true, hedge: { delayMs: -1 } }).field).toBe('hedge.delayMs');
    const resolved = resolveGrpcOptions({ credentials, idempotent: ['/pkg.Svc/Get'], hedge: { delayMs: 10, maxAttempts: 5 } });
    expect(resolved.hedge).toEqual({ delayMs: 10, maxAttempts: 5 });
    expect(Object.isFrozen(resolved.hedge)).toBe(true);
    expect(resolveGrpcOptions({ credentials, idempotent: true, hedge: { percentile: 0.9 } }).hedge).toEqual({ percentile: 0.9 });
  });

  it.each(['svc:0x35', 'svc:5e1', 'svc:99999', 'svc:0', 'svc:', 'svc: 80', '[::1]:0x35', 'a:b:c'])(
    'refuses the authority %s',
    (authority) => {
      expect(invalid({ authority })).toMatchObject({ field: 'authority', value: authority });
    },
  );

  it.each(['orders.default.svc.cluster.local:9090', 'orders', '10.0.0.1:443', '[::1]:9090', '::1', 'svc:65535'])(
    'takes the authority %s',
    (authority) => {
      expect(resolveGrpcOptions({ credentials, authority }).authority).toBe(authority);
    },
  );
});
