import {
  status as Status,
  type CallCredentials,
  type Deadline,
  type InterceptingListener,
  type Metadata,
  type StatusObject,
} from '@grpc/grpc-js';
import type { Balancer } from '../balancer.js';
import { timerDelay } from '../timer-delay.js';
import type { Endpoint } from '../pool/endpoint.js';
import type { AttemptHandle, DispatchedCall } from '../retry/call-contract.js';
import { Attempt, CALL_ENDED, type AttemptOwner, type Outgoing } from './attempt.js';
import type { AuthContext, GrpcCall, MessageContext, ParentCall } from './grpc-call.js';
import type { GrpcMethodPolicy } from './method-policy.js';
import type { ResolvedGrpcOptions } from './options.js';
import type { PodChannels } from './pod-channels.js';
import type { RetryThrottle } from './retry-throttle.js';
import { GrpcStatusError, headersFromError, make, statusFromError } from './status.js';
import { noPodReachable, ReadyWait } from './wait-for-ready.js';

/** What the channel needs of a balancer. */
export type GrpcBalancer = Pick<Balancer, 'dispatch' | 'on' | 'off' | 'endpoints' | 'service'>;

/** What a balanced call needs of its channel. */
export interface CallHost {
  readonly lb: GrpcBalancer;
  readonly options: ResolvedGrpcOptions;
  readonly pods: PodChannels;
  /** What is known of each method's messages (from the clients' service definitions): `MethodShape` bits. */
  readonly methodShapes: ReadonlyMap<string, number>;
  /** The service config's retry throttling (gRFC A6), if any. */
  readonly throttle: RetryThrottle | undefined;
}

/** Bits of a method's shape, known from the service definitions the channel was told. */
export const MethodShape = {
  /** The method answers with one message. */
  UnaryResponse: 1,
  /** The method takes one message. */
  UnaryRequest: 2,
} as const;

let nextCallNumber = 1;

// Module functions, not closures (see retry/call-scope.ts).
function deliverStatus(listener: InterceptingListener, status: StatusObject): void {
  listener.onReceiveStatus(status);
}

function onDeadline(call: BalancedCall): void {
  call.deadlinePassed();
}

/**
 * A client call over the pods of a balancer. grpc-js creates it through `createCall` before the
 * call's metadata exists, so the pod is chosen in `start()`, where the metadata (and so the shard
 * key) is known. Each attempt is a real call on one pod's channel, run under `lb.dispatch()`: the
 * balancer picks, records latency and outcome on the pod, and decides about retries.
 *
 * An attempt *commits* when the pod answers (response metadata, a message, or an OK status; for
 * methods known to have a unary response, only at the status; phases: attempt-phases.ts): from
 * then on the call is pinned to that pod and everything flows straight to the caller. The call's deadline is each attempt's
 * grpc-js deadline, plus a timer here for the time between attempts.
 * Before that, request messages are kept (up to `retryBufferBytes`) so that a failed attempt can
 * be sent again elsewhere: always when it provably never reached the pod, and for idempotent
 * methods also after a retryable status. A hedged method's call runs the attempts of a round at
 * once: each gets the request messages, the first to commit wins, and the balancer aborts the
 * others (their pods see CANCELLED).
 */
export class BalancedCall implements GrpcCall, DispatchedCall<void>, AttemptOwner {
  private readonly callNumber = nextCallNumber++;
  private listener: InterceptingListener | undefined;
  private metadata: Metadata | undefined;
  private credentials: CallCredentials | undefined;
  /** Messages sent so far, while they can still be replayed (made with the first one). */
  private history: Outgoing[] | undefined;
  private historyBytes = 0;
  /** False once the messages exceed `retryBufferBytes`: a failed attempt then ends the call. */
  private replayable = true;
  private halfClosed = false;
  private readPending = false;
  /** The attempt the call waits on (the first of a hedged round); hedges sent meanwhile go to `hedges`. */
  private current: Attempt | undefined;
  private hedges: Attempt[] | undefined;
  private committed: Attempt | undefined;
  private finalStatus: StatusObject | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** `MethodShape` bits of the method, from the service definitions the channel was told. */
  private readonly shape: number;
  /** Attempts listen to the balancer's signal: it aborts them on an attempt timeout or a lost hedge. */
  private readonly watchSignals: boolean;
  /** A `waitForReady` call that found no pod reachable, waiting for one. */
  private readyWait: ReadyWait | undefined;
  /** Ends the balancer's wait before the next attempt (a backoff, a pushback) and its retries, while it waits. */
  private stopRetries: (() => void) | undefined;

  constructor(
    private readonly host: CallHost,
    readonly method: string,
    private readonly policy: GrpcMethodPolicy,
    readonly deadline: Deadline,
    readonly authorityOverride: string | null | undefined,
    readonly parent: ParentCall,
    readonly propagateFlags: number | null | undefined,
    private readonly explicitKey: string | undefined,
  ) {
    this.shape = host.methodShapes.get(method) ?? 0;
    const run = this.policy.runOptions;
    this.watchSignals = host.options.attemptTimeoutMs !== undefined || run.attemptTimeoutMs !== undefined || run.hedge !== undefined;
  }

  /**
   * The method answers with one message (known from the client's service definition): its
   * attempts commit at the status, not at the response metadata, so that an idempotent call whose
   * connection drops mid-answer is retried. The caller sees the same events, at the status.
   */
  get unaryResponse(): boolean {
    return (this.shape & MethodShape.UnaryResponse) !== 0;
  }

  /** The method takes one message: nothing follows it, so its write needs no callback of ours. */
  get unaryRequest(): boolean {
    return (this.shape & MethodShape.UnaryRequest) !== 0;
  }

  /** The caller has its final status (or it is on its way). */
  private get finished(): boolean {
    return this.finalStatus !== undefined;
  }

  // ---- grpc-js Call ----

  start(metadata: Metadata, listener: InterceptingListener): void {
    this.metadata = metadata;
    this.listener = listener;
    if (this.finalStatus !== undefined) {
      // Cancelled before it started.
      process.nextTick(deliverStatus, listener, this.finalStatus);
      return;
    }
    // The deadline is kept here rather than as the balancer's `timeoutMs`: each attempt is a
    // grpc-js call with the same absolute deadline, so only the time outside attempts (the first
    // DNS lookup, a backoff) needs a timer, and a call without an abort source takes the
    // balancer's fast path (no promise).
    const deadlineMs = this.deadline instanceof Date ? this.deadline.getTime() : this.deadline;
    if (Number.isFinite(deadlineMs)) this.deadlineTimer = setTimeout(onDeadline, timerDelay(deadlineMs - Date.now()), this);
    this.dispatch();
  }

  /** Hands the call to the balancer: again after a wait for a reachable pod (`waitForReady`). */
  private dispatch(): void {
    const metadata = this.metadata!;
    let key: string | undefined;
    try {
      key = this.keyOf(metadata);
    } catch (error) {
      this.finish(make(Status.INTERNAL, `headless-lb: ${(error as Error).message}`));
      return;
    }
    try {
      const runOptions = this.policy.runOptions;
      this.host.lb.dispatch(this, key === undefined ? runOptions : { ...runOptions, key });
    } catch (error) {
      this.failed(error);
    }
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    const outgoing: Outgoing = { message, flags: context.flags, callback: context.callback };
    const committed = this.committed;
    if (committed !== undefined) {
      committed.enqueue(outgoing);
      return;
    }
    if (this.replayable) {
      this.keep(outgoing);
      this.historyBytes += message.length;
      if (this.historyBytes > this.host.options.retryBufferBytes) {
        this.replayable = false;
        // The attempts out hold what they have not sent yet; nothing is kept for another one.
        if (this.current !== undefined) this.history = undefined;
      }
    } else if (this.current === undefined) {
      this.keep(outgoing); // for the next (and last) attempt
    }
    this.current?.enqueue(outgoing);
    const hedges = this.hedges;
    if (hedges !== undefined) for (const hedge of hedges) hedge.enqueue(outgoing);
  }

  private keep(outgoing: Outgoing): void {
    if (this.history === undefined) this.history = [outgoing];
    else this.history.push(outgoing);
  }

  halfClose(): void {
    this.halfClosed = true;
    if (this.committed !== undefined) {
      this.committed.pump();
      return;
    }
    this.current?.pump();
    const hedges = this.hedges;
    if (hedges !== undefined) for (const hedge of hedges) hedge.pump();
  }

  startRead(): void {
    if (this.committed !== undefined) {
      this.committed.call.startRead();
      return;
    }
    this.readPending = true;
    this.current?.startRead();
    const hedges = this.hedges;
    if (hedges !== undefined) for (const hedge of hedges) hedge.startRead();
  }

  cancelWithStatus(code: Status, details: string): void {
    if (this.finished) return;
    if (this.committed !== undefined) {
      // The pod's call reports the cancellation as its status.
      this.committed.call.cancelWithStatus(code, details);
      return;
    }
    this.finish(make(code, details));
    this.abandonAll(code, details);
  }

  getPeer(): string {
    const attempt = this.committed ?? this.current;
    if (attempt === undefined) return 'unknown';
    return this.committed === undefined ? attempt.pod.host : attempt.call.getPeer();
  }

  getCallNumber(): number {
    return this.callNumber;
  }

  setCredentials(credentials: CallCredentials): void {
    this.credentials = credentials;
  }

  getAuthContext(): AuthContext {
    return this.committed?.call.getAuthContext() ?? null;
  }

  /** @internal The deadline passed before the call committed (after that, the pod's call reports it). */
  deadlinePassed(): void {
    this.deadlineTimer = undefined;
    if (this.finished || this.committed !== undefined) return;
    // A deadline beyond a timer's reach (2^31−1 ms, ~24.8 days) takes more than one timer.
    const left = (this.deadline instanceof Date ? this.deadline.getTime() : this.deadline) - Date.now();
    if (left > 0) {
      this.deadlineTimer = setTimeout(onDeadline, timerDelay(left), this);
      return;
    }
    this.finish(make(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    this.abandonAll(Status.DEADLINE_EXCEEDED, 'Deadline exceeded');
  }

  /** The call ended before any attempt committed: every attempt out is stopped. */
  private abandonAll(code: Status, details: string): void {
    const current = this.current;
    const hedges = this.hedges;
    this.hedges = undefined;
    current?.abandon(code, details);
    if (hedges !== undefined) for (const hedge of hedges) hedge.abandon(code, details);
  }

  // ---- attempts (lb.dispatch()'s callbacks) ----

  /** Starts an attempt on a pod; it reports success when it commits, failure when it fails first. */
  startAttempt(endpoint: Endpoint, handle: AttemptHandle<void>): void {
    if (this.finished) {
      handle.fail(CALL_ENDED);
      return;
    }
    if (this.host.pods.isClosed) {
      handle.fail(new GrpcStatusError(make(Status.UNAVAILABLE, 'headless-lb: channel closed'), endpoint.host));
      return;
    }
    const first = this.current === undefined;
    const attempt = new Attempt(
      this,
      this.host.pods.acquire(endpoint),
      this.history?.slice(),
      handle,
      this.watchSignals ? handle.signal : undefined,
    );
    if (!this.replayable) this.history = undefined;
    if (handle.hedged && this.current !== undefined) {
      // Sent while the earlier attempts of its round run: all of them get the messages to come.
      (this.hedges ??= []).push(attempt);
    } else {
      // A new round: the attempts of the last one have all failed or been dropped.
      this.current = attempt;
      this.hedges = undefined;
    }
    // grpc-js may keep and add to the metadata it is given: each retry gets its own copy.
    attempt.start(first ? this.metadata! : this.metadata!.clone(), this.credentials);
    if (this.readPending) attempt.startRead();
  }

  /** The committed attempt delivers the status itself. */
  succeeded(): void {}

  /** No attempt committed and none will: the call ends with the last failure's status. */
  failed(error: unknown): void {
    // A cancelled call already reported its status.
    if (this.committed !== undefined || this.finished) return;
    if (this.policy.waitForReady === true && this.waitForPod(error)) return;
    const status = statusFromError(error);
    const headers = headersFromError(error);
    if (headers !== undefined) this.listener?.onReceiveMetadata(headers);
    this.finish(status);
    this.abandonAll(status.code, status.details); // the deadline passed while they ran
  }

  /** The balancer waits before the next attempt (`giveUp` ends it), or no longer (undefined). */
  retryWait(giveUp: (() => void) | undefined): void {
    if (giveUp !== undefined && this.finished) giveUp();
    else this.stopRetries = giveUp;
  }

  /** A hedge may start while the request is kept whole (never a client stream past `retryBufferBytes`). */
  mayHedge(): boolean {
    return this.replayable && !this.finished && this.committed === undefined;
  }

  /** Waits for a reachable pod when none was (`waitForReady`), unless the call's metadata says not to. */
  private waitForPod(error: unknown): boolean {
    if (!noPodReachable(error) || !this.replayable || this.metadata?.getOptions().waitForReady === false) return false;
    this.readyWait = new ReadyWait(this.host.lb, () => {
      this.readyWait = undefined;
      if (!this.finished) this.dispatch();
    });
    return true;
  }

  /** @internal */ get isHalfClosed(): boolean {
    return this.halfClosed;
  }

  /** @internal The pod answered: pin the call to this attempt. */
  commit(attempt: Attempt): boolean {
    if (this.committed === attempt) return !this.finished;
    if (!this.isCurrent(attempt)) return false;
    this.committed = attempt;
    // The other attempts of a hedged round are cancelled when the balancer aborts their signals
    // (right after this attempt's success), so that they count as cancelled, not failed.
    this.hedges = undefined;
    this.history = undefined; // attempts hold copies
    clearTimeout(this.deadlineTimer); // the pod's call has the same deadline
    return true;
  }

  /** @internal Whether the call is still waiting on this attempt (not finished, not superseded, none committed). */
  isCurrent(attempt: Attempt): boolean {
    if (this.finished || this.committed !== undefined) return false;
    return this.current === attempt || (this.hedges !== undefined && this.hedges.includes(attempt));
  }

  /** @internal A failed attempt may be sent again only while every message is still kept. */
  get canReplay(): boolean {
    return this.replayable;
  }

  /** @internal */ deliverMetadata(metadata: Metadata): void {
    this.listener?.onReceiveMetadata(metadata);
  }

  /** @internal */ deliverMessage(message: Buffer): void {
    this.readPending = false;
    this.listener?.onReceiveMessage(message);
  }

  /**
   * Delivers the final status, once: at once when it is a pod call's status (grpc-js delivers
   * those asynchronously already), on the next tick when it comes from a caller's action.
   */
  finish(status: StatusObject, fromPod = false): void {
    if (this.finished) return;
    this.finalStatus = status;
    this.history = undefined; // attempts hold copies
    clearTimeout(this.deadlineTimer);
    this.readyWait?.cancel();
    // A wait for the next attempt ends now: nothing of the call stays in the balancer's timers.
    const stopRetries = this.stopRetries;
    this.stopRetries = undefined;
    stopRetries?.();
    if (fromPod && status.code === Status.OK) this.host.throttle?.succeeded();
    const listener = this.listener;
    if (listener === undefined) return;
    if (fromPod) listener.onReceiveStatus(status);
    else process.nextTick(deliverStatus, listener, status);
  }

  /** @internal The shard key: `withKey()`, then the `key` function, then the key metadata. */
  private keyOf(metadata: Metadata): string | undefined {
    if (this.explicitKey !== undefined) return this.explicitKey;
    const options = this.host.options;
    if (options.key !== undefined) {
      const key = options.key({ method: this.method, metadata });
      if (key !== undefined && typeof key !== 'string')
        throw new TypeError(`the key function returned ${typeof key}, not a string or undefined`);
      return key;
    }
    if (options.keyMetadata === undefined) return undefined;
    const values = metadata.get(options.keyMetadata);
    return values.length === 0 ? undefined : values.map(String).join(',');
  }

  /** @internal Whether each pod call is one grpc-js attempt (see Attempt.neverSent). */
  get podCallsSingleAttempt(): boolean {
    return this.host.options.podCallsSingleAttempt;
  }

  /** @internal Whether a pod's server pushback counts (the method has a service config's retry or hedging policy). */
  get honoursPushback(): boolean {
    return this.policy.pushback === true;
  }

  /** @internal Whether an idempotent call may be retried after this status. */
  hostRetryable(code: Status): boolean {
    const policy = this.policy;
    if (!policy.retryableCodes.has(code)) return false;
    // gRFC A6's throttling: each retryable failure of a method that may be retried takes a token.
    const throttle = this.host.throttle;
    return throttle === undefined || policy.runOptions.idempotent !== true || throttle.failed();
  }
}
