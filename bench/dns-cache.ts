/**
 * How soon a scaled-up pod is seen when a caching resolver sits between the balancer and the
 * authority, against asking the authority (Knot) directly. Real Knot, real Unbound (stub zone
 * cluster.local → Knot, the way CoreDNS's `cache` or NodeLocal DNSCache sit in a cluster), TTL 5.
 *
 * One balancer (A mode) on a Service of 2 pods, running for a while; then each trial waits a
 * random 0–6 s and publishes one more pod to Knot, and measures the time until the balancer's
 * pool has it, from the moment Knot serves it. Through Unbound the trial also says how long
 * after the cache's copy expired the balancer asked again ("lag behind the cache"): Unbound expires copies at whole
 * seconds of the wall clock, so an answer of TTL t at wall time w expires at ⌊w⌋ + t + 1 s.
 *
 *   npm run bench -- dns-cache                       # 12 trials each way
 *   npm run bench -- dns-cache --trials 20 --via unbound --seed 7
 */
import { parseArgs } from 'node:util';
import { createBalancer, type Balancer } from '../src/index.js';
import { startCluster, type Cluster } from '../src/testing/index.js';
import { startKnot, type KnotDns } from '../test/support/knot.js';
import { seededRandom } from '../test/support/random.js';
import { startUnbound, type UnboundCache } from '../test/support/unbound.js';
import { fixed, machine, median, table } from './support/measure.js';

const TTL_S = 5;
/** Three copies of Unbound's (TTL + up to 1 s each): the balancer has learnt the cache's rhythm. */
const WARM_UP_MS = 3 * (TTL_S + 1) * 1000;
/** Between trials: a random point of a copy's life. */
const MAX_WAIT_MS = (TTL_S + 1) * 1000;
const SEE_TIMEOUT_MS = 3 * TTL_S * 1000;

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '12' },
    via: { type: 'string', default: 'both' },
    seed: { type: 'string', default: '12' },
  },
});
const count = Number(values.trials);
const vias = values.via === 'both' ? (['knot', 'unbound'] as const) : ([values.via] as ('knot' | 'unbound')[]);
const random = seededRandom(Number(values.seed));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
  /** performance.now() and Date.now() at the `resolve` event. */
  readonly mono: number;
  readonly wall: number;
  readonly ttlS: number;
}

interface Trial {
  readonly seenMs: number;
  /** Through Unbound: from the later of publication and the cache's expiry to the pool having the pod. */
  readonly lagMs: number | undefined;
  /** Lookups after the first, up to the one that saw the pod, and the time they took. */
  readonly lookups: number;
  readonly lookupMs: number;
}

/** The monotonic time at which Unbound's copy, current at `at`, expires (undefined: none was cached). */
function cacheExpiry(answers: readonly Answer[], at: number): number | undefined {
  const before = answers.filter((a) => a.mono <= at);
  const last = before.at(-1);
  if (last === undefined) return undefined;
  const expiry = (a: Answer): number => (Math.floor(a.wall / 1000) + a.ttlS + 1) * 1000 - (a.wall - a.mono);
  // Answers of one copy agree on its expiry up to a second boundary crossed in transit: take the earliest.
  const ofCopy = before.filter((a) => Math.abs(expiry(a) - expiry(last)) < 1500);
  return Math.min(...ofCopy.map(expiry));
}

/** One balancer on one Service, warmed up, then `trials` scale-ups at random offsets. */
async function trials(cluster: Cluster<KnotDns>, server: string, name: string, cached: boolean): Promise<Trial[]> {
  const svc = await cluster.createService({ name, replicas: 2 });
  const lb: Balancer = createBalancer({ service: svc.fqdn, port: 8080, dnsServers: [server], search: [], ndots: 1 });
  const answers: Answer[] = [];
  const added: { ip: string; at: number }[] = [];
  lb.on('resolve', (event) => answers.push({ mono: performance.now(), wall: Date.now(), ttlS: event.ttlMs / 1000 }));
  lb.on('change', (change) => {
    for (const endpoint of change.added) added.push({ ip: endpoint.address, at: performance.now() });
  });
  const results: Trial[] = [];
  try {
    await lb.ready({ timeoutMs: 5000 });
    await sleep(WARM_UP_MS);
    for (let i = 0; i < count; i++) {
      const startedAt = performance.now();
      await sleep(random() * MAX_WAIT_MS);
      await svc.scale(3 + i);
      const published = performance.now();
      const ip = svc.pod(`${name}-${2 + i}`).ip;
      const deadline = published + SEE_TIMEOUT_MS;
      while (!added.some((a) => a.ip === ip) && performance.now() < deadline) await sleep(2);
      const seen = added.find((a) => a.ip === ip)?.at;
      if (seen === undefined) throw new Error(`${name}: pod ${name}-${2 + i} not seen within ${SEE_TIMEOUT_MS} ms`);
      await sleep(20); // the lookup that saw the pod emits \`resolve\` right after \`change\`
      const expiry = cached ? cacheExpiry(answers, published) : undefined;
      const result: Trial = {
        seenMs: seen - published,
        lagMs: cached ? seen - Math.max(published, expiry ?? published) : undefined,
        lookups: answers.filter((a) => a.mono > startedAt && a.mono <= seen + 10).length,
        lookupMs: seen - startedAt,
      };
      results.push(result);
      console.log(
        `  ${name} #${i}: seen after ${fixed(result.seenMs / 1000, 2)} s${result.lagMs === undefined ? '' : `, ${fixed(result.lagMs / 1000, 2)} s after the cache's copy expired`} (${result.lookups} lookups in ${fixed(result.lookupMs / 1000, 1)} s; TTLs ${answers
          .filter((a) => a.mono > startedAt && a.mono <= seen + 10)
          .map((a) => a.ttlS)
          .join(' ')})`,
      );
    }
    return results;
  } finally {
    await lb.close();
    await svc.scale(0);
  }
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
const summary = (xs: readonly number[]): string => {
  const sorted = [...xs].sort((a, b) => a - b);
  return `${fixed(sorted[0]! / 1000, 2)} / ${fixed(median(sorted) / 1000, 2)} / ${fixed(sorted.at(-1)! / 1000, 2)}`;
};

const knot = await startKnot();
let cluster: Cluster<KnotDns> | undefined;
let unbound: UnboundCache | undefined;
try {
  cluster = await startCluster({ dns: knot, ttl: TTL_S });
  unbound = await startUnbound({ upstreamPort: knot.port });
  console.log(
    `\n${machine()}; TTL ${TTL_S} s, ${count} trials per row: one balancer, ${WARM_UP_MS / 1000} s of warm-up, then each trial a random wait of 0–${MAX_WAIT_MS / 1000} s and one more pod (seed ${values.seed})\n`,
  );
  const rows: string[][] = [];
  for (const via of vias) {
    const results = await trials(cluster, via === 'knot' ? knot.address : unbound.address, via, via === 'unbound');
    rows.push([
      via === 'knot' ? 'straight from Knot' : 'through Unbound',
      summary(results.map((r) => r.seenMs)),
      via === 'knot' ? '—' : summary(results.map((r) => r.lagMs!)),
      fixed(sum(results.map((r) => r.lookups)) / (sum(results.map((r) => r.lookupMs)) / (TTL_S * 1000)), 1),
    ]);
  }
  console.log(
    `\n${table(['DNS server', 'new pod seen after, s (min / median / max)', 'after the cache expired, s (min / median / max)', 'lookups per TTL period'], rows)}\n`,
  );
} finally {
  await unbound?.close();
  await cluster?.close();
  await knot.close();
}
