/**
 * least-latency on real HTTP pods on loopback: 4 pods, one of them 10× slower, 16 requests in
 * flight (closed loop) through `lb.run` + undici.
 *
 * Part 1, steady state: the slow pod's share of requests and the latency percentiles of
 * round-robin, least-request and least-latency (the default mean estimate, peak-EWMA, and
 * peak-EWMA with `latency.decayMs: 2000`) over the 4 pods, and of the oracle
 * (round-robin over the 3 fast pods only), interleaved in the same run, a fresh balancer per
 * contender per round; plus what the balancer saw (mean latencies vs peak-EWMA estimates) and
 * the client's event-loop delay, to tell the picker from the machine's noise.
 *
 * Part 2, reaction: 4 fast pods; pod 0 turns slow at T and fast again at T2. How many requests
 * (and ms) pod 0 still gets after T before its share of a sliding 100-request window falls below
 * 5%, and how long after T2 before it is back to ≥ 15%.
 *
 * Part 3, the model (support/latency-model.ts): the same closed loop in simulated time, without
 * the noise, with the estimator and the cost rule swapped one at a time.
 *
 * The pods run in a child process (support/latency-pods.ts), on 127.0.85.11–14.
 * Results in docs/benchmarks.md ("Least-latency on real pods").
 *
 *   npm run bench -- least-latency                    (≈ 4 min)
 *   npm run bench -- least-latency --quick            (≈ 1.5 min: 1 round, shorter phases)
 *   npm run bench -- least-latency --model            (the model only: deterministic, ≈ 2 s)
 *   npm run bench -- least-latency --fast-ms 5 --slow-factor 10 --rounds 3 --round-ms 6000   (the defaults)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { createBalancer, type Balancer, type BalancerOptions, type PickerSpec } from '../src/index.js';
import { runModel, type ModelVariant } from './support/latency-model.js';
import { POD_FLAG, serveLatencyPods, startLatencyPods, type LatencyPods } from './support/latency-pods.js';
import { fixed, machine, median, quantile, table } from './support/measure.js';

// ---------------------------------------------------------------- settings

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} needs a positive number`);
  return value;
}

const quick = process.argv.includes('--quick');
const ADDRESSES = ['127.0.85.11', '127.0.85.12', '127.0.85.13', '127.0.85.14'];
const SLOW_POD = 0;
const CONCURRENCY = 16;
const FAST_MS = flag('--fast-ms', 5);
const SLOW_MS = FAST_MS * flag('--slow-factor', 10);
const ROUNDS = flag('--rounds', quick ? 1 : 3);
const ROUND_MS = flag('--round-ms', quick ? 3000 : 6000);
const WARMUP_MS = 500;
const MAX_REQUESTS = 200_000; // per closed loop: far above what 16 in flight can do in a round
// reaction phase
const BEFORE_MS = 2000; // all fast, the balancer learns the pods
const SLOW_PHASE_MS = quick ? 3000 : 5000; // pod 0 slow
const RECOVER_MAX_MS = quick ? 20_000 : 45_000; // pod 0 fast again: wait at most this long for it to regain traffic
const WINDOW = 100;
const SHED_BELOW = 0.05;
const REGAIN_AT = 0.15;

// ---------------------------------------------------------------- closed loop

/** Every request of one closed loop: the pod it was sent to, when, and how long it took. */
interface Trace {
  readonly pod: number[];
  readonly at: number[];
  /** End-to-end latency (lb.run called → resolved), ms, in completion order. */
  readonly latency: number[];
  /** When each request of `latency` started. */
  readonly startedAt: number[];
  /** The pod of each request of `latency`. */
  readonly latencyPod: number[];
  errors: number;
}

const newTrace = (): Trace => ({ pod: [], at: [], latency: [], startedAt: [], latencyPod: [], errors: 0 });

function podIndex(pods: LatencyPods): Map<string, number> {
  return new Map(pods.addresses.map((a, i) => [`${a}:${pods.port}`, i]));
}

/** 16 requests in flight through `lb.run` until `done()` (checked before each request) or MAX_REQUESTS. */
async function drive(lb: Balancer, agent: Agent, index: Map<string, number>, trace: Trace, done: () => boolean): Promise<void> {
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (!done() && issued < MAX_REQUESTS) {
      issued++;
      const started = performance.now();
      let pod = -1;
      try {
        await lb.run(async (endpoint, { signal }) => {
          pod = index.get(endpoint.host)!;
          trace.pod.push(pod);
          const sentAt = performance.now();
          trace.at.push(sentAt);
          const response = await request(`http://${endpoint.host}/`, { dispatcher: agent, signal });
          await response.body.dump();
          if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
        });
        trace.latency.push(performance.now() - started);
        trace.startedAt.push(started);
        trace.latencyPod.push(pod);
      } catch {
        trace.errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

function sortedLatencies(values: readonly number[]): Float64Array {
  return Float64Array.from(values).sort();
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- part 1: steady state

interface Contender {
  readonly id: string;
  readonly label: string;
  readonly picker: PickerSpec;
  /** Pod indexes the balancer knows. */
  readonly pods: readonly number[];
  readonly latency?: BalancerOptions['latency'];
}

const ALL = [0, 1, 2, 3];
const FAST_ONLY = ALL.filter((i) => i !== SLOW_POD);
const CONTENDERS: readonly Contender[] = [
  { id: 'oracle', label: 'oracle: round-robin over the 3 fast pods', picker: 'round-robin', pods: FAST_ONLY },
  { id: 'round-robin', label: 'round-robin', picker: 'round-robin', pods: ALL },
  { id: 'least-request', label: 'least-request', picker: 'least-request', pods: ALL },
  { id: 'least-latency', label: "least-latency (estimator 'mean', the default)", picker: 'least-latency', pods: ALL },
  {
    id: 'least-latency-peak',
    label: "least-latency, estimator 'peak-ewma' (Finagle, Linkerd)",
    picker: { type: 'least-latency', estimator: 'peak-ewma' },
    pods: ALL,
  },
  {
    id: 'least-latency-peak-2s',
    label: "least-latency, estimator 'peak-ewma', latency.decayMs 2000",
    picker: { type: 'least-latency', estimator: 'peak-ewma' },
    pods: ALL,
    latency: { decayMs: 2000 },
  },
];

function balancer(pods: LatencyPods, members: readonly number[], picker: PickerSpec, latency?: BalancerOptions['latency']): Balancer {
  const endpoints = members.map((i) => ({ address: pods.addresses[i]!, port: pods.port, name: `web-${i}` }));
  return createBalancer({ service: 'latency-pods', endpoints, picker, ...(latency === undefined ? {} : { latency }) });
}

interface SteadyRound {
  readonly slowShare: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly rps: number;
  readonly requests: number;
  readonly errors: number;
  /** Peak-EWMA estimates at the end of the round (`endpoint.latencyMs`): the slow pod's, and the median of the fast pods'. */
  readonly estimateSlow: number;
  readonly estimateFast: number;
  /** Mean estimates at the end of the round (`endpoint.meanLatencyMs`, what the default least-latency compares), likewise. */
  readonly meanEstimateSlow: number;
  readonly meanEstimateFast: number;
  /** Mean latency of the requests sent to the slow pod, and to the fast pods. */
  readonly meanSlow: number;
  readonly meanFast: number;
  /** The client's event-loop delay during the round (perf_hooks), ms: p99 and max. */
  readonly loopP99: number;
  readonly loopMax: number;
}

async function steadyRound(pods: LatencyPods, agent: Agent, contender: Contender): Promise<SteadyRound> {
  const lb = balancer(pods, contender.pods, contender.picker, contender.latency);
  const index = podIndex(pods);
  try {
    const warmUntil = performance.now() + WARMUP_MS;
    await drive(lb, agent, index, newTrace(), () => performance.now() >= warmUntil);
    const trace = newTrace();
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const started = performance.now();
    const stopAt = started + ROUND_MS;
    await drive(lb, agent, index, trace, () => performance.now() >= stopAt);
    const elapsed = performance.now() - started;
    loop.disable();
    const sorted = sortedLatencies(trace.latency);
    const slow = trace.pod.reduce((n, p) => n + (p === SLOW_POD ? 1 : 0), 0);
    const endpoints = lb.endpoints();
    const endpointOf = (pod: number) => endpoints.find((e) => e.host === `${pods.addresses[pod]}:${pods.port}`);
    const estimateOf = (pod: number): number => endpointOf(pod)?.latencyMs ?? Number.NaN;
    const meanEstimateOf = (pod: number): number => endpointOf(pod)?.meanLatencyMs ?? Number.NaN;
    const meanOf = (slowPod: boolean): number => {
      let sum = 0;
      let n = 0;
      for (let k = 0; k < trace.latency.length; k++) {
        if ((trace.latencyPod[k] === SLOW_POD) !== slowPod) continue;
        sum += trace.latency[k]!;
        n++;
      }
      return n === 0 ? Number.NaN : sum / n;
    };
    return {
      estimateSlow: estimateOf(SLOW_POD),
      estimateFast: median(FAST_ONLY.map(estimateOf)),
      meanEstimateSlow: meanEstimateOf(SLOW_POD),
      meanEstimateFast: median(FAST_ONLY.map(meanEstimateOf)),
      meanSlow: meanOf(true),
      meanFast: meanOf(false),
      loopP99: loop.percentile(99) / 1e6,
      loopMax: loop.max / 1e6,
      slowShare: slow / trace.pod.length,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      p999: quantile(sorted, 0.999),
      rps: (trace.latency.length / elapsed) * 1000,
      requests: trace.latency.length,
      errors: trace.errors,
    };
  } finally {
    await lb.close();
  }
}

// ---------------------------------------------------------------- part 2: reaction

interface ReactionRound {
  /** Requests sent to pod 0 after T until its window share fell below 5% (undefined: never). */
  readonly shedRequests: number | undefined;
  readonly shedMs: number | undefined;
  /** Pod 0's share of all requests from the moment it was shed until T2 (probes of the slow pod). */
  readonly slowLeak: number;
  readonly slowLeakRequests: number;
  /** p99 of the requests started while pod 0 was slow. */
  readonly slowP99: number;
  /** Requests (all pods) and ms after T2 until pod 0's window share was back to ≥ 15% (undefined: not within the bound). */
  readonly regainRequests: number | undefined;
  readonly regainMs: number | undefined;
  readonly regainBoundMs: number;
}

async function reactionRound(
  pods: LatencyPods,
  agent: Agent,
  picker: PickerSpec,
  latency?: BalancerOptions['latency'],
): Promise<ReactionRound> {
  await pods.setDelay(SLOW_POD, FAST_MS);
  const lb = balancer(pods, ALL, picker, latency);
  const trace = newTrace();
  let stop = false;
  const running = drive(lb, agent, podIndex(pods), trace, () => stop);
  try {
    await sleep(BEFORE_MS);
    const t = performance.now();
    await pods.setDelay(SLOW_POD, SLOW_MS);
    await sleep(SLOW_PHASE_MS);
    const t2 = performance.now();
    await pods.setDelay(SLOW_POD, FAST_MS);
    const from = trace.pod.length;
    const bound = t2 + RECOVER_MAX_MS;
    // Stop once pod 0 is back to ≥ 15% of a window (checked every 25 ms), or at the bound.
    while (performance.now() < bound) {
      await sleep(25);
      const n = trace.pod.length;
      if (n - from < WINDOW) continue;
      let count = 0;
      for (let i = n - WINDOW; i < n; i++) if (trace.pod[i] === SLOW_POD) count++;
      if (count >= REGAIN_AT * WINDOW) break;
    }
    await sleep(200);
    stop = true;
    await running;
    return analyse(trace, t, t2);
  } finally {
    stop = true;
    await running;
    await lb.close();
  }
}

function analyse(trace: Trace, t: number, t2: number): ReactionRound {
  const { pod, at } = trace;
  const inWindow = (end: number): number => {
    let count = 0;
    for (let i = Math.max(0, end - WINDOW + 1); i <= end; i++) if (pod[i] === SLOW_POD) count++;
    return count;
  };
  // Shedding: the first request after T at which the last 100 hold < 5% pod 0.
  const i0 = at.findIndex((x) => x >= t);
  let shedAt: number | undefined;
  let shedRequests: number | undefined;
  let toSlow = 0;
  for (let i = i0; i >= 0 && i < pod.length && at[i]! < t2; i++) {
    if (pod[i] === SLOW_POD) toSlow++;
    if (inWindow(i) < SHED_BELOW * WINDOW) {
      shedAt = i;
      shedRequests = toSlow;
      break;
    }
  }
  // Leak: pod 0's share from shedding to T2.
  let leak = 0;
  let span = 0;
  if (shedAt !== undefined) {
    for (let i = shedAt + 1; i < pod.length && at[i]! < t2; i++) {
      span++;
      if (pod[i] === SLOW_POD) leak++;
    }
  }
  // Regaining: the first request after T2 at which the last 100 hold ≥ 15% pod 0, counting
  // only windows entirely after T2 (a window reaching back before T2 would credit old traffic),
  // so 100 requests is the fastest this can report.
  const j0 = at.findIndex((x) => x >= t2);
  let regainRequests: number | undefined;
  let regainMs: number | undefined;
  if (j0 >= 0) {
    for (let j = j0 + WINDOW - 1; j < pod.length; j++) {
      if (inWindow(j) >= REGAIN_AT * WINDOW) {
        regainRequests = j - j0 + 1;
        regainMs = at[j]! - t2;
        break;
      }
    }
  }
  const slowLatencies: number[] = [];
  for (let k = 0; k < trace.latency.length; k++) {
    const s = trace.startedAt[k]!;
    if (s >= t && s < t2) slowLatencies.push(trace.latency[k]!);
  }
  return {
    shedRequests,
    shedMs: shedAt === undefined ? undefined : at[shedAt]! - t,
    slowLeak: span === 0 ? Number.NaN : leak / span,
    slowLeakRequests: leak,
    slowP99: quantile(sortedLatencies(slowLatencies), 0.99),
    regainRequests,
    regainMs,
    regainBoundMs: RECOVER_MAX_MS,
  };
}

// ---------------------------------------------------------------- part 3: the model

const MODEL_VARIANTS: readonly ModelVariant[] = [
  { label: 'least-request (P2C, cost = in-flight)', choice: 'p2c', estimator: 'none' },
  { label: "peak-EWMA τ = 10 s, cost × (in-flight + 1) (estimator: 'peak-ewma')", choice: 'p2c', estimator: 'peak-ewma', decayMs: 10_000 },
  { label: 'peak-EWMA τ = 2 s', choice: 'p2c', estimator: 'peak-ewma', decayMs: 2000 },
  { label: 'cheapest of all 4 instead of P2C, peak-EWMA τ = 10 s', choice: 'all', estimator: 'peak-ewma', decayMs: 10_000 },
  { label: 'mean EWMA τ = 1 s (no peak rule)', choice: 'p2c', estimator: 'ewma', decayMs: 1000 },
  { label: 'exact mean latency (a perfect estimator)', choice: 'p2c', estimator: 'exact-mean' },
  { label: 'cheapest of all 4, exact mean latency', choice: 'all', estimator: 'exact-mean' },
  { label: 'peak-EWMA τ = 10 s, cost × (1 + in-flight/2)', choice: 'p2c', estimator: 'peak-ewma', decayMs: 10_000, inflightWeight: 0.5 },
  {
    label: "mean EWMA τ = 1 s, cost × (1 + in-flight/2) (the default, estimator: 'mean')",
    choice: 'p2c',
    estimator: 'ewma',
    decayMs: 1000,
    inflightWeight: 0.5,
  },
];
const MODEL_OVERHEADS = [1, 3];
const MODEL_SEEDS = [1, 2, 3];

function printModel(): void {
  const rows = MODEL_VARIANTS.map((variant) => {
    const cells = [variant.label];
    for (const overheadMs of MODEL_OVERHEADS) {
      const results = MODEL_SEEDS.map((seed) =>
        runModel({ fastMs: FAST_MS, slowMs: SLOW_MS, concurrency: CONCURRENCY, overheadMs, seconds: 30, warmupMs: 2000, seed }, variant),
      );
      cells.push(
        spread(
          results.map((r) => r.slowShare),
          pct,
        ),
        spread(
          results.map((r) => r.p99),
          ms,
        ),
      );
    }
    return cells;
  });
  const header = ['model: picker rule'];
  for (const o of MODEL_OVERHEADS) header.push(`slow share, overhead 0.5+Exp(${o}) ms`, `p99 ms, overhead 0.5+Exp(${o}) ms`);
  console.log(`## Model: the same closed loop without the machine's noise (bench/support/latency-model.ts)\n`);
  console.log(
    `Pods ${FAST_MS} / ${SLOW_MS} ms, ${CONCURRENCY} in flight, observed latency = delay + U(0, 1) ms timer lateness + client overhead; ` +
      `30 s of model time after 2 s, median (min–max) of ${MODEL_SEEDS.length} seeds.\n`,
  );
  console.log(table(header, rows));
  console.log('');

  // The reaction scenario in the model: pod 0 slow from 5 s to 10 s, 35 s more to regain.
  const T = 5000;
  const T2 = 10_000;
  const reactionRows: string[][] = [];
  const reactionVariants: readonly ModelVariant[] = [
    { label: 'peak-EWMA τ = 10 s', choice: 'p2c', estimator: 'peak-ewma', decayMs: 10_000 },
    { label: 'peak-EWMA τ = 2 s', choice: 'p2c', estimator: 'peak-ewma', decayMs: 2000 },
    { label: 'mean EWMA τ = 1 s (the default)', choice: 'p2c', estimator: 'ewma', decayMs: 1000, inflightWeight: 0.5 },
  ];
  for (const variant of reactionVariants) {
    for (const overheadMs of MODEL_OVERHEADS) {
      const results = MODEL_SEEDS.map((seed) => {
        const run = runModel(
          {
            fastMs: FAST_MS,
            slowMs: SLOW_MS,
            concurrency: CONCURRENCY,
            overheadMs,
            seconds: 45,
            warmupMs: 0,
            seed,
            slowBetween: [T, T2],
            trace: true,
          },
          variant,
        );
        return analyse(run.trace!, T, T2);
      });
      const f = (values: (number | undefined)[], format: (v: number) => string): string =>
        values.some((v) => v === undefined)
          ? `${values.filter((v) => v === undefined).length} of ${values.length} never`
          : spread(values as number[], format);
      reactionRows.push([
        variant.label,
        `0.5+Exp(${overheadMs}) ms`,
        f(
          results.map((r) => r.shedRequests),
          (v) => fixed(v, 0),
        ),
        f(
          results.map((r) => r.shedMs),
          ms,
        ),
        spread(
          results.map((r) => r.slowLeak),
          pct,
        ),
        f(
          results.map((r) => r.regainMs),
          (v) => fixed(v / 1000, 2),
        ),
      ]);
    }
  }
  console.log(`Reaction in the model: pod 0 slow from T = 5 s to T2 = 10 s, the same definitions as the reaction table.\n`);
  console.log(
    table(
      ['model: picker', 'client overhead', 'shed: pod-0 requests after T', 'shed: ms after T', 'leak until T2', 'regain: s after T2'],
      reactionRows,
    ),
  );
  console.log('');
}

// ---------------------------------------------------------------- report

/** "median (min–max)" */
function spread(values: readonly number[], format: (v: number) => string): string {
  if (values.length === 1) return format(values[0]!);
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

const pct = (v: number): string => `${fixed(v * 100, 2)}%`;
const ms = (v: number): string => fixed(v, v < 10 ? 2 : 1);

async function main(): Promise<void> {
  if (process.argv.includes(POD_FLAG)) return serveLatencyPods();
  if (process.argv.includes('--model')) return printModel();
  const entry = fileURLToPath(import.meta.url);
  const delays = ALL.map((i) => (i === SLOW_POD ? SLOW_MS : FAST_MS));
  const pods = await startLatencyPods(entry, ADDRESSES, delays);
  // One keep-alive agent for every contender: ≥ 16 connections per pod, so a pod holding all 16
  // requests never queues them behind one another in the client.
  const agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 120_000 });
  const load0 = loadavg();
  const startedAt = performance.now();
  try {
    console.log(`# least-latency on real pods\n`);
    console.log(
      `${machine()}; pods in a child process on ${ADDRESSES[0]}–${ADDRESSES.at(-1)!.split('.').at(-1)}; fast pods answer after ${FAST_MS} ms, ` +
        `the slow pod after ${SLOW_MS} ms; ${CONCURRENCY} in flight (closed loop through lb.run + undici.request, one Agent, ${CONCURRENCY} connections per pod); ` +
        `load average before: ${load0.map((l) => l.toFixed(2)).join(' ')}\n`,
    );

    // Part 1
    const steady = new Map<string, SteadyRound[]>(CONTENDERS.map((c) => [c.id, []]));
    const oracleRatio = new Map<string, number[]>(CONTENDERS.map((c) => [c.id, []]));
    await pods.setDelay(SLOW_POD, SLOW_MS);
    for (let r = 0; r < ROUNDS; r++) {
      const thisRound = new Map<string, SteadyRound>();
      for (let k = 0; k < CONTENDERS.length; k++) {
        const contender = CONTENDERS[(k + r) % CONTENDERS.length]!; // rotate the order
        const result = await steadyRound(pods, agent, contender);
        thisRound.set(contender.id, result);
        steady.get(contender.id)!.push(result);
        process.stderr.write(
          `  round ${r + 1} ${contender.id}: slow ${pct(result.slowShare)} p99 ${ms(result.p99)} ms, ${fixed(result.rps, 0)} req/s\n`,
        );
      }
      const oracle = thisRound.get('oracle')!;
      for (const c of CONTENDERS) oracleRatio.get(c.id)!.push(thisRound.get(c.id)!.p99 / oracle.p99);
    }
    const steadyRows = CONTENDERS.map((c) => {
      const rounds = steady.get(c.id)!;
      return [
        c.label,
        c.id === 'oracle'
          ? '—'
          : spread(
              rounds.map((x) => x.slowShare),
              pct,
            ),
        spread(
          rounds.map((x) => x.p50),
          ms,
        ),
        spread(
          rounds.map((x) => x.p99),
          ms,
        ),
        spread(
          rounds.map((x) => x.p999),
          ms,
        ),
        spread(
          rounds.map((x) => x.rps),
          (v) => fixed(v, 0),
        ),
        c.id === 'oracle' ? '1' : spread(oracleRatio.get(c.id)!, (v) => `${fixed(v, 2)}×`),
        String(rounds.reduce((n, x) => n + x.errors, 0)),
      ];
    });
    console.log(`## Steady state: pod 0 answers in ${SLOW_MS} ms, pods 1–3 in ${FAST_MS} ms\n`);
    console.log(
      `${ROUNDS} round${ROUNDS === 1 ? '' : 's'} × ${ROUND_MS} ms per contender (after ${WARMUP_MS} ms of warm-up on the same balancer), interleaved; median (min–max) over rounds; ` +
        `p99 ÷ oracle is taken within each round.\n`,
    );
    console.log(table(['contender', 'slow pod share', 'p50 ms', 'p99 ms', 'p99.9 ms', 'req/s', 'p99 ÷ oracle p99', 'errors'], steadyRows));
    console.log('');
    const ll = steady.get('least-latency')!;
    const llShare = median(ll.map((x) => x.slowShare));
    const llRatio = median(oracleRatio.get('least-latency')!);
    console.log(
      `Targets (least-latency, medians): slow-pod share ≤ 1%: ${pct(llShare)} ${llShare <= 0.01 ? 'MET' : 'MISSED'}; ` +
        `p99 ≤ 1.25 × oracle: ${fixed(llRatio, 2)}× ${llRatio <= 1.25 ? 'MET' : 'MISSED'}\n`,
    );

    const nan =
      (format: (v: number) => string) =>
      (values: number[]): string => {
        const got = values.filter((v) => !Number.isNaN(v));
        return got.length === 0 ? '—' : spread(got, format);
      };
    const diagRows = CONTENDERS.map((c) => {
      const rounds = steady.get(c.id)!;
      return [
        c.label,
        nan(ms)(rounds.map((x) => x.meanFast)),
        nan(ms)(rounds.map((x) => x.meanSlow)),
        nan((v) => `${fixed(v, 1)}×`)(rounds.map((x) => x.meanSlow / x.meanFast)),
        nan(ms)(rounds.map((x) => x.estimateFast)),
        nan(ms)(rounds.map((x) => x.estimateSlow)),
        nan((v) => `${fixed(v, 1)}×`)(rounds.map((x) => x.estimateSlow / x.estimateFast)),
        nan(ms)(rounds.map((x) => x.meanEstimateFast)),
        nan(ms)(rounds.map((x) => x.meanEstimateSlow)),
        nan((v) => `${fixed(v, 1)}×`)(rounds.map((x) => x.meanEstimateSlow / x.meanEstimateFast)),
        spread(
          rounds.map((x) => x.loopP99),
          ms,
        ),
        spread(
          rounds.map((x) => x.loopMax),
          ms,
        ),
      ];
    });
    console.log(
      `What the balancer saw in the same rounds: the mean latency of the requests sent to the fast pods and to the slow one, and the ` +
        `estimates at the end of the round (fast: median of the 3): peak-EWMA (\`endpoint.latencyMs\`, what estimator 'peak-ewma' compares) and the mean ` +
        `(\`endpoint.meanLatencyMs\`, what the default estimator compares); every endpoint keeps both, whatever the picker. ` +
        `Last columns: the client's event-loop delay (perf_hooks, 10 ms resolution).\n`,
    );
    console.log(
      table(
        [
          'contender',
          'mean, fast pods ms',
          'mean, slow pod ms',
          'ratio of means',
          'peak-EWMA, fast ms',
          'peak-EWMA, slow ms',
          'ratio',
          'mean estimate, fast ms',
          'mean estimate, slow ms',
          'ratio',
          'event-loop delay p99 ms',
          'event-loop delay max ms',
        ],
        diagRows,
      ),
    );
    console.log('');

    // Part 3 (printed here, next to the numbers it explains): the model
    printModel();

    // Part 2
    const reactions: { label: string; picker: PickerSpec; latency?: BalancerOptions['latency'] }[] = [
      { label: 'round-robin', picker: 'round-robin' },
      { label: "least-latency (estimator 'mean', the default)", picker: 'least-latency' },
      { label: "least-latency, estimator 'peak-ewma' (Finagle, Linkerd)", picker: { type: 'least-latency', estimator: 'peak-ewma' } },
      {
        label: "least-latency, estimator 'peak-ewma', decayMs 2000",
        picker: { type: 'least-latency', estimator: 'peak-ewma' },
        latency: { decayMs: 2000 },
      },
    ];
    const reactionResults = new Map<string, ReactionRound[]>(reactions.map((x) => [x.label, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < reactions.length; k++) {
        const x = reactions[(k + r) % reactions.length]!;
        const result = await reactionRound(pods, agent, x.picker, x.latency);
        reactionResults.get(x.label)!.push(result);
        process.stderr.write(
          `  reaction round ${r + 1} ${x.label}: shed after ${result.shedRequests ?? '-'} req / ${result.shedMs === undefined ? '-' : ms(result.shedMs)} ms; ` +
            `leak ${pct(result.slowLeak)}; regained after ${result.regainMs === undefined ? '-' : ms(result.regainMs)} ms\n`,
        );
      }
    }
    const orNever = (values: (number | undefined)[], format: (v: number) => string, never: string): string => {
      const got = values.filter((v): v is number => v !== undefined);
      if (got.length === 0) return never;
      const missing = values.length - got.length;
      return `${spread(got, format)}${missing > 0 ? ` (+${missing} round${missing === 1 ? '' : 's'}: ${never})` : ''}`;
    };
    const reactionRows = reactions.map((x) => {
      const rounds = reactionResults.get(x.label)!;
      const neverShed = rounds.every((y) => y.shedRequests === undefined);
      return [
        x.label,
        orNever(
          rounds.map((y) => y.shedRequests),
          (v) => fixed(v, 0),
          'never',
        ),
        orNever(
          rounds.map((y) => y.shedMs),
          ms,
          'never',
        ),
        (() => {
          const leaks = rounds.map((y) => y.slowLeak).filter((v) => !Number.isNaN(v));
          return leaks.length === 0 ? '—' : spread(leaks, pct);
        })(),
        spread(
          rounds.map((y) => y.slowP99),
          ms,
        ),
        neverShed
          ? '— (never lost it)'
          : orNever(
              rounds.map((y) => y.regainRequests),
              (v) => fixed(v, 0),
              `> ${RECOVER_MAX_MS / 1000} s`,
            ),
        neverShed
          ? '—'
          : orNever(
              rounds.map((y) => y.regainMs),
              ms,
              `> ${RECOVER_MAX_MS / 1000} s`,
            ),
      ];
    });
    console.log(`## Reaction: pod 0 turns slow (${FAST_MS} → ${SLOW_MS} ms) at T, fast again at T2 = T + ${SLOW_PHASE_MS / 1000} s\n`);
    console.log(
      `${ROUNDS} round${ROUNDS === 1 ? '' : 's'} each, a fresh balancer per round that has seen ${BEFORE_MS / 1000} s of 4 fast pods; ` +
        `window = the last ${WINDOW} requests (all pods) in pick order. "Shed": pod 0's share of the window < ${SHED_BELOW * 100}%; ` +
        `requests = those sent to pod 0 after T until then. "Leak": pod 0's share from then to T2. "Regain": share ≥ ${REGAIN_AT * 100}% ` +
        `in a window entirely after T2; requests = all requests after T2 until then. Median (min–max).\n`,
    );
    console.log(
      table(
        [
          'picker',
          'shed: pod-0 requests after T',
          'shed: ms after T',
          'leak (slow pod share until T2)',
          'p99 while slow, ms',
          'regain: requests after T2',
          'regain: ms after T2',
        ],
        reactionRows,
      ),
    );
    console.log('');
    const load1 = loadavg();
    console.log(
      `Load average after: ${load1.map((l) => l.toFixed(2)).join(' ')}; ${fixed((performance.now() - startedAt) / 1000, 0)} s in all.`,
    );

    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/least-latency.json',
      `${JSON.stringify(
        {
          machine: machine(),
          fastMs: FAST_MS,
          slowMs: SLOW_MS,
          concurrency: CONCURRENCY,
          rounds: ROUNDS,
          roundMs: ROUND_MS,
          loadavgBefore: load0,
          loadavgAfter: load1,
          steady: Object.fromEntries(steady),
          oracleRatio: Object.fromEntries(oracleRatio),
          reaction: Object.fromEntries(reactionResults),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await agent.close();
    await pods.close();
  }
}

await main();
