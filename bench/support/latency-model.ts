/**
 * A discrete-event model of bench/least-latency.ts, without the machine's noise: 16 closed-loop
 * clients, 4 pods that serve requests concurrently (a timer each, as the real pods do), pod 0
 * ten times slower. Each request's observed latency is
 *
 *   pod delay + timer lateness U(0, 1) ms + client overhead (0.5 ms + Exp(mean `overheadMs`))
 *
 * so the client sees the slow pod fewer than 10× slower than the fast ones, as it does on real
 * pods. Pickers are the library's rules re-stated over the model's own state (P2C on
 * `estimate × (1 + w · in-flight)`, with the peak-EWMA update of src/pool/peak-ewma.ts, the mean
 * EWMA of src/pool/decaying-mean.ts, or the exact mean latency: a perfect estimator), so that what
 * the cost formula does can be told apart from what the estimator does. With `slowBetween`, pod 0 is slow only for a while (the reaction
 * scenario). Deterministic (seeded); well under a second per run.
 */
import { seededRandom } from '../../test/support/random.js';

export interface ModelOptions {
  readonly fastMs: number;
  readonly slowMs: number;
  readonly concurrency: number;
  /** Mean of the exponential part of the client overhead, ms. */
  readonly overheadMs: number;
  readonly seconds: number;
  readonly warmupMs: number;
  readonly seed: number;
  /** Pod 0 is slow only for requests started in [from, until) ms (default: always). */
  readonly slowBetween?: readonly [number, number];
  /** Keep every request's pod, pick time and latency in `trace`. */
  readonly trace?: boolean;
}

/**
 * `peak-ewma`: the library's `estimator: 'peak-ewma'`; `ewma`: a mean EWMA without the peak rule
 * (the library's default `estimator: 'mean'` with τ = 1 s); `exact-mean`: the
 * true mean latency the client sees (a perfect estimator); `none`: cost = in-flight only.
 */
export type Estimator = 'peak-ewma' | 'ewma' | 'exact-mean' | 'none';

export interface ModelVariant {
  readonly label: string;
  /** `p2c`: two distinct random endpoints; `all`: the cheapest of all. */
  readonly choice: 'p2c' | 'all';
  /** `none`: cost = in-flight (least-request). */
  readonly estimator: Estimator;
  readonly decayMs?: number;
  /** `ewma`: decay toward zero while no sample arrives, ms (default 10 s). */
  readonly idleDecayMs?: number;
  /** Cost = estimate × (1 + inflightWeight × in-flight): the library uses 1 with peak-EWMA, ½ with the mean. Default 1. */
  readonly inflightWeight?: number;
}

export interface ModelResult {
  readonly slowShare: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly rps: number;
  /** With `trace`: every request, in pick order (pod, at) and completion order (latency, startedAt). */
  readonly trace?: { pod: number[]; at: number[]; latency: number[]; startedAt: number[]; latencyPod: number[]; errors: number };
}

const DEFAULT_RTT_MS = 30;
const SLOW = 0;
const PODS = 4;

/**
 * The update rule of src/pool/peak-ewma.ts, on model time. With `peak` false, the same without
 * the peak rule (a sample above the estimate is averaged in like any other): a time-decayed mean
 * that still decays toward zero while no sample arrives (time constant `idleDecayMs`), so that
 * an avoided pod is probed again.
 */
class ModelPeakEwma {
  private estimate = DEFAULT_RTT_MS;
  private stamp = 0;
  private seeded = false;
  constructor(
    private readonly decayMs: number,
    private readonly peak: boolean,
    private readonly idleDecayMs: number,
  ) {}
  observe(sample: number, now: number): void {
    if (!this.seeded) {
      this.seeded = true;
      this.estimate = sample;
    } else if (this.peak && sample > this.estimate) {
      this.estimate = sample;
    } else {
      const w = Math.exp(-Math.max(0, now - this.stamp) / this.decayMs);
      this.estimate = this.estimate * w + sample * (1 - w);
    }
    this.stamp = now;
  }
  value(now: number): number {
    if (!this.seeded) return DEFAULT_RTT_MS;
    return this.estimate * Math.exp(-Math.max(0, now - this.stamp) / this.idleDecayMs);
  }
}

interface Completion {
  readonly at: number;
  readonly pod: number;
  readonly startedAt: number;
}

export function runModel(options: ModelOptions, variant: ModelVariant): ModelResult {
  const random = seededRandom(options.seed);
  const [slowFrom, slowUntil] = options.slowBetween ?? [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
  const delay = (pod: number, now = slowFrom): number =>
    pod === SLOW && now >= slowFrom && now < slowUntil ? options.slowMs : options.fastMs;
  const trace = options.trace
    ? { pod: [] as number[], at: [] as number[], latency: [] as number[], startedAt: [] as number[], latencyPod: [] as number[], errors: 0 }
    : undefined;
  // mean observed latency of a pod: delay + E[U(0,1)] + 0.5 + overheadMs
  const exactMean = (pod: number): number => delay(pod) + 0.5 + 0.5 + options.overheadMs;
  const ewma = Array.from({ length: PODS }, () => {
    const decayMs = variant.decayMs ?? 10_000;
    return variant.estimator === 'ewma'
      ? new ModelPeakEwma(decayMs, false, variant.idleDecayMs ?? 10_000)
      : new ModelPeakEwma(decayMs, true, decayMs);
  });
  const inflight = new Array<number>(PODS).fill(0);
  const estimate = (pod: number, now: number): number =>
    variant.estimator === 'peak-ewma' || variant.estimator === 'ewma'
      ? ewma[pod]!.value(now)
      : variant.estimator === 'exact-mean'
        ? exactMean(pod)
        : 1;
  const weight = variant.inflightWeight ?? 1;
  const cost = (pod: number, now: number): number => estimate(pod, now) * (1 + weight * inflight[pod]!);
  const pick = (now: number): number => {
    if (variant.choice === 'all') {
      let best = 0;
      for (let i = 1; i < PODS; i++) if (cost(i, now) < cost(best, now)) best = i;
      return best;
    }
    const a = Math.floor(random() * PODS);
    let b = Math.floor(random() * (PODS - 1));
    if (b >= a) b++;
    return cost(b, now) < cost(a, now) ? b : a; // ties: the first draw, as in p2c.ts
  };
  // A small binary heap of completions by time.
  const heap: Completion[] = [];
  const push = (c: Completion): void => {
    heap.push(c);
    for (let i = heap.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= heap[i]!.at) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  };
  const pop = (): Completion => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l]!.at < heap[m]!.at) m = l;
        if (r < heap.length && heap[r]!.at < heap[m]!.at) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  };
  const issue = (now: number): void => {
    const pod = pick(now);
    inflight[pod]!++;
    trace?.pod.push(pod);
    trace?.at.push(now);
    const overhead = 0.5 - options.overheadMs * Math.log(1 - random());
    push({ at: now + delay(pod, now) + random() + overhead, pod, startedAt: now });
  };
  for (let k = 0; k < options.concurrency; k++) issue(k * 0.01);
  const end = options.seconds * 1000;
  const latencies: number[] = [];
  let slow = 0;
  while (heap.length > 0) {
    const done = pop();
    if (done.at > end) break;
    inflight[done.pod]!--;
    ewma[done.pod]!.observe(done.at - done.startedAt, done.at);
    trace?.latency.push(done.at - done.startedAt);
    trace?.startedAt.push(done.startedAt);
    trace?.latencyPod.push(done.pod);
    if (done.startedAt >= options.warmupMs) {
      latencies.push(done.at - done.startedAt);
      if (done.pod === SLOW) slow++;
    }
    issue(done.at);
  }
  const sorted = Float64Array.from(latencies).sort();
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return {
    slowShare: slow / sorted.length,
    p50: q(0.5),
    p99: q(0.99),
    p999: q(0.999),
    rps: (sorted.length / (end - options.warmupMs)) * 1000,
    trace,
  };
}
