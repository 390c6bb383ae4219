import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Balancer } from '../../src/index.js';
import { createGrpcChannel } from '../../src/grpc/index.js';
import { loadEcho, type EchoClient, type GrpcService } from '../support/grpc-pods.js';
import { unary } from '../support/grpc-unary.js';
import { startKnotCluster, type GrpcKnotCluster } from '../support/knot-cluster.js';
import { sleep } from '../support/wait.js';

/**
 * Server pushback (gRFC A6's `grpc-retry-pushback-ms` trailer) against a real Knot DNS and real
 * grpc-js pods on 127.x that answer UNAVAILABLE with it: the same attempts as a plain grpc-js
 * client with the same service config where A6 is unambiguous, and A6's rule where grpc-js
 * bends it (a malformed or out-of-range value: no retry).
 */
const Echo = loadEcho();
const insecure = grpc.credentials.createInsecure();
const UNARY = { service: 'hlb.test.Echo', method: 'Unary' };
/** A backoff long enough (5 s) that a retry well within a second can only be the pushback's. */
const SLOW_RETRY = { maxAttempts: 3, initialBackoff: '5s', maxBackoff: '5s', backoffMultiplier: 2, retryableStatusCodes: ['UNAVAILABLE'] };
const HEDGED = { maxAttempts: 3, hedgingDelay: '5s', nonFatalStatusCodes: ['UNAVAILABLE'] };
let env: GrpcKnotCluster;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: 2, pods: 'grpc' });
});

afterAll(async () => {
  await env?.close();
});

interface Clients {
  readonly lb: Balancer;
  readonly svc: GrpcService;
  readonly headless: EchoClient;
  readonly plain: EchoClient;
}

async function clients(name: string, policy: Record<string, unknown>): Promise<Clients> {
  const svc = await env.cluster.createService({ name, replicas: 3 });
  const json = JSON.stringify({ methodConfig: [{ name: [UNARY], ...policy }] });
  // random() near 1: each backoff is near its ceiling (5 s), never short by chance.
  const lb = env.balancer({ service: svc.fqdn, portName: 'grpc', outlierDetection: false, retryBudget: false, random: () => 0.999 });
  const channel = createGrpcChannel(lb, { credentials: insecure, serviceConfig: json });
  const headless = channel.client(Echo);
  const plain = new Echo(`ipv4:${svc.pods.map((pod) => `${pod.address}:${svc.port}`).join(',')}`, insecure, {
    'grpc.service_config': json,
  }) as EchoClient;
  env.onClose(async () => {
    headless.close();
    plain.close();
    await channel.close();
  });
  await lb.ready();
  return { lb, svc, headless, plain };
}

function requests(svc: GrpcService): number {
  return svc.pods.reduce((n, pod) => n + pod.requests, 0);
}

/** One call with every pod answering UNAVAILABLE and this pushback: attempts at the pods, time taken, code. */
async function call(
  { svc }: Clients,
  client: EchoClient,
  pushback: string | readonly string[],
): Promise<{ attempts: number; ms: number; code: number | undefined }> {
  for (const pod of svc.pods) pod.setBehaviour({ status: grpc.status.UNAVAILABLE, trailers: { 'grpc-retry-pushback-ms': pushback } });
  const before = requests(svc);
  const started = performance.now();
  const result = await unary(client, { text: 'x' }, { deadlineMs: 8000 });
  return { attempts: requests(svc) - before, ms: Math.round(performance.now() - started), code: result.ok ? undefined : result.error.code };
}

describe('retryPolicy with server pushback', () => {
  it('0: retried at once; negative: not retried; as grpc-js does', async () => {
    const c = await clients('pushback-retry', { retryPolicy: SLOW_RETRY });
    const rows = [];
    for (const value of ['0', '-1', '-500']) {
      const grpcJs = await call(c, c.plain, value);
      const headless = await call(c, c.headless, value);
      rows.push({ value, grpcJs: grpcJs.attempts, headless: headless.attempts, grpcJsMs: grpcJs.ms, headlessMs: headless.ms });
      expect(headless.code).toBe(grpc.status.UNAVAILABLE);
      expect(headless.attempts, value).toBe(grpcJs.attempts);
    }
    console.table(rows);
    expect(rows.map((r) => r.headless)).toEqual([3, 1, 1]);
    expect(rows[0]!.headlessMs).toBeLessThan(2000); // not the 5 s backoff
  });

  it('a positive value: the retry waits that long, not the backoff', async () => {
    const c = await clients('pushback-wait', { retryPolicy: { ...SLOW_RETRY, maxAttempts: 2 } });
    const headless = await call(c, c.headless, '300');
    expect(headless.attempts).toBe(2);
    expect(headless.ms).toBeGreaterThanOrEqual(290);
    expect(headless.ms).toBeLessThan(2500);
  });

  it('malformed, repeated or beyond 2^31−1 ms: not retried (A6: unparseable)', async () => {
    const c = await clients('pushback-bad', { retryPolicy: SLOW_RETRY });
    // (A value with leading or trailing space never arrives: HTTP/2 drops such a field.)
    for (const value of ['abc', '12abc', '+5', '1.5', String(2 ** 31), ['0', '0']]) {
      const headless = await call(c, c.headless, value);
      expect([value, headless.attempts, headless.code]).toEqual([value, 1, grpc.status.UNAVAILABLE]);
    }
  });

  it('a method without a service-config policy ignores it', async () => {
    const svc = await env.cluster.createService({ name: 'pushback-none', replicas: 3 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'grpc', outlierDetection: false, retryBudget: false });
    const channel = createGrpcChannel(lb, { credentials: insecure, idempotent: true, retries: 2 });
    const client = channel.client(Echo);
    env.onClose(async () => {
      client.close();
      await channel.close();
    });
    await lb.ready();
    const result = await call({ lb, svc, headless: client, plain: client }, client, '-1');
    expect(result.attempts).toBe(3); // the channel's own retries, pushback not read
  });
});

/** Starts a call without deadline, cancels it once a pod failed it (pushback 10 min), and says what stayed. */
async function cancelDuringWait(c: Clients): Promise<{ code: number; inflight: number; attempts: number }> {
  for (const pod of c.svc.pods) pod.setBehaviour({ status: grpc.status.UNAVAILABLE, trailers: { 'grpc-retry-pushback-ms': '600000' } });
  const before = requests(c.svc);
  let call: grpc.ClientUnaryCall | undefined;
  const ended = new Promise<number>((resolve) => {
    call = c.headless.Unary({ text: 'x' }, (error) => resolve(error?.code ?? grpc.status.OK));
  });
  while (requests(c.svc) === before) await sleep(5);
  await sleep(50); // the balancer waits out the pushback now
  expect(c.lb.stats().inflight).toBe(1);
  call!.cancel();
  const code = await ended;
  await sleep(20);
  return { code, inflight: c.lb.stats().inflight, attempts: requests(c.svc) - before };
}

describe('a call cancelled while the balancer waits out a pushback', () => {
  it('leaves nothing in the balancer: no timer, no live call (retry and hedging policies)', async () => {
    for (const [name, policy] of [
      ['pushback-cancel', { retryPolicy: SLOW_RETRY }],
      ['pushback-cancel-hedge', { hedgingPolicy: HEDGED }],
    ] as const) {
      const c = await clients(name, policy);
      expect([name, await cancelDuringWait(c)]).toEqual([name, { code: grpc.status.CANCELLED, inflight: 0, attempts: 1 }]);
    }
  });
});

describe('hedgingPolicy with server pushback', () => {
  it('negative: no more hedges; 0: the next hedge at once; as grpc-js does', async () => {
    const c = await clients('pushback-hedge', { hedgingPolicy: HEDGED });
    const rows = [];
    for (const value of ['-1', '0']) {
      const grpcJs = await call(c, c.plain, value);
      const headless = await call(c, c.headless, value);
      rows.push({ value, grpcJs: grpcJs.attempts, headless: headless.attempts, grpcJsMs: grpcJs.ms, headlessMs: headless.ms });
      expect(headless.code).toBe(grpc.status.UNAVAILABLE);
      expect(headless.attempts, value).toBe(grpcJs.attempts);
    }
    console.table(rows);
    expect(rows.map((r) => r.headless)).toEqual([1, 3]);
    expect(rows[1]!.headlessMs).toBeLessThan(2000); // not the 5 s hedging delay
  });

  it('a positive value: the next hedge after that wait, not the hedging delay', async () => {
    const c = await clients('pushback-hedge-wait', { hedgingPolicy: { ...HEDGED, maxAttempts: 2 } });
    const headless = await call(c, c.headless, '300');
    expect(headless.attempts).toBe(2);
    expect(headless.ms).toBeGreaterThanOrEqual(290);
    expect(headless.ms).toBeLessThan(2500);
  });
});
