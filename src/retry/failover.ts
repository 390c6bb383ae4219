import pRetry, { AbortError } from 'p-retry';
import { AttemptTimeoutError, DeadlineExceededError } from '../errors.js';
import type { Endpoint } from '../pool/endpoint.js';
import { fullJitterBackoff, sleep } from './backoff.js';
import { classifyFailure, type FailureKind } from './classify.js';

/** What the callback of `run()` receives besides the endpoint. */
export interface AttemptContext {
  /** Aborted when the call is aborted, its deadline passes, this attempt times out, or a hedged twin won. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** True for the second, hedged attempt sent while the first was still running. */
  readonly hedged: boolean;
}

export type AttemptFunction<T> = (endpoint: Endpoint, context: AttemptContext) => Promise<T>;

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
  /** Delay before a hedged attempt, ms, or undefined for no hedging. */
  readonly hedgeDelayMs: number | undefined;
}

/** How an attempt ended, for the endpoint's statistics and health. */
export type AttemptOutcome = { readonly kind: 'success' } | { readonly kind: 'cancelled' } | { readonly kind: 'error'; readonly error: unknown };

/** How the runner reaches the balancer. */
export interface FailoverHost {
  /** Chooses an endpoint, avoiding `tried`; throws NoEndpointsError when there is none. */
  pickFor(key: string | undefined, tried: Set<Endpoint>, attempt: number): Endpoint;
  /** Records the start of an attempt; returns its start time. */
  attemptStarted(endpoint: Endpoint, attempt: number, hedged: boolean): number;
  attemptEnded(endpoint: Endpoint, startedAt: number, outcome: AttemptOutcome, attempt: number, hedged: boolean): void;
  /** Counts a call against the retry budget. */
  callStarted(): void;
  /** Takes one retry (of a request that may have reached a pod) from the budget; false (and the error is marked) when it is spent. */
  allowRetry(error: unknown): boolean;
  /** Takes one hedge from the hedge budget. */
  allowHedge(): boolean;
  readonly random: () => number;
}

/**
 * Runs `fn` against an endpoint and, when that is safe, again against another one:
 * a request that provably never reached its pod is re-sent at once (like Finagle's requeues);
 * one that may have reached it only when the call is idempotent, after a full-jitter backoff.
 * Retries draw on the balancer's retry budget. An idempotent call may also be hedged: a second
 * attempt after `hedgeDelayMs`, the first success wins and the other is aborted.
 * The deadline and the caller's signal cover all attempts and stop everything at once.
 */
export async function runWithFailover<T>(host: FailoverHost, fn: AttemptFunction<T>, plan: FailoverPlan): Promise<T> {
  const call = new AbortController();
  const cleanups: (() => void)[] = [];
  let attempts = 0;
  let lastError: unknown;

  const stopped = new Promise<never>((_, reject) => {
    const onCallerAbort = (): void => {
      reject(plan.signal?.reason);
      call.abort(plan.signal?.reason);
    };
    if (plan.signal !== undefined) {
      if (plan.signal.aborted) return onCallerAbort();
      plan.signal.addEventListener('abort', onCallerAbort, { once: true });
      cleanups.push(() => plan.signal?.removeEventListener('abort', onCallerAbort));
    }
    if (plan.timeoutMs !== undefined) {
      const timer = setTimeout(() => {
        const error = new DeadlineExceededError(plan.timeoutMs!, attempts, { cause: lastError });
        reject(error);
        call.abort(error);
      }, plan.timeoutMs);
      timer.unref();
      cleanups.push(() => clearTimeout(timer));
    }
  });
  stopped.catch(() => {}); // observed through the race below

  const tried = new Set<Endpoint>();

  /** One attempt on one endpoint: its own signal and timeout, its outcome recorded once. */
  const launch = (endpoint: Endpoint, attemptNumber: number, hedged: boolean, cancel: AbortSignal): Promise<T> => {
    tried.add(endpoint);
    const controller = new AbortController();
    const forward = (): void => controller.abort(cancel.reason);
    cancel.addEventListener('abort', forward, { once: true });
    const startedAt = host.attemptStarted(endpoint, attemptNumber, hedged);
    let recorded = false;
    const record = (outcome: AttemptOutcome): void => {
      if (recorded) return;
      recorded = true;
      host.attemptEnded(endpoint, startedAt, outcome, attemptNumber, hedged);
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut =
      plan.attemptTimeoutMs === undefined
        ? undefined
        : new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              const error = new AttemptTimeoutError(plan.attemptTimeoutMs!);
              // The attempt is abandoned: it counts now as a failure of this endpoint.
              record({ kind: 'error', error });
              reject(error);
              controller.abort(error);
            }, plan.attemptTimeoutMs);
            timer.unref();
          });
    let work: Promise<T>;
    try {
      work = Promise.resolve(fn(endpoint, { signal: controller.signal, attempt: attemptNumber, hedged }));
    } catch (error) {
      work = Promise.reject(error);
    }
    // The endpoint's statistics follow the real work, even when it outlives the attempt.
    work.then(
      () => record({ kind: 'success' }),
      (error: unknown) => record(controller.signal.aborted && !(controller.signal.reason instanceof AttemptTimeoutError) ? { kind: 'cancelled' } : { kind: 'error', error }),
    );
    const settled = timedOut === undefined ? work : Promise.race([work, timedOut]);
    return settled.finally(() => {
      clearTimeout(timer);
      cancel.removeEventListener('abort', forward);
    });
  };

  /** One p-retry attempt: the primary, plus a hedged twin when the primary is slow. */
  const attempt = async (attemptNumber: number): Promise<T> => {
    attempts = attemptNumber;
    let endpoint: Endpoint;
    try {
      endpoint = host.pickFor(plan.key, tried, attemptNumber);
    } catch (error) {
      throw new AbortError(error as Error);
    }
    try {
      if (plan.hedgeDelayMs === undefined) return await launch(endpoint, attemptNumber, false, call.signal);
      return await hedged(endpoint, attemptNumber);
    } catch (error) {
      lastError = error;
      if (call.signal.aborted) throw new AbortError(asError(error));
      throw asError(error);
    }
  };

  const hedged = (primary: Endpoint, attemptNumber: number): Promise<T> => {
    const round = new AbortController();
    const forward = (): void => round.abort(call.signal.reason);
    call.signal.addEventListener('abort', forward, { once: true });
    return new Promise<T>((resolve, reject) => {
      let pending = 0;
      let done = false;
      let firstError: unknown;
      let hedgeTimer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        done = true;
        clearTimeout(hedgeTimer);
        call.signal.removeEventListener('abort', forward);
        round.abort(); // the loser, if any, is cancelled
      };
      const start = (endpoint: Endpoint, isHedge: boolean): void => {
        pending++;
        launch(endpoint, attemptNumber, isHedge, round.signal).then(
          (value) => {
            pending--;
            if (done) return;
            finish();
            resolve(value);
          },
          (error: unknown) => {
            pending--;
            if (done) return;
            firstError ??= error;
            // Both failed, or the primary failed before the hedge was sent: let the retry logic decide.
            if (pending === 0) {
              finish();
              reject(firstError);
            }
          },
        );
      };
      start(primary, false);
      hedgeTimer = setTimeout(() => {
        hedgeTimer = undefined;
        if (done) return;
        let twin: Endpoint | undefined;
        try {
          twin = host.allowHedge() ? host.pickFor(plan.key, tried, attemptNumber) : undefined;
        } catch {
          twin = undefined;
        }
        if (twin !== undefined && twin !== primary) start(twin, true);
      }, plan.hedgeDelayMs);
      hedgeTimer.unref();
    });
  };

  host.callStarted();
  const retried = pRetry(attempt, {
    retries: plan.retries,
    minTimeout: 0,
    maxTimeout: 0,
    randomize: false,
    signal: call.signal,
    shouldRetry: async ({ error, attemptNumber }) => {
      if (call.signal.aborted) return false;
      const kind: FailureKind = classifyFailure(error);
      if (kind === 'fatal' || (kind === 'maybe-sent' && !plan.idempotent)) return false;
      // A request that never reached a pod added no load anywhere: re-sending it is bounded by
      // `retries` only. One that may have reached a pod draws on the retry budget and backs off.
      if (kind === 'not-sent') return true;
      if (!host.allowRetry(error)) return false;
      await sleep(fullJitterBackoff(attemptNumber, plan.backoffBaseMs, plan.backoffMaxMs, host.random), call.signal);
      return true;
    },
  });
  retried.catch(() => {});
  try {
    return await Promise.race([retried, stopped]);
  } finally {
    for (const cleanup of cleanups) cleanup();
    if (!call.signal.aborted) call.abort();
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
