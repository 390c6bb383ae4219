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
 * Least-latency: power of two choices on `latencyCost` (Finagle's P2C + PeakEwma, Linkerd's
 * balancer). The load metric lives on the endpoint (peak-EWMA with decay by elapsed time, a
 * default RTT until the first response, set by the balancer's `latency` option); this picker
 * only compares it. O(1) per pick.
 */
export class LeastLatencyPicker implements Picker {
  readonly name = 'least-latency';

  constructor(private readonly random: () => number = Math.random) {}

  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
    return pickOfTwo(endpoints, request.tried, this.random, latencyCost);
  }
}
