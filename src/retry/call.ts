import { BalancerClosedError, NoEndpointsError, retryAfterOf } from '../errors.js';
import { classifyFailure } from '../failure-kind.js';
import { timerDelay } from '../timer-delay.js';
import type { Endpoint } from '../pool/endpoint.js';
import { launch } from './attempt.js';
import { fullJitterBackoff } from './backoff.js';
import type { AttemptContext, AttemptFunction, CallHooks } from './call-contract.js';
import { CallScope, UnabortableContext } from './call-scope.js';
import { CANCELLED, SUCCEEDED, type FailoverHost, type FailoverPlan } from './failover-host.js';
import { hedged } from './hedging.js';
import { RetryCount } from './retry-count.js';

/** `delayBeforeNext()`: no further attempt. */
const GIVE_UP = -1;

/**
 * Runs `fn` against an endpoint and, when that is safe, again against another one:
 * a request that provably never reached its pod is re-sent at once (like Finagle's requeues);
 * one that may have reached it only when the call is idempotent, after a full-jitter backoff,
 * within the balancer's retry budget. `plan.retries` counts every retry after the first attempt;
 * only the re-sends of requests that never reached a pod, once per endpoint of the pool, are
 * free (see RetryCount). An idempotent call may also be hedged (hedging.ts). The deadline, the
 * caller's signal and `close()` stop everything at once (call-scope.ts).
 *
 * The first attempt runs inline; the retry loop takes over only when it failed. A call that
 * succeeds at once has no async function and no await: two promises are all it costs.
 */
export function runWithFailover<T>(host: FailoverHost, fn: AttemptFunction<T>, plan: FailoverPlan, hooks?: CallHooks): Promise<T> {
  if (plan.signal?.aborted === true) return Promise.reject(plan.signal.reason);
  host.callStarted();
  const call = new CallScope(host, fn, plan, hooks);
  startFirst(call);
  return call.promise;
}

/**
 * The retries of a call whose first attempt ran elsewhere (a dispatched call's, see
 * first-attempt.ts) and failed with `error` on `tried` (undefined: it found no endpoint).
 */
export function retryAfter<T>(
  host: FailoverHost,
  fn: AttemptFunction<T>,
  plan: FailoverPlan,
  tried: Endpoint | undefined,
  error: unknown,
  hooks?: CallHooks,
): Promise<T> {
  const call = new CallScope(host, fn, plan, hooks);
  call.attempts = 1;
  continueAfter(call, new Set(tried === undefined ? [] : [tried]), error);
  return call.promise;
}

/** The first attempt: inline when it has no timeout and no hedge, else through `launch`/`hedged`. */
function startFirst<T>(call: CallScope<T>): void {
  const { host, plan } = call;
  call.attempts = 1;
  let endpoint: Endpoint;
  try {
    endpoint = host.pickFor(plan.key, undefined, 1);
  } catch (error) {
    continueAfter(call, new Set(), error); // no endpoint, balancer closed
    return;
  }
  if (plan.attemptTimeoutMs === undefined && plan.hedgeDelayMs === undefined) {
    // The attempt shares the call's signal when the call can be stopped; otherwise it gets one of its own, made if read.
    const context: AttemptContext = call.stoppable
      ? { signal: call.signal, attempt: 1, hedged: false }
      : (call.firstContext = new UnabortableContext(1));
    call.firstEndpoint = endpoint;
    call.firstStartedAt = host.attemptStarted(endpoint, 1, false);
    let work: Promise<T>;
    try {
      work = Promise.resolve(call.fn(endpoint, context));
    } catch (error) {
      work = Promise.reject(error);
    }
    followInline(call, work);
    return;
  }
  // The set of tried endpoints is made only when needed (a hedge, a retry).
  const tried = plan.hedgeDelayMs === undefined ? undefined : new Set([endpoint]);
  followFirst(call, tried === undefined ? launch(call, endpoint, 1, false) : hedged(call, tried, endpoint, 1), endpoint, tried);
}

/** One reaction for the inline first attempt: records its outcome on the endpoint, then ends or retries the call. */
function followInline<T>(call: CallScope<T>, work: Promise<T>): void {
  work.then(
    (value) => {
      call.host.attemptEnded(call.firstEndpoint!, call.firstStartedAt, SUCCEEDED, 1, false);
      call.succeed(value);
    },
    (error: unknown) => {
      const aborted = call.firstContext === undefined ? call.signal.aborted : call.firstContext.aborted;
      call.firstContext = undefined; // over: close() has nothing of it to abort
      call.host.attemptEnded(call.firstEndpoint!, call.firstStartedAt, aborted ? CANCELLED : { kind: 'error', error }, 1, false);
      if (!call.done) continueAfter(call, new Set([call.firstEndpoint!]), error);
    },
  );
}

function followFirst<T>(call: CallScope<T>, first: Promise<T>, endpoint: Endpoint, tried: Set<Endpoint> | undefined): void {
  first.then(
    (value) => call.succeed(value),
    (error: unknown) => {
      if (!call.done) continueAfter(call, tried ?? new Set([endpoint]), error);
    },
  );
}

/** After a failed first attempt: the retry loop, whose end is the call's. */
function continueAfter<T>(call: CallScope<T>, tried: Set<Endpoint>, error: unknown): void {
  retryLoop(call, tried, error).then(
    (value) => call.succeed(value),
    (failure: unknown) => call.fail(failure),
  );
}

/**
 * The one retry loop: after each failure, decide whether another attempt will happen (and only
 * then take a budget token and sleep the backoff), then make it. Ends with the last failure.
 */
async function retryLoop<T>(call: CallScope<T>, tried: Set<Endpoint>, error: unknown): Promise<T> {
  // Never from inside the report of the failure: an adapter may report it from inside startAttempt().
  await undefined;
  const count = new RetryCount(call.plan.retries);
  for (;;) {
    call.lastError = error;
    if (call.done) throw error;
    const delay = delayBeforeNext(call, count, error);
    if (delay === GIVE_UP) throw error;
    if (delay > 0) {
      await call.pause(delay);
      if (call.done) throw error;
    }
    try {
      return await attemptOnce(call, tried, call.attempts + 1);
    } catch (failure) {
      error = failure;
    }
  }
}

/**
 * Whether another attempt follows this failure, and after how long (ms; GIVE_UP for none). A
 * request that never reached a pod is re-sent at once; one that may have reached it is retried
 * only for idempotent calls, within the retry budget (asked only when a retry is left), after a
 * full-jitter backoff, or after the wait the failure asked for (`RetryableError.retryAfterMs`).
 */
function delayBeforeNext<T>(call: CallScope<T>, count: RetryCount, error: unknown): number {
  if (error instanceof NoEndpointsError || error instanceof BalancerClosedError) return GIVE_UP;
  const { host, plan } = call;
  const step = count.next(classifyFailure(error), plan.idempotent, host.poolSize());
  if (step === 'give-up') return GIVE_UP;
  if (step === 'resend') return 0;
  if (!host.allowRetry(error)) return GIVE_UP;
  const asked = retryAfterOf(error);
  if (asked !== undefined) {
    count.takeAfterPushback();
    return timerDelay(asked);
  }
  return fullJitterBackoff(count.take(), plan.backoffBaseMs, plan.backoffMaxMs, host.random, plan.backoffMultiplier);
}

/** One attempt after the first: a pick, then the callback (hedged when asked). */
function attemptOnce<T>(call: CallScope<T>, tried: Set<Endpoint>, attempt: number): Promise<T> {
  call.attempts = attempt;
  const endpoint = call.host.pickFor(call.plan.key, tried.size === 0 ? undefined : tried, attempt);
  tried.add(endpoint);
  if (call.plan.hedgeDelayMs === undefined) return launch(call, endpoint, attempt, false);
  return hedged(call, tried, endpoint, attempt);
}
