import type { Endpoint } from '../pool/endpoint.js';
import { pickOfTwo } from './p2c.js';
import type { Picker, PickRequest } from './picker.js';

/**
 * Added to the in-flight count of an endpoint whose latency estimate reached zero while it has
 * requests pending, so that it cannot look free (Finagle `PeakEwma`'s `Penalty`).
 */
const ZERO_LATENCY_PENALTY = Number.MAX_SAFE_INTEGER / 2;

/**
 * The expected wait at an endpoint: peak-EWMA latency × (in-flight + 1). The `+ 1` counts the
 * request being placed, so an idle fast pod beats an idle slow one and a busy fast pod can lose
 * to an idle slow one.
 */
export function latencyCost(endpoint: Endpoint): number {
  const inflight = endpoint.inflight;
  const latency = endpoint.latencyMs;
  if (latency <= 0 && inflight > 0) return ZERO_LATENCY_PENALTY + inflight;
  return latency * (inflight + 1);
}

/**
 * The expected wait with the mean estimate: mean latency × (1 + in-flight / 2). Half weight on
 * the in-flight count, because the mean already carries the queueing that in-flight requests
 * cause; with full weight a busy fast pod loses to an idle slow one too early.
 */
export function meanLatencyCost(endpoint: Endpoint): number {
  const inflight = endpoint.inflight;
  const latency = endpoint.meanLatencyMs;
  if (latency <= 0 && inflight > 0) return ZERO_LATENCY_PENALTY + inflight;
  return latency * (1 + inflight / 2);
}

/** Which latency estimate least-latency compares: Finagle's peak-EWMA, or a decaying mean. */
export type LatencyEstimator = 'peak-ewma' | 'mean';

/**
 * Least-latency: power of two choices on an expected wait (Finagle's P2C + PeakEwma, Linkerd's
 * balancer). The load metrics live on the endpoint (set by the balancer's `latency` option); this
 * picker only compares them. O(1) per pick.
 */
export class LeastLatencyPicker implements Picker {
  readonly name = 'least-latency';
  private readonly cost: (endpoint: Endpoint) => number;

  constructor(
    private readonly random: () => number = Math.random,
    estimator: LatencyEstimator = 'mean',
  ) {
    this.cost = estimator === 'mean' ? meanLatencyCost : latencyCost;
  }

  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
    return pickOfTwo(endpoints, request.tried, this.random, this.cost);
  }
}
