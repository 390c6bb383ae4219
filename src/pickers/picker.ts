import type { Endpoint } from '../pool/endpoint.js';

/** What a picker knows about the request it chooses an endpoint for. */
export interface PickRequest {
  /** The request's key (shard key), if it has one. */
  readonly key: string | undefined;
  /** Endpoints this request already tried (failover): choose another one when possible. */
  readonly tried: ReadonlySet<Endpoint> | undefined;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
}

/**
 * Chooses an endpoint for each request. Pickers read load from the endpoints (in-flight count,
 * latency, weight) and never do I/O. Implement this interface to write your own.
 */
export interface Picker {
  /** A short name, shown in stats and errors. */
  readonly name: string;
  /**
   * Called with the pool's endpoints whenever the pool changes (and once at start), so a picker
   * can rebuild tables (hash rings, weights). The array is not mutated afterwards.
   */
  update?(endpoints: readonly Endpoint[]): void;
  /**
   * Chooses one of `endpoints` (never empty), avoiding `request.tried` when another endpoint is
   * available. Returns undefined only when no endpoint is acceptable.
   */
  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined;
}
