import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Balancer, BalancerOptions, Picker } from '../../src/index.js';
import type { GrpcChannelOptions, HeadlessChannel } from '../../src/grpc/index.js';
import type { EchoClient, EchoReply, GrpcService } from '../support/grpc-pods.js';
import { readAll, unary, waitFor } from '../support/grpc-unary.js';
import { startKnotCluster, type GrpcKnotCluster } from '../support/knot-cluster.js';
import { echoOverPods } from '../support/grpc-echo-client.js';

/**
 * Hedged gRPC calls (gRFC A6's hedging) against a real Knot DNS and real grpc-js pods on 127.x:
 * one pod stalls 50 ms, hedges after 10 ms cut the slow calls short; the first attempt to commit
 * wins and the pod of the others sees a cancelled call; hedges stay within the hedge budget; a
 * client stream past the retry buffer is not hedged; a fatal status ends the call at once.
 * Behaviour is asserted; the p99 latencies are printed, not asserted.
 */
const TTL = 5;
const STALL_MS = 50;
const HEDGE_DELAY_MS = 10;
let env: GrpcKnotCluster;
let serviceNumber = 0;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL, pods: 'grpc' });
});

afterAll(async () => {
  await env?.close();
});

interface Client {
  readonly svc: GrpcService;
  readonly lb: Balancer;
  readonly channel: HeadlessChannel;
  readonly client: EchoClient;
}

/** A Service of `replicas` pods and a client; `pinFirst`: every call's first attempt goes to the first pod. */
async function connect(
  replicas: number,
  options: Partial<GrpcChannelOptions> = {},
  lbOptions: Partial<BalancerOptions> = {},
  pinFirst = false,
): Promise<Client> {
  const svc = await env.cluster.createService({ name: `hedge-${serviceNumber++}`, replicas });
  const picker = pinFirst ? { picker: firstOn(svc.pods[0]!.address) } : {};
  const { lb, channel, client } = echoOverPods(env, svc.fqdn, options, { outlierDetection: false, ...picker, ...lbOptions });
  await lb.ready();
  return { svc, lb, channel, client };
}

/** Picks the pod at `address` for a call's first attempt, then any pod not tried yet. */
function firstOn(address: string): Picker {
  return {
    name: 'first-on',
    pick: (endpoints, request) =>
      request.tried === undefined || request.tried.size === 0
        ? endpoints.find((e) => e.address === address)
        : endpoints.find((e) => !request.tried!.has(e)),
  };
}

function p99(latencies: number[]): number {
  const sorted = [...latencies].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

/** `total` unary calls, `concurrency` at a time; every outcome and latency. */
async function unaryLoad(client: EchoClient, total: number, concurrency: number) {
  const latencies: number[] = [];
  const replies: EchoReply[] = [];
  const errors: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      const started = performance.now();
      const result = await unary(client, { text: 'x' }, { deadlineMs: 5000 });
      latencies.push(performance.now() - started);
      if (result.ok) replies.push(result.reply);
      else errors.push(`${result.error.code} ${result.error.details}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, replies, errors };
}

function podRequests(svc: GrpcService): number {
  return svc.pods.reduce((sum, pod) => sum + pod.requests, 0);
}

describe('hedged unary calls', () => {
  it('cut the p99 of a pod that stalls 50 ms; the stalled calls are cancelled; hedges stay within budget', async () => {
    const calls = 300;
    const budget = { percent: 0.5, minPerSecond: 1, windowMs: 10_000 };
    const results: Record<string, number> = {};
    let counts = '';
    for (const hedge of [false, true]) {
      const { svc, lb, client } = await connect(
        3,
        { idempotent: true, ...(hedge ? { hedge: { delayMs: HEDGE_DELAY_MS } } : {}) },
        { hedgeBudget: budget },
      );
      const slow = svc.pods[0]!;
      slow.setBehaviour({ delayMs: STALL_MS });
      const { latencies, replies, errors } = await unaryLoad(client, calls, 4);
      results[hedge ? 'hedged' : 'plain'] = p99(latencies);

      expect(errors).toEqual([]);
      expect(replies).toHaveLength(calls);
      const stats = lb.stats();
      // Each pod call is an attempt: the calls, plus one per hedge (no retries here).
      expect(stats.retries).toBe(0);
      expect(podRequests(svc)).toBe(calls + stats.hedges);
      if (!hedge) {
        expect(stats.hedges).toBe(0);
        expect(slow.cancelled).toBe(0);
        continue;
      }
      const bound = Math.floor((budget.minPerSecond * budget.windowMs) / 1000 + budget.percent * calls);
      expect(stats.hedges).toBeGreaterThan(0);
      expect(stats.hedges).toBeLessThanOrEqual(bound);
      // The stalled pod's calls that lost were cancelled: the pod saw CANCELLED before it answered.
      // (Some answer as the cancellation crosses them: those answers are dropped, not counted here.)
      const answeredBySlow = replies.filter((r) => r.pod === slow.name).length;
      await waitFor(() => slow.inflight === 0 || slow.cancelled > 0, { what: 'cancellations' });
      expect(slow.cancelled).toBeGreaterThan(0);
      expect(slow.cancelled + answeredBySlow).toBeLessThanOrEqual(slow.requests);
      counts = `hedges ${stats.hedges} (budget ${bound}), stalled pod: ${slow.requests} attempts, ${slow.cancelled} cancelled, ${answeredBySlow} answers taken`;
      // A cancelled attempt is neither a failure nor still in flight.
      await waitFor(() => lb.endpoints().every((e) => e.inflight === 0));
      expect(lb.endpoints().every((e) => e.failures === 0)).toBe(true);
    }
    console.log(
      `gRPC unary, 3 pods, one stalling ${STALL_MS} ms, ${calls} calls, 4 in flight: p99 without hedging ${results.plain!.toFixed(1)} ms, ` +
        `with hedging after ${HEDGE_DELAY_MS} ms ${results.hedged!.toFixed(1)} ms; ${counts}`,
    );
  });

  it('sends no hedge beyond the hedge budget, and says so', async () => {
    // A reserve of 2 hedges per window, nothing from traffic.
    const { svc, lb, client } = await connect(
      3,
      { idempotent: true, hedge: { delayMs: HEDGE_DELAY_MS } },
      { hedgeBudget: { percent: 0, minPerSecond: 0.2, windowMs: 10_000 } },
    );
    let exhausted = 0;
    lb.on('hedge-budget-exhausted', () => exhausted++);
    for (const pod of svc.pods) pod.setBehaviour({ delayMs: STALL_MS * 6 }); // every call is due a hedge, even on a busy machine
    const { replies, errors } = await unaryLoad(client, 12, 3);
    expect(errors).toEqual([]);
    expect(replies).toHaveLength(12);
    expect(lb.stats().hedges).toBe(2);
    expect(exhausted).toBe(10);
    expect(podRequests(svc)).toBe(14);
  });

  it('maxAttempts 3: two pods stall, the third answers; both stalled calls are cancelled', async () => {
    const { svc, lb, client } = await connect(
      3,
      { idempotent: true, hedge: { delayMs: HEDGE_DELAY_MS, maxAttempts: 3 } },
      { hedgeBudget: { percent: 1, minPerSecond: 10 } },
      true,
    );
    svc.pods[0]!.setBehaviour({ hang: true });
    svc.pods[1]!.setBehaviour({ hang: true });
    const result = await unary(client, { text: 'x' }, { deadlineMs: 5000 });
    expect(result.ok && result.reply.pod).toBe(svc.pods[2]!.name);
    expect(lb.stats().hedges).toBe(2);
    await waitFor(() => svc.pods[0]!.cancelled === 1 && svc.pods[1]!.cancelled === 1, { what: 'cancellation' });
  });

  it('sends the next hedge when one fails with a non-fatal status (retryableCodes)', async () => {
    const { svc, lb, client } = await connect(
      3,
      { idempotent: true, retryableCodes: [grpc.status.UNAVAILABLE], hedge: { delayMs: 200, maxAttempts: 3 } },
      { hedgeBudget: { percent: 1, minPerSecond: 10 } },
      true,
    );
    svc.pods[0]!.setBehaviour({ hang: true });
    svc.pods[1]!.setBehaviour({ status: grpc.status.UNAVAILABLE });
    const result = await unary(client, { text: 'x' }, { deadlineMs: 5000 });
    expect(result.ok && result.reply.pod).toBe(svc.pods[2]!.name);
    expect(lb.stats()).toMatchObject({ hedges: 2, retries: 0 });
    await waitFor(() => svc.pods[0]!.cancelled === 1, { what: 'cancellation' });
  });

  it('ends the call at once with a fatal status, cancelling the other attempt', async () => {
    const { svc, lb, client } = await connect(
      2,
      { idempotent: true, hedge: { delayMs: HEDGE_DELAY_MS, maxAttempts: 2 } },
      { hedgeBudget: { percent: 1, minPerSecond: 10 } },
      true,
    );
    svc.pods[0]!.setBehaviour({ hang: true });
    svc.pods[1]!.setBehaviour({ status: grpc.status.INVALID_ARGUMENT, details: 'no such thing' });
    // Were the call to wait for the hanging pod, it would end with DEADLINE_EXCEEDED.
    const result = await unary(client, { text: 'x' }, { deadlineMs: 5000 });
    expect(result.ok).toBe(false);
    expect(!result.ok && [result.error.code, result.error.details]).toEqual([grpc.status.INVALID_ARGUMENT, 'no such thing']);
    expect(lb.stats()).toMatchObject({ hedges: 1, retries: 0 });
    await waitFor(() => svc.pods[0]!.cancelled === 1, { what: 'cancellation' });
    // A fatal status is the application's answer, not the pod's failure.
    expect(lb.endpoints().every((e) => e.failures === 0)).toBe(true);
  });
});

describe("a service config's hedgingPolicy", () => {
  it('hedges after hedgingDelay, the next at once after a non-fatal status, and ends at a fatal one', async () => {
    const serviceConfig = {
      methodConfig: [
        {
          name: [{ service: 'hlb.test.Echo', method: 'Unary' }],
          hedgingPolicy: { maxAttempts: 3, hedgingDelay: '0.01s', nonFatalStatusCodes: ['UNAVAILABLE'] },
        },
      ],
    };
    const { svc, lb, client } = await connect(3, { serviceConfig }, { hedgeBudget: { percent: 1, minPerSecond: 10 } }, true);
    svc.pods[0]!.setBehaviour({ hang: true });
    svc.pods[1]!.setBehaviour({ status: grpc.status.UNAVAILABLE });
    const ok = await unary(client, { text: 'x' }, { deadlineMs: 5000 });
    expect(ok.ok && ok.reply.pod).toBe(svc.pods[2]!.name);
    expect(lb.stats()).toMatchObject({ hedges: 2, retries: 0 });
    await waitFor(() => svc.pods[0]!.cancelled === 1, { what: 'cancellation' });
    svc.pods[1]!.setBehaviour({ status: grpc.status.NOT_FOUND, details: 'no such order' });
    const fatal = await unary(client, { text: 'x' }, { deadlineMs: 5000 });
    expect(!fatal.ok && [fatal.error.code, fatal.error.details]).toEqual([grpc.status.NOT_FOUND, 'no such order']);
    await waitFor(() => svc.pods[0]!.cancelled === 2, { what: 'cancellation' });
    expect(lb.stats()).toMatchObject({ hedges: 3, retries: 0 });
    // Other methods are not hedged: a server stream goes to the hanging pod alone.
    const stream = await readAll(client.ServerStream({ text: 's' }, new grpc.Metadata(), { deadline: Date.now() + 300 }));
    expect(stream.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(lb.stats().hedges).toBe(3);
  });
});

describe("cancelled hedges and the server's rapid-reset limit", () => {
  it('a pod that closes its connection for too many cancelled streams fails no hedged call', async () => {
    // nghttp2 (Node's http2) closes a connection with INTERNAL_ERROR once its client has reset more
    // than 1000 streams at over 33/s: every loser here is cancelled on the same pod, fast.
    const { svc, lb, client } = await connect(
      2,
      { idempotent: true, hedge: { delayMs: 0 } },
      { hedgeBudget: { percent: 1, minPerSecond: 1000 } },
      true,
    );
    svc.pods[0]!.setBehaviour({ hang: true });
    const { replies, errors } = await unaryLoad(client, 1300, 16);
    expect(errors).toEqual([]);
    expect(replies).toHaveLength(1300);
    expect(replies.every((r) => r.pod === svc.pods[1]!.name)).toBe(true);
    // Each call was hedged, unless its first attempt failed at once (the connection being re-made): then retried.
    const { hedges, retries } = lb.stats();
    expect(hedges).toBeGreaterThan(1000);
    expect(hedges + retries).toBeGreaterThanOrEqual(1300);
  });
});

describe('hedged streams', () => {
  it('server streaming: the first pod to answer commits, the stream comes whole from it, the stalled one is cancelled', async () => {
    const { svc, lb, client } = await connect(
      3,
      { idempotent: true, hedge: { delayMs: HEDGE_DELAY_MS } },
      { hedgeBudget: { percent: 1, minPerSecond: 10 } },
      true,
    );
    svc.pods[0]!.setBehaviour({ delayMs: STALL_MS * 20 });
    const { replies, error } = await readAll(
      client.ServerStream({ text: 's', count: 3 }, new grpc.Metadata(), { deadline: Date.now() + 5000 }),
    );
    expect(error).toBeUndefined();
    expect(replies.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(new Set(replies.map((r) => r.pod)).size).toBe(1);
    expect(replies[0]!.pod).not.toBe(svc.pods[0]!.name);
    expect(lb.stats().hedges).toBe(1);
    await waitFor(() => svc.pods[0]!.cancelled === 1, { what: 'cancellation' });
  });

  function clientStream(client: EchoClient, texts: readonly string[]): Promise<{ reply?: EchoReply; error?: grpc.ServiceError }> {
    return new Promise((resolve) => {
      const call = client.ClientStream(new grpc.Metadata(), { deadline: Date.now() + 5000 }, (error, reply) =>
        resolve(error === null ? { reply: reply! } : { error }),
      );
      for (const text of texts) call.write({ text });
      call.end();
    });
  }

  it('client streaming within the retry buffer: hedged, the hedge gets every message', async () => {
    const { svc, lb, client } = await connect(
      2,
      { idempotent: true, hedge: { delayMs: HEDGE_DELAY_MS }, retryBufferBytes: 1024 },
      { hedgeBudget: { percent: 1, minPerSecond: 10 } },
      true,
    );
    svc.pods[0]!.setBehaviour({ hang: true });
    const texts = ['a', 'b', 'c'];
    const { reply, error } = await clientStream(client, texts);
    expect(error).toBeUndefined();
    expect(reply).toMatchObject({ pod: svc.pods[1]!.name, text: 'a,b,c', seq: 3 });
    expect(lb.stats().hedges).toBe(1);
    await waitFor(() => svc.pods[0]!.cancelled === 1, { what: 'cancellation' });
  });

  it('client streaming beyond the retry buffer: never hedged', async () => {
    const { svc, lb, client } = await connect(
      2,
      { idempotent: true, hedge: { delayMs: HEDGE_DELAY_MS }, retryBufferBytes: 100 },
      { hedgeBudget: { percent: 1, minPerSecond: 10 } },
      true,
    );
    svc.pods[0]!.setBehaviour({ delayMs: STALL_MS });
    const texts = Array.from({ length: 10 }, (_, i) => `message ${i} `.padEnd(40, '.'));
    const { reply, error } = await clientStream(client, texts);
    expect(error).toBeUndefined();
    expect(reply).toMatchObject({ pod: svc.pods[0]!.name, seq: 10 });
    expect(lb.stats().hedges).toBe(0);
    expect(svc.pods[1]!.requests).toBe(0);
  });
});
