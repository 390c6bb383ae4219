import type { Endpoint } from '../pool/endpoint.js';
import type { LiveCalls } from './live-calls.js';

/*
 * What the call path (call.ts, first-attempt.ts) needs of the balancer, and what it is given:
 * the balancer implements FailoverHost and plans each call (run-plan.ts).
 */

/** One call's settings after defaults. */
export interface FailoverPlan {
  readonly key: string | undefined;
  readonly signal: AbortSignal | undefined;
  readonly idempotent: boolean;
  readonly timeoutMs: number | undefined;
  readonly attemptTimeoutMs: number | undefined;
  readonly retries: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Growth of the backoff ceiling per retry (2: doubling). */
  readonly backoffMultiplier: number;
  /** Delay before a hedged attempt, ms, or undefined for no hedging. */
  readonly hedgeDelayMs: number | undefined;
  /** Attempts of a hedged round at most at once, the first included (2 or more). */
  readonly hedgeMaxAttempts: number;
}

/** How an attempt ended, for the endpoint's statistics and health. */
export type AttemptOutcome =
  | { readonly kind: 'success' }
  | { readonly kind: 'cancelled' }
  /** Cancelled because another attempt of its hedged round ended the call first: its time so far is a lower bound of the endpoint's latency. */
  | { readonly kind: 'outrun' }
  | { readonly kind: 'error'; readonly error: unknown };

/** The outcomes without an error, shared. */
export const SUCCEEDED: AttemptOutcome = { kind: 'success' };
export const CANCELLED: AttemptOutcome = { kind: 'cancelled' };
export const OUTRUN: AttemptOutcome = { kind: 'outrun' };

/** How the call path reaches the balancer. */
export interface FailoverHost {
  /**
   * Chooses an endpoint, avoiding `tried`; throws NoEndpointsError when there is none. When every
   * endpoint was tried, a retry starts a new round (`tried` is cleared); a hedge (`newRound`
   * false) is not sent at all: it would go to a pod that already failed this call, or is
   * running its primary.
   */
  pickFor(key: string | undefined, tried: Set<Endpoint> | undefined, attempt: number, newRound?: boolean): Endpoint;
  /** Records the start of an attempt; returns its start time. */
  attemptStarted(endpoint: Endpoint, attempt: number, hedged: boolean): number;
  attemptEnded(endpoint: Endpoint, startedAt: number, outcome: AttemptOutcome, attempt: number, hedged: boolean): void;
  /** Counts a call (the budgets count it when its first attempt starts). */
  callStarted(): void;
  /** Takes one retry (of a request that may have reached a pod) from the budget; false (and the error is marked) when it is spent. */
  allowRetry(error: unknown): boolean;
  /** Takes one hedge from the hedge budget. */
  allowHedge(): boolean;
  /** Endpoints in the pool now (bounds the re-sends of requests that never reached a pod). */
  poolSize(): number;
  readonly random: () => number;
  /** The calls not ended yet: `close()` stops them all. */
  readonly liveCalls: LiveCalls;
}
