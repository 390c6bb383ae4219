import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptStartMessage, BalancerOptions } from '../../src/index.js';
import type { GrpcChannelOptions } from '../../src/grpc/index.js';
import type { EchoClient, EchoReply } from '../support/grpc-pods.js';
import { startKnotCluster, type GrpcKnotCluster } from '../support/knot-cluster.js';
import { sleep, waitFor } from '../support/wait.js';
import { echoOverPods, type EchoOverPods } from '../support/grpc-echo-client.js';

/**
 * headless-lb/grpc against a real Knot DNS and real grpc-js pods on 127.x: spread, shard-key
 * stickiness, scale-up seen by existing clients, pod crashes, drains on scale-down, restarts.
 * Loads are closed loops of a few calls in flight, bounded in count and time.
 */
const TTL = 2;
let env: GrpcKnotCluster;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL, pods: 'grpc' });
});

afterAll(async () => {
  await env?.close();
});

function connect(service: string, options: Partial<GrpcChannelOptions> = {}, lbOptions: Partial<BalancerOptions> = {}): EchoOverPods {
  return echoOverPods(env, service, { keyMetadata: 'x-shard-key', ...options }, lbOptions);
}

function call(client: EchoClient, request: { text?: string; delayMs?: number }, key?: string, deadlineMs = 5000): Promise<EchoReply> {
  const metadata = new grpc.Metadata();
  if (key !== undefined) metadata.set('x-shard-key', key);
  return new Promise((resolve, reject) => {
    client.Unary(request, metadata, { deadline: Date.now() + deadlineMs }, (error, reply) => (error ? reject(error) : resolve(reply!)));
  });
}

interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  readonly errors: readonly string[];
  readonly byPod: ReadonlyMap<string, number>;
}

/** A closed loop of `concurrency` unary calls, bounded by `maxRequests` and `maxMs`. */
function startLoad(client: EchoClient, options: { concurrency?: number; maxRequests?: number; maxMs?: number; delayMs?: number } = {}) {
  const concurrency = options.concurrency ?? 8;
  const maxRequests = options.maxRequests ?? 100_000;
  const deadline = performance.now() + (options.maxMs ?? 20_000);
  const byPod = new Map<string, number>();
  const byAddress = new Map<string, number>();
  const firstAnswer = new Map<string, number>();
  const errors: string[] = [];
  let ok = 0;
  let failed = 0;
  let started = 0;
  let running = true;
  const worker = async (): Promise<void> => {
    while (running && started < maxRequests && performance.now() < deadline) {
      started++;
      try {
        const reply = await call(client, { text: 'load', delayMs: options.delayMs ?? 0 });
        ok++;
        byPod.set(reply.pod, (byPod.get(reply.pod) ?? 0) + 1);
        byAddress.set(reply.address, (byAddress.get(reply.address) ?? 0) + 1);
        if (!firstAnswer.has(reply.address)) firstAnswer.set(reply.address, performance.now());
      } catch (error) {
        failed++;
        if (errors.length < 20) errors.push(String((error as Error).message));
      }
    }
  };
  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  const snapshot = (): LoadResult => ({ ok, failed, errors: [...errors], byPod: new Map(byPod) });
  return {
    firstAnswer,
    byAddress,
    snapshot,
    async stop(): Promise<LoadResult> {
      running = false;
      await workers;
      return snapshot();
    },
    async finished(): Promise<LoadResult> {
      await workers;
      return snapshot();
    },
  };
}

describe('spread', () => {
  it('spreads unary calls evenly over the pods (round-robin)', async () => {
    const svc = await env.cluster.createService({ name: 'spread', replicas: 3 });
    const { lb, client, channel } = connect(svc.fqdn);
    await lb.ready();
    const result = await startLoad(client, { concurrency: 6, maxRequests: 300 }).finished();
    expect(result.failed).toBe(0);
    expect([...result.byPod.values()].sort()).toEqual([100, 100, 100]);
    expect(channel.stats().channels).toBe(3);
  });
});

describe('shard keys', () => {
  it('keeps every key on its pod, across calls and across a pod restart with a new IP', async () => {
    const svc = await env.cluster.createService({ name: 'shards', replicas: 4 });
    const { lb, client, channel } = connect(svc.fqdn, {}, { picker: 'shard-key' });
    await lb.ready();
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const home = new Map<string, string>();
    for (const key of keys) home.set(key, (await call(client, { text: key }, key)).pod);
    expect(new Set(home.values()).size).toBe(4);
    for (const key of keys) expect((await call(client, { text: key }, key)).pod).toBe(home.get(key));

    const moved = svc.pods[1]!;
    const changed = new Promise((resolve) => lb.once('change', resolve));
    const fresh = await svc.restartPod(moved.name);
    await changed;
    for (const key of keys) {
      const reply = await call(client, { text: key }, key);
      expect(reply.pod).toBe(home.get(key));
      if (reply.pod === moved.name) expect(reply.address).toBe(fresh.address);
    }
    // The channel to the old address was drained and closed; one channel per pod remains.
    expect(channel.stats()).toMatchObject({ channels: 4, draining: 0 });
  });
});

describe('scale-up', () => {
  it('existing clients send to a new pod within TTL + 1 s', async () => {
    const svc = await env.cluster.createService({ name: 'grow', replicas: 2 });
    const { lb, client } = connect(svc.fqdn);
    await lb.ready();
    const load = startLoad(client, { concurrency: 4, maxMs: 15_000 });
    await sleep(500);
    await svc.scale(3);
    const published = performance.now();
    const added = svc.pods[2]!;
    let seenAfter = Number.POSITIVE_INFINITY;
    while (performance.now() - published < (TTL + 2) * 1000) {
      const first = load.firstAnswer.get(added.address);
      if (first !== undefined) {
        seenAfter = first - published;
        break;
      }
      await sleep(20);
    }
    const result = await load.stop();
    expect(result.failed).toBe(0);
    console.log(`scale-up: new pod answered ${Math.round(seenAfter)} ms after DNS changed`);
    expect(seenAfter).toBeLessThanOrEqual((TTL + 1) * 1000);
    expect(result.byPod.get(added.name) ?? 0).toBeGreaterThan(0);
  });
});

describe('pod crash', () => {
  it('zero failed calls when a pod dies under load (idempotent methods)', async () => {
    const svc = await env.cluster.createService({ name: 'crash-idem', replicas: 3 });
    const { lb, client } = connect(svc.fqdn, { idempotent: ['/hlb.test.Echo/*'] });
    await lb.ready();
    const ejected = new Promise((resolve) => lb.once('eject', resolve));
    const load = startLoad(client, { concurrency: 8, maxMs: 10_000, maxRequests: 3000, delayMs: 5 });
    await sleep(300);
    const dead = svc.pods[1]!;
    await svc.crashPod(dead.name); // still in DNS: reconnects are refused
    await ejected;
    await sleep(300);
    const result = await load.stop();
    if (result.errors.length > 0) console.log('failed calls:', result.errors);
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(20);
  });

  it('non-idempotent calls: only calls caught in flight on the dying pod fail; refused ones fail over', async () => {
    const svc = await env.cluster.createService({ name: 'crash-post', replicas: 3 });
    const { lb, client, channel } = connect(svc.fqdn, {}, { outlierDetection: false });
    await lb.ready();
    const load = startLoad(client, { concurrency: 8, maxMs: 10_000, maxRequests: 1500, delayMs: 5 });
    await sleep(300);
    const dead = svc.pods[0]!;
    const deadChannel = [...channel.pods.channels()].find((p) => p.endpoint.address === dead.address)!;
    await svc.crashPod(dead.name); // not ejected: every third pick is a refused connection
    await waitFor(() => deadChannel.state !== grpc.connectivityState.READY, { what: 'the client read the reset' });
    await sleep(50); // calls that were on the wire have failed by now
    const beforeTail = load.snapshot();
    const result = await load.finished();
    console.log(`crash-post: ${result.failed} failed, ${result.ok} ok`);
    expect(result.failed).toBeLessThanOrEqual(8);
    expect(result.errors.every((e) => /UNAVAILABLE/.test(e))).toBe(true);
    // Everything after the crash was noticed succeeded, although a third of the picks hit the dead pod.
    expect(result.failed).toBe(beforeTail.failed);
    expect(result.ok - beforeTail.ok).toBeGreaterThan(200);
  });
});

describe('scale-down', () => {
  it('drains: calls in flight on removed pods finish, zero fail, their channels close afterwards', async () => {
    const svc = await env.cluster.createService({ name: 'shrink', replicas: 4 });
    const { lb, client, channel } = connect(svc.fqdn);
    await lb.ready();
    const load = startLoad(client, { concurrency: 8, maxMs: 15_000, delayMs: 150 });
    await sleep(600);
    const leavingPods = svc.pods.slice(2);
    const leaving = new Set(leavingPods.map((pod) => pod.address));
    let removedAt = Number.POSITIVE_INFINITY;
    const lateAttempts: string[] = [];
    const onAttempt = (message: unknown): void => {
      const m = message as AttemptStartMessage;
      if (m.service === lb.service && leaving.has(m.endpoint.address) && performance.now() > removedAt)
        lateAttempts.push(m.endpoint.address);
    };
    subscribe('headless-lb:attempt:start', onAttempt);
    lb.once('change', () => (removedAt = performance.now()));
    // Out of DNS, then at once a graceful stop (GOAWAY, in-flight calls finish; 3 s grace period),
    // as a pod without a preStop hook: calls picked before the client re-resolves fail over.
    const inFlightAtStop = leavingPods.reduce((n, pod) => n + pod.inflight, 0);
    await svc.scale(2, 3000);
    await sleep(500);
    const result = await load.stop();
    unsubscribe('headless-lb:attempt:start', onAttempt);
    expect(inFlightAtStop).toBeGreaterThan(0); // the removed pods were busy when they were stopped
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(removedAt).toBeLessThan(Number.POSITIVE_INFINITY);
    expect(lateAttempts).toEqual([]); // no call went to a removed pod once the client saw the change
    expect(channel.stats()).toMatchObject({ channels: 2, draining: 0 });
  });
});
