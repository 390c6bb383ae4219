import { DeadlineExceededError } from '../errors.js';
import type { Endpoint } from '../pool/endpoint.js';
import type { AttemptContext, AttemptFunction, CallHooks } from './call-contract.js';
import type { FailoverHost, FailoverPlan } from './failover-host.js';
import type { LiveCall } from './live-calls.js';

/*
 * Every call of `run()` and `dispatch()` passes through this directory, so its functions make no
 * closures on the way of a call that succeeds: a closure in a function makes each call of that
 * function allocate a context for the variables it captures, whether the closure is used or not.
 * Helpers that need one (a listener, a timer's callback, a promise's executor) are module
 * functions, or are made only on the paths that use them.
 */

/**
 * The context of an attempt that only `close()` can abort. Its signal is made only if the
 * callback reads it, and is the attempt's own: callbacks may add listeners to it and drop them
 * with it.
 */
export class UnabortableContext implements AttemptContext {
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

/** The resolving functions of the promise being made, handed over by `takeSettlers`. */
let takenResolve: ((value: never) => void) | undefined;
let takenReject: ((error: unknown) => void) | undefined;

/** The promise executor of every call. */
function takeSettlers(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  takenResolve = resolve;
  takenReject = reject;
}

/**
 * One call of `run()` (or the retries of a dispatched call): its promise, its attempt count, and
 * what can end it early. The caller's signal, the deadline and `close()` stop it at once, even
 * when an attempt ignores its signal. Built only as far as needed: a call that nothing but
 * `close()` can stop has no AbortController, no timer and no listener.
 */
export class CallScope<T> implements LiveCall {
  prevLive: LiveCall | undefined = undefined;
  nextLive: LiveCall | undefined = undefined;
  readonly promise: Promise<T>;
  /** Attempts started so far (a hedged round counts once). */
  attempts = 0;
  lastError: unknown = undefined;
  /** The promise is settled: nothing more is started. */
  done = false;
  /** The first attempt when it runs inline (no attempt timeout, no hedge): where and when it started. */
  firstEndpoint: Endpoint | undefined = undefined;
  firstStartedAt = 0;
  /** Its context when nothing but `close()` can abort it. */
  firstContext: UnabortableContext | undefined = undefined;
  private readonly resolve: (value: T) => void;
  private readonly reject: (error: unknown) => void;
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
    /** A dispatched call's `mayHedge` and `retryWait`. */
    readonly hooks?: CallHooks,
  ) {
    this.promise = new Promise<T>(takeSettlers);
    this.resolve = takenResolve as (value: T) => void;
    this.reject = takenReject as (error: unknown) => void;
    takenResolve = takenReject = undefined;
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

  /**
   * Resolves after `ms`, or at once when the call ends meanwhile (the loop then sees `done`): also
   * when a dispatched call that ended says so (`retryWait`): it fails then with its last failure.
   */
  pause(ms: number): Promise<void> {
    return new Promise<void>((wake) => {
      this.backoff = { timer: setTimeout(endBackoff, ms, this), wake };
      this.hooks?.retryWait?.(() => this.fail(this.lastError));
    });
  }

  /** The backoff is over (its timer fired, or the call ended): the retry loop goes on. */
  backoffOver(): void {
    const backoff = this.backoff;
    if (backoff === undefined) return;
    this.backoff = undefined;
    this.hooks?.retryWait?.(undefined);
    backoff.wake();
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

function expire<T>(call: CallScope<T>): void {
  call.stop(new DeadlineExceededError(call.plan.timeoutMs!, call.attempts, { cause: call.lastError }));
}

function endBackoff<T>(call: CallScope<T>): void {
  call.backoffOver();
}

function listenToCaller<T>(call: CallScope<T>, signal: AbortSignal): void {
  const onAbort = (): void => call.stop(signal.reason);
  call.followCaller(onAbort);
  signal.addEventListener('abort', onAbort, { once: true });
}
