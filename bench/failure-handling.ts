/**
 * What failure handling costs and buys, measured on real HTTP pods (testing kit: embedded DNS
 * shaped like CoreDNS, pods on 127.x) under a closed loop of 16 requests in flight.
 * Failed requests, extra attempts, time to eject and to recover, hedging's tail-latency gain.
 *
 *   npm run bench -- failure-handling
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Agent, request } from 'undici';
import { createBalancer, type AttemptEndMessage, type Balancer, type BalancerOptions, type RunOptions } from '../src/index.js';
import { startCluster, type Cluster, type Service } from '../src/testing/index.js';
import { fixed, machine, quantile, table } from './support/measure.js';

const CONCURRENCY = 16;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface LoadStats {
  calls: number;
  failed: number;
  latencies: number[];
}

/** A bounded closed loop through `lb.run`. */
function loop(lb: Balancer, agent: Agent, run: RunOptions, method: 'GET' | 'POST' = 'GET') {
  const stats: LoadStats = { calls: 0, failed: 0, latencies: [] };
  let running = true;
  const deadline = performance.now() + 30_000;
  const worker = async (): Promise<void> => {
    while (running && performance.now() < deadline) {
      const started = performance.now();
      stats.calls++;
      try {
        await lb.run(
          async (endpoint, { signal }) => {
            const response = await request(`http://${endpoint.host}/`, {
              method,
              dispatcher: agent,
              signal,
              body: method === 'POST' ? 'x' : undefined,
            });
            await response.body.dump();
            if (response.statusCode >= 500) throw Object.assign(new Error(`HTTP ${response.statusCode}`), { code: 'ERR_HLB_RETRYABLE' });
          },
          { idempotent: method === 'GET', ...run },
        );
        stats.latencies.push(performance.now() - started);
      } catch {
        stats.failed++;
      }
    }
  };
  const workers = Array.from({ length: CONCURRENCY }, worker);
  return {
    stats,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return stats;
    },
  };
}

function attemptsTo(lb: Balancer) {
  const failures = new Map<string, number>();
  let attempts = 0;
  const listener = (message: unknown): void => {
    const m = message as AttemptEndMessage;
    if (m.service !== lb.service) return;
    attempts++;
    if (m.outcome === 'failure') failures.set(m.endpoint.address, (failures.get(m.endpoint.address) ?? 0) + 1);
  };
  subscribe('headless-lb:attempt:end', listener);
  return { failures, attempts: () => attempts, stop: () => unsubscribe('headless-lb:attempt:end', listener) };
}

function percentile(values: number[], q: number): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    q,
  );
}

async function withService(
  cluster: Cluster,
  name: string,
  options: Partial<BalancerOptions>,
  body: (svc: Service, lb: Balancer, agent: Agent) => Promise<string[]>,
): Promise<string[]> {
  const svc = await cluster.createService({ name, replicas: 4 });
  const lb = createBalancer({
    service: svc.fqdn,
    portName: 'http',
    dnsServers: [cluster.dnsServer],
    search: [],
    ndots: 1,
    ...options,
  } as BalancerOptions);
  const agent = new Agent({ connections: 8 });
  await lb.ready();
  try {
    return await body(svc, lb, agent);
  } finally {
    await lb.close();
    await agent.close();
    await svc.delete();
  }
}

async function main(): Promise<void> {
  const cluster = await startCluster({ ttl: 5 });
  const rows: string[][] = [];

  for (const method of ['GET', 'POST'] as const) {
    rows.push(
      await withService(cluster, `crash-${method.toLowerCase()}`, {}, async (svc, lb, agent) => {
        const watch = attemptsTo(lb);
        const load = loop(lb, agent, {}, method);
        await sleep(1000);
        const dead = svc.pods[1]!;
        let ejectedAt = Number.NaN;
        lb.once('eject', () => (ejectedAt = performance.now()));
        const crashedAt = performance.now();
        await svc.crashPod(dead.name);
        await sleep(4000);
        const stats = await load.stop();
        watch.stop();
        const extra = watch.attempts() - stats.calls;
        return [
          `pod crash, still in DNS (${method})`,
          String(stats.failed),
          `${fixed((100 * stats.failed) / stats.calls, 3)}%`,
          `${fixed((100 * extra) / stats.calls, 2)}%`,
          `${fixed(ejectedAt - crashedAt, 1)} ms`,
          String(watch.failures.get(dead.ip) ?? 0),
          '—',
        ];
      }),
    );
  }

  rows.push(
    await withService(cluster, 'unavailable', { outlierDetection: { baseEjectionMs: 2000 } }, async (svc, lb, agent) => {
      const watch = attemptsTo(lb);
      const load = loop(lb, agent, {});
      await sleep(1000);
      const sick = svc.pods[0]!;
      let ejectedAt = Number.NaN;
      let recoveredAt = Number.NaN;
      lb.once('eject', () => (ejectedAt = performance.now()));
      lb.on('recover', () => (recoveredAt = performance.now()));
      const sickAt = performance.now();
      svc.setBehaviour(sick.name, { status: 503 });
      await sleep(1000);
      svc.setBehaviour(sick.name, {});
      const healedAt = performance.now();
      await sleep(3500);
      const stats = await load.stop();
      watch.stop();
      const extra = watch.attempts() - stats.calls;
      return [
        'pod answers 503 for 1 s (base ejection 2 s)',
        String(stats.failed),
        `${fixed((100 * stats.failed) / stats.calls, 3)}%`,
        `${fixed((100 * extra) / stats.calls, 2)}%`,
        `${fixed(ejectedAt - sickAt, 1)} ms`,
        String(watch.failures.get(sick.ip) ?? 0),
        `${fixed((recoveredAt - healedAt) / 1000, 2)} s after the fix`,
      ];
    }),
  );

  const hang: string[][] = [];
  for (const [label, run] of [
    ['attempt timeout 200 ms', { attemptTimeoutMs: 200 }],
    ['hedge at p95 (20 ms before samples) + attempt timeout 200 ms', { hedge: { percentile: 0.95, delayMs: 20 }, attemptTimeoutMs: 200 }],
  ] as const) {
    hang.push(
      await withService(cluster, `hang-${hang.length}`, {}, async (svc, lb, agent) => {
        const warm = loop(lb, agent, run);
        await sleep(1000);
        await warm.stop();
        let ejectedAt = Number.NaN;
        lb.once('eject', () => (ejectedAt = performance.now()));
        const before = lb.stats();
        const load = loop(lb, agent, run);
        const hungAt = performance.now();
        svc.setBehaviour(svc.pods[0]!.name, { hang: true }); // accepts, never answers
        await sleep(4000);
        const stats = await load.stop();
        const after = lb.stats();
        const hedges = after.hedges - before.hedges;
        const retries = after.retries - before.retries;
        return [
          label,
          String(stats.failed),
          `${fixed(percentile(stats.latencies, 0.5), 2)} / ${fixed(percentile(stats.latencies, 0.99), 1)} / ${fixed(percentile(stats.latencies, 0.999), 1)} ms`,
          `${fixed((100 * (hedges + retries)) / stats.calls, 2)}%`,
          `${fixed(ejectedAt - hungAt, 0)} ms`,
        ];
      }),
    );
  }

  const budget = await withService(cluster, 'all-down', { outlierDetection: false }, async (svc, lb, agent) => {
    for (const pod of svc.pods) svc.setBehaviour(pod.name, { status: 503 });
    const before = lb.stats();
    const load = loop(lb, agent, { retries: 3 });
    await sleep(5000);
    const stats = await load.stop();
    const after = lb.stats();
    const retries = after.retries - before.retries;
    return [String(stats.calls), String(retries), `${fixed((100 * retries) / stats.calls, 1)}%`, fixed(0.2 * stats.calls + 100, 0)];
  });

  await cluster.close();

  console.log(`\nFailure handling — ${machine()}; 4 pods, ${CONCURRENCY} requests in flight, TTL 5 s\n`);
  console.log(
    table(['scenario', 'failed', 'failed %', 'extra attempts', 'time to eject', 'failed attempts on the bad pod', 'recovery'], rows),
  );
  console.log('\nOne pod of four hangs (accepts, never answers), idempotent GETs: retry after a timeout vs hedging\n');
  console.log(table(['policy', 'failed', 'p50 / p99 / p99.9', 'extra attempts', 'time to eject'], hang));
  console.log('\nEvery pod answers 503, idempotent calls with up to 3 retries each, for 5 s: the retry budget (20% + 10/s)\n');
  console.log(table(['calls', 'retries', 'retries / calls', 'budget bound (0.2 × calls + 100)'], [budget]));
}

await main();
