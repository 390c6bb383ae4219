import type { Duplex } from 'node:stream';
import { errors, type Dispatcher } from 'undici';
import { AttemptPhase } from '../retry/attempt-phases.js';
import type { AttemptHandle } from '../retry/call-contract.js';
import type { Downstream, ParsedHeaders } from './downstream.js';
import { FinalAttemptError, HttpStatusError } from './errors.js';
import { controllerApiOnly, type PodPool } from './pools.js';

/** What an attempt needs of its call (`HttpCall`). */
export interface AttemptOwner {
  readonly downstream: Downstream;
  readonly failureCodes: ReadonlySet<number>;
  /** No attempt committed yet, and the call has not ended. */
  readonly isPending: boolean;
  readonly isDone: boolean;
  /** Whether a failed attempt's request may be sent again (see attempt-phases.ts). */
  readonly canReplay: boolean;
  /** The options of one attempt for the pod's pool. */
  dispatchOptions(pod: PodPool): Dispatcher.DispatchOptions;
  /** The attempt got its response headers, or failed: it no longer waits. */
  settled(attempt: Attempt): void;
  /** Keeps the attempt's failure response until the balancer decides. */
  hold(attempt: Attempt): void;
  /** Pins the call to the attempt; false when the call ended meanwhile. */
  commit(attempt: Attempt): boolean;
  /** The caller has its outcome. */
  finish(): void;
  /** undici refused the request synchronously: the call fails, not the pod. */
  rejectRequest(error: Error): void;
}

/** A failure response kept, paused, until the balancer decides whether to retry elsewhere. */
interface HeldResponse {
  statusCode: number;
  rawHeaders: Buffer[];
  parsed: ParsedHeaders | undefined;
  resume: () => void;
  statusText: string;
  chunks: Buffer[];
  trailers?: Buffer[] | string[] | null;
  parsedTrailers?: ParsedHeaders;
  error?: Error;
}

/**
 * One attempt on one pod: the handler given to the pod's Pool. This class takes undici 7's
 * handler API (raw headers, no conversion); `ControllerApiAttempt` feeds it from undici 8's.
 */
export class Attempt implements Dispatcher.DispatchHandler {
  private phase = AttemptPhase.Waiting;
  private innerAbort: ((reason?: Error) => void) | undefined;
  private abortBeforeConnect: Error | undefined;
  private ended = false;
  /** True while the pod pool's `dispatch()` runs: an error then is undici refusing the request itself. */
  private dispatching = false;
  private held: HeldResponse | undefined;
  private onSignal: (() => void) | undefined;

  constructor(
    private readonly call: AttemptOwner,
    private readonly pod: PodPool,
    private readonly signal: AbortSignal | undefined,
    /** The balancer's side of this attempt: told once, when a response is committed or the attempt fails. */
    private readonly handle: AttemptHandle<void>,
  ) {}

  send(): void {
    const signal = this.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.fail(signal.reason);
        return;
      }
      this.listenForAbort(signal);
    }
    const pod = this.pod;
    pod.active++;
    pod.used = true;
    this.dispatching = true;
    try {
      pod.pool.dispatch(this.call.dispatchOptions(pod), this);
    } finally {
      this.dispatching = false;
    }
  }

  // The hot paths make no closures (see retry/call-scope.ts): they live in methods of their own.
  private listenForAbort(signal: AbortSignal): void {
    this.onSignal = () => this.abortInner(signal.reason);
    signal.addEventListener('abort', this.onSignal);
  }

  abortInner(reason: Error): void {
    if (this.innerAbort !== undefined) this.innerAbort(reason);
    else if (this.phase === AttemptPhase.Waiting) this.abortBeforeConnect = reason;
  }

  /** No longer waiting for headers. */
  private settle(): void {
    if (this.onSignal !== undefined) this.signal?.removeEventListener('abort', this.onSignal);
    this.call.settled(this);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.pod.active--;
  }

  private fail(error: unknown): void {
    this.phase = AttemptPhase.Failed;
    this.settle();
    // After the caller aborted, or with a body already read, the core must not retry.
    this.handle.fail(this.call.isPending && this.call.canReplay ? error : new FinalAttemptError(error));
  }

  /** Throws away a held failure response (a retry goes elsewhere). */
  discard(): void {
    if (this.phase !== AttemptPhase.Held) return;
    this.phase = AttemptPhase.Dropped;
    this.held = undefined;
    if (!this.ended) this.innerAbort?.(new errors.RequestAbortedError('response discarded: retried on another endpoint'));
  }

  /** Passes a held failure response to the caller after all. */
  deliver(): void {
    const held = this.held;
    if (this.phase !== AttemptPhase.Held || held === undefined) return;
    this.phase = AttemptPhase.Committed;
    this.held = undefined;
    const downstream = this.call.downstream;
    if (held.error !== undefined && held.chunks.length === 0 && held.trailers === undefined) {
      this.call.finish();
      downstream.error(held.error);
      return;
    }
    downstream.responseStarted();
    const flowing = downstream.headers(held.statusCode, held.rawHeaders, held.resume, held.statusText, held.parsed);
    for (const chunk of held.chunks) downstream.data(chunk);
    if (held.error !== undefined) {
      this.call.finish();
      downstream.error(held.error);
    } else if (held.trailers !== undefined) {
      this.call.finish();
      downstream.complete(held.trailers, held.parsedTrailers);
    } else if (flowing) {
      held.resume();
    }
  }

  // ---- undici handler (legacy API) ----

  onConnect(abort: (reason?: Error) => void): void {
    this.innerAbort = abort;
    if (this.abortBeforeConnect !== undefined) abort(this.abortBeforeConnect);
  }

  onResponseStarted(): void {}

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.responseStart(statusCode, rawHeaders, resume, statusText, undefined);
  }

  /** The response's headers; `parsed` when undici parsed them already (its controller API). Returns false to pause. */
  protected responseStart(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText: string,
    parsed: ParsedHeaders | undefined,
  ): boolean {
    if (this.phase === AttemptPhase.Committed) return this.call.downstream.headers(statusCode, rawHeaders, resume, statusText, parsed);
    if (this.phase !== AttemptPhase.Waiting) return false;
    if (statusCode < 200) return true; // informational: wait for the final response
    this.settle();
    if (this.call.failureCodes.has(statusCode) && this.call.isPending) {
      this.phase = AttemptPhase.Held;
      this.held = { statusCode, rawHeaders, parsed, resume, statusText, chunks: [] };
      this.call.hold(this);
      this.handle.fail(new HttpStatusError(statusCode, this.pod.endpoint.host));
      return false; // paused until the balancer decides
    }
    if (!this.call.commit(this)) {
      // The call ended meanwhile (aborted, deadline, a twin won): drop this response.
      this.phase = AttemptPhase.Dropped;
      this.handle.fail(new FinalAttemptError(new errors.RequestAbortedError()));
      this.innerAbort?.(new errors.RequestAbortedError());
      return false;
    }
    this.phase = AttemptPhase.Committed;
    this.handle.succeed();
    const downstream = this.call.downstream;
    downstream.responseStarted();
    return downstream.headers(statusCode, rawHeaders, resume, statusText, parsed);
  }

  onData(chunk: Buffer): boolean {
    if (this.phase === AttemptPhase.Committed) return this.call.downstream.data(chunk);
    if (this.phase === AttemptPhase.Held) {
      this.held!.chunks.push(chunk);
      return false;
    }
    return true;
  }

  onComplete(trailers: string[] | null): void {
    this.responseEnd(trailers, undefined);
  }

  protected responseEnd(trailers: Buffer[] | string[] | null, parsed: ParsedHeaders | undefined): void {
    this.end();
    if (this.phase === AttemptPhase.Committed) {
      this.call.finish();
      this.call.downstream.complete(trailers, parsed);
    } else if (this.phase === AttemptPhase.Held) {
      this.held!.trailers = trailers;
      this.held!.parsedTrailers = parsed;
    }
  }

  onError(error: Error): void {
    this.end();
    switch (this.phase) {
      case AttemptPhase.Committed:
        if (this.call.isDone) return;
        this.call.finish();
        this.call.downstream.error(error);
        return;
      case AttemptPhase.Held:
        this.held!.error = error;
        return;
      case AttemptPhase.Waiting:
        if (this.dispatching && this.innerAbort === undefined) this.call.rejectRequest(error);
        this.fail(error);
        return;
      default:
        return;
    }
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.requestUpgrade(statusCode, rawHeaders, socket, undefined);
  }

  protected requestUpgrade(
    statusCode: number,
    rawHeaders: Buffer[] | string[] | null,
    socket: Duplex,
    parsed: ParsedHeaders | undefined,
  ): void {
    this.end();
    if (this.phase !== AttemptPhase.Waiting) {
      socket.destroy();
      return;
    }
    this.settle();
    if (!this.call.commit(this)) {
      this.phase = AttemptPhase.Dropped;
      this.handle.fail(new FinalAttemptError(new errors.RequestAbortedError()));
      socket.destroy();
      return;
    }
    this.phase = AttemptPhase.Committed;
    this.handle.succeed();
    this.call.finish();
    this.call.downstream.upgrade(statusCode, rawHeaders, socket, parsed);
  }
}

/**
 * The attempt for undici 8's pools, which drive handlers through the controller API only (no
 * legacy callbacks): the same attempt, fed from the controller API, with undici's parsed headers
 * passed on so that a caller on the controller API does not get them parsed twice. A subclass,
 * not a wrapper around the attempt, so an attempt stays one object; and apart from `Attempt`
 * because undici 7 would wrap a handler that has the controller API in a legacy bridge.
 */
class ControllerApiAttempt extends Attempt {
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.onConnect((reason) => controller.abort(reason ?? new errors.RequestAbortedError()));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: ParsedHeaders, statusMessage?: string): void {
    if (
      !this.responseStart(statusCode, rawHeaders(controller.rawHeaders, headers), () => controller.resume(), statusMessage ?? '', headers)
    )
      controller.pause();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.onData(chunk)) controller.pause();
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: ParsedHeaders): void {
    this.responseEnd(rawHeaders(controller.rawTrailers, trailers), trailers);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.onError(error);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: ParsedHeaders, socket: Duplex): void {
    this.requestUpgrade(statusCode, rawHeaders(controller.rawHeaders, headers), socket, headers);
  }
}

/**
 * The raw header list a legacy caller needs. undici 8's controller carries the connection's own
 * (`rawHeaders`, `rawTrailers`): a raw list over HTTP/1.1, an object over HTTP/2 (`pool.allowH2`),
 * for which the list is built from the parsed headers.
 */
function rawHeaders(fromConnection: unknown, parsed: ParsedHeaders | null | undefined): Buffer[] {
  if (Array.isArray(fromConnection)) return fromConnection as Buffer[];
  const raw: Buffer[] = [];
  for (const [name, value] of Object.entries(parsed ?? {})) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) raw.push(Buffer.from(name), Buffer.from(String(one)));
  }
  return raw;
}

/** The attempt class for the installed undici: undici 8 drives pool handlers through the controller API only; undici 7 takes legacy handlers as they are. */
export const AttemptForPools: typeof Attempt = controllerApiOnly ? ControllerApiAttempt : Attempt;
