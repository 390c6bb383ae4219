import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcChannel } from '../../src/grpc/index.js';
import { createDispatcher, type HeadlessDispatcher } from '../../src/http/index.js';
import { createBalancer, type Balancer } from '../../src/index.js';
import { LoopbackBlock } from '../../src/testing/loopback.js';
import { loadEcho, startGrpcPod, type GrpcPod } from '../support/grpc-pods.js';
import { keyed, unary } from '../support/grpc-unary.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { waitFor } from '../support/wait.js';

/**
 * `maxPods`: a dispatcher (over real Knot DNS and testing-kit pods) and a gRPC channel (over
 * grpc-js pods) whose keyed traffic reaches more pods than the bound: the least recently used
 * pod's pool or channel closes, requests in flight on it finish, none fails; connections are
 * counted at the pods.
 */
let env: HttpKnotCluster;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: 1 });
});

afterAll(async () => {
  await env?.close();
});

/** A key that the shard-key picker sends to each pod (by endpoint id). */
function keysByPod(lb: Balancer): Map<string, string> {
  const keys = new Map<string, string>();
  for (let i = 0; keys.size < lb.endpoints().length && i < 10_000; i++) {
    const id = lb.pick({ key: `k-${i}` }).id;
    if (!keys.has(id)) keys.set(id, `k-${i}`);
  }
  return keys;
}

async function get(dispatcher: HeadlessDispatcher, url: string, key: string): Promise<{ status: number; pod: string }> {
  const res = await request(url, { dispatcher, headers: { 'x-key': key } });
  const body = (await res.body.json()) as { pod: string };
  return { status: res.statusCode, pod: body.pod };
}

describe('HTTP dispatcher with maxPods', () => {
  it('keyed traffic over 12 pods through 4 pools: no failure, never more than 4 pods, evictions counted', async () => {
    const svc = await env.cluster.createService({ name: 'bounded-http', replicas: 12, behaviour: { delayMs: 5 } });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http', picker: 'shard-key' });
    await lb.ready();
    await waitFor(() => lb.stats().size === 12, { what: 'the balancer to see 12 pods' });
    const dispatcher = createDispatcher(lb, { keyHeader: 'x-key', maxPods: 4 });
    env.onClose(() => dispatcher.close());
    const url = `http://${svc.fqdn}:8080/`;
    let most = 0;
    let failed = 0;
    const seen = new Set<string>();
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        try {
          const { status, pod } = await get(dispatcher, url, `user-${(w * 7 + i * 13) % 97}`);
          if (status !== 200) failed++;
          seen.add(pod);
        } catch {
          failed++;
        }
        most = Math.max(most, dispatcher.stats().pods);
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    expect(failed).toBe(0);
    expect(seen.size).toBe(12);
    expect(most).toBe(4);
    const stats = dispatcher.stats();
    expect(stats).toMatchObject({ pods: 4, pools: 4, maxPods: 4 });
    expect(stats.evictions).toBeGreaterThan(10);
    // Evicted pools close once idle: then connections stay open at 4 pods only, counted at the pods.
    await waitFor(() => dispatcher.stats().draining === 0, { what: 'evicted pools to close' });
    await waitFor(() => svc.pods.filter((p) => p.connections > 0).length <= 4, { what: 'the pods to see closed connections' });
    const withPools = lb.stats().endpoints.filter((e) => e.pools > 0);
    expect(withPools).toHaveLength(4);
    await svc.delete();
  });

  it('a request in flight on an evicted pool finishes; the pool closes after it', async () => {
    const svc = await env.cluster.createService({ name: 'bounded-inflight', replicas: 2 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http', picker: 'shard-key' });
    await lb.ready();
    await waitFor(() => lb.stats().size === 2, { what: 'the balancer to see 2 pods' });
    const dispatcher = createDispatcher(lb, { keyHeader: 'x-key', maxPods: 1 });
    env.onClose(() => dispatcher.close());
    const url = `http://${svc.fqdn}:8080/`;
    const keys = keysByPod(lb);
    const [slowId, fastId] = [...keys.keys()] as [string, string];
    const slowPod = svc.pods.find((p) => lb.endpoints().find((e) => e.id === slowId)!.address === p.ip)!;
    svc.setBehaviour(slowPod.name, { delayMs: 600 });
    const slow = get(dispatcher, url, keys.get(slowId)!);
    await waitFor(() => dispatcher.stats().active === 1, { what: 'the slow request to be sent' });
    expect(await get(dispatcher, url, keys.get(fastId)!)).toMatchObject({ status: 200 });
    expect(dispatcher.stats()).toMatchObject({ pods: 1, evictions: 1, draining: 1, active: 1 });
    expect(await slow).toEqual({ status: 200, pod: slowPod.name });
    await waitFor(() => dispatcher.stats().draining === 0, { what: 'the evicted pool to close' });
    expect(lb.stats().endpoints.map((e) => [e.id, e.pools])).toEqual(
      expect.arrayContaining([
        [slowId, 0],
        [fastId, 1],
      ]),
    );
    await svc.delete();
  });
});

describe('gRPC channel with maxPods', () => {
  const Echo = loadEcho();
  const addresses = new LoopbackBlock();
  const pods: GrpcPod[] = [];
  let port = 0;

  beforeAll(async () => {
    const first = await startGrpcPod('pod-0', addresses.next(), 0);
    port = first.port;
    pods.push(first);
    for (let i = 1; i < 6; i++) pods.push(await startGrpcPod(`pod-${i}`, addresses.next(), port));
  });

  afterAll(async () => {
    await Promise.all(pods.map((pod) => pod.crash()));
  });

  it('keyed calls over 6 pods through 2 channels: no failure, in-flight calls on evicted channels finish', async () => {
    const lb = createBalancer({ endpoints: pods.map((pod) => ({ address: pod.address, port, name: pod.name })), picker: 'shard-key' });
    const channel = createGrpcChannel(lb, { credentials: grpc.credentials.createInsecure(), keyMetadata: 'x-shard-key', maxPods: 2 });
    const client = channel.client(Echo);
    env.onClose(async () => {
      client.close();
      await channel.close();
      await lb.close();
    });
    let most = 0;
    let failed = 0;
    const answered = new Set<string>();
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 30; i++) {
        const result = await unary(client, { text: 'x', delayMs: 20 }, { metadata: keyed(`user-${(w * 5 + i * 11) % 53}`) });
        if (result.ok) answered.add(result.reply.pod);
        else failed++;
        most = Math.max(most, channel.stats().channels);
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
    expect(failed).toBe(0);
    expect(answered.size).toBe(6);
    expect(most).toBe(2);
    expect(channel.stats().evictions).toBeGreaterThan(5);
    await waitFor(() => channel.stats().draining === 0, { what: 'evicted channels to close' });
    await waitFor(() => pods.filter((p) => p.connections > 0).length <= 2, { what: 'the pods to see closed connections' });
    expect(lb.stats().endpoints.filter((e) => e.pools > 0)).toHaveLength(2);
  });
});
