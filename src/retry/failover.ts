import { AttemptTimeoutError, BalancerClosedError, DeadlineExceededError, NoEndpointsError } from '../errors.js';
import type { Endpoint } from '../pool/endpoint.js';
import { fullJitterBackoff } from './backoff.js';
import { classifyFailure } from '../failure-kind.js';
import type { LiveCall, LiveCalls } from './live-calls.js';
import { RetryCount } from './retry-count.js';
import type { AttemptContext, AttemptFunction, AttemptHandle, DispatchedCall } from './call-contract.js';

/**
 * The context of an attempt that only `close()` can abort. Its signal is made only if the
 * callback reads it, and is the attempt's own: callbacks may add listeners to it and drop them
 * with it.
 */
class UnabortableContext implements AttemptContext {
  private controller: AbortController | undefined;
  constructor(readonly attempt: number) {}
  get hedged(): boolean {
    return false;
  }
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }
  /** Whether `abort()` was called: the balancer closed while the attempt ran. */
  get aborted(): boolean {
    return this.controller?.signal.aborted === true;
  }
  abort(reason: unknown): void {
    (this.controller ??= new AbortController()).abort(reason);
  }
}

/** Why the slower attempt of a hedged pair is aborted. */
const HEDGE_LOST = Object.freeze(Object.assign(new Error('another attempt of this call succeeded first'), { name: 'AbortError', code: 'ERR_HLB_HEDGE_LOST' }));
const SUCCEEDED: AttemptOutcome = { kind: 'success' };
const CANCELLED: AttemptOutcome = { kind: 'cancelled' };
/** `delayBeforeNext()`: no further attempt. */
const GIVE_UP = -1;

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

/**
 * Runs `fn` against an endpoint and, when that is safe, again against another one:
 * a request that provably never reached its pod is re-sent at once (like Finagle's requeues);
 * one that may have reached it only when the call is idempotent, after a full-jitter backoff,
 * within the balancer's retry budget. `plan.retries` counts every retry after the first attempt;
 * only the re-sends of requests that never reached a pod, once per endpoint of the pool, are
 * free (see RetryCount). An idempotent call may also be hedged: a second attempt after
 * `hedgeDelayMs`, the first success wins and the other is aborted. The deadline, the caller's
 * signal and `close()` stop everything at once.
 *
 * The first attempt runs inline; the retry loop takes over only when it failed. A call that
 * succeeds at once has no async function and no await: two promises are all it costs.
 */
export function runWithFailover<T>(host: FailoverHost, fn: AttemptFunction<T>, plan: FailoverPlan): Promise<T> {
  if (plan.signal?.aborted === true) return Promise.reject(plan.signal.reason);
  host.callStarted();
  const call = new Call(host, fn, plan);
  startFirst(call);
  return call.promise;
}

/**
 * `runWithFailover` for a call driven by callbacks. A call that nothing can abort and that is not
 * hedged (the adapters' usual case) runs its first attempt with no promise at all; it switches to
 * the promise-based path only when that attempt fails. Any other call goes through
 * `runWithFailover` whole.
 */
export function dispatchWithFailover<T>(host: FailoverHost, call: DispatchedCall<T>, plan: FailoverPlan): void {
  if (plan.signal !== undefined || plan.timeoutMs !== undefined || plan.attemptTimeoutMs !== undefined || plan.hedgeDelayMs !== undefined) {
    reportTo(call, runWithFailover(host, promisedAttempts(call), plan));
    return;
  }
  host.callStarted();
  let endpoint: Endpoint;
  try {
    endpoint = host.pickFor(plan.key, undefined, 1);
  } catch (error) {
    retryDispatched(host, call, plan, undefined, error); // no endpoint, balancer closed
    return;
  }
  const attempt = new FirstAttempt(host, call, plan, endpoint);
  try {
    call.startAttempt(endpoint, attempt);
  } catch (error) {
    attempt.fail(error);
  }
}

/**
 * The first attempt of a dispatched call that nothing can abort: its context (a signal made only
 * if read, aborted only by `close()`) and its report, which records the outcome on the endpoint
 * at once. Until it reports, it is a live call of the balancer. Its fields are few on purpose:
 * the adapters make one per request.
 */
class FirstAttempt<T> implements AttemptHandle<T>, LiveCall {
  prevLive: LiveCall | undefined = undefined;
  nextLive: LiveCall | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private readonly startedAt: number;
  /** Where it runs; undefined once it reported (only the first report counts). */
  private endpoint: Endpoint | undefined;

  constructor(
    private readonly host: FailoverHost,
    private readonly call: DispatchedCall<T>,
    private readonly plan: FailoverPlan,
    endpoint: Endpoint,
  ) {
    this.endpoint = endpoint;
    this.startedAt = host.attemptStarted(endpoint, 1, false);
    host.liveCalls.add(this);
  }

  get attempt(): number {
    return 1;
  }

  get hedged(): boolean {
    return false;
  }

  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  succeed(value: T): void {
    const endpoint = this.endpoint;
    if (endpoint === undefined) return;
    this.endpoint = undefined;
    this.host.attemptEnded(endpoint, this.startedAt, SUCCEEDED, 1, false);
    if (this.controller?.signal.aborted === true) return; // the balancer closed: the call has ended already
    this.host.liveCalls.delete(this);
    this.call.succeeded(value);
  }

  fail(error: unknown): void {
    const endpoint = this.endpoint;
    if (endpoint === undefined) return;
    this.endpoint = undefined;
    const aborted = this.controller?.signal.aborted === true;
    this.host.attemptEnded(endpoint, this.startedAt, aborted ? CANCELLED : { kind: 'error', error }, 1, false);
    if (aborted) return;
    this.host.liveCalls.delete(this);
    retryDispatched(this.host, this.call, this.plan, endpoint, error);
  }

  /** The balancer closed while the attempt ran: the call ends now, the attempt's signal aborts. */
  stop(reason: unknown): void {
    (this.controller ??= new AbortController()).abort(reason);
    this.call.failed(reason);
  }
}

/** After a dispatched call's first attempt failed (or found no endpoint): the promise-based retry path. */
function retryDispatched<T>(host: FailoverHost, call: DispatchedCall<T>, plan: FailoverPlan, tried: Endpoint | undefined, error: unknown): void {
  const retry = new Call(host, promisedAttempts(call), plan);
  retry.attempts = 1;
  continueAfter(retry, new Set(tried === undefined ? [] : [tried]), error);
  reportTo(call, retry.promise);
}

/**
 * Ends a dispatched call with the result of the promise-based path. A function of its own: a
 * closure in `dispatchWithFailover` would make every call allocate a context, taken or not.
 */
function reportTo<T>(call: DispatchedCall<T>, work: Promise<T>): void {
  work.then(
    (value) => call.succeeded(value),
    (error: unknown) => call.failed(error),
  );
}

/** A dispatched call's attempts as run()'s attempt function: each handle settles a promise. */
function promisedAttempts<T>(call: DispatchedCall<T>): AttemptFunction<T> {
  return (endpoint, context) => new Promise<T>((resolve, reject) => call.startAttempt(endpoint, new PromisedAttempt(context, resolve, reject)));
}

class PromisedAttempt<T> implements AttemptHandle<T> {
  constructor(
    private readonly context: AttemptContext,
    readonly succeed: (value: T) => void,
    readonly fail: (error: unknown) => void,
  ) {}

  get signal(): AbortSignal {
    return this.context.signal;
  }

  get attempt(): number {
    return this.context.attempt;
  }

  get hedged(): boolean {
    return this.context.hedged;
  }
}

/** The call whose promise is being made: `takeSettlers` hands it the promise's resolving functions. */
let settling: { resolve: (value: never) => void; reject: (error: unknown) => void } | undefined;

/** A promise executor shared by all calls: a closure per call would cost a context and a function. */
function takeSettlers(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  settling!.resolve = resolve;
  settling!.reject = reject;
}

/**
 * One call of `run()` (or the retries of a dispatched call): its promise, and what can end it
 * early. The caller's signal, the deadline and `close()` stop it at once, even when an attempt
 * ignores its signal. Built only as far as needed: a call that nothing but `close()` can stop has
 * no AbortController, no timer and no listener.
 */
class Call<T> implements LiveCall {
  prevLive: LiveCall | undefined = undefined;
  nextLive: LiveCall | undefined = undefined;
  readonly promise: Promise<T>;
  /** Attempts started so far (a hedged pair counts once). */
  attempts = 0;
  lastError: unknown = undefined;
  /** The promise is settled: nothing more is started. */
  done = false;
  /** The first attempt when it runs inline (no attempt timeout, no hedge): where and when it started. */
  firstEndpoint: Endpoint | undefined = undefined;
  firstStartedAt = 0;
  /** Its context when nothing but `close()` can abort it. */
  firstContext: UnabortableContext | undefined = undefined;
  /** The promise's resolving functions, set by `takeSettlers`. */
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;
  /** Aborted when the call stops; made when first needed. */
  private controller: AbortController | undefined = undefined;
  /** The deadline's timer; the backoff's timer and wake-up. Ref'd: the caller waits on them. */
  private deadline: NodeJS.Timeout | undefined = undefined;
  private backoff: { timer: NodeJS.Timeout | undefined; wake: () => void } | undefined = undefined;
  private onCallerAbort: (() => void) | undefined = undefined;

  constructor(
    readonly host: FailoverHost,
    readonly fn: AttemptFunction<T>,
    readonly plan: FailoverPlan,
  ) {
    settling = this;
    this.promise = new Promise<T>(takeSettlers);
    settling = undefined;
    host.liveCalls.add(this);
    if (plan.timeoutMs !== undefined) {
      this.controller = new AbortController();
      this.deadline = setTimeout(expire, plan.timeoutMs, this);
    }
    if (plan.signal !== undefined) listenToCaller(this, plan.signal);
  }

  /** The call's signal: aborted (with the reason) when the call is stopped. Attempts' signals follow it. */
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  /** Whether the call can be stopped by anything but `close()` (a caller's signal or a deadline). */
  get stoppable(): boolean {
    return this.controller !== undefined;
  }

  /** The caller's signal stops the call through this listener (see listenToCaller). */
  followCaller(onCallerAbort: () => void): void {
    this.controller ??= new AbortController();
    this.onCallerAbort = onCallerAbort;
  }

  succeed(value: T): void {
    if (this.done) return;
    this.end();
    this.resolve(value);
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.end();
    this.reject(error);
  }

  /** Ends the call at once (caller's abort, deadline, `close()`): rejects, and aborts what runs. */
  stop(reason: unknown): void {
    if (this.done) return;
    this.end();
    this.reject(reason);
    (this.controller ??= new AbortController()).abort(reason);
    this.firstContext?.abort(reason);
  }

  /** Resolves after `ms`, or at once when the call ends meanwhile (the loop then sees `done`). */
  pause(ms: number): Promise<void> {
    return new Promise<void>((wake) => {
      this.backoff = { timer: setTimeout(endBackoff, ms, this), wake };
    });
  }

  /** The backoff is over (its timer fired, or the call ended): the retry loop goes on. */
  backoffOver(): void {
    const backoff = this.backoff;
    this.backoff = undefined;
    backoff?.wake();
  }

  private end(): void {
    this.done = true;
    this.host.liveCalls.delete(this);
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    if (this.onCallerAbort !== undefined) this.plan.signal?.removeEventListener('abort', this.onCallerAbort);
    if (this.backoff !== undefined) {
      clearTimeout(this.backoff.timer);
      this.backoffOver();
    }
  }
}

function expire<T>(call: Call<T>): void {
  call.stop(new DeadlineExceededError(call.plan.timeoutMs!, call.attempts, { cause: call.lastError }));
}

function endBackoff<T>(call: Call<T>): void {
  call.backoffOver();
}

/** Not in the constructor: a closure there would make every call allocate a context. */
function listenToCaller<T>(call: Call<T>, signal: AbortSignal): void {
  const onAbort = (): void => call.stop(signal.reason);
  call.followCaller(onAbort);
  signal.addEventListener('abort', onAbort, { once: true });
}

/** The first attempt: inline when it has no timeout and no hedge, else through `launch`/`hedged`. */
function startFirst<T>(call: Call<T>): void {
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
    const context: AttemptContext = call.stoppable ? { signal: call.signal, attempt: 1, hedged: false } : (call.firstContext = new UnabortableContext(1));
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
function followInline<T>(call: Call<T>, work: Promise<T>): void {
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

function followFirst<T>(call: Call<T>, first: Promise<T>, endpoint: Endpoint, tried: Set<Endpoint> | undefined): void {
  first.then(
    (value) => call.succeed(value),
    (error: unknown) => {
      if (!call.done) continueAfter(call, tried ?? new Set([endpoint]), error);
    },
  );
}

/** After a failed first attempt: the retry loop, whose end is the call's. */
function continueAfter<T>(call: Call<T>, tried: Set<Endpoint>, error: unknown): void {
  retryLoop(call, tried, error).then(
    (value) => call.succeed(value),
    (failure: unknown) => call.fail(failure),
  );
}

/**
 * The one retry loop: after each failure, decide whether another attempt will happen (and only
 * then take a budget token and sleep the backoff), then make it. Ends with the last failure.
 */
async function retryLoop<T>(call: Call<T>, tried: Set<Endpoint>, error: unknown): Promise<T> {
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
 * full-jitter backoff.
 */
function delayBeforeNext<T>(call: Call<T>, count: RetryCount, error: unknown): number {
  if (error instanceof NoEndpointsError || error instanceof BalancerClosedError) return GIVE_UP;
  const { host, plan } = call;
  const step = count.next(classifyFailure(error), plan.idempotent, host.poolSize());
  if (step === 'give-up') return GIVE_UP;
  if (step === 'resend') return 0;
  if (!host.allowRetry(error)) return GIVE_UP;
  return fullJitterBackoff(count.take(), plan.backoffBaseMs, plan.backoffMaxMs, host.random);
}

/** One attempt after the first: a pick, then the callback (hedged when asked). */
function attemptOnce<T>(call: Call<T>, tried: Set<Endpoint>, attempt: number): Promise<T> {
  call.attempts = attempt;
  const endpoint = call.host.pickFor(call.plan.key, tried.size === 0 ? undefined : tried, attempt);
  tried.add(endpoint);
  if (call.plan.hedgeDelayMs === undefined) return launch(call, endpoint, attempt, false);
  return hedged(call, tried, endpoint, attempt);
}

/**
 * Runs the callback on one endpoint with a signal of its own, and records its outcome once. The
 * signal aborts when `cancel` does (the call stopped, or the hedged pair ended) or when the
 * attempt times out; the attempt's timer is ref'd (the caller waits on it) and cleared as soon
 * as the attempt settles or is aborted.
 */
function launch<T>(call: Call<T>, endpoint: Endpoint, attempt: number, isHedge: boolean, cancel: AbortSignal = call.signal): Promise<T> {
  const { host, plan } = call;
  const own = new AbortController();
  const signal = own.signal;
  let timer: NodeJS.Timeout | undefined;
  const forward = (): void => {
    clearTimeout(timer);
    own.abort(cancel.reason);
  };
  if (cancel.aborted) own.abort(cancel.reason);
  else cancel.addEventListener('abort', forward, { once: true });
  const startedAt = host.attemptStarted(endpoint, attempt, isHedge);
  let recorded = false;
  const record = (outcome: AttemptOutcome): void => {
    if (recorded) return;
    recorded = true;
    host.attemptEnded(endpoint, startedAt, outcome, attempt, isHedge);
  };
  let timedOut: Promise<never> | undefined;
  if (plan.attemptTimeoutMs !== undefined && !signal.aborted) {
    timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new AttemptTimeoutError(plan.attemptTimeoutMs!);
        // The attempt is abandoned: it counts now as a failure of this endpoint.
        record({ kind: 'error', error });
        reject(error);
        own.abort(error);
      }, plan.attemptTimeoutMs);
    });
  }
  let work: Promise<T>;
  try {
    work = Promise.resolve(call.fn(endpoint, { signal, attempt, hedged: isHedge }));
  } catch (error) {
    work = Promise.reject(error);
  }
  // The endpoint's statistics follow the real work, even when it outlives the attempt.
  work.then(
    () => record(SUCCEEDED),
    (error: unknown) => record(signal.aborted && !(signal.reason instanceof AttemptTimeoutError) ? CANCELLED : { kind: 'error', error }),
  );
  const settled = timedOut === undefined ? work : Promise.race([work, timedOut]);
  return settled.finally(() => {
    clearTimeout(timer);
    cancel.removeEventListener('abort', forward);
  });
}

/**
 * The primary attempt, plus a twin on another endpoint if the primary is still running after the
 * delay. The hedge timer is ref'd (the caller waits on what it starts) and cleared when the pair
 * settles or the call stops.
 */
function hedged<T>(call: Call<T>, tried: Set<Endpoint>, primary: Endpoint, attempt: number): Promise<T> {
  const { host, plan } = call;
  const cancel = call.signal;
  const round = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let pending = 0;
    let done = false;
    let firstError: unknown;
    let hedgeTimer: NodeJS.Timeout | undefined;
    const end = (reason: unknown): void => {
      done = true;
      clearTimeout(hedgeTimer);
      cancel.removeEventListener('abort', onCancel);
      round.abort(reason);
    };
    // The call stopped: both attempts are aborted and the pair ends now, whatever they do.
    const onCancel = (): void => {
      if (done) return;
      end(cancel.reason);
      reject(cancel.reason);
    };
    const start = (endpoint: Endpoint, isHedge: boolean): void => {
      pending++;
      launch(call, endpoint, attempt, isHedge, round.signal).then(
        (value) => {
          pending--;
          if (done) return;
          end(HEDGE_LOST); // the loser, if any, is cancelled
          resolve(value);
        },
        (error: unknown) => {
          pending--;
          if (done) return;
          firstError ??= error;
          // Both failed, or the primary failed before the hedge was sent: let the retry logic decide.
          if (pending === 0) {
            end(HEDGE_LOST);
            reject(firstError);
          }
        },
      );
    };
    if (cancel.aborted) return onCancel();
    cancel.addEventListener('abort', onCancel, { once: true });
    start(primary, false);
    hedgeTimer = setTimeout(() => {
      hedgeTimer = undefined;
      if (done) return;
      let twin: Endpoint | undefined;
      try {
        twin = host.allowHedge() ? host.pickFor(plan.key, tried, attempt, false) : undefined;
      } catch {
        twin = undefined;
      }
      if (twin !== undefined && twin !== primary) {
        tried.add(twin);
        start(twin, true);
      }
    }, plan.hedgeDelayMs);
  });
}
