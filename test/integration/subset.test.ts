import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '../../src/http/index.js';
import type { Balancer } from '../../src/index.js';
import type { Service } from '../../src/testing/index.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { startLoad } from '../support/load.js';
import { waitFor } from '../support/wait.js';

/**
 * Subsetting end to end on real Knot DNS: 30 testing-kit pods behind a headless Service, three
 * balancers with different client ids, each routing its keyless traffic over its own 5 pods
 * (requests counted at the pods); then a pod crash and a scale-up under load, with no failure.
 */
const TTL = 1;
const SIZE = 5;
const CLIENTS = ['api-0', 'api-1', 'api-2'];
let env: HttpKnotCluster;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL });
});

afterAll(async () => {
  await env?.close();
});

/** The IPs of a balancer's subset members now. */
function memberIps(lb: Balancer): string[] {
  const byId = new Map(lb.endpoints().map((e) => [e.id, e.address]));
  return lb.stats().subset!.members.map((id) => byId.get(id)!);
}

function requestsAtPods(svc: Service): Map<string, number> {
  return new Map(svc.pods.filter((p) => p.requests > 0).map((p) => [p.ip, p.requests]));
}

describe('subsetting over 30 pods behind Knot', () => {
  it('each client reaches only its subset; the pods see the union of the subsets', async () => {
    const svc = await env.cluster.createService({ name: 'subset-spread', replicas: 30 });
    const lbs = CLIENTS.map((clientId) => env.balancer({ service: svc.fqdn, portName: 'http', subset: { size: SIZE, clientId } }));
    await Promise.all(lbs.map((lb) => lb.ready()));
    await waitFor(() => lbs.every((lb) => lb.stats().size === 30), { what: 'every balancer to see 30 pods' });
    const subsets = lbs.map(memberIps);
    for (const subset of subsets) expect(new Set(subset).size).toBe(SIZE);
    // Different client ids, different subsets (the same round: they tile the ring).
    expect(new Set(subsets.map((s) => [...s].sort().join())).size).toBe(CLIENTS.length);

    const results = await Promise.all(lbs.map((lb) => startLoad(lb, { concurrency: 4, maxRequests: 200, maxMs: 20_000 }).finished()));
    const expected = new Map<string, number>();
    results.forEach((result, i) => {
      expect(result.failed).toBe(0);
      expect(result.ok).toBe(200);
      expect([...result.byIp.keys()].sort()).toEqual([...subsets[i]!].sort());
      for (const [ip, count] of result.byIp) expected.set(ip, (expected.get(ip) ?? 0) + count);
    });
    // Counted at the pods: only subset members were called, each as often as the clients say.
    expect(requestsAtPods(svc)).toEqual(expected);
    // Connections, counted at the pods too: none to a pod outside every subset, at most the load's
    // 4 per pod per client to a member.
    const clientsOf = new Map<string, number>();
    for (const subset of subsets) for (const ip of subset) clientsOf.set(ip, (clientsOf.get(ip) ?? 0) + 1);
    for (const pod of svc.pods) {
      const clients = clientsOf.get(pod.ip) ?? 0;
      if (clients === 0) expect(pod.connectionsAccepted).toBe(0);
      else expect(pod.connectionsAccepted).toBeGreaterThanOrEqual(1);
      expect(pod.connectionsAccepted).toBeLessThanOrEqual(4 * clients);
    }
    await svc.delete();
  });

  it('a member crash and a scale-up under load: 0 failed idempotent requests, the subset heals', async () => {
    const svc = await env.cluster.createService({ name: 'subset-churn', replicas: 30 });
    const lbs = CLIENTS.map((clientId) =>
      env.balancer({ service: svc.fqdn, portName: 'http', subset: { size: SIZE, clientId }, refresh: { minMs: 100, maxMs: 1000 } }),
    );
    await Promise.all(lbs.map((lb) => lb.ready()));
    await waitFor(() => lbs.every((lb) => lb.stats().size === 30), { what: 'every balancer to see 30 pods' });
    const before = lbs.map(memberIps);
    const loads = lbs.map((lb) => startLoad(lb, { concurrency: 4, maxMs: 30_000 }));
    try {
      await delay(300);
      // Crash a member of the first client's subset: it stays in DNS and refuses connections.
      const victimIp = before[0]![0]!;
      const victim = svc.pods.find((p) => p.ip === victimIp)!;
      await svc.crashPod(victim.name);
      await waitFor(() => !memberIps(lbs[0]!).includes(victimIp), { what: 'the crashed member to leave the subset' });
      const healed = memberIps(lbs[0]!);
      expect(healed).toHaveLength(SIZE);
      expect(healed.filter((ip) => before[0]!.includes(ip))).toHaveLength(SIZE - 1);
      const replacement = healed.find((ip) => !before[0]!.includes(ip))!;
      await loads[0]!.waitForAnswerFrom(replacement, 5000);

      await svc.scale(33);
      await waitFor(() => lbs.every((lb) => lb.stats().size === 33), { what: 'every balancer to see 33 pods', timeoutMs: 5000 });
      await delay(500);
      // A joining pod changes a subset by at most one member here.
      lbs.forEach((lb, i) => {
        const now = memberIps(lb);
        expect(now).toHaveLength(SIZE);
        if (i > 0) expect(now.filter((ip) => !before[i]!.includes(ip)).length).toBeLessThanOrEqual(1);
      });
    } finally {
      const results = await Promise.all(loads.map((load) => load.stop()));
      for (const result of results) {
        expect(result.failed, result.errors.join('\n')).toBe(0);
        expect(result.ok).toBeGreaterThan(100);
      }
    }
    await svc.delete();
  });

  it('the HTTP dispatcher opens pools only to the subset; the pool of a replaced member closes when idle', async () => {
    const svc = await env.cluster.createService({ name: 'subset-pools', replicas: 30 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http', subset: { size: SIZE, clientId: 'api-4' } });
    await lb.ready();
    await waitFor(() => lb.stats().size === 30, { what: 'the balancer to see 30 pods' });
    const dispatcher = createDispatcher(lb, { idleTimeoutMs: 300 });
    env.onClose(() => dispatcher.close());
    const url = `http://${svc.fqdn}:8080/`;
    const fetchAll = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const res = await request(url, { dispatcher });
        expect(res.statusCode).toBe(200);
        await res.body.text();
      }
    };
    await fetchAll(50);
    expect(dispatcher.stats().pools).toBe(SIZE);
    const victimIp = memberIps(lb)[0]!;
    await svc.crashPod(svc.pods.find((p) => p.ip === victimIp)!.name);
    await fetchAll(50); // idempotent GETs: the refused attempt is retried on another member
    expect(memberIps(lb)).not.toContain(victimIp);
    // The crashed pod is still in DNS: its pool is closed by the idle sweep, not by a pool change;
    // the members' pools, in use, stay.
    let running = true;
    const traffic = (async () => {
      while (running) await fetchAll(1);
    })();
    try {
      await waitFor(() => dispatcher.stats().pools === SIZE, { what: 'pools back to the subset size', timeoutMs: 3000 });
      await delay(500);
      expect(dispatcher.stats().pools).toBe(SIZE);
    } finally {
      running = false;
      await traffic;
    }
    await svc.delete();
  });
});
