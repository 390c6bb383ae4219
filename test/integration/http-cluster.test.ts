import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { PoolChange } from '../../src/index.js';
import { createDispatcher, type HeadlessDispatcher } from '../../src/http/index.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { waitFor } from '../support/wait.js';

/**
 * End to end on real Knot DNS: a headless Service (SRV, TTL 1 s) whose testing-kit pods are
 * scaled, crash and restart with new IPs while global `fetch` traffic flows through the
 * dispatcher. Every request must succeed.
 */
describe('createDispatcher on a live headless Service (Knot DNS)', () => {
  let env: HttpKnotCluster | undefined;
  let dispatcher: HeadlessDispatcher | undefined;

  afterEach(async () => {
    await dispatcher?.close();
    await env?.close();
  });

  it('serves global fetch traffic through scale-up, a crash, a restart with a new IP and a scale-down with zero failures', async () => {
    const ttlMs = 1000;
    env = await startKnotCluster({ ttl: ttlMs / 1000 });
    const web = await env.cluster.createService({
      name: 'web-headless',
      replicas: 3,
      port: 8080,
      portName: 'http',
      podPrefix: 'web',
      behaviour: { delayMs: 5 },
    });
    const lb = env.balancer({ service: web.fqdn, portName: 'http', refresh: { minMs: 100, maxMs: 1000 } });
    await lb.ready({ timeoutMs: 5000 });
    dispatcher = createDispatcher(lb);
    const changes: PoolChange[] = [];
    lb.on('change', (change) => changes.push(change));

    const served = new Map<string, number>();
    const failures: unknown[] = [];
    let running = true;
    let requests = 0;
    let newIp: string | undefined;
    const url = `http://${web.fqdn}:8080/`;
    const worker = async (): Promise<void> => {
      while (running && requests < 20_000) {
        requests++;
        try {
          const res = await fetch(url, { dispatcher } as RequestInit);
          const body = (await res.json()) as { pod: string };
          if (res.status !== 200) failures.push(res.status);
          served.set(body.pod, (served.get(body.pod) ?? 0) + 1);
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, worker));

    try {
      await delay(300);
      // The existing client reaches the new pod within TTL + 1 s of its DNS record (scale() resolves
      // once Knot serves it).
      await web.scale(4);
      const scaledAt = performance.now();
      await waitFor(() => (served.get('web-3') ?? 0) > 0, { what: 'web-3 to get traffic' });
      expect(performance.now() - scaledAt).toBeLessThan(ttlMs + 1000);
      await waitFor(() => (served.get('web-3') ?? 0) > 20, { what: 'web-3 to get more traffic' });
      await web.crashPod('web-1');
      await delay(300);
      const oldIp = web.pod('web-2').ip;
      await web.restartPod('web-2', { gracePeriodMs: 2000 });
      newIp = web.pod('web-2').ip;
      expect(newIp).not.toBe(oldIp);
      const before = served.get('web-2') ?? 0;
      await waitFor(() => (served.get('web-2') ?? 0) > before + 20, { what: 'restarted web-2 to get traffic' });
      await web.scale(2);
      await delay(1500);
    } finally {
      running = false;
      await load;
    }

    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(200);
    // the crashed pod stays in DNS but is ejected; web-2 and web-3 left with the scale-down
    expect(changes.some((c) => c.added.some((e) => e.name?.startsWith('web-3.')))).toBe(true);
    // web-2's restart is seen either as one change of address or, when a lookup fell between its
    // leaving DNS and coming back, as a removal then an addition at the new IP (the scale-down
    // removes it again at the end)
    const web2 = (e: { name: string | undefined }) => e.name?.startsWith('web-2.') === true;
    const web2AtNewIp = (e: { name: string | undefined; address: string }) => web2(e) && e.address === newIp;
    const readdressed = changes.some((c) => c.readdressed.some(web2AtNewIp));
    const removedAt = changes.findIndex((c) => c.removed.some(web2));
    const readded = removedAt >= 0 && changes.findLastIndex((c) => c.added.some(web2AtNewIp)) > removedAt;
    expect(
      readdressed || readded,
      JSON.stringify(
        changes.map((c) => ({
          added: c.added.map((e) => `${e.name}@${e.address}`),
          removed: c.removed.map((e) => e.name),
          readdressed: c.readdressed.map((e) => `${e.name}@${e.address}`),
        })),
      ),
    ).toBe(true);
    expect(changes.some((c) => c.removed.some((e) => e.name?.startsWith('web-3.')))).toBe(true);
    // every pool of a departed or readdressed pod was drained and closed
    await waitFor(() => dispatcher!.stats().draining === 0, { what: 'draining pools to close' });
    expect(dispatcher.stats().pools).toBeLessThanOrEqual(2);
  });
});
