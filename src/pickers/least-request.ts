import type { Endpoint } from '../pool/endpoint.js';
import { pickOfTwo, preferCheaper } from './p2c.js';
import type { Picker, PickRequest } from './picker.js';

const inflightCost = (endpoint: Endpoint): number => endpoint.inflight;
const preferLessBusy = (a: Endpoint, b: Endpoint): Endpoint => preferCheaper(a, b, inflightCost);

/**
 * Least-request: power of two choices on in-flight requests (Envoy's LEAST_REQUEST, Finagle's
 * default `P2C` least-loaded). Two distinct random endpoints, the healthier and then the less
 * busy one wins. It needs no latency history, so it adapts at once to a pod that slows down
 * (its requests pile up), and it is cheap: O(1) per pick.
 */
export class LeastRequestPicker implements Picker {
  readonly name = 'least-request';

  constructor(private readonly random: () => number = Math.random) {}

  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
    return pickOfTwo(endpoints, request.tried, this.random, preferLessBusy);
  }
}
