import pRetry, { AbortError } from 'p-retry';
import type { Clock } from '../clock.js';
import { AttemptTimeoutError, DeadlineExceededError } from '../errors.js';
import type { Endpoint } from '../pool/endpoint.js';
import { fullJitterBackoff, sleep } from './backoff.js';
import { classifyFailure } from './classify.js';

/** What the callback of `run()` receives besides the endpoint. */
export interface AttemptContext {
  /** Aborted when the call is aborted, its deadline passes, or this attempt times out. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
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
}

/** How the runner reaches the balancer. */
export interface FailoverHost {
  /** Chooses an endpoint, avoiding `tried`; throws NoEndpointsError when there is none. */
  pickFor(key: string | undefined, tried: Set<Endpoint>, attempt: number): Endpoint;
  readonly clock: Clock;
  readonly random: () => number;
}

/**
 * Runs `fn` against an endpoint and, when that is safe, again against another one:
 * a request that provably never reached its pod is re-sent at once (like Finagle's requeues);
 * one that may have reached it only when the call is idempotent, after a full-jitter backoff.
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
  stopped.catch(() => {}); // settled by the race below; avoid an unhandled rejection when unused

  const tried = new Set<Endpoint>();
  const attempt = async (attemptNumber: number): Promise<T> => {
    attempts = attemptNumber;
    let endpoint: Endpoint;
    try {
      endpoint = host.pickFor(plan.key, tried, attemptNumber);
    } catch (error) {
      throw new AbortError(error as Error);
    }
    tried.add(endpoint);
    const attemptController = new AbortController();
    const forward = (): void => attemptController.abort(call.signal.reason);
    call.signal.addEventListener('abort', forward, { once: true });
    let attemptTimer: NodeJS.Timeout | undefined;
    const attemptTimedOut = new Promise<never>((_, reject) => {
      if (plan.attemptTimeoutMs === undefined) return;
      attemptTimer = setTimeout(() => {
        const error = new AttemptTimeoutError(plan.attemptTimeoutMs!);
        reject(error);
        attemptController.abort(error);
      }, plan.attemptTimeoutMs);
      attemptTimer.unref();
    });
    attemptTimedOut.catch(() => {});
    const startedAt = endpoint.start();
    let settled = false;
    try {
      const work = fn(endpoint, { signal: attemptController.signal, attempt: attemptNumber });
      // The endpoint's in-flight count follows the real work, even if it outlives the attempt.
      work.then(
        () => {
          if (!settled) endpoint.finish(startedAt, 'success');
          settled = true;
        },
        () => {
          if (!settled) endpoint.finish(startedAt, call.signal.aborted ? 'cancelled' : 'failure');
          settled = true;
        },
      );
      const result = await (plan.attemptTimeoutMs === undefined ? work : Promise.race([work, attemptTimedOut]));
      return result;
    } catch (error) {
      if (!settled && error instanceof AttemptTimeoutError) {
        // The attempt is abandoned: count it now as a failure of this endpoint.
        settled = true;
        endpoint.finish(startedAt, 'failure');
      }
      lastError = error;
      if (call.signal.aborted) throw new AbortError(asError(error));
      throw asError(error);
    } finally {
      clearTimeout(attemptTimer);
      call.signal.removeEventListener('abort', forward);
    }
  };

  const retried = pRetry(attempt, {
    retries: plan.retries,
    minTimeout: 0,
    maxTimeout: 0,
    randomize: false,
    signal: call.signal,
    shouldRetry: async ({ error, attemptNumber }) => {
      if (call.signal.aborted) return false;
      const kind = classifyFailure(error);
      if (kind === 'not-sent') return true;
      if (kind !== 'maybe-sent' || !plan.idempotent) return false;
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
