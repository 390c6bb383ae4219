import dgram from 'node:dgram';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBalancer, InvalidOptionError, type Balancer, type BalancerOptions } from '../../src/index.js';
import { createGrpcChannel, type GrpcChannelOptions, type HeadlessChannel } from '../../src/grpc/index.js';
import { LoopbackBlock } from '../../src/testing/loopback.js';
import { createTestCa } from '../support/tls.js';
import { loadEcho, startGrpcPod, type EchoClient, type EchoReply, type GrpcPod } from '../support/grpc-pods.js';
import { count, keyed, readAll, sleep, unary, waitFor } from '../support/grpc-unary.js';

/**
 * The gRPC channel over a static pool of real grpc-js pods on 127.x: picking, shard keys, every
 * kind of call, failover rules, deadlines, cancellation, draining. DNS-driven behaviour is in
 * test/integration/grpc.test.ts.
 */
const Echo = loadEcho();
const addresses = new LoopbackBlock();
const insecure = grpc.credentials.createInsecure();
let port = 0;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  const probe = await startGrpcPod('probe', addresses.next(), 0);
  port = probe.port;
  await probe.crash();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  readonly pods: GrpcPod[];
  readonly lb: Balancer;
  readonly channel: HeadlessChannel;
  readonly client: EchoClient;
}

async function setup(
  replicas: number,
  options: Partial<GrpcChannelOptions> = {},
  lbOptions: Partial<BalancerOptions> = {},
  clientOptions: grpc.ClientOptions = {},
): Promise<Setup> {
  const pods: GrpcPod[] = [];
  for (let i = 0; i < replicas; i++) pods.push(await startGrpcPod(`pod-${i}`, addresses.next(), port));
  const lb = createBalancer({
    endpoints: pods.map((pod) => ({ address: pod.address, port, name: pod.name })),
    ...lbOptions,
  } as BalancerOptions);
  const channel = createGrpcChannel(lb, { credentials: insecure, drainTimeoutMs: 5000, ...options });
  const client = channel.client(Echo, clientOptions);
  cleanups.push(async () => {
    client.close();
    await channel.close();
    await lb.close();
    await Promise.all(pods.map((pod) => pod.crash()));
  });
  return { pods, lb, channel, client };
}

describe('picking', () => {
  it('spreads unary calls round-robin over one channel per pod', async () => {
    const { client, channel } = await setup(3);
    const results = await Promise.all(Array.from({ length: 30 }, () => unary(client, { text: 'hi' })));
    expect(results.every((r) => r.ok)).toBe(true);
    const byPod = count(results.map((r) => (r.ok ? r.reply.pod : '')));
    expect([...byPod.values()]).toEqual([10, 10, 10]);
    expect(channel.stats()).toMatchObject({ channels: 3, draining: 0, active: 0 });
  });

  it('routes by the shard key from metadata, from withKey(), or from a key function', async () => {
    const { client, channel } = await setup(4, { keyMetadata: 'X-Shard-Key' }, { picker: 'shard-key' });
    const first = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (let k = 0; k < 20; k++) {
        const result = await unary(client, { text: 'x' }, { metadata: keyed(`user-${k}`) });
        if (!result.ok) throw result.error;
        if (round === 0) first.set(`user-${k}`, result.reply.pod);
        else expect(result.reply.pod).toBe(first.get(`user-${k}`));
      }
    }
    expect(new Set(first.values()).size).toBeGreaterThan(1);
    // withKey() wins over the metadata.
    const viaWithKey = await channel.withKey('user-3', () => unary(client, { text: 'x' }, { metadata: keyed('user-4') }));
    expect(viaWithKey.ok && viaWithKey.reply.pod).toBe(first.get('user-3'));

    const { client: c2 } = await setup(
      4,
      { key: ({ method, metadata }) => (method.endsWith('/Unary') ? String(metadata.get('tenant')[0]) : undefined) },
      { picker: 'shard-key' },
    );
    const pods = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const md = new grpc.Metadata();
      md.set('tenant', 'acme');
      const result = await unary(c2, { text: 'x' }, { metadata: md });
      if (result.ok) pods.add(result.reply.pod);
    }
    expect(pods.size).toBe(1);
  });

  it('sees metadata added by client interceptors (they run before the pick)', async () => {
    const addKey: grpc.Interceptor = (options, next) =>
      new grpc.InterceptingCall(next(options), {
        start: (metadata, listener, nextStart) => {
          metadata.set('x-shard-key', 'from-interceptor');
          nextStart(metadata, listener);
        },
      });
    const { client } = await setup(3, { keyMetadata: 'x-shard-key' }, { picker: 'shard-key' }, { interceptors: [addKey] });
    const results = await Promise.all(Array.from({ length: 9 }, () => unary(client, { text: 'x' })));
    expect(new Set(results.map((r) => (r.ok ? r.reply.pod : 'failed'))).size).toBe(1);
  });
});

describe('kinds of calls', () => {
  it('pins a server stream to one pod for its life', async () => {
    const { client } = await setup(3);
    const streams = await Promise.all(Array.from({ length: 3 }, () => readAll(client.ServerStream({ text: 's', count: 5, delayMs: 5 }))));
    for (const { replies, error } of streams) {
      expect(error).toBeUndefined();
      expect(replies.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
      expect(new Set(replies.map((r) => r.pod)).size).toBe(1);
    }
    expect(new Set(streams.map((s) => s.replies[0]!.pod)).size).toBe(3);
  });

  it('carries client streams and bidi streams, in order', async () => {
    const { client } = await setup(2);
    const reply = await new Promise<EchoReply>((resolve, reject) => {
      const call = client.ClientStream(new grpc.Metadata(), {}, (error, value) => (error ? reject(error) : resolve(value!)));
      for (let i = 0; i < 50; i++) call.write({ text: `m${i}` });
      call.end();
    });
    expect(reply.text.split(',')).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));

    const bidi = client.Bidi();
    const got: EchoReply[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      bidi.on('data', (r: EchoReply) => got.push(r));
      bidi.on('end', () => resolve());
      bidi.on('error', reject);
    });
    for (let i = 0; i < 20; i++) bidi.write({ text: `b${i}` });
    bidi.end();
    await ended;
    expect(got.map((r) => r.text)).toEqual(Array.from({ length: 20 }, (_, i) => `b${i}`));
    expect(new Set(got.map((r) => r.pod)).size).toBe(1);
  });
});

describe('failover', () => {
  it('re-sends calls that never reached a pod (refused connection), even non-idempotent ones', async () => {
    const { client, pods, lb } = await setup(3, {}, { outlierDetection: false });
    await pods[1]!.crash();
    const results = await Promise.all(Array.from({ length: 30 }, () => unary(client, { text: 'x' })));
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(lb.stats().retries).toBeGreaterThan(0);
    expect(pods[1]!.requests).toBe(0);
  });

  it('re-sends non-idempotent calls to a pod that died while its channel was READY, once the connection is gone', async () => {
    const { client, pods, channel } = await setup(3, {}, { outlierDetection: false });
    const warm = await Promise.all(Array.from({ length: 6 }, () => unary(client, { text: 'warm' })));
    expect(warm.every((r) => r.ok)).toBe(true);
    const podChannel = [...channel.pods.channels()].find((p) => p.endpoint.address === pods[1]!.address)!;
    expect(podChannel.state).toBe(grpc.connectivityState.READY);
    await pods[1]!.crash();
    await waitFor(() => podChannel.state !== grpc.connectivityState.READY); // the client read the reset
    const results = await Promise.all(Array.from({ length: 30 }, () => unary(client, { text: 'x' })));
    expect(results.filter((r) => !r.ok)).toEqual([]);
  });

  it('replays the messages of a client stream on another pod when the first never got them', async () => {
    const { client, pods } = await setup(3, {}, { outlierDetection: false });
    await pods[0]!.crash();
    const replies = await Promise.all(
      Array.from(
        { length: 6 },
        (_, n) =>
          new Promise<EchoReply>((resolve, reject) => {
            const call = client.ClientStream(new grpc.Metadata(), {}, (error, value) => (error ? reject(error) : resolve(value!)));
            for (let i = 0; i < 5; i++) call.write({ text: `${n}.${i}` });
            call.end();
          }),
      ),
    );
    replies.forEach((reply, n) => expect(reply.text).toBe([0, 1, 2, 3, 4].map((i) => `${n}.${i}`).join(',')));
    expect(pods[0]!.requests).toBe(0);
  });

  it('does not re-send a non-idempotent call that reached a pod which then died; re-sends an idempotent one', async () => {
    const { client, pods } = await setup(2, { idempotent: ['/hlb.test.Echo/ServerStream'] }, { outlierDetection: false });
    pods[0]!.setBehaviour({ delayMs: 300 });
    pods[1]!.setBehaviour({ delayMs: 300 });
    const calls = [unary(client, { text: 'a' }), unary(client, { text: 'b' })];
    await waitFor(() => pods[0]!.inflight === 1 && pods[1]!.inflight === 1);
    await pods[0]!.crash();
    const results = await Promise.all(calls);
    const failed = results.filter((r) => !r.ok);
    expect(failed).toHaveLength(1);
    expect(!failed[0]!.ok && failed[0]!.error.code).toBe(grpc.status.UNAVAILABLE);
    expect(pods[1]!.requests).toBe(1); // not re-sent

    // The same for a method declared idempotent: re-sent to the surviving pod.
    const survivor = pods[1]!;
    const [p2] = [await startGrpcPod('pod-2', addresses.next(), port)];
    cleanups.push(() => p2.crash());
    const lb2 = createBalancer({
      endpoints: [survivor, p2].map((pod) => ({ address: pod.address, port, name: pod.name })),
      outlierDetection: false,
    });
    const channel2 = createGrpcChannel(lb2, { credentials: insecure, idempotent: ['/hlb.test.Echo/*'] });
    const client2 = channel2.client(Echo);
    cleanups.push(async () => {
      client2.close();
      await channel2.close();
      await lb2.close();
    });
    p2.setBehaviour({ delayMs: 300 });
    survivor.setBehaviour({});
    const pending = unary(client2, { text: 'c' });
    const pending2 = unary(client2, { text: 'd' });
    await waitFor(() => p2.inflight === 1);
    await p2.crash();
    const [r1, r2] = await Promise.all([pending, pending2]);
    expect(r1.ok && r2.ok).toBe(true);
  });

  it('retries UNAVAILABLE answers on another pod for idempotent methods only', async () => {
    const { client, pods } = await setup(2, { idempotent: (method) => method === '/hlb.test.Echo/Unary' }, { outlierDetection: false });
    pods[0]!.setBehaviour({ status: grpc.status.UNAVAILABLE });
    const results = await Promise.all(Array.from({ length: 10 }, () => unary(client, { text: 'x' })));
    expect(results.every((r) => r.ok && r.reply.pod === pods[1]!.name)).toBe(true);

    const { client: strict, pods: strictPods } = await setup(2, {}, { outlierDetection: false });
    strictPods[0]!.setBehaviour({ status: grpc.status.UNAVAILABLE });
    const strictResults = await Promise.all(Array.from({ length: 10 }, () => unary(strict, { text: 'x' })));
    const failures = strictResults.filter((r) => !r.ok);
    expect(failures).toHaveLength(5);
    expect(failures.every((r) => !r.ok && r.error.code === grpc.status.UNAVAILABLE && /answers UNAVAILABLE/.test(r.error.details))).toBe(
      true,
    );
  });

  it('unary methods commit at the status: an idempotent call whose connection drops after the response metadata is retried', async () => {
    const { client, pods, channel } = await setup(2, { idempotent: ['/hlb.test.Echo/Unary'] }, { outlierDetection: false });
    pods[0]!.setBehaviour({ dropAfterMetadata: true });
    const results = await Promise.all(Array.from({ length: 6 }, () => unary(client, { text: 'x' })));
    expect(results.every((r) => r.ok && r.reply.pod === pods[1]!.name)).toBe(true);
    expect(pods[0]!.requests).toBeGreaterThan(0);

    // A client made without the service definition cannot know the method is unary: committed at
    // the metadata, the call is not retried (as grpc's own retries would not).
    const blind = new Echo('unused', insecure, {
      channelOverride: createGrpcChannel(channel.lb as Balancer, { credentials: insecure, idempotent: true }),
    });
    cleanups.push(async () => {
      const c = blind.getChannel() as HeadlessChannel;
      blind.close();
      await c.close();
    });
    const blindResults = await Promise.all(Array.from({ length: 4 }, () => unary(blind, { text: 'x' })));
    expect(blindResults.filter((r) => !r.ok).every((r) => !r.ok && r.error.code === grpc.status.UNAVAILABLE)).toBe(true);
    expect(blindResults.some((r) => !r.ok)).toBe(true);
  });

  it("does not take a pod's word for it: an UNAVAILABLE passed on from upstream is not proof that nothing was sent", async () => {
    const { client, pods } = await setup(2, {}, { outlierDetection: false });
    pods[0]!.setBehaviour({
      status: grpc.status.UNAVAILABLE,
      details: 'No connection established. Last error: connect ECONNREFUSED 10.0.0.9:5432',
    });
    const results = await Promise.all(Array.from({ length: 6 }, () => unary(client, { text: 'x' })));
    expect(results.filter((r) => !r.ok)).toHaveLength(3);
    expect(pods[0]!.requests).toBe(3);
    expect(pods[1]!.requests).toBe(3); // the failed ones were not re-sent
  });

  it('returns application errors as they are, without retry', async () => {
    const { client, pods } = await setup(2, { idempotent: true });
    pods[0]!.setBehaviour({ status: grpc.status.NOT_FOUND });
    pods[1]!.setBehaviour({ status: grpc.status.NOT_FOUND });
    const result = await unary(client, { text: 'x' });
    expect(!result.ok && result.error.code).toBe(grpc.status.NOT_FOUND);
    expect(pods[0]!.requests + pods[1]!.requests).toBe(1);
  });

  it('fails with UNAVAILABLE when every pod refuses, after the retries', async () => {
    const { client, pods } = await setup(2, { retries: 3 }, { outlierDetection: false });
    await Promise.all(pods.map((pod) => pod.crash()));
    const result = await unary(client, { text: 'x' });
    expect(!result.ok && result.error.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('deadlines and cancellation', () => {
  it('respects the call deadline: DEADLINE_EXCEEDED on time, no retry', async () => {
    const { client, pods } = await setup(2, { idempotent: true });
    // Connected first, so that the deadline is spent waiting for the pod, not connecting to it.
    expect((await Promise.all([unary(client, { text: 'warm' }), unary(client, { text: 'warm' })])).every((r) => r.ok)).toBe(true);
    for (const pod of pods) pod.setBehaviour({ delayMs: 1500 });
    const started = performance.now();
    const result = await unary(client, { text: 'x' }, { deadlineMs: 300 });
    const elapsed = performance.now() - started;
    expect(!result.ok && result.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
    expect(pods[0]!.requests + pods[1]!.requests).toBe(3); // 2 warm-up calls + 1: not retried
  });

  it('keeps the deadline between attempts too (retries and their backoff)', async () => {
    const { client, pods } = await setup(2, { idempotent: true, retries: 100 }, { outlierDetection: false, retryBudget: false });
    for (const pod of pods) pod.setBehaviour({ status: grpc.status.UNAVAILABLE });
    const started = performance.now();
    const result = await unary(client, { text: 'x' }, { deadlineMs: 300 });
    const elapsed = performance.now() - started;
    expect(!result.ok && result.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(elapsed).toBeLessThan(600);
    expect(pods[0]!.requests + pods[1]!.requests).toBeGreaterThan(2);
  });

  it('abandons a slow attempt after attemptTimeoutMs and retries an idempotent call elsewhere', async () => {
    const { client, pods } = await setup(2, { idempotent: true, attemptTimeoutMs: 100 }, { outlierDetection: false });
    pods[0]!.setBehaviour({ hang: true });
    const results = await Promise.all(Array.from({ length: 4 }, () => unary(client, { text: 'x' }, { deadlineMs: 2000 })));
    expect(results.every((r) => r.ok && r.reply.pod === pods[1]!.name)).toBe(true);
  });

  it('cancels: the caller gets CANCELLED and the pod sees the cancellation', async () => {
    const { client, pods } = await setup(1);
    pods[0]!.setBehaviour({ delayMs: 500 });
    const call = client.ServerStream({ text: 'x', count: 3 });
    const done = readAll(call);
    await waitFor(() => pods[0]!.inflight === 1);
    call.cancel();
    const { error } = await done;
    expect(error?.code).toBe(grpc.status.CANCELLED);
  });

  it('a deadline in the past fails at once', async () => {
    const { client } = await setup(1);
    const result = await unary(client, { text: 'x' }, { deadlineMs: -1 });
    expect(!result.ok && result.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  // Beyond 2^31−1 ms (~24.8 days) Node fires a timer after 1 ms: such deadlines failed at once.
  const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

  it('a deadline 30 days away does not cut the call short', async () => {
    // Not sent to a pod: a grpc-js server takes a grpc-timeout past 2^31−1 ms as expired. The call
    // waits for a first lookup from a DNS server that never answers, until the lookup fails.
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    const lb = createBalancer({
      service: 'web.default.svc.cluster.local',
      port: 9,
      dnsServers: [`127.0.0.1:${silent.address().port}`],
      dnsTimeoutMs: 200,
      dnsAttempts: 1,
      search: [],
    });
    const channel = createGrpcChannel(lb, { credentials: insecure });
    const client = channel.client(Echo);
    cleanups.push(async () => {
      client.close();
      await channel.close();
      await lb.close();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const result = await unary(client, { text: 'x' }, { deadlineMs: THIRTY_DAYS_MS });
    expect(!result.ok && result.error.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('watchConnectivityState with a deadline 30 days away waits for the change', async () => {
    const { channel } = await setup(1);
    const state = channel.getConnectivityState(false);
    const seen = new Promise<Error | undefined>((resolve) => channel.watchConnectivityState(state, Date.now() + THIRTY_DAYS_MS, resolve));
    await sleep(20); // time for a misfiring timer to fire
    channel.getConnectivityState(true);
    expect(await seen).toBeUndefined();
  });
});

describe('pool changes and closing', () => {
  it('drains: a closed channel lets calls in flight finish, refuses new ones, closes its pod channels', async () => {
    const { client, channel, pods } = await setup(2);
    for (const pod of pods) pod.setBehaviour({ delayMs: 200 });
    const inFlight = Promise.all([unary(client, { text: 'a' }), unary(client, { text: 'b' })]);
    await sleep(50);
    expect(channel.stats().active).toBe(2);
    const closed = channel.close();
    expect(() => client.Unary({ text: 'late' }, () => {})).toThrow(/shut down/);
    const results = await inFlight;
    await closed;
    expect(results.every((r) => r.ok)).toBe(true);
    expect(channel.stats()).toMatchObject({ channels: 0, draining: 0, active: 0, closed: true });
    expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.SHUTDOWN);
  });

  it('reports connectivity: waitForClientReady connects to the pods', async () => {
    const { client, channel } = await setup(2);
    expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.IDLE);
    await new Promise<void>((resolve, reject) =>
      grpc.waitForClientReady(client, Date.now() + 2000, (error) => (error ? reject(error) : resolve())),
    );
    expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.READY);
    expect(channel.getTarget()).toBe('headless:///static');
  });
});

describe('memory', () => {
  it("lets go of the caller's side of a call when it ends, while grpc-js still holds the pod's call", async () => {
    // Node releases an http2 stream, and the grpc-js call objects it points to, some time after
    // the call ends; whatever those point to survives scavenges with them.
    const { client, channel, lb } = await setup(1);
    const pod = channel.pods.acquire(lb.endpoints()[0]!);
    const podCalls: unknown[] = [];
    const createCall = pod.channel.createCall.bind(pod.channel);
    pod.channel.createCall = (...args) => {
      const call = createCall(...args);
      podCalls.push(call);
      return call;
    };
    expect(typeof globalThis.gc, 'run with --expose-gc (vitest.config.ts)').toBe('function');
    let reply: WeakRef<EchoReply> | undefined;
    let callback: WeakRef<object> | undefined;
    await new Promise<void>((resolve, reject) => {
      const done = (error: grpc.ServiceError | null, answer?: EchoReply): void => {
        if (error !== null) return reject(error);
        reply = new WeakRef(answer!);
        resolve();
      };
      callback = new WeakRef(done);
      client.Unary({ text: 'x' }, done);
    });
    expect(podCalls).toHaveLength(1);
    await waitFor(
      () => {
        globalThis.gc?.();
        return reply!.deref() === undefined && callback!.deref() === undefined;
      },
      { what: "the reply and the caller's callback collected", intervalMs: 20 },
    );
    expect(podCalls).toHaveLength(1); // still held here
  });
});

describe('TLS', () => {
  it('checks each pod certificate against the Service name, not the pod IP', async () => {
    const ca = createTestCa();
    cleanups.push(() => ca.dispose());
    const service = 'echo-tls.default.svc.cluster.local';
    const { key, cert } = ca.issue([service]);
    const pods = [
      await startGrpcPod('tls-0', addresses.next(), port, { key, cert }),
      await startGrpcPod('tls-1', addresses.next(), port, { key, cert }),
    ];
    const lb = createBalancer({ service, endpoints: pods.map((pod) => ({ address: pod.address, port, name: pod.name })) });
    const credentials = grpc.credentials.createSsl(Buffer.from(ca.ca));
    const channel = createGrpcChannel(lb, { credentials });
    const client = channel.client(Echo);
    const wrong = createGrpcChannel(lb, { credentials, authority: 'other.default.svc.cluster.local:443', retries: 0 });
    const wrongClient = wrong.client(Echo);
    cleanups.push(async () => {
      client.close();
      wrongClient.close();
      await Promise.all([channel.close(), wrong.close()]);
      await lb.close();
      await Promise.all(pods.map((pod) => pod.crash()));
    });
    const results = await Promise.all(Array.from({ length: 4 }, () => unary(client, { text: 'x' })));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(new Set(results.map((r) => r.ok && r.reply.pod)).size).toBe(2);
    const rejected = await unary(wrongClient, { text: 'x' }, { deadlineMs: 2000 });
    expect(!rejected.ok && rejected.error.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('options', () => {
  it('rejects invalid options with InvalidOptionError naming the field', () => {
    const lb = createBalancer({ endpoints: [{ address: '127.0.0.1', port: 1 }] });
    cleanups.push(() => lb.close());
    const bad: [Record<string, unknown>, string][] = [
      [{}, 'credentials'],
      [{ credentials: {} }, 'credentials'],
      [{ credentials: insecure, keyMetadata: 'x-key-bin' }, 'keyMetadata'],
      [{ credentials: insecure, keyMetadata: 'bad key' }, 'keyMetadata'],
      [{ credentials: insecure, idempotent: ['Get'] }, 'idempotent[0]'],
      [{ credentials: insecure, idempotent: 'yes' }, 'idempotent'],
      [{ credentials: insecure, retryableCodes: [0] }, 'retryableCodes[0]'],
      [{ credentials: insecure, retries: -1 }, 'retries'],
      [{ credentials: insecure, authority: 'a b' }, 'authority'],
      [{ credentials: insecure, channelOptions: { 'grpc.keepalive_time_ms': {} } }, 'channelOptions.grpc.keepalive_time_ms'],
      [{ credentials: insecure, drainTimeoutMs: -5 }, 'drainTimeoutMs'],
      [{ credentials: insecure, typo: 1 }, 'typo'],
    ];
    for (const [options, field] of bad) {
      let error: unknown;
      try {
        createGrpcChannel(lb, options as unknown as GrpcChannelOptions);
      } catch (e) {
        error = e;
      }
      expect(error, field).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).field).toBe(field);
    }
    expect(() => createGrpcChannel({} as Balancer, { credentials: insecure })).toThrow(InvalidOptionError);
  });
});
