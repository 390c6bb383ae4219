import { execFileSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  isRetryBudgetExhausted,
  type AttemptEndMessage,
  type Balancer,
  type BalancerOptions,
  type ResolutionError,
} from '../../src/index.js';
import { startCluster, type Cluster, type DnsServer } from '../../src/testing/index.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { startLoad } from '../support/load.js';
import { sleep } from '../support/wait.js';

/**
 * The fault-injection suite: real Knot DNS, real HTTP pods on 127.x, each fault under steady
 * load, bounded in time, asserting what the user sees.
 */
const TTL = 2;
let env: HttpKnotCluster;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL });
});

afterAll(async () => {
  await env?.close();
});

function balancer(service: string, options: Partial<BalancerOptions> = {}): Balancer {
  return env.balancer({ service, portName: 'http', ...options });
}

/** Counts attempts per endpoint address and outcome through the diagnostics channel. */
function watchAttempts(lb: Balancer) {
  const byAddress = new Map<string, { success: number; failure: number; cancelled: number }>();
  const listener = (message: unknown): void => {
    const m = message as AttemptEndMessage;
    if (m.service !== lb.service) return;
    const entry = byAddress.get(m.endpoint.address) ?? { success: 0, failure: 0, cancelled: 0 };
    entry[m.outcome]++;
    byAddress.set(m.endpoint.address, entry);
  };
  subscribe('headless-lb:attempt:end', listener);
  return { byAddress, stop: () => unsubscribe('headless-lb:attempt:end', listener) };
}

describe('pod crash while still in DNS (connections refused)', () => {
  it.each(['GET', 'POST'] as const)('%s: zero failed requests; the pod is ejected within 5 attempts', async (method) => {
    const svc = await env.cluster.createService({ name: `refused-${method.toLowerCase()}`, replicas: 4 });
    const lb = balancer(svc.fqdn);
    await lb.ready();
    const dead = svc.pods[1]!;
    await svc.crashPod(dead.name); // nothing in flight: every request to it is refused
    const attempts = watchAttempts(lb);
    let ejections = 0;
    lb.on('eject', () => ejections++);
    const result = await startLoad(lb, { concurrency: 8, maxMs: 15_000, maxRequests: 400, method }).finished();
    attempts.stop();
    expect(result.failed).toBe(0);
    expect(result.ok).toBe(400);
    expect(ejections).toBe(1);
    expect(attempts.byAddress.get(dead.ip)?.failure ?? 0).toBeLessThanOrEqual(5);
    expect(lb.endpoints().find((e) => e.address === dead.ip)?.state).toBe('ejected');
  });
});

describe('pod hangs (accepts, never answers)', () => {
  it('idempotent calls succeed through a retry or a hedge within the deadline; non-idempotent ones fail clearly and are not re-sent', async () => {
    const svc = await env.cluster.createService({ name: 'hang', replicas: 3 });
    const lb = balancer(svc.fqdn, { outlierDetection: false });
    await lb.ready();
    const stuck = svc.pods[0]!;
    svc.setBehaviour(stuck.name, { hang: true });

    const idempotent = startLoad(lb, { concurrency: 4, maxRequests: 120, maxMs: 15_000, run: { attemptTimeoutMs: 200, timeoutMs: 1500 } });
    // Hedges are budgeted (5% of calls + 1/s): the attempt timeout covers what the budget does not.
    const hedged = startLoad(lb, {
      concurrency: 4,
      maxRequests: 120,
      maxMs: 15_000,
      run: { hedge: { delayMs: 50 }, attemptTimeoutMs: 300, timeoutMs: 1500 },
    });
    const [r1, r2] = [await idempotent.finished(), await hedged.finished()];
    expect(r1.failed).toBe(0);
    expect(r2.failed).toBe(0);
    expect(lb.stats().hedges).toBeGreaterThan(0);

    const before = svc.pod(stuck.name).requests;
    const errors: unknown[] = [];
    let calls = 0;
    for (let i = 0; i < 12; i++) {
      calls++;
      await lb
        .run(
          async (endpoint, { signal }) => {
            const { request } = await import('undici');
            const response = await request(`http://${endpoint.host}/`, { method: 'POST', body: 'x', signal });
            return response.body.text();
          },
          { attemptTimeoutMs: 200 },
        )
        .catch((error: unknown) => errors.push(error));
    }
    const reached = svc.pod(stuck.name).requests - before;
    // Every POST that reached the hung pod failed with a clear timeout and was not sent again.
    expect(errors.length).toBe(reached);
    expect(errors.every((e) => e instanceof AttemptTimeoutError)).toBe(true);
    expect(reached).toBeGreaterThan(0);
    expect(calls).toBe(12);
  }, 30_000);
});

describe('pod resets mid-response', () => {
  it('idempotent calls succeed via retry; non-idempotent ones fail with the reset and are not re-sent', async () => {
    const svc = await env.cluster.createService({ name: 'reset', replicas: 3 });
    const lb = balancer(svc.fqdn, { outlierDetection: false });
    await lb.ready();
    const bad = svc.pods[2]!;
    svc.setBehaviour(bad.name, { reset: true });
    const get = await startLoad(lb, { concurrency: 4, maxRequests: 300, maxMs: 10_000 }).finished();
    expect(get.failed).toBe(0);
    expect(get.byPod.get(bad.name) ?? 0).toBe(0);

    const before = svc.pod(bad.name).requests;
    const post = await startLoad(lb, { concurrency: 4, maxRequests: 90, maxMs: 10_000, method: 'POST' }).finished();
    const reached = svc.pod(bad.name).requests - before;
    expect(post.failed).toBe(reached);
    expect(post.errors.every((e) => /terminated|other side closed|socket|reset/i.test(e))).toBe(true);
  });
});

describe('pod returning 503 for a while', () => {
  it('is ejected, then probed back in when it recovers', async () => {
    const svc = await env.cluster.createService({ name: 'unavailable', replicas: 3 });
    const lb = balancer(svc.fqdn, { outlierDetection: { baseEjectionMs: 700 } });
    await lb.ready();
    const sick = svc.pods[0]!;
    svc.setBehaviour(sick.name, { status: 503 });
    const events: string[] = [];
    lb.on('eject', ({ endpoint, reason }) => events.push(`eject ${endpoint.address} ${reason}`));
    lb.on('return', (endpoint) => events.push(`return ${endpoint.address}`));
    lb.on('recover', (endpoint) => events.push(`recover ${endpoint.address}`));
    const load = startLoad(lb, { concurrency: 4, maxMs: 15_000 });
    await sleep(500);
    expect(events[0]).toBe(`eject ${sick.ip} consecutive-failures`);
    svc.setBehaviour(sick.name, {});
    await sleep(1500);
    const result = await load.stop();
    expect(events).toContain(`return ${sick.ip}`);
    expect(events).toContain(`recover ${sick.ip}`);
    expect(lb.endpoints().find((e) => e.address === sick.ip)?.state).toBe('healthy');
    expect(result.failed).toBe(0);
  });
});

describe('most pods failing', () => {
  it('engages panic mode and keeps requests flowing', async () => {
    const svc = await env.cluster.createService({ name: 'panic', replicas: 4 });
    const lb = balancer(svc.fqdn, { retry: { retries: 4 } });
    await lb.ready();
    for (const pod of svc.pods.slice(0, 3)) svc.setBehaviour(pod.name, { status: 503 });
    const panics: boolean[] = [];
    lb.on('panic', ({ active }) => panics.push(active));
    const result = await startLoad(lb, { concurrency: 4, maxRequests: 400, maxMs: 10_000 }).finished();
    expect(panics[0], JSON.stringify(lb.stats(), null, 1)).toBe(true);
    expect(lb.stats().panic).toBe(true);
    // Panic mode spreads over every pod rather than pile everything on the last healthy one;
    // requests keep flowing (retries within the budget find the healthy pod).
    expect(result.ok).toBeGreaterThan(100);
    expect(svc.pods.every((pod) => pod.requests > 0)).toBe(true);
    for (const pod of svc.pods) svc.setBehaviour(pod.name, {});
  });
});

describe('every pod failing', () => {
  it('stops retrying at the budget, with clear errors and no spinning', async () => {
    const svc = await env.cluster.createService({ name: 'all-down', replicas: 3 });
    const lb = balancer(svc.fqdn, { outlierDetection: false, retryBudget: { percent: 0.2, minPerSecond: 1, windowMs: 10_000 } });
    await lb.ready();
    for (const pod of svc.pods) svc.setBehaviour(pod.name, { status: 503 });
    let exhausted = 0;
    lb.on('budget-exhausted', () => exhausted++);
    const errors: unknown[] = [];
    const calls = 200;
    const started = performance.now();
    for (let i = 0; i < calls; i++) {
      await lb
        .run(
          async (endpoint, { signal }) => {
            const { request } = await import('undici');
            const response = await request(`http://${endpoint.host}/`, { signal });
            await response.body.dump();
            throw Object.assign(new Error(`HTTP ${response.statusCode}`), { code: 'ERR_HLB_RETRYABLE' });
          },
          { idempotent: true },
        )
        .catch((e: unknown) => errors.push(e));
    }
    const stats = lb.stats();
    const podRequests = svc.pods.reduce((n, p) => n + p.requests, 0);
    expect(errors).toHaveLength(calls);
    expect(errors.every((e) => (e as Error).message === 'HTTP 503')).toBe(true);
    // 10 reserve (1/s over 10 s) + 20% of 200 calls = 50 retries at most.
    expect(stats.retries).toBeLessThanOrEqual(50);
    expect(podRequests).toBe(calls + stats.retries);
    expect(exhausted).toBeGreaterThan(0);
    expect(errors.filter(isRetryBudgetExhausted).length).toBe(exhausted);
    expect(performance.now() - started).toBeLessThan(20_000);
  }, 30_000);
});

describe('DNS faults keep the pool', () => {
  let local: Cluster<DnsServer>;
  beforeAll(async () => {
    local = await startCluster({ ttl: 1 });
  });
  afterAll(async () => {
    await local?.close();
  });

  it.each(['servfail', 'garbage', 'silent', 'refused'] as const)(
    'DNS answering %s: pool kept, backoff observed, recovery',
    async (fault) => {
      const svc = await local.createService({ name: `dns-${fault}`, replicas: 2 });
      const lb = balancer(svc.fqdn, {
        dnsServers: [local.dnsServer],
        dnsTimeoutMs: 100,
        dnsAttempts: 1,
        refresh: { minMs: 100, maxMs: 800 },
      });
      await lb.ready();
      const errors: ResolutionError[] = [];
      lb.on('resolve-error', (e) => errors.push(e));
      local.dns.setFault(fault);
      const load = startLoad(lb, { concurrency: 2, maxMs: 10_000 });
      const start = performance.now();
      await sleep(2500);
      local.dns.setFault(null);
      const elapsed = performance.now() - start;
      const recovered = await new Promise((resolve) => {
        lb.once('resolve', () => resolve(true));
        setTimeout(() => resolve(false), 2000).unref();
      });
      const result = await load.stop();
      expect(result.failed).toBe(0);
      expect(lb.endpoints()).toHaveLength(2);
      expect(errors.length).toBeGreaterThanOrEqual(2);
      // Exponential backoff from 100 ms to 800 ms: far fewer lookups than one per 100 ms.
      expect(errors.length).toBeLessThan(elapsed / 200);
      // Garbage is dropped and the lookup waits for a genuine answer until its timeout (RFC 5452).
      const expected = { servfail: 'SERVFAIL', garbage: 'TIMEOUT', silent: 'TIMEOUT', refused: 'REFUSED' }[fault];
      expect(errors.every((e) => e.reason === expected)).toBe(true);
      if (fault === 'garbage') expect(lb.stats().discovery.droppedMessages).toBeGreaterThanOrEqual(errors.length);
      expect(recovered).toBe(true);
    },
    20_000,
  );

  it('an nftables input drop (silent server) keeps the pool', async (context) => {
    if (process.getuid?.() !== 0 || !nftablesUsable()) {
      context.skip(); // needs root and a kernel with nftables
      return;
    }
    const svc = await local.createService({ name: 'dns-nft', replicas: 2 });
    const lb = balancer(svc.fqdn, {
      dnsServers: [local.dnsServer],
      dnsTimeoutMs: 100,
      dnsAttempts: 1,
      refresh: { minMs: 100, maxMs: 800 },
    });
    await lb.ready();
    const port = local.dns.port;
    const table = `hlb_test_${process.pid}`;
    execFileSync('nft', ['add', 'table', 'inet', table]);
    try {
      execFileSync('nft', ['add', 'chain', 'inet', table, 'input', '{ type filter hook input priority 0 ; }']);
      execFileSync('nft', ['add', 'rule', 'inet', table, 'input', 'ip', 'daddr', '127.0.0.1', 'udp', 'dport', String(port), 'drop']);
      const errors: ResolutionError[] = [];
      lb.on('resolve-error', (e) => errors.push(e));
      await sleep(1500);
      expect(errors.some((e) => e.reason === 'TIMEOUT')).toBe(true);
      expect(lb.endpoints()).toHaveLength(2);
    } finally {
      execFileSync('nft', ['delete', 'table', 'inet', table]);
    }
  });
});

function nftablesUsable(): boolean {
  try {
    execFileSync('nft', ['list', 'tables'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('churn', () => {
  it('pods replaced every 200 ms for 30 s under load: zero failed idempotent requests, heap and handles stable', async () => {
    // 10 pods, one replaced (same name, new IP) every 200 ms: each pod lives 2 s. A refused
    // connection triggers an early lookup, at most every 200 ms (refresh.minMs).
    const svc = await env.cluster.createService({ name: 'churn', replicas: 10 });
    const lb = balancer(svc.fqdn, { refresh: { minMs: 200 } });
    await lb.ready();
    const warm = startLoad(lb, { concurrency: 8, maxMs: 2000 });
    await sleep(1000);
    await warm.stop();
    expect(typeof globalThis.gc, 'run with --expose-gc (vitest.config.ts)').toBe('function');
    globalThis.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const handlesBefore = process.getActiveResourcesInfo().length;

    const load = startLoad(lb, { concurrency: 8, maxMs: 40_000, maxRequests: 2_000_000 });
    const until = performance.now() + 30_000;
    let restarts = 0;
    while (performance.now() < until) {
      const pod = svc.pods[restarts % svc.pods.length]!;
      await svc.restartPod(pod.name);
      restarts++;
      await sleep(200);
    }
    const result = await load.stop();
    await sleep(TTL * 1000 + 500); // let the pool settle and old connections close
    globalThis.gc?.();
    const heapAfter = process.memoryUsage().heapUsed;
    const handlesAfter = process.getActiveResourcesInfo().length;

    expect(restarts).toBeGreaterThan(50);
    expect(result.failed, result.errors.join('\n') + JSON.stringify(lb.stats(), null, 1).slice(0, 3000)).toBe(0);
    expect(result.ok).toBeGreaterThan(1000);
    expect(handlesAfter).toBeLessThanOrEqual(handlesBefore + 4);
    expect(heapAfter - heapBefore).toBeLessThan(32 * 1024 * 1024);
    console.log(
      `churn: ${restarts} restarts, ${result.ok} ok, ${result.failed} failed; heap ${(heapBefore / 1e6).toFixed(1)} → ${(heapAfter / 1e6).toFixed(1)} MB; handles ${handlesBefore} → ${handlesAfter}`,
    );
  }, 60_000);
});
