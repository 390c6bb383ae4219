import { EventEmitter } from 'eventemitter3';
import { resolveConfig, type BalancerConfig } from './config.js';
import { callTracerOf, channels, type AttemptEndMessage, type AttemptStartMessage } from './diagnostics.js';
import type { SkippedRecord, SkipReason } from './discovery/lookup-report.js';
import type { DiscoveryUpdate } from './discovery/source.js';
import { Drain } from './drain.js';
import { BalancerClosedError, InvalidOptionError, NoEndpointsError, type ResolutionError } from './errors.js';
import { classifyFailure } from './failure-kind.js';
import { checkKnownKeys, checkMilliseconds, checkObject, checkSignal } from './option-checks.js';
import { DEFAULTS, type BalancerOptions, type RunOptions } from './options.js';
import { Candidates } from './pickers/candidates.js';
import type { Picker, PickRequest } from './pickers/picker.js';
import { SlowStart } from './pickers/slow-start.js';
import type { Endpoint, EndpointState } from './pool/endpoint.js';
import { OutlierDetector, type EjectionReason } from './pool/outlier-detector.js';
import { EndpointPool, type PoolChange } from './pool/pool.js';
import { lookupEvent, type LookupEvent } from './lookup-event.js';
import { Budget } from './retry/budget.js';
import type { AttemptFunction, DispatchedCall } from './retry/call-contract.js';
import { runWithFailover } from './retry/call.js';
import type { AttemptOutcome, FailoverHost, FailoverPlan } from './retry/failover-host.js';
import { dispatchWithFailover } from './retry/first-attempt.js';
import { LatencyHistogram } from './retry/latency-histogram.js';
import { LiveCalls } from './retry/live-calls.js';
import { markBudgetExhausted } from './retry/marks.js';
import { afterWaiting, RunPlanner } from './run-plan.js';

/** A successful lookup. */
export interface ResolveEvent {
  readonly endpoints: number;
  /** Shortest record TTL, ms (Infinity for a static list). */
  readonly ttlMs: number;
  /** DNS messages sent for this lookup. */
  readonly queries: number;
  readonly durationMs: number;
}

/** Records a lookup did not use (wrong owner, SRV target '.', an unsafe or disallowed address, ...), each with the reason. */
export interface RecordsSkippedEvent {
  readonly records: readonly SkippedRecord[];
}

/** `close({ drainMs })` started with calls in flight: they may finish until `drainMs` has passed. */
export interface DrainingEvent {
  readonly drainMs: number;
  /** Calls in flight when the drain started. */
  readonly calls: number;
}

/** The balancer released everything. */
export interface CloseEvent {
  /** Calls that close() ended with BalancerClosedError (waiting for the first lookup, or still in flight when the drain ended). */
  readonly stopped: number;
}

export interface EjectEvent {
  readonly endpoint: Endpoint;
  readonly reason: EjectionReason;
  readonly durationMs: number;
}

/** Events of a balancer, with their payloads. */
export interface BalancerEvents {
  /** The pool changed: endpoints were added, removed or readdressed. Once per real change. */
  change: [change: PoolChange];
  /** A lookup succeeded (whether or not the pool changed). */
  resolve: [event: ResolveEvent];
  /** An authoritative answer said the service has no ready endpoints; the pool is now empty. */
  empty: [event: { readonly reason: string }];
  /** After every lookup, whatever its outcome: names asked, server, TTL, next lookup (see LookupEvent). */
  lookup: [event: LookupEvent];
  /** A lookup failed; the last known pool is kept and discovery retries with backoff. */
  'resolve-error': [error: ResolutionError];
  /** A lookup left records of the answer unused; emitted before that lookup's other events. */
  'records-skipped': [event: RecordsSkippedEvent];
  /** An endpoint was ejected by outlier detection. */
  eject: [event: EjectEvent];
  /** An ejected endpoint's time is up: it takes traffic again, on probation. */
  return: [endpoint: Endpoint];
  /** An endpoint on probation succeeded: healthy again. */
  recover: [endpoint: Endpoint];
  /** Panic mode started (`active: true`) or ended: too few healthy endpoints, so all are used. */
  panic: [event: { readonly active: boolean; readonly healthy: number; readonly total: number }];
  /** A retry was refused because the retry budget is spent; the original error is returned. */
  'budget-exhausted': [event: { readonly error: unknown }];
  /** A hedge was due (the first attempt outlived the hedge delay) but the hedge budget is spent: none was sent. */
  'hedge-budget-exhausted': [];
  /** Any background error (today: the same failures as 'resolve-error'). Never thrown. */
  error: [error: Error];
  /** `close({ drainMs })` is waiting for calls in flight; new calls are refused. Followed by 'close'. */
  draining: [event: DrainingEvent];
  /** The balancer was closed: no call is left, nor any timer or socket. */
  close: [event: CloseEvent];
}

export interface CloseOptions {
  /**
   * How long calls in flight may go on, ms (0 … 2³¹−1). Default 0: they end at once with
   * BalancerClosedError. New calls are refused either way.
   */
  readonly drainMs?: number;
}

/** 'open'; 'draining': close({ drainMs }) waits for calls in flight and refuses new ones; 'closed'. */
export type BalancerState = 'open' | 'draining' | 'closed';

export interface ReadyOptions {
  /** Reject after this long, ms. Default 10000. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Discovery health, for stats and health checks. */
export interface DiscoveryStats {
  readonly lookups: number;
  readonly failures: number;
  readonly queries: number;
  /** Clock time of the last successful lookup (ms), if any. */
  readonly lastSuccessAt: number | undefined;
  readonly lastError: ResolutionError | undefined;
  readonly lastErrorAt: number | undefined;
  /** DNS records not used, in total and by reason (see the 'records-skipped' event). */
  readonly skippedRecords: number;
  readonly skippedByReason: Readonly<Partial<Record<SkipReason, number>>>;
  /** DNS messages dropped as not the genuine answer: undecodable, wrong ID or question. */
  readonly droppedMessages: number;
}

/** One endpoint in `stats()`. */
export interface EndpointStats {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name: string | undefined;
  readonly weight: number;
  readonly state: EndpointState;
  readonly inflight: number;
  readonly latencyMs: number;
  readonly successes: number;
  readonly failures: number;
  readonly ejections: number;
  /** Ms left of the current ejection (0 when not ejected). */
  readonly ejectedForMs: number;
  /** Slow start: the share of its picks the endpoint is admitted for now, 0..1 (1 when not ramping). */
  readonly slowStartWeight: number;
  /** HTTP pools and gRPC pod channels open to this pod, over every dispatcher and channel of this balancer. */
  readonly pools: number;
}

export interface BalancerStats {
  readonly service: string;
  readonly state: BalancerState;
  /** Calls not ended yet (not counting calls waiting for the first lookup). */
  readonly inflight: number;
  readonly picker: string;
  readonly size: number;
  readonly healthy: number;
  readonly panic: boolean;
  /** Retries the budget allows now (Infinity without a budget). */
  readonly retryBudgetLeft: number;
  readonly calls: number;
  readonly retries: number;
  readonly hedges: number;
  readonly endpoints: readonly EndpointStats[];
  readonly discovery: DiscoveryStats;
  /** Subsetting (undefined when off): the members requests without a key go to now, by endpoint id. */
  readonly subset: SubsetStats | undefined;
}

export interface SubsetStats {
  readonly size: number;
  readonly clientId: string;
  readonly members: readonly string[];
}

const FIRST_PICK: PickRequest = Object.freeze({ key: undefined, tried: undefined, attempt: 1 });

/**
 * A client-side load balancer over the pods of one headless Service (or a static list):
 * discovery feeds the endpoint pool, outlier detection keeps failing pods out, the picker
 * chooses per request, and `run` executes with failover, budgets and deadlines.
 */
export class Balancer extends EventEmitter<BalancerEvents> {
  readonly service: string;
  private readonly config: BalancerConfig;
  private readonly pool: EndpointPool;
  private readonly picker: Picker;
  private readonly detector: OutlierDetector | undefined;
  private readonly slowStart: SlowStart | undefined;
  private readonly retryBudget: Budget | undefined;
  private readonly hedgeBudget: Budget;
  private readonly latencies: LatencyHistogram;
  private readonly planner: RunPlanner;
  /** Endpoints a request may go to now: the healthy ones, or all of them in panic mode. */
  private readonly candidates: Candidates;
  /** close() was called: new calls are refused. */
  private closed = false;
  /** Everything is released: no call, no timer (at once, or when the drain ends). */
  private released = false;
  /** close()'s promise, shared by later calls of close(). */
  private closing: Promise<void> | undefined;
  private drain: Drain | undefined;
  private emptyReason = 'no lookup has completed yet';
  private firstLookupDone = false;
  /** Calls waiting for the first lookup: woken without an error when it is done, with one on close(). */
  private readonly firstLookupWaiters = new Set<(error?: Error) => void>();
  /** Calls not ended yet (the lookup done): `close()` ends them. */
  private readonly liveCalls = new LiveCalls();
  private counters = { calls: 0, retries: 0, hedges: 0 };
  private discoveryStats: DiscoveryStats = {
    lookups: 0,
    failures: 0,
    queries: 0,
    lastSuccessAt: undefined,
    lastError: undefined,
    lastErrorAt: undefined,
    skippedRecords: 0,
    skippedByReason: {},
    droppedMessages: 0,
  };

  /** Use `createBalancer`. */
  constructor(options: BalancerOptions) {
    super();
    const config = resolveConfig(options);
    this.config = config;
    this.service = config.service;
    this.picker = config.picker;
    this.pool = new EndpointPool(config.clock, config.metrics);
    this.retryBudget = config.retryBudget === undefined ? undefined : new Budget(config.retryBudget, config.clock);
    this.hedgeBudget = new Budget(config.hedgeBudget, config.clock);
    this.latencies = new LatencyHistogram(10_000, config.clock);
    this.planner = new RunPlanner(config.retry, this.latencies);
    this.slowStart = config.slowStart.windowMs > 0 ? new SlowStart(config.slowStart, config.random) : undefined;
    this.detector =
      config.outlierDetection === undefined
        ? undefined
        : new OutlierDetector(config.outlierDetection, config.clock, config.random, () => this.pool.size, {
            onEject: (endpoint, reason, durationMs) => {
              this.candidates.markStale();
              this.emit('eject', { endpoint, reason, durationMs });
            },
            onReturn: (endpoint) => {
              this.candidates.markStale();
              this.emit('return', endpoint);
            },
            onRecover: (endpoint) => this.emit('recover', endpoint),
          });
    const failingAfter = config.outlierDetection?.consecutiveFailures ?? Number.POSITIVE_INFINITY;
    this.candidates = new Candidates(
      this.pool,
      this.detector,
      failingAfter,
      config.panicThreshold,
      (active, healthy, total) => this.emit('panic', { active, healthy, total }),
      config.subset,
    );
    this.picker.update?.(this.pool.endpoints);
    config.discovery.start((update) => this.onDiscovery(update));
  }

  /** The current endpoints (all of them, whatever their health). */
  endpoints(): readonly Endpoint[] {
    return this.pool.endpoints;
  }

  /**
   * Resolves once the pool has at least one endpoint. Rejects on timeout (with the last lookup
   * error as the cause), on abort, or when the balancer closes.
   */
  ready(options: ReadyOptions = {}): Promise<void> {
    try {
      return this.readyWith(options);
    } catch (error) {
      return Promise.reject(error); // bad options reject, as run()'s do
    }
  }

  private readyWith(options: ReadyOptions): Promise<void> {
    const input = checkObject(options, 'options');
    checkKnownKeys(input, ['timeoutMs', 'signal'], 'options');
    const timeoutMs = input.timeoutMs === undefined ? DEFAULTS.readyTimeoutMs : checkMilliseconds(input.timeoutMs, 'timeoutMs');
    const signal = input.signal === undefined ? undefined : checkSignal(input.signal, 'signal');
    if (this.closed) return Promise.reject(new BalancerClosedError());
    if (this.pool.size > 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('change', onChange);
        this.off('close', onClose);
        this.off('draining', onClose);
        signal?.removeEventListener('abort', onAbort);
      };
      const onChange = (change: PoolChange): void => {
        if (change.endpoints.length === 0) return;
        cleanup();
        resolve();
      };
      const onClose = (): void => {
        cleanup();
        reject(new BalancerClosedError());
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal?.reason);
      };
      // Ref'd: the caller waits on it (an unref'd one let a script end with its await unsettled).
      const timer = setTimeout(() => {
        cleanup();
        reject(this.noEndpoints(`not ready after ${timeoutMs} ms (${this.emptyReason})`));
      }, timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.on('change', onChange);
      this.on('close', onClose);
      this.on('draining', onClose);
    });
  }

  /** Chooses an endpoint for one request. Throws NoEndpointsError when there is none. */
  pick(options: { readonly key?: string } = {}): Endpoint {
    if (this.closed) throw new BalancerClosedError();
    const input = checkObject(options, 'options');
    for (const name in input) if (name !== 'key') checkKnownKeys(input, ['key'], 'options');
    const key = input.key;
    if (key !== undefined && typeof key !== 'string') throw new InvalidOptionError('key', key, 'a string');
    return this.pickFor(key, undefined, 1);
  }

  /**
   * Runs `fn` against a chosen endpoint, recording its latency and outcome, and fails over to
   * another endpoint when that is safe (see RunOptions). Waits for the first lookup if none has
   * completed yet.
   */
  run<T>(fn: AttemptFunction<T>, options: RunOptions = {}): Promise<T> {
    // Not an async function: on the hot path, each async frame adds a promise and a tick.
    try {
      if (typeof fn !== 'function') throw new InvalidOptionError('fn', fn, 'a function (endpoint, { signal, attempt }) => Promise');
      const plan = this.planner.plan(options);
      if (this.closed) throw new BalancerClosedError();
      const tracer = callTracerOf(this); // headless-lb/otel: spans current inside the attempts
      if (tracer !== undefined) return tracer.run(fn, plan, this.startTraced);
      if (!this.firstLookupDone) return this.runAfterFirstLookup(fn, plan);
      return runWithFailover(this.failoverHost, fn, plan);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The callback form of `run()`, for protocol adapters whose calls are driven by callbacks
   * already: `call.startAttempt(endpoint, attempt)` starts each attempt and reports its end with
   * `attempt.succeed(value)` or `attempt.fail(error)`; the call ends with `call.succeeded(value)` or
   * `call.failed(error)`. Same picks, retry rules, budgets and statistics as `run()`; a call that
   * nothing can abort costs no promise until an attempt fails.
   */
  dispatch<T>(call: DispatchedCall<T>, options: RunOptions = {}): void {
    // Without its callbacks there is no one to report to: thrown.
    if (
      call === null ||
      typeof call !== 'object' ||
      typeof call.startAttempt !== 'function' ||
      typeof call.succeeded !== 'function' ||
      typeof call.failed !== 'function'
    ) {
      throw new InvalidOptionError('call', call, 'an object with startAttempt(), succeeded() and failed()');
    }
    const tracer = callTracerOf(this); // headless-lb/otel: spans current inside the attempts
    if (tracer !== undefined) call = tracer.dispatch(call);
    let plan: FailoverPlan;
    try {
      plan = this.planner.plan(options);
      if (this.closed) throw new BalancerClosedError();
    } catch (error) {
      failSoon(call, error); // bad options, closed balancer: reported as run() rejects
      return;
    }
    if (this.firstLookupDone) dispatchWithFailover(this.failoverHost, call, plan);
    else this.dispatchAfterFirstLookup(call, plan);
  }

  /** run()'s path for a traced call: a field, so run() itself makes no closure. */
  private readonly startTraced = <T>(fn: AttemptFunction<T>, plan: FailoverPlan): Promise<T> =>
    this.firstLookupDone ? runWithFailover(this.failoverHost, fn, plan) : this.runAfterFirstLookup(fn, plan);

  // Outside run() and dispatch(), which stay free of closures (see retry/call-scope.ts).
  private runAfterFirstLookup<T>(fn: AttemptFunction<T>, plan: FailoverPlan): Promise<T> {
    const waitedFrom = this.config.clock();
    return this.waitForFirstLookup(plan.signal, plan.timeoutMs).then(() =>
      runWithFailover(this.failoverHost, fn, afterWaiting(plan, this.config.clock() - waitedFrom)),
    );
  }

  private dispatchAfterFirstLookup<T>(call: DispatchedCall<T>, plan: FailoverPlan): void {
    const waitedFrom = this.config.clock();
    this.waitForFirstLookup(plan.signal, plan.timeoutMs).then(
      () => dispatchWithFailover(this.failoverHost, call, afterWaiting(plan, this.config.clock() - waitedFrom)),
      (error: unknown) => call.failed(error),
    );
  }

  /** Looks up the service now (joining a lookup in flight); resolves when it is done. */
  async refresh(): Promise<void> {
    if (this.closed) throw new BalancerClosedError();
    await this.config.discovery.refresh();
  }

  stats(): BalancerStats {
    this.candidates.refresh();
    const now = this.config.clock();
    const subset = this.config.subset;
    return {
      service: this.service,
      state: this.state,
      inflight: this.liveCalls.size,
      picker: this.picker.name,
      size: this.pool.size,
      healthy: this.candidates.healthy,
      panic: this.candidates.panic,
      retryBudgetLeft: this.retryBudget?.available() ?? Number.POSITIVE_INFINITY,
      ...this.counters,
      endpoints: this.pool.endpoints.map((e) => ({
        id: e.id,
        address: e.address,
        port: e.port,
        name: e.name,
        weight: e.weight,
        state: e.state,
        inflight: e.inflight,
        latencyMs: e.latencyMs,
        successes: e.successes,
        failures: e.failures,
        ejections: e.ejections,
        ejectedForMs: e.state === 'ejected' ? Math.max(0, e.health.ejectedUntil - now) : 0,
        slowStartWeight: this.slowStart?.weight(e, now) ?? 1,
        pools: e.openPools,
      })),
      discovery: this.discoveryStats,
      subset:
        subset === undefined
          ? undefined
          : { size: subset.size, clientId: subset.clientId, members: this.candidates.keyless().map((e) => e.id) },
    };
  }

  /**
   * Refuses new calls (`run()`, `dispatch()`, `pick()`, `ready()`, `refresh()`) with
   * BalancerClosedError from now on, stops discovery, and ends `ready()` and the calls still
   * waiting for the first lookup. Calls in flight go on, retries and hedges included, for up to
   * `drainMs` (default 0); those still running then end with BalancerClosedError (their attempts'
   * signals aborted with it). Resolves once no call, timer or socket is left.
   *
   * Every call returns the same promise. A later `close({ drainMs })` can only end the drain
   * sooner (`drainMs: 0`: now); a later `close()` without options, as `await using` makes, joins it.
   */
  close(options?: CloseOptions): Promise<void> {
    let drainMs: number | undefined;
    try {
      drainMs = closeDrainMs(options);
    } catch (error) {
      return Promise.reject(error); // bad options reject, as ready()'s do, and close nothing
    }
    if (this.closing === undefined) this.closing = this.closeWithin(drainMs ?? 0);
    else if (drainMs !== undefined) this.drain?.shorten(drainMs);
    return this.closing;
  }

  private async closeWithin(drainMs: number): Promise<void> {
    this.closed = true;
    // A process that is going away needs no fresh answers: the drain's calls use the pool as it is.
    this.config.discovery.close();
    let stopped = this.firstLookupWaiters.size;
    for (const wake of [...this.firstLookupWaiters]) wake(new BalancerClosedError());
    this.firstLookupWaiters.clear();
    let thrown: { error: unknown } | undefined;
    if (drainMs > 0 && !this.liveCalls.empty) {
      const drained = new Promise<void>((resolve) => (this.drain = new Drain(this.liveCalls, drainMs, this.config.clock, resolve)));
      try {
        this.emit('draining', { drainMs, calls: this.liveCalls.size });
      } catch (error) {
        thrown = { error }; // a listener's error rejects close(), after the release
      }
      await drained;
      this.drain = undefined;
    }
    this.released = true;
    stopped += this.liveCalls.size;
    try {
      this.liveCalls.stopAll(() => new BalancerClosedError());
    } finally {
      this.emit('close', { stopped });
      this.removeAllListeners();
    }
    if (thrown !== undefined) throw thrown.error;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** `true` once close() was called: new calls are refused (see `state` for a drain in progress). */
  get isClosed(): boolean {
    return this.closed;
  }

  get state(): BalancerState {
    if (!this.closed) return 'open';
    return this.released ? 'closed' : 'draining';
  }

  private readonly failoverHost: FailoverHost = {
    pickFor: (key, tried, attempt, newRound) => this.pickFor(key, tried, attempt, newRound),
    attemptStarted: (endpoint, attempt, hedged) => {
      if (attempt > 1 && !hedged) this.counters.retries++;
      if (hedged) this.counters.hedges++;
      if (channels.attemptStart.hasSubscribers) {
        channels.attemptStart.publish({ service: this.service, endpoint, attempt, hedged } satisfies AttemptStartMessage);
      }
      const now = this.config.clock(); // read once per attempt: the clock is a hot-path cost
      // A call counts toward the budgets when its first attempt starts (a call that finds no
      // endpoint sends nothing and earns no retries).
      if (attempt === 1 && !hedged) {
        this.retryBudget?.deposit(now);
        this.hedgeBudget.deposit(now);
      }
      return endpoint.start(now);
    },
    attemptEnded: (endpoint, startedAt, outcome, attempt, hedged) => this.attemptEnded(endpoint, startedAt, outcome, attempt, hedged),
    callStarted: () => {
      this.counters.calls++;
    },
    allowRetry: (error) => {
      if (this.retryBudget === undefined || this.retryBudget.tryWithdraw()) return true;
      markBudgetExhausted(error);
      this.emit('budget-exhausted', { error });
      return false;
    },
    allowHedge: () => {
      if (this.hedgeBudget.tryWithdraw()) return true;
      this.emit('hedge-budget-exhausted');
      return false;
    },
    poolSize: () => this.pool.size,
    random: () => this.config.random(),
    liveCalls: this.liveCalls,
  };

  private attemptEnded(endpoint: Endpoint, startedAt: number, outcome: AttemptOutcome, attempt: number, hedged: boolean): void {
    let result: 'success' | 'failure' | 'cancelled';
    if (outcome.kind === 'cancelled' || outcome.kind === 'outrun') result = 'cancelled';
    else if (outcome.kind === 'success' || !this.config.isFailure(outcome.error)) result = 'success';
    else result = 'failure';
    const wasFailing = this.candidates.isFailing(endpoint);
    const now = this.config.clock();
    endpoint.finish(startedAt, result, now);
    // A hedge's loser was still waiting: the pod takes at least this long, which least-latency
    // would not learn from the calls it never gets to answer.
    if (outcome.kind === 'outrun') endpoint.tookAtLeast(now - startedAt, now);
    // Crossing the failure threshold changes the healthy count (and maybe panic mode).
    if (wasFailing !== this.candidates.isFailing(endpoint)) this.candidates.markStale();
    // An endpoint that left the pool meanwhile has no health to judge any more.
    const inPool = endpoint.inPool;
    if (inPool && result === 'success') {
      if (endpoint.lastLatencyMs !== undefined) this.latencies.record(endpoint.lastLatencyMs, now);
      this.detector?.onSuccess(endpoint, now);
    } else if (inPool && result === 'failure' && outcome.kind === 'error') {
      const kind = classifyFailure(outcome.error);
      this.detector?.onFailure(endpoint, kind, now);
      // A refused connection often means the pod is gone: ask DNS again soon.
      if (kind === 'not-sent') this.config.discovery.hint?.();
    }
    if (channels.attemptEnd.hasSubscribers) {
      channels.attemptEnd.publish({
        service: this.service,
        endpoint,
        attempt,
        hedged,
        outcome: result,
        durationMs: now - startedAt,
        error: outcome.kind === 'error' ? outcome.error : undefined,
      } satisfies AttemptEndMessage);
    }
  }

  private pickFor(key: string | undefined, tried: Set<Endpoint> | undefined, attempt: number, newRound = true): Endpoint {
    // While draining, the calls in flight still pick (retries, hedges); pick() itself is refused.
    if (this.released) throw new BalancerClosedError();
    // Subsetting covers requests without a key; a key reaches its owner in the whole pool.
    const candidates = key === undefined ? this.candidates.keyless() : this.candidates.current();
    if (candidates.length === 0) throw this.noEndpoints(this.emptyReason);
    // Most picks are a call's first, without a key: they share one request (pickers only read it).
    const request = key === undefined && tried === undefined && attempt === 1 ? FIRST_PICK : { key, tried, attempt };
    let chosen = this.picker.pick(candidates, request);
    if (chosen === undefined && newRound && tried !== undefined && tried.size > 0) {
      // Every endpoint was tried: start a new round rather than fail while retries remain.
      tried.clear();
      chosen = this.picker.pick(candidates, request);
    }
    if (chosen === undefined) throw this.noEndpoints(`picker '${this.picker.name}' found no acceptable endpoint`);
    if (this.slowStart !== undefined) chosen = this.slowStart.admit(chosen, candidates, this.picker, request, this.config.clock());
    return chosen;
  }

  private noEndpoints(reason: string): NoEndpointsError {
    return new NoEndpointsError(this.service, reason, { cause: this.discoveryStats.lastError });
  }

  /** Resolves when the first lookup is done, or the deadline passed; rejects on abort and on close(). */
  private waitForFirstLookup(signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (error?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.firstLookupWaiters.delete(done);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = (): void => {
        done();
        reject(signal?.reason);
      };
      // Past the deadline, proceed: the pick then fails fast with the reason. Ref'd: the caller waits on it.
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.firstLookupWaiters.add(done);
    });
  }

  private onDiscovery(update: DiscoveryUpdate): void {
    if (this.closed) return;
    const now = this.config.clock();
    this.discoveryStats = countSetAside(this.discoveryStats, update);
    if (update.skipped !== undefined && update.skipped.length > 0) this.emit('records-skipped', { records: update.skipped });
    const stats = this.discoveryStats;
    if (update.kind === 'error') {
      this.discoveryStats = {
        ...stats,
        lookups: stats.lookups + 1,
        failures: stats.failures + 1,
        lastError: update.error,
        lastErrorAt: now,
      };
      if (this.pool.size === 0) this.emptyReason = `DNS lookup failed: ${update.error.message}`;
      this.emit('resolve-error', update.error);
      this.emit('error', update.error);
    } else {
      this.discoveryStats = { ...stats, lookups: stats.lookups + 1, queries: stats.queries + update.queries, lastSuccessAt: now };
      const change = this.pool.update(update.kind === 'targets' ? update.targets : []);
      if (update.kind === 'empty') this.emptyReason = update.reason;
      if (change !== undefined) this.applyChange(change);
      if (update.kind === 'empty') this.emit('empty', { reason: update.reason });
      else
        this.emit('resolve', {
          endpoints: update.targets.length,
          ttlMs: update.ttlMs,
          queries: update.queries,
          durationMs: update.durationMs,
        });
    }
    this.emit('lookup', lookupEvent(update));
    if (!this.firstLookupDone) {
      this.firstLookupDone = true;
      for (const wake of [...this.firstLookupWaiters]) wake();
    }
  }

  private applyChange(change: PoolChange): void {
    this.detector?.forget(change.removed);
    for (const endpoint of change.readdressed) {
      // A new container behind the same name: its predecessor's failures do not count.
      endpoint.resetFailures();
      this.detector?.reinstate(endpoint);
    }
    // Endpoints present at the first lookup are not "new": only later arrivals ramp up.
    if (!this.firstLookupDone) for (const endpoint of change.added) endpoint.markEstablished();
    this.candidates.markStale();
    this.picker.update?.(change.endpoints);
    if (channels.poolChange.hasSubscribers) {
      channels.poolChange.publish({
        service: this.service,
        added: change.added,
        removed: change.removed,
        updated: change.updated,
        readdressed: change.readdressed,
        size: change.endpoints.length,
      });
    }
    this.emit('change', change);
  }
}

/** The discovery stats with what a lookup set aside counted in. */
function countSetAside(stats: DiscoveryStats, update: DiscoveryUpdate): DiscoveryStats {
  const skipped = update.skipped ?? [];
  const dropped = update.droppedMessages ?? 0;
  if (skipped.length === 0 && dropped === 0) return stats;
  const byReason = { ...stats.skippedByReason };
  for (const record of skipped) byReason[record.reason] = (byReason[record.reason] ?? 0) + 1;
  return {
    ...stats,
    skippedRecords: stats.skippedRecords + skipped.length,
    skippedByReason: byReason,
    droppedMessages: stats.droppedMessages + dropped,
  };
}

/** Creates a balancer and starts discovery. */
export function createBalancer(options: BalancerOptions): Balancer {
  return new Balancer(options);
}

/** close()'s drainMs, undefined when not given. */
function closeDrainMs(options: CloseOptions | undefined): number | undefined {
  if (options === undefined) return undefined;
  const input = checkObject(options, 'options');
  checkKnownKeys(input, ['drainMs'], 'options');
  return input.drainMs === undefined ? undefined : checkMilliseconds(input.drainMs, 'drainMs');
}

function failSoon(call: DispatchedCall<unknown>, error: unknown): void {
  queueMicrotask(() => call.failed(error));
}
