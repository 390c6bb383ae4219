import { isIPv6 } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoEndpointsError, type PoolChange, type ResolutionError } from '../../src/index.js';
import { startCluster } from '../../src/testing/index.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { startLoad } from '../support/load.js';
import { sleep } from '../support/wait.js';

/**
 * Discovery against a real Knot DNS server shaped like CoreDNS, with real HTTP pods on
 * 127.x addresses. Records change live by zone reload.
 */
const TTL = 2; // seconds: CoreDNS uses 5; shorter keeps the suite quick

let env: HttpKnotCluster;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL });
});

afterAll(async () => {
  await env?.close();
});

describe('A/AAAA discovery', () => {
  it('finds every ready pod and spreads traffic over them', async () => {
    const svc = await env.cluster.createService({ name: 'a-mode', replicas: 3 });
    const lb = env.balancer({ service: svc.fqdn, port: 8080 });
    await lb.ready({ timeoutMs: 5000 });
    expect(
      lb
        .endpoints()
        .map((e) => e.address)
        .sort(),
    ).toEqual(svc.pods.map((p) => p.ip).sort());
    expect(lb.endpoints().every((e) => e.id === `${e.address}:8080` && e.name === undefined)).toBe(true);
    const load = startLoad(lb, { maxRequests: 300 });
    const result = await load.stop();
    expect(result.failed).toBe(0);
    expect([...result.byPod.keys()].sort()).toEqual(['a-mode-0', 'a-mode-1', 'a-mode-2']);
  });
});

describe('SRV discovery', () => {
  it('gives each endpoint its pod name, port and weight', async () => {
    const svc = await env.cluster.createService({ name: 'srv-mode', replicas: 3, port: 9090, podPrefix: 'db' });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http' });
    await lb.ready({ timeoutMs: 5000 });
    const endpoints = [...lb.endpoints()].sort((a, b) => a.id.localeCompare(b.id));
    expect(endpoints.map((e) => e.name)).toEqual(['db-0', 'db-1', 'db-2'].map((p) => `${p}.srv-mode.default.svc.cluster.local`));
    expect(endpoints.map((e) => e.port)).toEqual([9090, 9090, 9090]);
    expect(endpoints.map((e) => e.weight)).toEqual([33, 33, 33]);
    expect(endpoints.map((e) => e.address)).toEqual(['db-0', 'db-1', 'db-2'].map((p) => svc.pod(p).ip));
  });

  it('expands a short name with the search list, as a pod resolver would', async () => {
    const svc = await env.cluster.createService({ name: 'short', namespace: 'shop', replicas: 2 });
    const lb = env.balancer({
      service: 'short.shop',
      portName: 'http',
      search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      ndots: 5,
    });
    await lb.ready({ timeoutMs: 5000 });
    expect(lb.endpoints()).toHaveLength(2);
    expect(lb.endpoints()[0]!.name).toMatch(/\.short\.shop\.svc\.cluster\.local$/);
    void svc;
  });
});

describe('dual stack and query cost', () => {
  it("makes a pod's A and AAAA records one endpoint (SRV), and uses AAAA with family 6", async () => {
    const svc = await env.cluster.createService({ name: 'dual', replicas: 2, ipv6: true });
    const srv = env.balancer({ service: svc.fqdn, portName: 'http' });
    const v6 = env.balancer({ service: svc.fqdn, port: 8080, family: 6 });
    await Promise.all([srv.ready({ timeoutMs: 5000 }), v6.ready({ timeoutMs: 5000 })]);
    expect(srv.endpoints()).toHaveLength(2);
    for (const endpoint of srv.endpoints()) {
      expect(endpoint.family).toBe(4);
      expect(endpoint.addresses).toHaveLength(2);
      expect(endpoint.addresses[0]).toBe(endpoint.address);
      expect(isIPv6(endpoint.addresses[1]!)).toBe(true);
    }
    expect(v6.endpoints().map((e) => e.family)).toEqual([6, 6]);
    expect(v6.endpoints().every((e) => e.host.startsWith('[::ffff:'))).toBe(true);
    // The IPv4-mapped address reaches the same pod.
    const result = await startLoad(v6, { maxRequests: 40 }).finished();
    expect(result.failed).toBe(0);
  });

  it('costs one DNS query per refresh in SRV and A mode (CoreDNS-style additional section)', async () => {
    const local = await startCluster({ ttl: 1 });
    try {
      const svc = await local.createService({ name: 'cost', replicas: 3 });
      const srv = env.balancer({ service: svc.fqdn, portName: 'http', dnsServers: [local.dnsServer] });
      const a = env.balancer({ service: svc.fqdn, port: 8080, dnsServers: [local.dnsServer] });
      await Promise.all([srv.ready(), a.ready()]);
      local.dns.resetQueries();
      await Promise.all([srv.refresh(), a.refresh()]);
      expect(local.dns.countQueries({ name: svc.srvName })).toBe(1);
      expect(local.dns.countQueries({ name: svc.fqdn, type: 'A' })).toBe(1);
      expect(local.dns.queries).toHaveLength(2);
      await Promise.all([srv.close(), a.close()]);
    } finally {
      await local.close();
    }
  });
});

describe('following the Service live', () => {
  it('sends traffic to a scaled-up pod within TTL + 1 s of its DNS record', async () => {
    const svc = await env.cluster.createService({ name: 'scale-up', replicas: 3 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http' });
    await lb.ready({ timeoutMs: 5000 });
    const load = startLoad(lb, { concurrency: 4, maxMs: 20_000 });
    await sleep(300);
    await svc.scale(4);
    const published = performance.now();
    const newIp = svc.pod('scale-up-3').ip;
    const firstAnswer = await load.waitForAnswerFrom(newIp, TTL * 1000 + 1000);
    const result = await load.stop();
    expect(firstAnswer - published).toBeLessThan(TTL * 1000 + 1000);
    expect(result.failed).toBe(0);
  });

  it('with least-latency too: a new pod of sub-millisecond peers is not starved by the default RTT', async () => {
    const svc = await env.cluster.createService({ name: 'scale-up-ll', replicas: 3 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http', picker: 'least-latency' });
    await lb.ready({ timeoutMs: 5000 });
    const load = startLoad(lb, { concurrency: 4, maxMs: 20_000 });
    await sleep(500); // the pool's estimates settle well below the 30 ms default RTT
    await svc.scale(4);
    const newIp = svc.pod('scale-up-ll-3').ip;
    await load.waitForAnswerFrom(newIp, TTL * 1000 + 1000);
    await sleep(500);
    const before = load.snapshot().byIp.get(newIp) ?? 0;
    await sleep(500);
    const result = await load.stop();
    // It keeps getting a share, not a single probe.
    expect((result.byIp.get(newIp) ?? 0) - before).toBeGreaterThan(20);
    expect(result.failed).toBe(0);
  });

  it('stops sending to a scaled-down pod, with no failed request', async () => {
    const svc = await env.cluster.createService({ name: 'scale-down', replicas: 3 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http' });
    await lb.ready({ timeoutMs: 5000 });
    const load = startLoad(lb, { concurrency: 4, maxMs: 20_000 });
    await sleep(300);
    const removed = svc.pod('scale-down-2');
    await svc.scale(2);
    await sleep(TTL * 1000 + 500);
    const before = load.snapshot().byPod.get('scale-down-2') ?? 0;
    await sleep(500);
    const result = await load.stop();
    expect(result.byPod.get('scale-down-2') ?? 0).toBe(before);
    expect(lb.endpoints().map((e) => e.name)).not.toContain(removed.fqdn);
    expect(result.failed).toBe(0);
  });

  it('keeps the SRV identity and statistics of a pod restarted with a new IP', async () => {
    const svc = await env.cluster.createService({ name: 'restart', replicas: 2 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http' });
    await lb.ready({ timeoutMs: 5000 });
    const load = startLoad(lb, { concurrency: 4, maxMs: 20_000 });
    await sleep(300);
    const endpoint = lb.endpoints().find((e) => e.name === svc.pod('restart-1').fqdn)!;
    const oldIp = endpoint.address;
    const successesBefore = endpoint.successes;
    expect(successesBefore).toBeGreaterThan(0);
    const changes: PoolChange[] = [];
    lb.on('change', (change) => changes.push(change));
    await svc.restartPod('restart-1');
    const newIp = svc.pod('restart-1').ip;
    expect(newIp).not.toBe(oldIp);
    await load.waitForAnswerFrom(newIp, TTL * 1000 + 1000);
    const result = await load.stop();
    // The pod's SRV name is still one endpoint, now at the new IP, and it has served there.
    const after = lb.endpoints().find((e) => e.name === svc.pod('restart-1').fqdn)!;
    expect(after.id).toBe(endpoint.id);
    expect(after.address).toBe(newIp);
    expect(after.successes).toBeGreaterThan(0);
    // The restart is seen either as one change of address or, when a lookup fell between the pod's
    // leaving DNS and coming back, as a removal then an addition of the same SRV name.
    const restarted = (e: { id: string }) => e.id === endpoint.id;
    const readdressed = changes.some((c) => c.readdressed.some(restarted));
    const removedAt = changes.findIndex((c) => c.removed.some(restarted));
    const readded = removedAt >= 0 && changes.findLastIndex((c) => c.added.some(restarted)) > removedAt;
    expect(
      readdressed || readded,
      JSON.stringify(
        changes.map((c) => ({
          added: c.added.map((e) => e.id),
          removed: c.removed.map((e) => e.id),
          readdressed: c.readdressed.map((e) => e.id),
        })),
      ),
    ).toBe(true);
    if (readdressed) {
      expect(after).toBe(endpoint); // the same object: identity and statistics survived
      expect(after.successes).toBeGreaterThan(successesBefore);
    }
    expect(result.failed).toBe(0);
  });

  it('empties the pool on scale to zero (NXDOMAIN), fails fast naming the service, and recovers', async () => {
    const svc = await env.cluster.createService({ name: 'to-zero', replicas: 2 });
    const lb = env.balancer({ service: svc.fqdn, port: 8080 });
    await lb.ready({ timeoutMs: 5000 });
    const emptied = new Promise<{ reason: string }>((resolve) => lb.once('empty', resolve));
    await svc.scale(0);
    expect((await emptied).reason).toContain('NXDOMAIN');
    expect(lb.endpoints()).toHaveLength(0);
    const error = await lb.run(async () => 'unreachable').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoEndpointsError);
    expect((error as NoEndpointsError).message).toContain(svc.fqdn);
    await svc.scale(1);
    await lb.ready({ timeoutMs: TTL * 1000 + 2000 });
    expect(lb.endpoints()).toHaveLength(1);
  });

  it('resolves 150 pods (the UDP answer is truncated, TCP carries it)', async () => {
    const svc = await env.cluster.createService({ name: 'big', replicas: 150 });
    const srv = env.balancer({ service: svc.fqdn, portName: 'http' });
    const a = env.balancer({ service: svc.fqdn, port: 8080 });
    const resolved = new Promise<{ queries: number }>((resolve) => srv.once('resolve', resolve));
    await Promise.all([srv.ready({ timeoutMs: 5000 }), a.ready({ timeoutMs: 5000 })]);
    expect(srv.endpoints()).toHaveLength(150);
    expect(a.endpoints()).toHaveLength(150);
    expect((await resolved).queries).toBe(2); // UDP (truncated), then TCP
    expect(new Set(srv.endpoints().map((e) => e.address)).size).toBe(150);
  }, 60_000);
});

describe('DNS failures keep the pool', () => {
  it('keeps serving the last good pool while the DNS server is gone, backs off, and recovers', async () => {
    const svc = await env.cluster.createService({ name: 'dns-gone', replicas: 2 });
    const lb = env.balancer({
      service: svc.fqdn,
      portName: 'http',
      dnsTimeoutMs: 200,
      dnsAttempts: 1,
      refresh: { minMs: 200, maxMs: 2000 },
    });
    await lb.ready({ timeoutMs: 5000 });
    const errors: ResolutionError[] = [];
    lb.on('resolve-error', (error) => errors.push(error));
    await env.knot.stop();
    try {
      const load = startLoad(lb, { concurrency: 2, maxMs: 10_000 });
      await sleep(TTL * 1000 + 2500);
      const result = await load.stop();
      expect(errors.length).toBeGreaterThanOrEqual(2);
      expect(lb.endpoints()).toHaveLength(2);
      expect(result.failed).toBe(0);
      expect(result.byPod.size).toBe(2);
      // Backoff: far fewer lookups than one per 200 ms floor.
      expect(errors.length).toBeLessThan((TTL * 1000 + 2500) / 200);
      expect(lb.stats().discovery.lastError?.service).toBe(svc.fqdn);
    } finally {
      await env.knot.start();
    }
    const recovered = new Promise((resolve) => lb.once('resolve', resolve));
    await expect(Promise.race([recovered, sleep(5000).then(() => 'timeout')])).resolves.not.toBe('timeout');
  }, 30_000);
});

describe('failover', () => {
  it.each([
    ['idempotent', 'GET'],
    ['non-idempotent', 'POST'],
  ] as const)('loses no %s request when a pod crashes under load', async (_label, method) => {
    const svc = await env.cluster.createService({ name: `crash-${method.toLowerCase()}`, replicas: 3 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http' });
    await lb.ready({ timeoutMs: 5000 });
    const load = startLoad(lb, { concurrency: 8, maxMs: 20_000, method });
    await sleep(300);
    await svc.crashPod(`crash-${method.toLowerCase()}-1`);
    await sleep(1000);
    const result = await load.stop();
    // Requests in flight on the crashed pod when it died may have reached it: only those can fail,
    // and only for the non-idempotent method.
    if (method === 'GET') expect(result.failed).toBe(0);
    expect(result.failed).toBeLessThanOrEqual(8);
    expect(result.ok).toBeGreaterThan(100);
  });
});
