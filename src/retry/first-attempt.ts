import type { Endpoint } from '../pool/endpoint.js';
import { retryAfter, runWithFailover } from './call.js';
import type { AttemptContext, AttemptFunction, AttemptHandle, DispatchedCall } from './call-contract.js';
import { CANCELLED, SUCCEEDED, type FailoverHost, type FailoverPlan } from './failover-host.js';
import type { LiveCall } from './live-calls.js';

/**
 * `runWithFailover` for a call driven by callbacks. A call that nothing can abort and that is not
 * hedged (the adapters' usual case) runs its first attempt with no promise at all; it switches to
 * the promise-based path only when that attempt fails. Any other call goes through
 * `runWithFailover` whole.
 */
export function dispatchWithFailover<T>(host: FailoverHost, call: DispatchedCall<T>, plan: FailoverPlan): void {
  if (plan.signal !== undefined || plan.timeoutMs !== undefined || plan.attemptTimeoutMs !== undefined || plan.hedgeDelayMs !== undefined) {
    reportTo(call, runWithFailover(host, promisedAttempts(call), plan, call));
    return;
  }
  host.callStarted();
  let endpoint: Endpoint;
  try {
    endpoint = host.pickFor(plan.key, undefined, 1);
  } catch (error) {
    reportTo(call, retryAfter(host, promisedAttempts(call), plan, undefined, error, call)); // no endpoint, balancer closed
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
    // After the first attempt failed: the promise-based retry path.
    reportTo(this.call, retryAfter(this.host, promisedAttempts(this.call), this.plan, endpoint, error, this.call));
  }

  /** The balancer closed while the attempt ran: the call ends now, the attempt's signal aborts. */
  stop(reason: unknown): void {
    (this.controller ??= new AbortController()).abort(reason);
    this.call.failed(reason);
  }
}

/** Ends a dispatched call with the result of the promise-based path. */
function reportTo<T>(call: DispatchedCall<T>, work: Promise<T>): void {
  work.then(
    (value) => call.succeeded(value),
    (error: unknown) => call.failed(error),
  );
}

/** A dispatched call's attempts as run()'s attempt function: each handle settles a promise. */
function promisedAttempts<T>(call: DispatchedCall<T>): AttemptFunction<T> {
  return (endpoint, context) =>
    new Promise<T>((resolve, reject) => call.startAttempt(endpoint, new PromisedAttempt(context, resolve, reject)));
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
