import dgram from 'node:dgram';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcChannel } from '../../src/grpc/index.js';
import { createDispatcher } from '../../src/http/index.js';
import { InvalidOptionError, createBalancer, type Balancer, type BalancerOptions, type RunOptions } from '../../src/index.js';
import { startPod, type Pod } from '../../src/testing/index.js';
import { LoopbackBlock } from '../../src/testing/loopback.js';
import { loadEcho, startGrpcPod, type GrpcPod } from '../support/grpc-pods.js';

/**
 * Random option objects for createBalancer (static and DNS), run(), ready(), close(), createDispatcher and
 * createGrpcChannel: each is either accepted, and the object then works (a call goes through), or
 * refused with an InvalidOptionError whose `field` is a real option path. Never another exception,
 * never a hang. Values are mostly valid, sometimes hostile (NaN, Infinity, 2^31, '100', symbols,
 * 0x35 ports, unknown keys), so both sides are explored.
 *
 * Nothing leaves 127.0.0.0/8: every DNS variant names a local UDP socket that never answers (no
 * DNS variant is waited on: it is closed at once), pods are on loopback.
 */

const MAX_MS = 2 ** 31 - 1;
/** An unknown key, injected now and then at some level; an error naming it is expected. */
const UNKNOWN = 'zzUnknown';

// ---------------------------------------------------------------------------------------------
// Value arbitraries

/**
 * Hostile values that are not functions. A function where one is expected is taken as it is: what
 * it returns is checked at each call (reported to that call), not at creation.
 */
const hostileData = fc.constantFrom<unknown>(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -1,
  2 ** 31,
  3e9,
  1e10,
  '100',
  '',
  null,
  true,
  {},
  [],
  1n,
  Symbol('x'),
);
const hostile = fc.oneof(
  hostileData,
  fc.constant(() => 1),
);

/**
 * The arbitraries of option values, in two moods: `valid` draws only values in range (the object
 * should then work), `hostile` puts something hostile in one value of eight and an unknown key in
 * one object of ten (it should then be refused by name). Each property draws from both.
 */
function kit(hostileMood: boolean) {
  /** `valid`, or in the hostile mood one time in eight `invalid`. */
  const mostly = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<unknown> = hostile): fc.Arbitrary<unknown> =>
    hostileMood ? fc.oneof({ weight: 7, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: invalid }) : valid;
  /** A nested option object with optional keys (an unknown one, one time in ten, in the hostile mood). */
  const object = (model: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> =>
    hostileMood
      ? fc
          .tuple(fc.record(model, { requiredKeys: [] }), fc.integer({ min: 0, max: 9 }))
          .map(([value, dice]) => (dice === 0 ? { ...value, [UNKNOWN]: 1 } : value))
      : fc.record(model, { requiredKeys: [] });
  return {
    hostileMood,
    mostly,
    object,
    /** Milliseconds from `min`, with the edges 2^31−1 and `min` often. */
    ms: (min = 0): fc.Arbitrary<unknown> => mostly(fc.oneof(fc.integer({ min, max: MAX_MS }), fc.constantFrom(min, MAX_MS))),
    fraction: (min = 0, max = 1): fc.Arbitrary<unknown> => mostly(fc.double({ min, max, noNaN: true })),
    int: (min: number, max: number): fc.Arbitrary<unknown> => mostly(fc.integer({ min, max })),
    bool: mostly(fc.boolean()),
  };
}
type Kit = ReturnType<typeof kit>;

/** Both moods of one option-object arbitrary. */
function bothMoods<T>(make: (k: Kit) => fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof(make(kit(false)), make(kit(true)));
}

// ---------------------------------------------------------------------------------------------
// Known option paths (array indices written as [])

function paths(...groups: (readonly string[])[]): ReadonlySet<string> {
  return new Set(groups.flat());
}
const COMMON_PATHS = [
  'options',
  ...[
    'picker',
    'picker.type',
    'picker.estimator',
    'picker.fallback',
    'picker.fallback.type',
    'picker.fallback.estimator',
    'picker.boundedLoad',
    'picker.cacheSize',
    'picker.decayMs',
  ],
  ...['latency', 'latency.decayMs', 'latency.defaultRttMs', 'latency.averageMs'],
  ...['retry', 'retry.retries', 'retry.backoffBaseMs', 'retry.backoffMaxMs'],
  'outlierDetection',
  ...[
    'consecutiveFailures',
    'failureRate',
    'minRequests',
    'windowMs',
    'ejectOnConnectFailure',
    'baseEjectionMs',
    'maxEjectionMs',
    'maxEjectedPercent',
    'jitter',
  ].map((k) => `outlierDetection.${k}`),
  'panicThreshold',
  ...['slowStart', 'slowStart.windowMs', 'slowStart.aggression', 'slowStart.minWeight'],
  ...['retryBudget', 'hedgeBudget'].flatMap((b) => [b, `${b}.percent`, `${b}.minPerSecond`, `${b}.windowMs`]),
  'isFailure',
];
const STATIC_PATHS = paths(COMMON_PATHS, [
  'endpoints',
  'endpoints[]',
  'endpoints[].address',
  'endpoints[].port',
  'endpoints[].name',
  'endpoints[].weight',
  'service',
]);
const DNS_PATHS = paths(COMMON_PATHS, [
  ...[
    'service',
    'port',
    'portName',
    'protocol',
    'dnsServers',
    'dnsServers[]',
    'dnsTimeoutMs',
    'dnsAttempts',
    'search',
    'search[]',
    'ndots',
    'family',
  ],
  ...['refresh', 'refresh.minMs', 'refresh.maxMs', 'refresh.jitter', 'emptyGraceMs'],
]);
const RUN_PATHS = paths([
  'options',
  'key',
  'signal',
  'idempotent',
  'timeoutMs',
  'attemptTimeoutMs',
  'retries',
  'hedge',
  'hedge.delayMs',
  'hedge.percentile',
  'hedge.maxAttempts',
  'backoff',
  'backoff.initialMs',
  'backoff.maxMs',
  'backoff.multiplier',
]);
const READY_PATHS = paths(['options', 'timeoutMs', 'signal']);
const CLOSE_PATHS = paths(['options', 'drainMs']);
const POOL_MS = ['connectTimeout', 'headersTimeout', 'bodyTimeout', 'keepAliveTimeout', 'keepAliveMaxTimeout', 'clientTtl'];
const HTTP_PATHS = paths([
  ...['options', 'keyHeader', 'key', 'failureStatusCodes', 'failureStatusCodes[]', 'idempotentMethods', 'idempotentMethods[]', 'retries'],
  ...['hedge', 'hedge.delayMs', 'hedge.percentile', 'hedge.maxAttempts', 'timeoutMs', 'attemptTimeoutMs', 'servername'],
  ...['drainTimeoutMs', 'idleTimeoutMs'],
  ...['pool', 'pool.connect.timeout', ...POOL_MS.map((k) => `pool.${k}`)],
]);
const CHANNEL_MS = ['grpc.keepalive_time_ms', 'grpc.max_reconnect_backoff_ms', 'grpc.client_idle_timeout_ms'];
const GRPC_PATHS = paths([
  ...[
    'options',
    'credentials',
    'keyMetadata',
    'key',
    'idempotent',
    'idempotent[]',
    'retryableCodes',
    'retryableCodes[]',
    'retries',
    'attemptTimeoutMs',
  ],
  ...['hedge', 'hedge.delayMs', 'hedge.percentile', 'hedge.maxAttempts'],
  ...['authority', 'channelOptions', ...CHANNEL_MS.map((k) => `channelOptions.${k}`), 'retryBufferBytes', 'drainTimeoutMs'],
]);

/** Throws unless `error` is an InvalidOptionError naming a known path (or an injected unknown key under one). */
function expectNamedRefusal(error: unknown, known: ReadonlySet<string>): void {
  if (!(error instanceof InvalidOptionError)) throw new Error(`expected an InvalidOptionError, got ${String(error)}`, { cause: error });
  expect(error.message).toContain(error.field);
  const path = error.field.replace(/\[\d+\]/g, '[]');
  if (known.has(path)) return;
  const parent = path.endsWith(`.${UNKNOWN}`) ? path.slice(0, -UNKNOWN.length - 1) : path === UNKNOWN ? '' : undefined;
  if (parent === undefined || !(parent === '' || parent === 'options' || known.has(parent)))
    throw new Error(`field '${error.field}' is no option path`);
}

/** Rejects if `work` has not settled after `ms` (a hang), with `what` in the message. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `make`: an InvalidOptionError naming a known path, or the value made. */
function attempt<T>(make: () => T, known: ReadonlySet<string>): T | undefined {
  try {
    return make();
  } catch (error) {
    expectNamedRefusal(error, known);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Balancer options

function pickerArb({ mostly, object, int }: Kit): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom('round-robin', 'random', 'least-request', 'least-latency', 'weighted-round-robin', 'shard-key'),
    object({ type: fc.constant('least-latency'), estimator: mostly(fc.constantFrom('mean', 'peak-ewma')) }),
    object({
      type: fc.constant('shard-key'),
      fallback: mostly(
        fc.oneof(fc.constantFrom('random', 'least-request'), fc.constant({ type: 'least-latency', estimator: 'peak-ewma' })),
      ),
      boundedLoad: mostly(fc.oneof(fc.boolean(), fc.double({ min: 1, max: 10, noNaN: true }))),
      cacheSize: int(0, 1 << 20),
    }),
    mostly(fc.constant('round-robin'), fc.oneof(fc.constant({ type: 'least-latency', decayMs: 5 }), hostile)),
  );
}

function commonModel(k: Kit): Record<string, fc.Arbitrary<unknown>> {
  const { mostly, object, ms, fraction, int, bool } = k;
  return {
    picker: pickerArb(k),
    latency: mostly(object({ decayMs: ms(1), defaultRttMs: ms(), averageMs: ms(1) })),
    retry: mostly(object({ retries: int(0, 100), backoffBaseMs: ms(), backoffMaxMs: ms() })),
    outlierDetection: mostly(
      fc.oneof(
        fc.constant(false),
        object({
          consecutiveFailures: int(1, 100),
          failureRate: fraction(0.01, 1),
          minRequests: int(1, 100),
          windowMs: ms(10),
          ejectOnConnectFailure: bool,
          baseEjectionMs: ms(1),
          maxEjectionMs: ms(1),
          maxEjectedPercent: fraction(0, 100),
          jitter: fraction(),
        }),
      ),
    ),
    panicThreshold: fraction(),
    slowStart: mostly(object({ windowMs: ms(), aggression: fraction(0.01, 10), minWeight: fraction() })),
    retryBudget: mostly(
      fc.oneof(fc.constant(false), object({ percent: fraction(0, 10), minPerSecond: fraction(0, 1000), windowMs: ms(100) })),
    ),
    hedgeBudget: mostly(object({ percent: fraction(0, 10), minPerSecond: fraction(0, 1000), windowMs: ms(100) })),
    isFailure: mostly(
      fc.constant(() => true),
      hostileData,
    ),
  };
}

const staticOptionsArb = bothMoods((k) => {
  const { mostly, object } = k;
  const endpoint = object({
    address: mostly(fc.constantFrom('127.0.0.11', '127.0.0.12', '::1'), fc.constantFrom<unknown>('web-0', '127.0.0.256', 5, '')),
    port: mostly(fc.integer({ min: 1, max: 65535 }), fc.constantFrom<unknown>(0, 65536, 80.5, '80', Number.NaN)),
    name: mostly(fc.constantFrom('web-0', 'web-1', 'web-2', 'web-3', 'web-4', 'web-5')),
    weight: mostly(fc.integer({ min: 1, max: 100 })),
  }).map((entry) => ({ address: '127.0.0.11', port: 8080, ...entry }));
  return (
    fc
      .tuple(
        object({ ...commonModel(k), service: mostly(fc.constantFrom('static', 'web')) }),
        fc.array(endpoint, { minLength: 1, maxLength: 4 }),
      )
      // In the valid mood, distinct names keep the identities distinct (a duplicate is refused).
      .map(([options, endpoints]) => ({
        ...options,
        endpoints: k.hostileMood ? endpoints : endpoints.map((e, i) => ({ ...e, name: `web-${i}` })),
      }))
  );
});

function dnsOptionsArb(dnsPort: number): fc.Arbitrary<Record<string, unknown>> {
  const server = `127.0.0.1:${dnsPort}`;
  const badServers = fc.constantFrom<unknown>('127.0.0.1:0x35', '127.0.0.1:5e1', '127.0.0.1: 53', '127.0.0.1:99999', 'localhost', 5, '');
  return bothMoods((k) => {
    const { mostly, object, ms, fraction, int } = k;
    const discovery = fc.oneof(
      fc.record({ port: mostly(fc.integer({ min: 1, max: 65535 }), fc.constantFrom<unknown>(0, 65536, '80', 80.5)) }),
      fc.record(
        { portName: mostly(fc.constantFrom('http', 'grpc')), protocol: mostly(fc.constantFrom('tcp', 'udp', 'sctp')) },
        { requiredKeys: ['portName'] },
      ),
      mostly(fc.constant({ port: 8080 }), fc.constantFrom({}, { port: 80, portName: 'http' })),
    );
    return fc
      .tuple(
        object({
          ...commonModel(k),
          dnsTimeoutMs: ms(1),
          dnsAttempts: int(1, 10),
          search: mostly(
            fc.array(fc.constantFrom('default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'), { maxLength: 3 }),
            fc.constant(['bad domain']),
          ),
          ndots: int(0, 15),
          family: mostly(fc.constantFrom(4, 6, 'auto')),
          refresh: mostly(object({ minMs: ms(1), maxMs: ms(1), jitter: fraction() })),
          emptyGraceMs: ms(),
        }),
        discovery,
        mostly(
          fc.constantFrom('web-headless.default.svc.cluster.local', 'web-headless', 'web-headless.default.svc.cluster.local.'),
          fc.constantFrom<unknown>('10.0.0.1', 'bad name', '', 5),
        ),
        // Always at least one server, all on 127.0.0.1: a query never leaves the machine.
        mostly(
          fc.constant([server]),
          badServers.map((bad) => [server, bad]),
        ),
      )
      .map(([options, mode, service, dnsServers]) => ({ ...(options as object), ...(mode as object), service, dnsServers }));
  });
}

describe('random option objects: accepted and working, or refused naming the field', () => {
  let silent: dgram.Socket;
  let dnsPort = 0;

  beforeAll(async () => {
    // A DNS server that never answers: the DNS variants are closed before any lookup could end.
    silent = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    dnsPort = silent.address().port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('createBalancer over a static list: refused by name, or runs a call', async () => {
    await fc.assert(
      fc.asyncProperty(staticOptionsArb, async (options) => {
        const lb = attempt(() => createBalancer(options as unknown as BalancerOptions), STATIC_PATHS);
        if (lb === undefined) return;
        try {
          const ids = lb.endpoints().map((e) => e.id);
          expect(
            await within(
              lb.run(async (endpoint) => endpoint.id),
              5000,
              'run()',
            ),
          ).toSatisfy((id: string) => ids.includes(id));
        } finally {
          await lb.close();
        }
      }),
      { numRuns: 200 },
    );
  });

  it('createBalancer over DNS (127.0.0.1 only): refused by name, or made and closed', async () => {
    await fc.assert(
      fc.asyncProperty(dnsOptionsArb(dnsPort), async (options) => {
        const lb = attempt(() => createBalancer(options as unknown as BalancerOptions), DNS_PATHS);
        if (lb === undefined) return;
        expect(lb.endpoints()).toEqual([]);
        await within(lb.close(), 5000, 'close()');
        expect(lb.isClosed).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  describe('per call', () => {
    let lb: Balancer;
    beforeAll(() => {
      lb = createBalancer({
        endpoints: [
          { address: '127.0.0.11', port: 8080, name: 'web-0' },
          { address: '127.0.0.12', port: 8080, name: 'web-1' },
        ],
        hedgeBudget: { percent: 1, minPerSecond: 1000 },
      });
    });
    afterAll(() => lb.close());

    const signal = (k: Kit): fc.Arbitrary<unknown> =>
      k.mostly(
        fc.constant(null).map(() => new AbortController().signal),
        fc.constantFrom<unknown>('signal', {}, true),
      );

    it('run(): refused by name, or the call goes through', async () => {
      const runOptions = bothMoods((k) =>
        k.object({
          key: k.mostly(fc.string({ maxLength: 8 })),
          signal: signal(k),
          idempotent: k.bool,
          timeoutMs: k.ms(1000),
          attemptTimeoutMs: k.ms(1000),
          retries: k.int(0, 100),
          hedge: k.mostly(
            k.object({ delayMs: k.ms(), percentile: k.fraction(), maxAttempts: k.int(2, 5) }),
            fc.constantFrom<unknown>({}, 5),
          ),
          backoff: k.mostly(k.object({ initialMs: k.ms(), maxMs: k.ms(), multiplier: k.fraction(0.1, 1000) })),
        }),
      );
      await fc.assert(
        fc.asyncProperty(runOptions, async (options) => {
          try {
            // The call takes 2 ms: long enough for a deadline misfired by setTimeout (after 1 ms) to cut it short.
            const call = async (endpoint: { id: string }): Promise<string> => {
              await new Promise((resolve) => setTimeout(resolve, 2));
              return endpoint.id;
            };
            const id = await within(lb.run(call, options as RunOptions), 5000, 'run()');
            expect(['web-0', 'web-1']).toContain(id);
          } catch (error) {
            expectNamedRefusal(error, RUN_PATHS);
          }
        }),
        { numRuns: 200 },
      );
    });

    it('ready(): refused by name, or resolves', async () => {
      await fc.assert(
        fc.asyncProperty(
          bothMoods((k) => k.object({ timeoutMs: k.ms(), signal: signal(k) })),
          async (options) => {
            try {
              expect(await within(lb.ready(options as never), 5000, 'ready()')).toBeUndefined();
            } catch (error) {
              expectNamedRefusal(error, READY_PATHS);
            }
          },
        ),
        { numRuns: 100 },
      );
    });
  });

  it('close(): refused by name and still open, or closes once its call in flight ended or was ended', async () => {
    const closeOptions = bothMoods((k) => k.mostly(k.object({ drainMs: k.ms() }), fc.constantFrom<unknown>(null, 5, 'drain', [])));
    await fc.assert(
      fc.asyncProperty(closeOptions, async (options) => {
        const lb = createBalancer({ endpoints: [{ address: '127.0.0.11', port: 8080, name: 'web-0' }] });
        const call = lb.run(async () => {
          await new Promise((resolve) => setTimeout(resolve, 2));
          return 'done';
        });
        const outcome = call.then(
          (value) => value,
          (error: Error) => error.name,
        );
        let refusal: unknown;
        await within(lb.close(options as never), 5000, 'close()').catch((error: unknown) => (refusal = error));
        if (refusal !== undefined) {
          expectNamedRefusal(refusal, CLOSE_PATHS);
          expect(lb.stats().state).toBe('open');
          expect(await outcome).toBe('done');
          await lb.close();
          return;
        }
        expect(lb.stats()).toMatchObject({ state: 'closed', inflight: 0 });
        // Ended at once without a drain; drained when the drain outlasts the call (2 ms); either near that.
        const drainMs = (options as { drainMs?: number }).drainMs ?? 0;
        if (drainMs === 0) expect(await outcome).toBe('BalancerClosedError');
        else if (drainMs >= 1000) expect(await outcome).toBe('done');
        else expect(['done', 'BalancerClosedError']).toContain(await outcome);
      }),
      { numRuns: 150 },
    );
  });

  describe('adapters', () => {
    let pod: Pod;
    let grpcPod: GrpcPod;
    let httpLb: Balancer;
    let grpcLb: Balancer;
    const Echo = loadEcho();

    beforeAll(async () => {
      pod = await startPod({ name: 'web-0' });
      grpcPod = await startGrpcPod('echo-0', new LoopbackBlock().next(), 0);
      httpLb = createBalancer({ endpoints: [{ address: pod.address, port: pod.port, name: 'web-0' }] });
      grpcLb = createBalancer({ endpoints: [{ address: grpcPod.address, port: grpcPod.port, name: 'echo-0' }] });
    });

    afterAll(async () => {
      await httpLb.close();
      await grpcLb.close();
      await pod.crash();
      await grpcPod.crash();
    });

    it('createDispatcher: refused by name, or a request goes through', async () => {
      const options = bothMoods(({ mostly, object, ms, int, fraction }) =>
        object({
          keyHeader: mostly(fc.constantFrom('x-user-id', 'X-Shard'), fc.constantFrom<unknown>('bad header', 7)),
          key: mostly(
            fc.constant(() => 'user-1'),
            hostileData,
          ),
          failureStatusCodes: mostly(fc.array(fc.integer({ min: 500, max: 599 }), { maxLength: 3 }), fc.constant([99])),
          idempotentMethods: mostly(fc.constantFrom(['GET'], ['get', 'PUT']), fc.constant(['NOT A METHOD'])),
          retries: int(0, 100),
          hedge: mostly(object({ delayMs: ms(), percentile: fraction(), maxAttempts: int(2, 5) })),
          timeoutMs: ms(1000),
          attemptTimeoutMs: ms(1000),
          servername: mostly(fc.constant('web.default.svc.cluster.local'), fc.constantFrom<unknown>('10.0.0.1', 'bad_name!')),
          pool: mostly(
            object({
              connections: mostly(fc.integer({ min: 1, max: 4 })),
              ...Object.fromEntries(POOL_MS.map((name) => [name, ms(1000)])),
              // A connector function is the caller's own code (one that never calls back hangs the pool).
              connect: mostly(object({ timeout: ms(1000) }), hostileData),
            }),
          ),
          drainTimeoutMs: ms(),
          idleTimeoutMs: ms(),
        }),
      );
      await fc.assert(
        fc.asyncProperty(options, async (input) => {
          const dispatcher = attempt(() => createDispatcher(httpLb, input as never), HTTP_PATHS);
          if (dispatcher === undefined) return;
          try {
            const response = await within(request(`http://web.default.svc.cluster.local:${pod.port}/`, { dispatcher }), 5000, 'request');
            expect(response.statusCode).toBe(200);
            expect(((await within(response.body.json(), 5000, 'response body')) as { pod: string }).pod).toBe('web-0');
          } finally {
            await within(dispatcher.close(), 5000, 'dispatcher.close()');
          }
        }),
        { numRuns: 60 },
      );
    });

    it('createGrpcChannel: refused by name, or a call goes through', async () => {
      const insecure = grpc.credentials.createInsecure();
      const options = bothMoods(({ mostly, object, ms, int, fraction }) =>
        object({
          credentials: mostly(fc.constant(insecure), fc.constantFrom<unknown>({}, 'insecure')),
          keyMetadata: mostly(fc.constant('x-shard-key'), fc.constantFrom<unknown>('x-key-bin', 'bad key')),
          key: mostly(
            fc.constant(() => 'user-1'),
            hostileData,
          ),
          idempotent: mostly(
            fc.oneof(
              fc.boolean(),
              fc.constant(['/hlb.test.Echo/*']),
              fc.constant(() => true),
            ),
            hostileData,
          ),
          retryableCodes: mostly(fc.array(fc.integer({ min: 1, max: 16 }), { maxLength: 3 }), fc.constant([0])),
          retries: int(0, 100),
          attemptTimeoutMs: ms(1000),
          hedge: mostly(object({ delayMs: ms(1000), percentile: fraction(), maxAttempts: int(2, 5) }), fc.constantFrom<unknown>({}, 5)),
          authority: mostly(
            fc.constantFrom('echo.default.svc.cluster.local:9090', 'echo'),
            fc.constantFrom<unknown>('svc:0x35', 'svc:99999', 'a b'),
          ),
          channelOptions: mostly(
            object({
              'grpc.keepalive_time_ms': mostly(
                fc.oneof(fc.constant(-1), fc.integer({ min: 10_000, max: MAX_MS })),
                fc.constantFrom<unknown>(2 ** 31, 3e9, -2, '100'),
              ),
              'grpc.max_reconnect_backoff_ms': ms(1000),
              'grpc.client_idle_timeout_ms': ms(1000),
            }),
          ),
          retryBufferBytes: int(0, 1 << 20),
          drainTimeoutMs: ms(),
        }).map((value) => ({ credentials: insecure, ...value })),
      );
      await fc.assert(
        fc.asyncProperty(options, async (input) => {
          const channel = attempt(() => createGrpcChannel(grpcLb, input as never), GRPC_PATHS);
          if (channel === undefined) return;
          const client = channel.client(Echo);
          try {
            const reply = await within(
              new Promise<{ pod: string }>((resolve, reject) => {
                client.Unary({ text: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (error, value) =>
                  error === null ? resolve(value!) : reject(error),
                );
              }),
              15_000,
              'unary call',
            );
            expect(reply.pod).toBe('echo-0');
          } finally {
            client.close();
            await within(channel.close(), 5000, 'channel.close()');
          }
        }),
        { numRuns: 40 },
      );
    });
  });
});
