/**
 * Subsetting simulation: clients and pods in one process, no sockets. For each algorithm
 * (bench/support/subsetting-algorithms.ts, the library's own from src/pickers/subset.ts):
 *   - connections per pod, max/mean;
 *   - requests per pod, max/mean, under round-robin (each client spreads its traffic evenly over
 *     its subset, or by the aperture's weights) and under least-request (an event simulation:
 *     Poisson clients, pods of 4 workers at 70% utilization, P2C on each client's own in-flight
 *     counts, as a client-side balancer sees them; 2,000 requests per pod in the target scenario,
 *     300 in the grid: the full-mesh row is the noise floor of this column);
 *   - connections moved when one pod joins / leaves (subset members replaced over all members),
 *     as a multiple of the ideal (1/(P+1) and 1/P), median over trials, and the share of clients
 *     whose subset changed;
 *   - clients (other than the new one) whose subset changes when one client joins.
 * Clients are `api-<i>` (StatefulSet ordinals) or random ids (Deployment pods); pods are
 * StatefulSet-style DNS names.
 *
 *   npm run bench -- subsetting                  # target scenario + the grid (≈ 2 min)
 *   npm run bench -- subsetting --target         # only 1,000 clients × 300 pods, subset 20
 *   npm run bench -- subsetting --sizes 10,20,30,40,50 --trials 3
 */
import { randomUUID } from 'node:crypto';
import { algorithms, type Assignment, type SubsettingAlgorithm } from './support/subsetting-algorithms.js';
import { seededRandom } from './support/fixtures.js';
import { fixed, machine, median, table } from './support/measure.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const targetOnly = args.includes('--target');
const sizes = (flag('--sizes') ?? '10,20,50').split(',').map(Number);
const trials = Number(flag('--trials') ?? 3);

const podName = (i: number): string => `web-${i}.web-headless.default.svc.cluster.local`;
const pods = (n: number): string[] => Array.from({ length: n }, (_, i) => podName(i));
const ordinalClients = (n: number): string[] => Array.from({ length: n }, (_, i) => `api-${i}`);
function randomClients(n: number, seed: number): string[] {
  const random = seededRandom(seed);
  const suffix = (): string =>
    Math.floor(random() * 36 ** 5)
      .toString(36)
      .padStart(5, '0');
  return Array.from({ length: n }, () => `api-7f9c4d${suffix()}-${suffix()}`);
}

interface Scenario {
  readonly clients: number;
  readonly pods: number;
  readonly size: number;
  readonly ids: 'ordinal' | 'random';
}

interface Result {
  readonly connMaxMean: number;
  readonly rrMaxMean: number;
  readonly lrMaxMean: number;
  /** Connections moved on a pod add / remove, as a multiple of the ideal. */
  readonly addMoved: number;
  readonly removeMoved: number;
  /** Share of clients whose subset changed on a pod add. */
  readonly addClients: number;
  /** Other clients whose subset changed when one client joined. */
  readonly clientAdd: number;
  readonly histogram: readonly number[];
}

function perPod(assignments: readonly Assignment[], podList: readonly string[], weighted: boolean): number[] {
  const index = new Map(podList.map((p, i) => [p, i]));
  const totals = new Array<number>(podList.length).fill(0);
  for (const a of assignments) {
    const sum = weighted && a.weights !== undefined ? a.weights.reduce((x, y) => x + y, 0) : a.members.length;
    a.members.forEach((m, j) => {
      totals[index.get(m)!]! += weighted ? (a.weights?.[j] ?? 1) / sum : 1;
    });
  }
  return totals;
}

const maxOverMean = (values: readonly number[]): number => Math.max(...values) / (values.reduce((a, b) => a + b, 0) / values.length);

/** Members replaced over all members, and the share of clients with any change. */
function moved(before: readonly Assignment[], after: readonly Assignment[]): { members: number; clients: number } {
  let replaced = 0;
  let total = 0;
  let clients = 0;
  before.forEach((a, i) => {
    const old = new Set(a.members);
    const fresh = after[i]!.members.filter((m) => !old.has(m)).length;
    replaced += fresh;
    total += a.members.length;
    if (fresh > 0 || after[i]!.members.length !== a.members.length) clients++;
  });
  return { members: replaced / total, clients: clients / before.length };
}

/** A binary min-heap of [time, value] pairs. */
class Heap {
  private readonly times: number[] = [];
  private readonly values: number[] = [];
  get size(): number {
    return this.times.length;
  }
  push(time: number, value: number): void {
    let i = this.times.length;
    this.times.push(time);
    this.values.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.times[parent]! <= time) break;
      this.times[i] = this.times[parent]!;
      this.values[i] = this.values[parent]!;
      i = parent;
    }
    this.times[i] = time;
    this.values[i] = value;
  }
  pop(): [number, number] {
    const top: [number, number] = [this.times[0]!, this.values[0]!];
    const time = this.times.pop()!;
    const value = this.values.pop()!;
    const n = this.times.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && this.times[child + 1]! < this.times[child]!) child++;
        if (this.times[child]! >= time) break;
        this.times[i] = this.times[child]!;
        this.values[i] = this.values[child]!;
        i = child;
      }
      this.times[i] = time;
      this.values[i] = value;
    }
    return top;
  }
}

/**
 * Least-request under load: each client sends Poisson traffic (rate so that the pods run at 70%
 * on average), picks P2C over its subset on its own in-flight counts (weighted candidates for the
 * aperture), each pod serves 4 requests at once (exponential service, mean 1) and queues the rest.
 * Returns requests per pod.
 */
function leastRequest(assignments: readonly Assignment[], podList: readonly string[], requestsPerClient: number, seed: number): number[] {
  const random = seededRandom(seed);
  const workers = 4;
  const index = new Map(podList.map((p, i) => [p, i]));
  const clients = assignments.map((a) => {
    const members = a.members.map((m) => index.get(m)!);
    const weights = a.weights ?? members.map(() => 1);
    const cumulative: number[] = [];
    let sum = 0;
    for (const w of weights) cumulative.push((sum += w));
    return { members, cumulative, sum, inflight: new Map<number, number>() };
  });
  const rate = (0.7 * workers * podList.length) / assignments.length;
  const exp = (mean: number): number => -Math.log(1 - random()) * mean;
  const busy = new Array<number>(podList.length).fill(0);
  const queues: number[][] = podList.map(() => []);
  const served = new Array<number>(podList.length).fill(0);
  const sent = new Array<number>(assignments.length).fill(0);
  // Event values: arrivals are client ids (≥ 0); completions are -(1 + pod) - podCount·client.
  const events = new Heap();
  const n = podList.length;
  clients.forEach((_, c) => events.push(exp(1 / rate), c));
  const draw = (client: (typeof clients)[number]): number => {
    const u = random() * client.sum;
    let lo = 0;
    let hi = client.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (client.cumulative[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return client.members[lo]!;
  };
  while (events.size > 0) {
    const [now, value] = events.pop();
    if (value >= 0) {
      const client = clients[value]!;
      if (client.members.length === 0) continue;
      const a = draw(client);
      let b = draw(client);
      for (let tries = 0; b === a && tries < 4 && client.members.length > 1; tries++) b = draw(client);
      const ia = client.inflight.get(a) ?? 0;
      const ib = client.inflight.get(b) ?? 0;
      const pod = ib < ia || (ib === ia && random() < 0.5) ? b : a;
      client.inflight.set(pod, (client.inflight.get(pod) ?? 0) + 1);
      served[pod]!++;
      if (busy[pod]! < workers) {
        busy[pod]!++;
        events.push(now + exp(1), -(1 + pod) - n * value);
      } else queues[pod]!.push(value);
      if (++sent[value]! < requestsPerClient) events.push(now + exp(1 / rate), value);
    } else {
      const encoded = -value - 1;
      const pod = encoded % n;
      const clientIndex = Math.floor(encoded / n);
      const client = clients[clientIndex]!;
      client.inflight.set(pod, client.inflight.get(pod)! - 1);
      const next = queues[pod]!.shift();
      if (next === undefined) busy[pod]!--;
      else events.push(now + exp(1), -(1 + pod) - n * next);
    }
  }
  return served;
}

/** Connections per pod relative to the mean, bucketed by 0.05 from 0.7 to 1.35 (ends open). */
function histogram(counts: readonly number[]): number[] {
  const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
  const buckets = new Array<number>(14).fill(0);
  for (const c of counts) buckets[Math.min(13, Math.max(0, Math.floor((c / mean - 0.7) / 0.05) + 1))]!++;
  return buckets;
}

function evaluate(algorithm: SubsettingAlgorithm, scenario: Scenario, runs: number, requestsPerPod = 300): Result {
  const clientIds = scenario.ids === 'ordinal' ? ordinalClients(scenario.clients) : randomClients(scenario.clients, 7);
  const podList = pods(scenario.pods);
  const base = algorithm.assign(clientIds, podList, scenario.size);
  const connections = perPod(base, podList, false);
  const adds: number[] = [];
  const addClients: number[] = [];
  const removes: number[] = [];
  for (let t = 0; t < runs; t++) {
    const grown = [...podList, podName(scenario.pods + t)];
    const added = moved(base, algorithm.assign(clientIds, grown, scenario.size));
    adds.push(added.members * (scenario.pods + 1));
    addClients.push(added.clients);
    const gone = podList[Math.floor(seededRandom(t + 11)() * podList.length)]!;
    removes.push(
      moved(
        base,
        algorithm.assign(
          clientIds,
          podList.filter((p) => p !== gone),
          scenario.size,
        ),
      ).members * scenario.pods,
    );
  }
  const newcomer = scenario.ids === 'ordinal' ? `api-${scenario.clients}` : `api-${randomUUID().slice(0, 10)}`;
  const withNewcomer = algorithm.assign([...clientIds, newcomer], podList, scenario.size).slice(0, clientIds.length);
  const clientAdd = Math.round(moved(base, withNewcomer).clients * clientIds.length);
  return {
    connMaxMean: maxOverMean(connections),
    rrMaxMean: maxOverMean(perPod(base, podList, true)),
    lrMaxMean: maxOverMean(leastRequest(base, podList, Math.ceil((requestsPerPod * scenario.pods) / scenario.clients), 3)),
    addMoved: median(adds),
    removeMoved: median(removes),
    addClients: median(addClients),
    clientAdd,
    histogram: histogram(connections),
  };
}

const HEADER = [
  'algorithm',
  'conn max/mean',
  'req max/mean RR',
  'req max/mean LR',
  'pod added: moved ÷ ideal',
  'clients changed',
  'pod removed: moved ÷ ideal',
  'client added: others changed',
];

function row(name: string, r: Result): string[] {
  return [
    name,
    fixed(r.connMaxMean, 2),
    fixed(r.rrMaxMean, 2),
    fixed(r.lrMaxMean, 2),
    `${fixed(r.addMoved, 2)}×`,
    `${fixed(100 * r.addClients, 1)}%`,
    `${fixed(r.removeMoved, 2)}×`,
    String(r.clientAdd),
  ];
}

const BAR_ROWS = ['<0.70', '0.70', '0.75', '0.80', '0.85', '0.90', '0.95', '1.00', '1.05', '1.10', '1.15', '1.20', '1.25', '≥1.30'];

/** ASCII histogram: pods per bucket of connections ÷ mean, one bar per bucket. */
function chart(name: string, h: readonly number[]): string {
  const most = Math.max(...h);
  const lines = h.map((count, i) => `  ${BAR_ROWS[i]!.padStart(5)} │${'█'.repeat(Math.round((count / most) * 40)).padEnd(40)} ${count}`);
  return [`${name}: pods by connections ÷ mean`, ...lines].join('\n');
}

function target(): void {
  for (const ids of ['ordinal', 'random'] as const) {
    const scenario: Scenario = { clients: 1000, pods: 300, size: 20, ids };
    console.log(
      `\n### Target: 1,000 clients × 300 pods, subset 20, ${ids === 'ordinal' ? 'StatefulSet ordinals (api-17)' : 'random ids (Deployment pods)'}\n`,
    );
    const results = algorithms
      .filter((a) => ids === 'ordinal' || !a.needsOrdinals)
      .map((a) => [a.name, evaluate(a, scenario, Math.max(trials, 5), 2000)] as const);
    console.log(
      table(
        HEADER,
        results.map(([name, r]) => row(name, r)),
      ),
    );
    if (ids === 'ordinal') {
      console.log('\n```');
      for (const [name, r] of results) if (name !== 'full mesh') console.log(chart(name, r.histogram) + '\n');
      console.log('```');
    }
  }
}

function grid(): void {
  console.log(`\n### Grid (subset sizes ${sizes.join(', ')}; ${trials} trials per add/remove, median)\n`);
  const rows: string[][] = [];
  for (const clients of [100, 1000]) {
    for (const podCount of [10, 100, 1000]) {
      for (const size of sizes) {
        if (size >= podCount) {
          rows.push([`${clients} × ${podCount}, k=${size}`, 'subset ≥ pods: every algorithm is the full mesh', '', '', '', '', '', '', '']);
          continue;
        }
        for (const ids of ['ordinal', 'random'] as const) {
          for (const algorithm of algorithms) {
            if (ids === 'random' && algorithm.needsOrdinals) continue;
            if (algorithm.name === 'full mesh' && ids === 'random') continue;
            const r = evaluate(algorithm, { clients, pods: podCount, size, ids }, trials);
            rows.push([`${clients} × ${podCount}, k=${size}${ids === 'random' ? ', random ids' : ''}`, ...row(algorithm.name, r)]);
          }
        }
      }
    }
  }
  console.log(table(['clients × pods, subset', ...HEADER], rows));
}

console.log(`Subsetting simulation — ${machine()}`);
const started = performance.now();
target();
if (!targetOnly) grid();
console.log(`\n(${fixed((performance.now() - started) / 1000, 0)} s)`);
