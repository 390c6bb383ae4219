import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createGrpcChannel } from '../../src/grpc/index.js';
import { createDispatcher } from '../../src/http/index.js';
import { createBalancer, InvalidOptionError, type Balancer, type BalancerOptions, type Endpoint } from '../../src/index.js';
import { PodChannels } from '../../src/grpc/pod-channels.js';
import { BoundedPods, checkMaxPods, defaultMaxPods, MAX_PODS_LIMIT } from '../../src/pod-bound.js';
import { staticEndpoints } from './support.js';

/** The bound on an adapter's per-pod pools and channels (the adapters' use of it: test/integration/bounded-pools.test.ts). */

let lb: Balancer | undefined;
afterEach(async () => {
  await lb?.close();
  lb = undefined;
});

function balancer(options: Partial<BalancerOptions> = {}, count = 30): Balancer {
  lb = createBalancer({ endpoints: staticEndpoints(count), ...options } as BalancerOptions);
  return lb;
}

describe('BoundedPods', () => {
  it('evicts the least recently used pod when one more is set, and counts it', () => {
    const endpoints = balancer({}, 5).endpoints();
    const evicted: string[] = [];
    const pods = new BoundedPods<{ id: string }>(3, (value, endpoint) => {
      expect(value.id).toBe(endpoint.id);
      evicted.push(value.id);
    });
    const [a, b, c, d, e] = endpoints as [Endpoint, Endpoint, Endpoint, Endpoint, Endpoint];
    for (const endpoint of [a, b, c]) pods.set(endpoint, { id: endpoint.id });
    expect(pods.get(a)?.id).toBe(a.id); // a is now the most recent: b is the least
    pods.set(d, { id: d.id });
    expect(evicted).toEqual([b.id]);
    expect(pods.peek(c)?.id).toBe(c.id); // peek leaves c the least recent
    pods.set(e, { id: e.id });
    expect(evicted).toEqual([b.id, c.id]);
    expect(pods.size).toBe(3);
    expect(pods.evictions).toBe(2);
    expect(pods.entries().map(([endpoint]) => endpoint.id)).toEqual([e.id, d.id, a.id]);
  });

  it('does not report deletes, replacements or clear() as evictions', () => {
    const [a, b] = balancer({}, 2).endpoints() as [Endpoint, Endpoint];
    const evicted: string[] = [];
    const pods = new BoundedPods<{ id: string }>(2, (value) => evicted.push(value.id));
    pods.set(a, { id: 'a1' });
    pods.set(a, { id: 'a2' });
    pods.set(b, { id: 'b' });
    pods.delete(a);
    expect(pods.has(a)).toBe(false);
    pods.clear();
    expect(evicted).toEqual([]);
    expect(pods.evictions).toBe(0);
  });

  it('holds any number of pods when unbounded', () => {
    const endpoints = balancer({}, 200).endpoints();
    const pods = new BoundedPods<{ n: number }>(Number.POSITIVE_INFINITY, () => expect.unreachable());
    endpoints.forEach((endpoint, n) => pods.set(endpoint, { n }));
    expect(pods.size).toBe(200);
    expect(pods.max).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('maxPods', () => {
  it('accepts integers from 1 and Infinity', () => {
    expect(checkMaxPods(1, 'maxPods')).toBe(1);
    expect(checkMaxPods(MAX_PODS_LIMIT, 'maxPods')).toBe(MAX_PODS_LIMIT);
    expect(checkMaxPods(Number.POSITIVE_INFINITY, 'maxPods')).toBe(Number.POSITIVE_INFINITY);
  });

  it('rejects anything else with an error naming the field and the value', () => {
    const valid = (v: unknown): boolean =>
      v === Number.POSITIVE_INFINITY || (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_PODS_LIMIT);
    fc.assert(
      fc.property(
        fc.anything().filter((v) => !valid(v)),
        (value) => {
          let thrown: unknown;
          try {
            checkMaxPods(value, 'maxPods');
          } catch (error) {
            thrown = error;
          }
          expect(thrown).toBeInstanceOf(InvalidOptionError);
          expect(thrown).toMatchObject({ field: 'maxPods', value });
        },
      ),
    );
    for (const value of [0, -1, 1.5, Number.NaN, Number.NEGATIVE_INFINITY, MAX_PODS_LIMIT + 1, '10', null]) {
      expect(() => checkMaxPods(value, 'maxPods')).toThrow(InvalidOptionError);
    }
  });

  it('defaults to twice the subset size with subsetting, else to no bound', () => {
    expect(defaultMaxPods(balancer({ subset: { size: 7, clientId: 'api-1' } }))).toBe(14);
    expect(defaultMaxPods({})).toBe(Number.POSITIVE_INFINITY);
  });

  it('is an option of the dispatcher and of the gRPC channel, shown in their stats', async () => {
    const subsetted = balancer({ subset: { size: 5, clientId: 'api-1' } });
    const dispatcher = createDispatcher(subsetted);
    expect(dispatcher.stats()).toMatchObject({ pools: 0, pods: 0, maxPods: 10, evictions: 0 });
    const bounded = createDispatcher(subsetted, { maxPods: 3 });
    expect(bounded.stats().maxPods).toBe(3);
    expect(() => createDispatcher(subsetted, { maxPods: 0 })).toThrow(/Invalid option maxPods: 0/);
    const credentials = grpc.credentials.createInsecure();
    const channel = createGrpcChannel(subsetted, { credentials });
    expect(channel.stats()).toMatchObject({ channels: 0, maxPods: 10, evictions: 0 });
    const unbounded = createGrpcChannel(subsetted, { credentials, maxPods: Number.POSITIVE_INFINITY });
    expect(unbounded.stats().maxPods).toBe(Number.POSITIVE_INFINITY);
    expect(() => createGrpcChannel(subsetted, { credentials, maxPods: 2.5 })).toThrow(/Invalid option maxPods: 2.5/);
    await Promise.all([dispatcher.close(), bounded.close(), channel.close(), unbounded.close()]);
    expect(subsetted.stats().endpoints.every((e) => e.pools === 0)).toBe(true);
  });
});

describe('an evicted gRPC pod channel', () => {
  // Channels to a port nothing listens on, never asked to connect: no socket is opened.
  it('closes when its calls end, with no time limit; with the drain timeout once its pod leaves', async () => {
    const [a, b, c] = balancer({}, 3).endpoints() as [Endpoint, Endpoint, Endpoint];
    const channels = new PodChannels(
      grpc.credentials.createInsecure(),
      () => ({}),
      50,
      1,
      () => {},
    );
    const first = channels.acquire(a);
    first.callStarted(); // a call in flight on it
    expect(channels.acquire(b)).not.toBe(first); // one more pod: the first is evicted
    expect(channels.stats()).toMatchObject({ channels: 1, maxPods: 1, evictions: 1, draining: 1, active: 1 });
    expect(a.openPools).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 120)); // longer than the drain timeout: still open
    expect(first.isClosed).toBe(false);
    channels.onChange({ added: [], removed: [a], updated: [], readdressed: [], endpoints: [b] });
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(first.isClosed).toBe(true);
    expect(channels.stats()).toMatchObject({ channels: 1, draining: 0 });
    expect(a.openPools).toBe(0);

    // An evicted channel whose calls end closes at once.
    const third = channels.acquire(c); // evicts b's, idle
    expect(b.openPools).toBe(0); // closed at once
    await new Promise((resolve) => setImmediate(resolve));
    expect(channels.stats()).toMatchObject({ evictions: 2, draining: 0 });
    expect(third.isClosed).toBe(false);
    await channels.close();
    expect(a.openPools + b.openPools + c.openPools).toBe(0);
  });
});
