import type { Endpoint } from '../pool/endpoint.js';

/*
 * The contract between the balancer's call path and whoever runs attempts: the callback of
 * `run()`, or a protocol adapter driving `dispatch()` (the HTTP dispatcher, the gRPC channel).
 */

/** What the callback of `run()` receives besides the endpoint. */
export interface AttemptContext {
  /** Aborted when the call is aborted, its deadline passes, this attempt times out, or another attempt of a hedged call ended it. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** True for a hedged attempt: one sent while an earlier attempt of the call was still running. */
  readonly hedged: boolean;
}

export type AttemptFunction<T> = (endpoint: Endpoint, context: AttemptContext) => Promise<T>;

/** An attempt of a dispatched call: its context, and how its runner reports the end. */
export interface AttemptHandle<T> extends AttemptContext {
  /** The attempt succeeded. Only the first report of an attempt counts. */
  succeed(value: T): void;
  /** The attempt failed; the balancer decides about another one. Only the first report counts. */
  fail(error: unknown): void;
}

/**
 * A call run by `Balancer.dispatch()`: the callback form of `run()`, for protocol adapters whose
 * calls are driven by callbacks already (an undici handler, a grpc-js listener). Same picks, retry
 * rules, budgets and statistics as `run()`, without a promise per attempt.
 */
export interface DispatchedCall<T> {
  /**
   * Starts one attempt on `endpoint`. Report its end once, with `attempt.succeed(value)` or
   * `attempt.fail(error)`; throwing counts as `fail`.
   */
  startAttempt(endpoint: Endpoint, attempt: AttemptHandle<T>): void;
  /** The call succeeded with this attempt's value. Called once, from `succeed` or later. */
  succeeded(value: T): void;
  /** The call failed for good, with the error `run()` would reject with. Called once, never from inside `dispatch()`. */
  failed(error: unknown): void;
  /**
   * Asked before each hedge of a hedged call: false when the call can send no more attempts at
   * once (its request is no longer kept whole). Then none follows in that round. Default: yes.
   * A wrapper of a call (headless-lb/otel's) must pass it on.
   */
  mayHedge?(): boolean;
  /**
   * The balancer waits before this call's next attempt (a backoff, a server's pushback); `giveUp`
   * ends the wait and the call's retries at once (it fails with its last failure); `undefined`
   * once the wait is over. A call that ends meanwhile (cancelled by its caller) calls it, so that
   * no timer of the balancer holds it. A wrapper of a call must pass it on.
   */
  retryWait?(giveUp: (() => void) | undefined): void;
}

/** What the retry path asks of a dispatched call besides its attempts. */
export type CallHooks = Pick<DispatchedCall<unknown>, 'mayHedge' | 'retryWait'>;
