import { errors, type Dispatcher } from 'undici';
import type { Balancer } from '../balancer.js';
import { DeadlineExceededError } from '../errors.js';
import type { RunOptions } from '../options.js';
import type { Endpoint } from '../pool/endpoint.js';
import { CallPhase } from '../retry/attempt-phases.js';
import type { AttemptHandle, DispatchedCall } from '../retry/call-contract.js';
import { AttemptForPools, type Attempt, type AttemptOwner } from './attempt.js';
import { RequestBody } from './body.js';
import { DispatchFields } from './dispatch-fields.js';
import type { Downstream } from './downstream.js';
import { FinalAttemptError, publicError } from './errors.js';
import { readHeader, takeHeader, withHost, type RequestHeaders } from './headers.js';
import type { HttpRequestInfo, ResolvedHttpOptions } from './options.js';
import type { ParsedOrigin, Origins } from './origin.js';
import { OVERRIDE_HEADER, parseOverrideHeader } from './override-header.js';
import type { PodPool, PodPools } from './pools.js';
import { checkRequestOptions, mergeOverrides, unhedgeable, type RequestOverrides } from './request-options.js';

/** What the dispatcher needs of a balancer. */
export type HttpBalancer = Pick<Balancer, 'dispatch' | 'on' | 'off'>;

/** What a call needs of its dispatcher. */
export interface CallHost {
  readonly lb: HttpBalancer;
  readonly options: ResolvedHttpOptions;
  readonly pools: PodPools;
  readonly origins: Origins;
  readonly closed: boolean;
  readonly destroyed: boolean;
  /** The options of one request's `lb.dispatch()`; `overrides`: the request's own policy, if it has one. */
  runOptions(key: string | undefined, idempotent: boolean, hedge: boolean, overrides: RequestOverrides | undefined): RunOptions;
}

/**
 * One request through the dispatcher: one `lb.dispatch()` call and its attempts (see
 * attempt-phases.ts for the phases).
 *
 * The caller's abort is handled here rather than with a signal passed to the balancer: the error
 * reaches the caller at once, attempts in flight are aborted, and a later attempt (after a
 * backoff) is refused. A signal per call costs an AbortController, two listener operations and
 * a promise race in the balancer on every request, a measurable share of the dispatcher's overhead.
 */
export class HttpCall implements DispatchedCall<void>, AttemptOwner {
  private readonly lb: HttpBalancer;
  /** The caller's dispatch options, read once (see DispatchFields). */
  private readonly fields: DispatchFields;
  private readonly origin: ParsedOrigin;
  private readonly headers: RequestHeaders;
  private readonly body: RequestBody;
  /** The method may be sent twice (method list, or the request's own `idempotent` option). */
  private readonly idempotent: boolean;
  private readonly key: string | undefined;
  private phase = CallPhase.Pending;
  private committed: Attempt | undefined;
  /** A failure-status response kept (paused) until the balancer decides whether to retry. */
  private held: Attempt | undefined;
  /** The attempt waiting for response headers; a hedged twin goes to `twins`. */
  private waiting: Attempt | undefined;
  private twins: Attempt[] | undefined;
  /** Whether the balancer may abort an attempt's signal (deadline, attempt timeout, losing hedge). */
  private readonly watchSignals: boolean;
  private readonly hedge: boolean;
  /** The request's own policy (`headlessLb` dispatch option, `x-headless-lb` header); usually none. */
  private readonly overrides: RequestOverrides | undefined;

  constructor(
    private readonly host: CallHost,
    opts: Dispatcher.DispatchOptions,
    readonly downstream: Downstream,
  ) {
    this.lb = host.lb;
    const options = host.options;
    const fields = DispatchFields.from(opts);
    this.fields = fields;
    this.origin = host.origins.parse(fields.origin);
    let headers = fields.headers as RequestHeaders;
    let fromHeader: RequestOverrides | undefined;
    if (options.perRequestHeader !== undefined) {
      const taken = takeHeader(headers, OVERRIDE_HEADER);
      if (taken !== undefined) {
        headers = taken.rest;
        if (taken.value !== undefined) fromHeader = parseOverrideHeader(taken.value, options.perRequestHeader);
      }
    }
    // The request's code wins over its header: `headlessLb`, and undici's own `idempotent`.
    if (fromHeader !== undefined && typeof fields.idempotent === 'boolean') fromHeader.idempotent = undefined;
    const fromCode = fields.headlessLb === undefined ? undefined : checkRequestOptions(fields.headlessLb);
    const overrides = fromHeader === undefined ? fromCode : fromCode === undefined ? fromHeader : mergeOverrides(fromHeader, fromCode);
    this.overrides = overrides;
    this.headers = withHost(headers, this.origin.host, this.origin.hostOnly);
    this.body = RequestBody.from(fields.body);
    const method = typeof fields.method === 'string' ? upperCase(fields.method) : 'GET';
    const idempotent = overrides?.idempotent ?? fields.idempotent;
    this.idempotent = typeof idempotent === 'boolean' ? idempotent : options.idempotentMethods.has(method);
    if (options.key !== undefined) {
      const key = options.key(requestInfo(this.origin.origin, method, fields.path, headers));
      if (key !== undefined && typeof key !== 'string')
        throw new errors.InvalidArgumentError(`the key function returned ${typeof key}, not a string or undefined`);
      this.key = key;
    } else {
      this.key = options.keyHeader === undefined ? undefined : readHeader(headers, options.keyHeader);
    }
    if (overrides === undefined) {
      this.hedge = options.hedge !== undefined && this.idempotent && this.body.isValue;
      this.watchSignals = this.hedge || options.timeoutMs !== undefined || options.attemptTimeoutMs !== undefined;
    } else {
      this.hedge = this.hedgeWith(overrides, options);
      this.watchSignals =
        this.hedge ||
        (overrides.timeoutMs ?? options.timeoutMs) !== undefined ||
        (overrides.attemptTimeoutMs ?? options.attemptTimeoutMs) !== undefined;
    }
  }

  /** Whether a request with its own policy is hedged; asking for a hedge it cannot have is an error. */
  private hedgeWith(overrides: RequestOverrides, options: ResolvedHttpOptions): boolean {
    if (overrides.hedge === false) return false;
    if (overrides.hedge === undefined) return options.hedge !== undefined && this.idempotent && this.body.isValue;
    if (!this.idempotent) throw unhedgeable(overrides, 'an idempotent request (a hedge sends it twice): set idempotent too');
    if (!this.body.isValue) throw unhedgeable(overrides, 'a request without a stream body (a stream cannot be sent twice)');
    return true;
  }

  get failureCodes(): ReadonlySet<number> {
    return this.host.options.failureStatusCodes;
  }

  start(): void {
    this.downstream.start(this.abort);
    if (this.phase !== CallPhase.Pending) return; // aborted in onConnect
    // A request that may have reached a pod is re-sent only when its method allows it and its
    // body is a value: a stream body is read by the first attempt. (Attempts that never reached
    // a pod are re-sent whatever the method, as long as the stream was not read.)
    const resend = this.idempotent && this.body.isValue;
    this.lb.dispatch(this, this.host.runOptions(this.key, resend, this.hedge, this.overrides));
  }

  /** The abort function the caller's handler gets. */
  readonly abort = (reason?: Error): void => {
    if (this.phase === CallPhase.Done) return;
    const error = reason ?? new errors.RequestAbortedError();
    if (this.phase === CallPhase.Committed) {
      this.committed?.abortInner(error);
      return;
    }
    this.fail(error);
    this.abortAttemptsOut(error);
  };

  /** Aborts the attempts still waiting for response headers. */
  private abortAttemptsOut(error: Error): void {
    const waiting = this.waiting;
    const twins = this.twins;
    this.waiting = undefined;
    this.twins = undefined;
    waiting?.abortInner(error);
    if (twins !== undefined) for (const attempt of twins) attempt.abortInner(error);
  }

  /** Ends the call with an error before any response was committed. */
  private fail(error: Error): void {
    this.phase = CallPhase.Done;
    this.discardHeld();
    this.downstream.error(error);
  }

  // ---- lb.dispatch()'s callbacks ----

  /** The balancer's attempt: it succeeds when a response is committed to the caller. */
  startAttempt(endpoint: Endpoint, handle: AttemptHandle<void>): void {
    this.discardHeld();
    if (this.phase !== CallPhase.Pending) {
      // Aborted by the caller (the error was delivered already): no more attempts.
      handle.fail(new FinalAttemptError(new errors.RequestAbortedError()));
      return;
    }
    const host = this.host;
    if (host.closed) {
      handle.fail(new FinalAttemptError(host.destroyed ? new errors.ClientDestroyedError() : new errors.ClientClosedError()));
      return;
    }
    if (!this.body.replayable) {
      // The core retries only failures that left the body unread; never re-send a read one.
      handle.fail(new FinalAttemptError(new Error('the request body was already consumed by an earlier attempt; not re-sent')));
      return;
    }
    const pod = host.pools.acquire(endpoint, this.origin.protocol, this.origin.servername);
    const attempt = new AttemptForPools(this, pod, this.watchSignals ? handle.signal : undefined, handle);
    if (this.waiting === undefined) this.waiting = attempt;
    else (this.twins ??= []).push(attempt);
    attempt.send();
  }

  /** The committed attempt delivers the response itself. */
  succeeded(): void {}

  /** No attempt committed and none will. */
  failed(error: unknown): void {
    if (this.phase !== CallPhase.Pending) return;
    const held = this.held;
    this.held = undefined;
    if (held !== undefined && !(error instanceof DeadlineExceededError) && this.commit(held)) {
      // No retry (not idempotent, retries or budget used up, no other pod): the caller gets the response.
      held.deliver();
      return;
    }
    held?.discard();
    this.phase = CallPhase.Done;
    const caller = publicError(error);
    this.downstream.error(caller);
    // Attempts still out when the balancer ends the call (it closed, or the deadline passed): stopped too.
    this.abortAttemptsOut(caller);
  }

  // ---- the attempts' callbacks (AttemptOwner) ----

  dispatchOptions(pod: PodPool): Dispatcher.DispatchOptions {
    return this.fields.forAttempt(pod.origin, this.headers, this.body.forAttempt(), this.origin.servername);
  }

  get canReplay(): boolean {
    return this.body.replayable;
  }

  settled(attempt: Attempt): void {
    if (this.waiting === attempt) this.waiting = undefined;
    else if (this.twins !== undefined) {
      const i = this.twins.indexOf(attempt);
      if (i !== -1) this.twins.splice(i, 1);
    }
  }

  rejectRequest(error: Error): void {
    if (this.phase === CallPhase.Pending) this.fail(error);
  }

  commit(attempt: Attempt): boolean {
    if (this.phase !== CallPhase.Pending) return false;
    this.phase = CallPhase.Committed;
    this.committed = attempt;
    if (this.held !== attempt) this.discardHeld(); // a hedged twin's failure response
    this.held = undefined;
    return true;
  }

  /** Keeps the latest failure response (an older one, from a hedged twin, is dropped). */
  hold(attempt: Attempt): void {
    if (this.held !== attempt) this.discardHeld();
    this.held = attempt;
  }

  finish(): void {
    this.phase = CallPhase.Done;
  }

  get isPending(): boolean {
    return this.phase === CallPhase.Pending;
  }

  get isDone(): boolean {
    return this.phase === CallPhase.Done;
  }

  private discardHeld(): void {
    const held = this.held;
    this.held = undefined;
    held?.discard();
  }
}

function requestInfo(origin: string, method: string, path: unknown, headers: RequestHeaders): HttpRequestInfo {
  return {
    origin,
    method,
    path: path as string,
    header: (name: string) => readHeader(headers, name.toLowerCase()),
  };
}

/** Upper case without a new string for the usual, already upper-case methods. */
function upperCase(method: string): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'POST':
    case 'PUT':
    case 'DELETE':
    case 'OPTIONS':
    case 'PATCH':
      return method;
    default:
      return method.toUpperCase();
  }
}
