import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { startUnbound, type UnboundCache } from '../support/unbound.js';
import { sleep, waitFor } from '../support/wait.js';

/**
 * Discovery through a real caching resolver: Unbound in front of Knot (stub zone cluster.local),
 * as CoreDNS's `cache` or NodeLocal DNSCache sit between a pod and the cluster's DNS. Answers
 * come from Unbound's copy with the TTL counting down, and a record published to Knot reaches a
 * client only once that copy has expired.
 */
const TTL = 3; // seconds: CoreDNS uses 5; shorter keeps the file quick
/**
 * Publications this long before the cache's copy expires, s: from early in a copy's life to its
 * last moments (those last, when the balancer has followed the cache for a few copies).
 */
const OFFSETS = [TTL - 0.3, 1.7, 0.9, 0.25];

let env: HttpKnotCluster;
let unbound: UnboundCache;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL });
  unbound = await startUnbound({ upstreamPort: env.knot.port });
});

afterAll(async () => {
  await env?.close();
  await unbound?.close();
});

describe('behind a caching resolver', () => {
  it(`sees a scaled-up pod within TTL + 1 s of its record, whenever the cache's copy expires`, async () => {
    const svc = await env.cluster.createService({ name: 'cached', replicas: 2 });
    const lb = env.balancer({ service: svc.fqdn, port: 8080, dnsServers: [unbound.address] });
    const pod = (i: number): string => `cached-${2 + i}`;
    const ttls: number[] = [];
    lb.on('resolve', (event) => ttls.push(event.ttlMs / 1000));
    await lb.ready({ timeoutMs: 5000 });
    // The answers count down: the cache is in the way.
    await waitFor(() => ttls.some((ttl) => ttl < TTL), { timeoutMs: (TTL + 2) * 1000, what: 'a counted-down TTL' });

    const took: number[] = [];
    for (const [i, offset] of OFFSETS.entries()) {
      // Publish `offset` s before the copy expires (the next copy's, if this one is too close to its end).
      let expiry = await unbound.copyExpiry(svc.fqdn);
      while (expiry - offset * 1000 < Date.now() + 50) {
        await sleep(expiry + 100 - Date.now());
        expiry = await unbound.copyExpiry(svc.fqdn);
      }
      await sleep(expiry - offset * 1000 - Date.now());
      await svc.scale(3 + i);
      const published = performance.now();
      const ip = svc.pod(pod(i)).ip;
      await waitFor(() => lb.endpoints().some((e) => e.address === ip), {
        timeoutMs: (TTL + 3) * 1000,
        intervalMs: 2,
        what: `pod ${pod(i)} in the pool`,
      });
      took.push(performance.now() - published);
    }
    expect(
      took.every((ms) => ms < TTL * 1000 + 1000),
      `ms from publication to the pool, at ${OFFSETS.join(', ')} s before expiry: ${took.map(Math.round).join(', ')}`,
    ).toBe(true);
  }, 40_000);
});
