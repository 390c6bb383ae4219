import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/errors.js';
import { MethodPolicies } from '../../../src/grpc/method-policies.js';
import type { GrpcMethodPolicy } from '../../../src/grpc/method-policy.js';
import { RetryThrottle } from '../../../src/grpc/retry-throttle.js';
import { methodConfigFor, parseServiceConfig, type GrpcServiceConfig } from '../../../src/grpc/service-config.js';
import { MAX_TIMER_MS } from '../../../src/timer-delay.js';

/** gRPC service configs (gRFC A6): checks, matching, the policies they make, throttling; hostile input. */

const RETRY = {
  maxAttempts: 4,
  initialBackoff: '0.1s',
  maxBackoff: '1.5s',
  backoffMultiplier: 2,
  retryableStatusCodes: ['UNAVAILABLE', 'resource_exhausted', 13],
};

const CONFIG: GrpcServiceConfig = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [
    { name: [{ service: 'shop.Orders', method: 'Get' }], retryPolicy: RETRY, timeout: '2.5s' },
    { name: [{ service: 'shop.Orders' }], timeout: '10s', waitForReady: true },
    { name: [{ service: 'shop.Search' }], hedgingPolicy: { maxAttempts: 3, hedgingDelay: '0.05s', nonFatalStatusCodes: [14] } },
    { name: [{}], timeout: '30s' },
  ],
  retryThrottling: { maxTokens: 10, tokenRatio: 0.1 },
};

function refusal(config: unknown): InvalidOptionError {
  try {
    parseServiceConfig(config);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

/** Whether grpc-js takes the config as a channel's `grpc.service_config` (the channel never connects). */
function grpcJsTakes(config: unknown): boolean {
  let channel: grpc.Channel | undefined;
  try {
    channel = new grpc.Channel('ipv4:127.0.0.1:1', grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify(config),
    });
    return true;
  } catch {
    return false;
  } finally {
    channel?.close();
  }
}

describe('parseServiceConfig', () => {
  it('reads a real config, as an object or as JSON', () => {
    for (const input of [CONFIG, JSON.stringify(CONFIG)]) {
      const config = parseServiceConfig(input);
      expect(config.methodConfigs).toHaveLength(4);
      const get = config.methodConfigs[0]!;
      expect(get.timeoutMs).toBe(2500);
      expect(get.retryPolicy).toEqual({
        maxAttempts: 4,
        initialBackoffMs: 100,
        maxBackoffMs: 1500,
        backoffMultiplier: 2,
        retryableCodes: new Set([14, 8, 13]),
      });
      expect(config.methodConfigs[2]!.hedgingPolicy).toEqual({ maxAttempts: 3, hedgingDelayMs: 50, nonFatalCodes: new Set([14]) });
      expect(config.retryThrottling).toEqual({ maxTokens: 10, tokenRatio: 0.1 });
    }
    expect(grpcJsTakes(CONFIG)).toBe(true);
  });

  it('caps maxAttempts at 5, as grpc does; timeouts as { seconds, nanos } too', () => {
    const config = parseServiceConfig({
      methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, maxAttempts: 9 }, timeout: { seconds: 1, nanos: 500_000_000 } }],
    });
    expect(config.methodConfigs[0]!.retryPolicy!.maxAttempts).toBe(5);
    expect(config.methodConfigs[0]!.timeoutMs).toBe(1500);
  });

  it.each([
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, maxAttempts: 1 } }] },
      'serviceConfig.methodConfig[0].retryPolicy.maxAttempts',
      1,
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, maxAttempts: 2.5 } }] },
      'serviceConfig.methodConfig[0].retryPolicy.maxAttempts',
      2.5,
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, initialBackoff: '100ms' } }] },
      'serviceConfig.methodConfig[0].retryPolicy.initialBackoff',
      '100ms',
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, maxBackoff: '-1s' } }] },
      'serviceConfig.methodConfig[0].retryPolicy.maxBackoff',
      '-1s',
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, backoffMultiplier: 0 } }] },
      'serviceConfig.methodConfig[0].retryPolicy.backoffMultiplier',
      0,
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, retryableStatusCodes: [] } }] },
      'serviceConfig.methodConfig[0].retryPolicy.retryableStatusCodes',
      [],
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, retryableStatusCodes: ['UNAVAILABLE', 'NOPE'] } }] },
      'serviceConfig.methodConfig[0].retryPolicy.retryableStatusCodes[1]',
      'NOPE',
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, retryableStatusCodes: [17] } }] },
      'serviceConfig.methodConfig[0].retryPolicy.retryableStatusCodes[0]',
      17,
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, retryableStatusCodes: ['14'] } }] },
      'serviceConfig.methodConfig[0].retryPolicy.retryableStatusCodes[0]',
      '14',
    ],
    [{ methodConfig: [{ name: [{}], hedgingPolicy: { maxAttempts: 0 } }] }, 'serviceConfig.methodConfig[0].hedgingPolicy.maxAttempts', 0],
    [
      { methodConfig: [{ name: [{}], hedgingPolicy: { maxAttempts: 2, hedgingDelay: 5 } }] },
      'serviceConfig.methodConfig[0].hedgingPolicy.hedgingDelay',
      5,
    ],
    [
      { methodConfig: [{ name: [{}], hedgingPolicy: { maxAttempts: 2, nonFatalStatusCodes: [99] } }] },
      'serviceConfig.methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]',
      99,
    ],
    [
      { methodConfig: [{ name: [{}], retryPolicy: RETRY, hedgingPolicy: { maxAttempts: 2 } }] },
      'serviceConfig.methodConfig[0].hedgingPolicy',
      { maxAttempts: 2 },
    ],
    [{ methodConfig: [{ name: [{}], timeout: '1.5' }] }, 'serviceConfig.methodConfig[0].timeout', '1.5'],
    [{ methodConfig: [{ name: [{}], waitForReady: 'yes' }] }, 'serviceConfig.methodConfig[0].waitForReady', 'yes'],
    [{ methodConfig: [{ name: [{ method: 'Get' }] }] }, 'serviceConfig.methodConfig[0].name[0].method', 'Get'],
    [{ methodConfig: [{ name: [{ service: 7 }] }] }, 'serviceConfig.methodConfig[0].name[0].service', 7],
    [{ methodConfig: [{}] }, 'serviceConfig.methodConfig[0].name', undefined],
    [{ methodConfig: [{ name: [{}] }, { name: [{ service: '' }] }] }, 'serviceConfig.methodConfig[1].name[0]', { service: '' }],
    [
      { methodConfig: [{ name: [{ service: 'a' }] }, { name: [{ service: 'a', method: '' }] }] },
      'serviceConfig.methodConfig[1].name[0]',
      { service: 'a', method: '' },
    ],
    [
      {
        methodConfig: [
          {
            name: [
              { service: 'a', method: 'b' },
              { service: 'a', method: 'b' },
            ],
          },
        ],
      },
      'serviceConfig.methodConfig[0].name[1]',
      { service: 'a', method: 'b' },
    ],
    [{ retryThrottling: { maxTokens: 0, tokenRatio: 1 } }, 'serviceConfig.retryThrottling.maxTokens', 0],
    [{ retryThrottling: { maxTokens: 1001, tokenRatio: 1 } }, 'serviceConfig.retryThrottling.maxTokens', 1001],
    [{ retryThrottling: { maxTokens: 10, tokenRatio: 0 } }, 'serviceConfig.retryThrottling.tokenRatio', 0],
    [{ retryThrottling: { maxTokens: 10 } }, 'serviceConfig.retryThrottling.tokenRatio', undefined],
    [{ loadBalancingConfig: [{}] }, 'serviceConfig.loadBalancingConfig[0]', {}],
    [{ loadBalancingPolicy: 5 }, 'serviceConfig.loadBalancingPolicy', 5],
  ])('refuses %j naming %s, as grpc-js refuses it', (config, field, value) => {
    expect(refusal(config)).toMatchObject({ field, value });
    expect(refusal(config).message).toContain(field);
    expect(grpcJsTakes(config)).toBe(false);
  });

  it.each([
    // grpc-js takes these and fails (or misbehaves) later; refused here.
    [{ methodConfig: {} }, 'serviceConfig.methodConfig'],
    [
      { methodConfig: [{ name: [{}], hedgingPolicy: { maxAttempts: 2, nonFatalStatusCodes: 'UNAVAILABLE' } }] },
      'serviceConfig.methodConfig[0].hedgingPolicy.nonFatalStatusCodes',
    ],
    [{ retryThrottling: { maxTokens: Number.NaN, tokenRatio: 1 } }, 'serviceConfig.retryThrottling.maxTokens'],
    // A delay beyond a timer's reach would fire at once.
    [{ methodConfig: [{ name: [{}], timeout: '2147484s' }] }, 'serviceConfig.methodConfig[0].timeout'],
    [
      { methodConfig: [{ name: [{}], retryPolicy: { ...RETRY, maxBackoff: '99999999999999999999s' } }] },
      'serviceConfig.methodConfig[0].retryPolicy.maxBackoff',
    ],
  ])('refuses %j (stricter than grpc-js) naming %s', (config, field) => {
    expect(refusal(config).field).toBe(field);
  });

  it('takes the longest duration a timer honours, 2147483.647s', () => {
    const config = parseServiceConfig({ methodConfig: [{ name: [{}], timeout: '2147483.647s' }] });
    expect(config.methodConfigs[0]!.timeoutMs).toBe(MAX_TIMER_MS);
  });

  it('refuses JSON that does not parse, and what is not an object', () => {
    expect(refusal('{"methodConfig": [').field).toBe('serviceConfig');
    for (const value of [null, 5, [], 'null']) expect(refusal(value).field).toBe('serviceConfig');
  });

  it('ignores what grpc-js ignores: unknown fields, load-balancing fields, message sizes', () => {
    const config = parseServiceConfig({
      loadBalancingPolicy: 'round_robin',
      loadBalancingConfig: [{ pick_first: {} }],
      healthCheckConfig: { serviceName: 'x' },
      methodConfig: [{ name: [{}], maxRequestBytes: 1024, maxResponseBytes: 2048, somethingNew: true }],
    });
    expect(config.methodConfigs[0]).toMatchObject({ timeoutMs: undefined, retryPolicy: undefined });
  });

  it('uses own properties only: a polluted prototype adds no retry policy', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.retryPolicy = RETRY;
    try {
      expect(parseServiceConfig({ methodConfig: [{ name: [{}] }] }).methodConfigs[0]!.retryPolicy).toBeUndefined();
    } finally {
      delete proto.retryPolicy;
    }
  });
});

describe('methodConfigFor (gRFC A6 matching)', () => {
  const config = parseServiceConfig(CONFIG);
  it.each([
    ['/shop.Orders/Get', 0],
    ['/shop.Orders/List', 1],
    ['/shop.Search/Find', 2],
    ['/shop.Carts/Get', 3],
    ['', 3],
    ['nonsense', 3],
  ])('%s → entry %i', (method, index) => {
    expect(methodConfigFor(config, method)?.index).toBe(index);
  });

  it('no default entry: an unmatched method has none', () => {
    expect(methodConfigFor(parseServiceConfig({ methodConfig: [{ name: [{ service: 'a' }] }] }), '/b/C')).toBeUndefined();
  });
});

describe('MethodPolicies', () => {
  const shorthand = (idempotent: boolean): GrpcMethodPolicy =>
    Object.freeze({ runOptions: Object.freeze({ idempotent, retries: 2, attemptTimeoutMs: undefined }), retryableCodes: new Set([14]) });
  const shorthands = [shorthand(false), shorthand(true)] as const;
  const policies = new MethodPolicies(parseServiceConfig(CONFIG), shorthands);
  const never = (): boolean => false;

  it('a retry policy: idempotent, maxAttempts − 1 retries, its codes and backoff; frozen, shared', () => {
    const policy = policies.policyFor('/shop.Orders/Get', never);
    expect(policy).toEqual({
      runOptions: { idempotent: true, retries: 3, attemptTimeoutMs: undefined, backoff: { initialMs: 100, maxMs: 1500, multiplier: 2 } },
      retryableCodes: new Set([14, 8, 13]),
      pushback: true,
      timeoutMs: 2500,
    });
    expect(Object.isFrozen(policy) && Object.isFrozen(policy.runOptions) && Object.isFrozen(policy.runOptions.backoff)).toBe(true);
    expect(policies.policyFor('/shop.Orders/Get', never)).toBe(policy);
  });

  it("an entry without retries keeps the shorthands' retries, with its timeout and waitForReady", () => {
    const plain = policies.policyFor('/shop.Orders/List', never);
    expect(plain).toMatchObject({ runOptions: shorthands[0].runOptions, timeoutMs: 10_000, waitForReady: true });
    expect(plain.pushback).toBeUndefined(); // server pushback counts only under a retry or hedging policy
    expect(policies.policyFor('/shop.Orders/List', () => true).runOptions).toBe(shorthands[1].runOptions);
  });

  it('a hedging policy: idempotent, hedged after hedgingDelay up to maxAttempts, non-fatal codes, no retries of its own', () => {
    expect(policies.policyFor('/shop.Search/Find', never)).toMatchObject({
      runOptions: { idempotent: true, retries: 0, hedge: { delayMs: 50, maxAttempts: 3 } },
      retryableCodes: new Set([14]),
      pushback: true,
    });
  });

  it('methods no entry matches follow the shorthands (without a default entry)', () => {
    const only = new MethodPolicies(parseServiceConfig({ methodConfig: [{ name: [{ service: 'a' }], retryPolicy: RETRY }] }), shorthands);
    expect(only.policyFor('/b/C', never)).toBe(shorthands[0]);
    expect(only.policyFor('/b/C', () => true)).toBe(shorthands[1]);
  });

  it('remembers at most 1000 method paths', () => {
    const many = new MethodPolicies(parseServiceConfig(CONFIG), shorthands);
    for (let i = 0; i < 5000; i++) many.policyFor(`/svc${i}/M`, never);
    expect((many as unknown as { matches: Map<string, unknown> }).matches.size).toBe(1000);
    expect(many.policyFor('/shop.Orders/Get', never).runOptions.retries).toBe(3);
  });
});

describe('RetryThrottle (gRFC A6)', () => {
  it('allows retries while more than half the tokens are left; successes refill by tokenRatio', () => {
    const throttle = new RetryThrottle({ maxTokens: 4, tokenRatio: 0.5 });
    expect(throttle.failed()).toBe(true); // 3 > 2
    expect(throttle.failed()).toBe(false); // 2
    expect(throttle.failed()).toBe(false); // 1
    throttle.succeeded();
    throttle.succeeded();
    throttle.succeeded(); // 2.5
    expect(throttle.available).toBe(2.5);
    expect(throttle.failed()).toBe(false); // 1.5
    for (let i = 0; i < 100; i++) throttle.succeeded();
    expect(throttle.available).toBe(4);
    for (let i = 0; i < 100; i++) throttle.failed();
    expect(throttle.available).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile input

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a value inside `value`. */
function pathsOf(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const paths = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => paths.push(...pathsOf(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) paths.push(...pathsOf(v, [...prefix, k]));
  return paths;
}

/** `value` with the thing at `path` replaced (or, with `replacement` undefined, removed). */
function mutate(value: Json, path: (string | number)[], replacement: Json | undefined): Json | undefined {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy: Json = Array.isArray(value) ? [...value] : { ...(value as Record<string, Json>) };
  const inner = mutate((copy as Record<string | number, Json>)[head!]!, rest, replacement);
  if (inner === undefined) {
    if (Array.isArray(copy)) copy.splice(head as number, 1);
    else delete (copy as Record<string, Json>)[head as string];
  } else (copy as Record<string | number, Json>)[head!] = inner;
  return copy;
}

const interesting = fc.constantFrom<Json>(
  0,
  -1,
  1,
  2,
  5,
  6,
  2.5,
  1000,
  1001,
  1e300,
  -1e300,
  '',
  's',
  '0s',
  '1.5s',
  '-1s',
  '1e3s',
  '99999999999999999999s',
  '2147483.647s',
  '2147483.648s',
  '0.0000000001s',
  'UNAVAILABLE',
  'unavailable',
  'OK',
  '14',
  14,
  0,
  16,
  17,
  null,
  true,
  false,
  [],
  {},
  [{}],
  { service: 'a' },
  { service: '', method: 'x' },
  { seconds: 1, nanos: 5 },
  { seconds: -1, nanos: 0 },
  '__proto__',
);

const mutated = fc
  .tuple(fc.nat(), fc.oneof(interesting, fc.jsonValue() as fc.Arbitrary<Json>, fc.constant(undefined)), fc.nat({ max: 3 }))
  .map(([pick, replacement, times]) => {
    let config: Json | undefined = JSON.parse(JSON.stringify(CONFIG)) as Json;
    for (let i = 0; i <= times && config !== undefined; i++) {
      const paths = pathsOf(config);
      config = mutate(config, paths[(pick + i * 7919) % paths.length]!, replacement);
    }
    return config;
  });

describe('hostile service configs', () => {
  it('never throw anything but an InvalidOptionError naming a serviceConfig path; what is taken is bounded', () => {
    fc.assert(
      fc.property(fc.oneof(mutated, fc.jsonValue(), fc.string()), fc.boolean(), (config, asJson) => {
        let parsed;
        try {
          parsed = parseServiceConfig(asJson && typeof config !== 'string' ? JSON.stringify(config) : config);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidOptionError);
          expect((error as InvalidOptionError).field).toMatch(/^serviceConfig(\.|\[|$)/);
          return;
        }
        for (const entry of parsed.methodConfigs) {
          for (const ms of [
            entry.timeoutMs,
            entry.retryPolicy?.initialBackoffMs,
            entry.retryPolicy?.maxBackoffMs,
            entry.hedgingPolicy?.hedgingDelayMs,
          ]) {
            if (ms !== undefined) expect(ms >= 0 && ms <= MAX_TIMER_MS).toBe(true);
          }
          const attempts = entry.retryPolicy?.maxAttempts ?? entry.hedgingPolicy?.maxAttempts;
          if (attempts !== undefined) expect(attempts >= 2 && attempts <= 5).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('what is taken here grpc-js takes too (never more lenient than grpc-js)', () => {
    fc.assert(
      fc.property(mutated, (config) => {
        let taken = true;
        try {
          parseServiceConfig(config);
        } catch {
          taken = false;
        }
        if (taken) expect(grpcJsTakes(config)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
