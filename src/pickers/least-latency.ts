import type { Endpoint } from '../pool/endpoint.js';
import { healthRank } from './health.js';
import { pickOfTwo } from './p2c.js';
import type { Picker, PickRequest } from './picker.js';

/**
 * Added to the in-flight count of an endpoint whose latency estimate is zero while it has
 * requests pending, so that it cannot look free (Finagle `PeakEwma`'s `Penalty`). An endpoint
 * being probed (no current estimate, see `currentLatency`) is in that state: one probe at a time.
 */
const ZERO_LATENCY_PENALTY = Number.MAX_SAFE_INTEGER / 2;

/**
 * Latency estimates within this factor of each other count as equally fast, and the pair is
 * decided by in-flight requests (then at random). Estimates of pods of equal speed differ by
 * noise; comparing them strictly sends nearly every request to whichever pod measured lowest
 * when only one or two requests are in flight, which starves the others.
 */
const EQUALLY_FAST = 1.5;

function expectedWait(latency: number, inflight: number, mean: boolean): number {
  if (latency <= 0 && inflight > 0) return ZERO_LATENCY_PENALTY + inflight;
  return mean ? latency * (1 + inflight / 2) : latency * (inflight + 1);
}

/**
 * The expected wait at an endpoint: peak-EWMA latency × (in-flight + 1). The `+ 1` counts the
 * request being placed, so an idle fast pod beats an idle slow one and a busy fast pod can lose
 * to an idle slow one. (From the estimate alone: the picker also probes endpoints whose estimate
 * is not current and treats close estimates as equal, see `LeastLatencyPicker`.)
 */
export function latencyCost(endpoint: Endpoint): number {
  return expectedWait(endpoint.latencyMs, endpoint.inflight, false);
}

/**
 * The expected wait with the mean estimate: mean latency × (1 + in-flight / 2). Half weight on
 * the in-flight count, because the mean already carries the queueing that in-flight requests
 * cause; with full weight a busy fast pod loses to an idle slow one too early.
 */
export function meanLatencyCost(endpoint: Endpoint): number {
  return expectedWait(endpoint.meanLatencyMs, endpoint.inflight, true);
}

/** Which latency estimate least-latency compares: Finagle's peak-EWMA, or a decaying mean. */
export type LatencyEstimator = 'peak-ewma' | 'mean';

/**
 * Of a P2C pair, the healthier endpoint; then, when their current latencies are within
 * `EQUALLY_FAST` of each other, the one with fewer requests in flight; otherwise the one with the
 * shorter expected wait. Ties go to `a`, the first (random) draw. An endpoint without a current
 * estimate counts as latency 0: it wins while idle (it is probed) and loses while its probe is in
 * flight. Reads the clock once.
 */
function prefer(a: Endpoint, b: Endpoint, mean: boolean): Endpoint {
  const healthA = healthRank(a);
  const healthB = healthRank(b);
  if (healthA !== healthB) return healthA < healthB ? a : b;
  const now = a.now();
  const latencyA = a.currentLatency(mean, now);
  const latencyB = b.currentLatency(mean, now);
  const inflightA = a.inflight;
  const inflightB = b.inflight;
  if (latencyA <= latencyB * EQUALLY_FAST && latencyB <= latencyA * EQUALLY_FAST) return inflightB < inflightA ? b : a;
  return expectedWait(latencyB, inflightB, mean) < expectedWait(latencyA, inflightA, mean) ? b : a;
}

const preferByMean = (a: Endpoint, b: Endpoint): Endpoint => prefer(a, b, true);
const preferByPeakEwma = (a: Endpoint, b: Endpoint): Endpoint => prefer(a, b, false);

/**
 * Least-latency: power of two choices on an expected wait (Finagle's P2C + PeakEwma, Linkerd's
 * balancer). The load metrics live on the endpoint (set by the balancer's `latency` option); this
 * picker only compares them. O(1) and allocation-free per pick.
 *
 * No endpoint is starved: one without a current estimate (no response yet, or none for
 * `latency.averageMs` while idle) is probed, one request at a time, as Finagle starts every
 * endpoint at zero; close estimates count as equal (`EQUALLY_FAST`).
 */
export class LeastLatencyPicker implements Picker {
  readonly name = 'least-latency';
  private readonly prefer: (a: Endpoint, b: Endpoint) => Endpoint;

  constructor(
    private readonly random: () => number = Math.random,
    estimator: LatencyEstimator = 'mean',
  ) {
    this.prefer = estimator === 'mean' ? preferByMean : preferByPeakEwma;
  }

  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
    return pickOfTwo(endpoints, request.tried, this.random, this.prefer);
  }
}
