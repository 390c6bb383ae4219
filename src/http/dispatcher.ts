import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { Dispatcher, errors } from 'undici';
import type { Balancer } from '../balancer.js';
import { InvalidOptionError } from '../errors.js';
import type { RunOptions } from '../options.js';
import type { Endpoint } from '../pool/endpoint.js';
import type { PoolChange } from '../pool/pool.js';
import type { AttemptHandle, DispatchedCall } from '../retry/call-contract.js';
import { RequestBody } from './body.js';
import { DispatchFields } from './dispatch-fields.js';
import { toDownstream, type Downstream, type ParsedHeaders } from './downstream.js';
import { FinalAttemptError, HttpStatusError, publicError } from './errors.js';
import { readHeader, withHost, type RequestHeaders } from './headers.js';
import { resolveHttpOptions, type HttpDispatcherOptions, type HttpRequestInfo, type ResolvedHttpOptions } from './options.js';
import { controllerApiOnly, PodPools, type PodPool, type PodPoolsStats } from './pools.js';

/** What the dispatcher needs of a balancer. */
export type HttpBalancer = Pick<Balancer, 'dispatch' | 'on' | 'off'>;

export interface HeadlessDispatcherStats extends PodPoolsStats {
  readonly closed: boolean;
  readonly destroyed: boolean;
}

interface ParsedOrigin {
  readonly origin: string;
  readonly protocol: 'http:' | 'https:';
  /** Host header value: host[:port] as in the URL (default ports omitted). */
  readonly host: string;
  /** TLS server name: the URL's hostname, unless it is an IP address. */
  readonly servername: string | undefined;
  /** The headers of a request that has none: shared, frozen. */
  readonly hostOnly: readonly string[];
}

const ORIGIN_CACHE_MAX = 64;

/**
 * An undici Dispatcher that sends each request to one pod of a headless Service, chosen by the
 * balancer's picker, over one keep-alive pool per pod, and fails over to another pod when that
 * is safe. Use it with `undici.request`, `undici.fetch` or Node's global `fetch`
 * (`{ dispatcher }`). Closing it closes its pools, not the balancer.
 */
export class HeadlessDispatcher extends Dispatcher {
  /** @internal */ readonly lb: HttpBalancer;
  /** @internal */ readonly options: ResolvedHttpOptions;
  /** @internal */ readonly pools: PodPools;
  private readonly origins = new Map<string, ParsedOrigin>();
  private closedFlag = false;
  private destroyedFlag = false;
  private closing: Promise<void> | undefined;
  private readonly onChange = (change: PoolChange): void => this.pools.onChange(change);
  /** Balancer options of a request without a shard key or hedge, by idempotence: made once, shared. */
  private readonly keylessRunOptions: readonly [RunOptions, RunOptions];

  /** Use `createDispatcher`. */
  constructor(lb: HttpBalancer, options?: HttpDispatcherOptions) {
    super();
    if (lb === null || typeof lb !== 'object' || typeof lb.dispatch !== 'function' || typeof lb.on !== 'function') {
      throw new InvalidOptionError('lb', lb, 'a Balancer from createBalancer()');
    }
    this.lb = lb;
    this.options = resolveHttpOptions(options);
    this.pools = new PodPools(this.options.pool, this.options.drainTimeoutMs, this.options.idleTimeoutMs, (event, origin, targets, error) => {
      if (event === 'connect') this.emit('connect', origin, [this, ...targets]);
      else if (event === 'disconnect') this.emit('disconnect', origin, [this, ...targets], error as errors.UndiciError);
      else this.emit('connectionError', origin, [this, ...targets], error as errors.UndiciError);
    });
    const { retries, timeoutMs, attemptTimeoutMs } = this.options;
    this.keylessRunOptions = [Object.freeze({ idempotent: false, retries, timeoutMs, attemptTimeoutMs }), Object.freeze({ idempotent: true, retries, timeoutMs, attemptTimeoutMs })];
    lb.on('change', this.onChange);
  }

  /** @internal The options of one request's `lb.dispatch()`. */
  runOptions(key: string | undefined, idempotent: boolean, hedge: boolean): RunOptions {
    if (key === undefined && !hedge) return this.keylessRunOptions[idempotent ? 1 : 0];
    const { retries, timeoutMs, attemptTimeoutMs } = this.options;
    return { key, idempotent, hedge: hedge ? this.options.hedge : undefined, retries, timeoutMs, attemptTimeoutMs };
  }

  /** `true` once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.closedFlag;
  }

  get destroyed(): boolean {
    return this.destroyedFlag;
  }

  /** Pools, draining pools and requests in flight. */
  stats(): HeadlessDispatcherStats {
    return { ...this.pools.stats(), closed: this.closedFlag, destroyed: this.destroyedFlag };
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (handler === null || typeof handler !== 'object') throw new errors.InvalidArgumentError('handler must be an object');
    const downstream = toDownstream(handler);
    let call: HttpCall;
    try {
      if (options === null || typeof options !== 'object') throw new errors.InvalidArgumentError('opts must be an object.');
      if (this.destroyedFlag) throw new errors.ClientDestroyedError();
      if (this.closedFlag) throw new errors.ClientClosedError();
      call = new HttpCall(this, options, downstream);
    } catch (error) {
      downstream.error(error as Error);
      return false;
    }
    call.start();
    return true;
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    if (!this.closedFlag) {
      this.closedFlag = true;
      this.lb.off('change', this.onChange);
      this.closing = this.pools.close();
    }
    const done = this.closing ?? Promise.resolve();
    if (callback === undefined) return done;
    void done.then(() => callback());
  }

  override destroy(err: Error | null, callback: () => void): void;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null): Promise<void>;
  override destroy(): Promise<void>;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    const err = typeof errOrCallback === 'function' || errOrCallback === undefined ? null : errOrCallback;
    let done: Promise<void>;
    if (this.destroyedFlag) done = Promise.resolve();
    else {
      this.destroyedFlag = true;
      this.closedFlag = true;
      this.lb.off('change', this.onChange);
      done = this.pools.destroy(err ?? new errors.ClientDestroyedError());
    }
    if (cb === undefined) return done;
    void done.then(() => cb());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  parseOrigin(origin: unknown): ParsedOrigin {
    const key = typeof origin === 'string' ? origin : origin instanceof URL ? origin.origin : undefined;
    if (key === undefined) throw new errors.InvalidArgumentError('invalid origin: the request needs an absolute http(s) URL');
    const cached = this.origins.get(key);
    if (cached !== undefined) return cached;
    let url: URL;
    try {
      url = new URL(key);
    } catch {
      throw new errors.InvalidArgumentError(`invalid origin ${JSON.stringify(key)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new errors.InvalidArgumentError(`unsupported protocol ${url.protocol} (http: or https: only)`);
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const parsed: ParsedOrigin = {
      origin: key,
      protocol: url.protocol,
      host: url.host,
      servername: this.options.servername ?? (isIP(hostname) === 0 ? hostname : undefined),
      hostOnly: Object.freeze(['host', url.host]),
    };
    if (this.origins.size >= ORIGIN_CACHE_MAX) this.origins.clear();
    this.origins.set(key, parsed);
    return parsed;
  }
}

/** Creates an undici Dispatcher over the pods of `lb`. Closing it does not close the balancer. */
export function createDispatcher(lb: HttpBalancer, options?: HttpDispatcherOptions): HeadlessDispatcher {
  return new HeadlessDispatcher(lb, options);
}

const enum CallState {
  Pending,
  Committed,
  Done,
}

/**
 * One request through the dispatcher: one `lb.dispatch()` call and its attempts.
 *
 * The caller's abort is handled here rather than with a signal passed to the balancer: the error
 * reaches the caller at once, attempts in flight are aborted, and a later attempt (after a
 * backoff) is refused. A signal per call costs an AbortController, two listener operations and
 * a promise race in the balancer on every request, a measurable share of the dispatcher's overhead.
 */
class HttpCall implements DispatchedCall<void> {
  private readonly lb: HttpBalancer;
  /** The caller's dispatch options, read once (see DispatchFields). */
  private readonly fields: DispatchFields;
  private readonly origin: ParsedOrigin;
  private readonly headers: RequestHeaders;
  private readonly body: RequestBody;
  /** The method may be sent twice (method list, or the request's own `idempotent` option). */
  private readonly idempotent: boolean;
  private readonly key: string | undefined;
  private state = CallState.Pending;
  private committed: Attempt | undefined;
  /** A failure-status response kept (paused) until the balancer decides whether to retry. */
  private held: Attempt | undefined;
  /** The attempt waiting for response headers; a hedged twin goes to `twins`. */
  private waiting: Attempt | undefined;
  private twins: Attempt[] | undefined;
  /** Whether the balancer may abort an attempt's signal (deadline, attempt timeout, losing hedge). */
  private readonly watchSignals: boolean;
  private readonly hedge: boolean;

  constructor(
    readonly dispatcher: HeadlessDispatcher,
    opts: Dispatcher.DispatchOptions,
    readonly downstream: Downstream,
  ) {
    this.lb = dispatcher.lb;
    const options = dispatcher.options;
    const fields = DispatchFields.from(opts);
    this.fields = fields;
    this.origin = dispatcher.parseOrigin(fields.origin);
    const headers = fields.headers as RequestHeaders;
    this.headers = withHost(headers, this.origin.host, this.origin.hostOnly);
    this.body = RequestBody.from(fields.body);
    const method = typeof fields.method === 'string' ? upperCase(fields.method) : 'GET';
    this.idempotent = typeof fields.idempotent === 'boolean' ? fields.idempotent : options.idempotentMethods.has(method);
    if (options.key !== undefined) {
      const key = options.key(requestInfo(this.origin.origin, method, fields.path, headers));
      if (key !== undefined && typeof key !== 'string') throw new errors.InvalidArgumentError(`the key function returned ${typeof key}, not a string or undefined`);
      this.key = key;
    } else {
      this.key = options.keyHeader === undefined ? undefined : readHeader(headers, options.keyHeader);
    }
    this.hedge = options.hedge !== undefined && this.idempotent && this.body.isValue;
    this.watchSignals = this.hedge || options.timeoutMs !== undefined || options.attemptTimeoutMs !== undefined;
  }

  get failureCodes(): ReadonlySet<number> {
    return this.dispatcher.options.failureStatusCodes;
  }

  start(): void {
    this.downstream.start(this.abort);
    if (this.state !== CallState.Pending) return; // aborted in onConnect
    // A request that may have reached a pod is re-sent only when its method allows it and its
    // body is a value: a stream body is read by the first attempt. (Attempts that never reached
    // a pod are re-sent whatever the method, as long as the stream was not read.)
    const resend = this.idempotent && this.body.isValue;
    this.lb.dispatch(this, this.dispatcher.runOptions(this.key, resend, this.hedge));
  }

  /** The abort function the caller's handler gets. */
  readonly abort = (reason?: Error): void => {
    if (this.state === CallState.Done) return;
    const error = reason ?? new errors.RequestAbortedError();
    if (this.state === CallState.Committed) {
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
    this.state = CallState.Done;
    this.discardHeld();
    this.downstream.error(error);
  }

  /** The balancer's attempt: it succeeds when a response is committed to the caller. */
  startAttempt(endpoint: Endpoint, handle: AttemptHandle<void>): void {
    this.discardHeld();
    if (this.state !== CallState.Pending) {
      // Aborted by the caller (the error was delivered already): no more attempts.
      handle.fail(new FinalAttemptError(new errors.RequestAbortedError()));
      return;
    }
    if (this.dispatcher.closed) {
      handle.fail(new FinalAttemptError(this.dispatcher.destroyed ? new errors.ClientDestroyedError() : new errors.ClientClosedError()));
      return;
    }
    if (!this.body.replayable) {
      // The core retries only failures that left the body unread; never re-send a read one.
      handle.fail(new FinalAttemptError(new Error('the request body was already consumed by an earlier attempt; not re-sent')));
      return;
    }
    const pod = this.dispatcher.pools.acquire(endpoint, this.origin.protocol, this.origin.servername);
    const attempt = new AttemptForPools(this, pod, this.watchSignals ? handle.signal : undefined, handle);
    if (this.waiting === undefined) this.waiting = attempt;
    else (this.twins ??= []).push(attempt);
    attempt.send();
  }

  /** The committed attempt delivers the response itself. */
  succeeded(): void {}

  /** The options of one attempt for the pod's pool. @internal */
  dispatchOptions(pod: PodPool): Dispatcher.DispatchOptions {
    return this.fields.forAttempt(pod.origin, this.headers, this.body.forAttempt(), this.origin.servername);
  }

  /** Whether a failed attempt's error may be retried (the core then applies its own rules). */
  get bodyReplayable(): boolean {
    return this.body.replayable;
  }

  /** An attempt got its response headers, or failed. */
  settled(attempt: Attempt): void {
    if (this.waiting === attempt) this.waiting = undefined;
    else if (this.twins !== undefined) {
      const i = this.twins.indexOf(attempt);
      if (i !== -1) this.twins.splice(i, 1);
    }
  }

  /** undici refused the request synchronously (invalid header, path, body): not the pod's fault. */
  rejectRequest(error: Error): void {
    if (this.state === CallState.Pending) this.fail(error);
  }

  commit(attempt: Attempt): boolean {
    if (this.state !== CallState.Pending) return false;
    this.state = CallState.Committed;
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
    this.state = CallState.Done;
  }

  get isPending(): boolean {
    return this.state === CallState.Pending;
  }

  get isDone(): boolean {
    return this.state === CallState.Done;
  }

  private discardHeld(): void {
    const held = this.held;
    this.held = undefined;
    held?.discard();
  }

  /** No attempt committed and none will. */
  failed(error: unknown): void {
    if (this.state !== CallState.Pending) return;
    const held = this.held;
    this.held = undefined;
    // By code, not instanceof: in a CommonJS build each entry point may carry its own copy of the class.
    const deadline = (error as { code?: unknown } | null)?.code === 'ERR_HLB_DEADLINE_EXCEEDED';
    if (held !== undefined && !deadline && this.commit(held)) {
      // No retry (not idempotent, retries or budget used up, no other pod): the caller gets the response.
      held.deliver();
      return;
    }
    held?.discard();
    this.state = CallState.Done;
    const caller = publicError(error);
    this.downstream.error(caller);
    // Attempts still out when the balancer ends the call (it closed, or the deadline passed): stopped too.
    this.abortAttemptsOut(caller);
  }
}

const enum AttemptState {
  Waiting,
  Committed,
  Held,
  Discarded,
  Failed,
}

/** One attempt on one pod: a legacy-API handler for the pod's Pool (undici 7: raw headers, no conversion). */
class Attempt implements Dispatcher.DispatchHandler {
  private state = AttemptState.Waiting;
  private innerAbort: ((reason?: Error) => void) | undefined;
  private abortBeforeConnect: Error | undefined;
  private ended = false;
  /** True while the pod pool's `dispatch()` runs: an error then is undici refusing the request itself. */
  private dispatching = false;
  private held:
    | {
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
    | undefined;

  constructor(
    private readonly call: HttpCall,
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

  private onSignal: (() => void) | undefined;

  // Not in send(): a closure there would make every call of send() allocate a context.
  private listenForAbort(signal: AbortSignal): void {
    this.onSignal = () => this.abortInner(signal.reason);
    signal.addEventListener('abort', this.onSignal);
  }

  abortInner(reason: Error): void {
    if (this.innerAbort !== undefined) this.innerAbort(reason);
    else if (this.state === AttemptState.Waiting) this.abortBeforeConnect = reason;
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
    this.state = AttemptState.Failed;
    this.settle();
    // After the caller aborted, or with a body already read, the core must not retry.
    this.handle.fail(this.call.isPending && this.call.bodyReplayable ? error : new FinalAttemptError(error));
  }

  /** Throws away a held failure response (a retry goes elsewhere). */
  discard(): void {
    if (this.state !== AttemptState.Held) return;
    this.state = AttemptState.Discarded;
    this.held = undefined;
    if (!this.ended) this.innerAbort?.(new errors.RequestAbortedError('response discarded: retried on another endpoint'));
  }

  /** Passes a held failure response to the caller after all. */
  deliver(): void {
    const held = this.held;
    if (this.state !== AttemptState.Held || held === undefined) return;
    this.state = AttemptState.Committed;
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
  protected responseStart(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string, parsed: ParsedHeaders | undefined): boolean {
    if (this.state === AttemptState.Committed) return this.call.downstream.headers(statusCode, rawHeaders, resume, statusText, parsed);
    if (this.state !== AttemptState.Waiting) return false;
    if (statusCode < 200) return true; // informational: wait for the final response
    this.settle();
    if (this.call.failureCodes.has(statusCode) && this.call.isPending) {
      this.state = AttemptState.Held;
      this.held = { statusCode, rawHeaders, parsed, resume, statusText, chunks: [] };
      this.call.hold(this);
      this.handle.fail(new HttpStatusError(statusCode, this.pod.endpoint.host));
      return false; // paused until the balancer decides
    }
    if (!this.call.commit(this)) {
      // The call ended meanwhile (aborted, deadline, a twin won): drop this response.
      this.state = AttemptState.Discarded;
      this.handle.fail(new FinalAttemptError(new errors.RequestAbortedError()));
      this.innerAbort?.(new errors.RequestAbortedError());
      return false;
    }
    this.state = AttemptState.Committed;
    this.handle.succeed();
    const downstream = this.call.downstream;
    downstream.responseStarted();
    return downstream.headers(statusCode, rawHeaders, resume, statusText, parsed);
  }

  onData(chunk: Buffer): boolean {
    if (this.state === AttemptState.Committed) return this.call.downstream.data(chunk);
    if (this.state === AttemptState.Held) {
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
    if (this.state === AttemptState.Committed) {
      this.call.finish();
      this.call.downstream.complete(trailers, parsed);
    } else if (this.state === AttemptState.Held) {
      this.held!.trailers = trailers;
      this.held!.parsedTrailers = parsed;
    }
  }

  onError(error: Error): void {
    this.end();
    switch (this.state) {
      case AttemptState.Committed:
        if (this.call.isDone) return;
        this.call.finish();
        this.call.downstream.error(error);
        return;
      case AttemptState.Held:
        this.held!.error = error;
        return;
      case AttemptState.Waiting:
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

  protected requestUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex, parsed: ParsedHeaders | undefined): void {
    this.end();
    if (this.state !== AttemptState.Waiting) {
      socket.destroy();
      return;
    }
    this.settle();
    if (!this.call.commit(this)) {
      this.state = AttemptState.Discarded;
      this.handle.fail(new FinalAttemptError(new errors.RequestAbortedError()));
      socket.destroy();
      return;
    }
    this.state = AttemptState.Committed;
    this.handle.succeed();
    this.call.finish();
    this.call.downstream.upgrade(statusCode, rawHeaders, socket, parsed);
  }
}

/**
 * The attempt for undici 8's pools, which drive handlers through the controller API only (no
 * legacy callbacks): the same attempt, fed from the controller API, with undici's parsed headers
 * passed on so that a caller on the controller API does not get them parsed twice.
 */
class ControllerApiAttempt extends Attempt {
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.onConnect((reason) => controller.abort(reason ?? new errors.RequestAbortedError()));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: ParsedHeaders, statusMessage?: string): void {
    if (!this.responseStart(statusCode, rawHeaders(controller.rawHeaders, headers), () => controller.resume(), statusMessage ?? '', headers)) controller.pause();
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

/** undici 8 drives pool handlers through the controller API only; undici 7 takes legacy handlers as they are. */
const AttemptForPools = controllerApiOnly ? ControllerApiAttempt : Attempt;

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
