import { EventEmitter } from 'eventemitter3';
import type { Clock } from './clock.js';
import { resolveConfig, type BalancerConfig } from './config.js';
import type { DiscoveryUpdate } from './discovery/source.js';
import { BalancerClosedError, InvalidOptionError, NoEndpointsError, ResolutionError } from './errors.js';
import { DEFAULTS, checkBoolean, checkNumber, checkObject, checkSignal, checkKnownKeys, type BalancerOptions, type RunOptions } from './options.js';
import type { Picker } from './pickers/picker.js';
import type { Endpoint } from './pool/endpoint.js';
import { EndpointPool, type PoolChange } from './pool/pool.js';
import { runWithFailover, type AttemptFunction } from './retry/failover.js';

/** A successful lookup. */
export interface ResolveEvent {
  readonly endpoints: number;
  /** Shortest record TTL, ms (Infinity for a static list). */
  readonly ttlMs: number;
  /** DNS messages sent for this lookup. */
  readonly queries: number;
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
  /** A lookup failed; the last known pool is kept and discovery retries with backoff. */
  'resolve-error': [error: ResolutionError];
  /** Any background error (today: the same failures as 'resolve-error'). Never thrown. */
  error: [error: Error];
  /** The balancer was closed. */
  close: [];
}

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
}

export interface BalancerStats {
  readonly service: string;
  readonly picker: string;
  readonly endpoints: readonly ReturnType<Endpoint['toJSON']>[];
  readonly discovery: DiscoveryStats;
}

const RUN_KEYS = ['key', 'signal', 'idempotent', 'timeoutMs', 'attemptTimeoutMs', 'retries'] as const;

/**
 * A client-side load balancer over the pods of one headless Service (or a static list):
 * discovery feeds the endpoint pool, the picker chooses per request, `run` executes with failover.
 */
export class Balancer extends EventEmitter<BalancerEvents> {
  readonly service: string;
  private readonly config: BalancerConfig;
  private readonly pool: EndpointPool;
  private readonly picker: Picker;
  private closed = false;
  private emptyReason = 'no lookup has completed yet';
  private firstLookupDone = false;
  private readonly firstLookupWaiters = new Set<() => void>();
  private discoveryStats: DiscoveryStats = { lookups: 0, failures: 0, queries: 0, lastSuccessAt: undefined, lastError: undefined, lastErrorAt: undefined };

  /** Use `createBalancer`. */
  constructor(options: BalancerOptions) {
    super();
    this.config = resolveConfig(options);
    this.service = this.config.service;
    this.picker = this.config.picker;
    this.pool = new EndpointPool(this.config.clock, this.config.metrics);
    this.picker.update?.(this.pool.endpoints);
    this.config.discovery.start((update) => this.onDiscovery(update));
  }

  /** The current endpoints. */
  endpoints(): readonly Endpoint[] {
    return this.pool.endpoints;
  }

  /**
   * Resolves once the pool has at least one endpoint. Rejects on timeout (with the last lookup
   * error or empty answer as the cause), on abort, or when the balancer closes.
   */
  ready(options: ReadyOptions = {}): Promise<void> {
    const input = checkObject(options, 'options');
    checkKnownKeys(input, ['timeoutMs', 'signal'], 'options');
    const timeoutMs = input.timeoutMs === undefined ? DEFAULTS.readyTimeoutMs : checkNumber(input.timeoutMs, 'timeoutMs', { min: 0 });
    const signal = input.signal === undefined ? undefined : checkSignal(input.signal, 'signal');
    if (this.closed) return Promise.reject(new BalancerClosedError());
    if (this.pool.size > 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('change', onChange);
        this.off('close', onClose);
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
      const timer = setTimeout(() => {
        cleanup();
        reject(this.noEndpoints(`not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.on('change', onChange);
      this.on('close', onClose);
    });
  }

  /** Chooses an endpoint for one request. Throws NoEndpointsError when the pool is empty. */
  pick(options: { readonly key?: string } = {}): Endpoint {
    if (this.closed) throw new BalancerClosedError();
    const key = options.key;
    if (key !== undefined && typeof key !== 'string') throw new InvalidOptionError('key', key, 'a string');
    return this.pickFor(key, undefined, 1);
  }

  /**
   * Runs `fn` against a chosen endpoint, recording its latency and outcome, and fails over to
   * another endpoint when that is safe (see RunOptions). Waits for the first lookup if none has
   * completed yet.
   */
  async run<T>(fn: AttemptFunction<T>, options: RunOptions = {}): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidOptionError('fn', fn, 'a function (endpoint, { signal, attempt }) => Promise');
    const plan = this.plan(options);
    if (this.closed) throw new BalancerClosedError();
    if (!this.firstLookupDone) await this.waitForFirstLookup(plan.signal, plan.timeoutMs);
    return runWithFailover(this.failoverHost, fn, plan);
  }

  /** Looks up the service now (joining a lookup in flight); resolves when it is done. */
  async refresh(): Promise<void> {
    if (this.closed) throw new BalancerClosedError();
    await this.config.discovery.refresh();
  }

  stats(): BalancerStats {
    return {
      service: this.service,
      picker: this.picker.name,
      endpoints: this.pool.endpoints.map((e) => e.toJSON()),
      discovery: this.discoveryStats,
    };
  }

  /** Stops discovery and timers. In-flight `run` calls finish; new ones are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.config.discovery.close();
    for (const wake of this.firstLookupWaiters) wake();
    this.firstLookupWaiters.clear();
    this.emit('close');
    this.removeAllListeners();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private readonly failoverHost = {
    pickFor: (key: string | undefined, tried: Set<Endpoint>, attempt: number): Endpoint => this.pickFor(key, tried, attempt),
    clock: (): number => this.config.clock(),
    random: (): number => this.config.random(),
  } satisfies { pickFor: unknown; clock: Clock; random: () => number };

  private pickFor(key: string | undefined, tried: Set<Endpoint> | undefined, attempt: number): Endpoint {
    if (this.closed) throw new BalancerClosedError();
    const endpoints = this.pool.endpoints;
    if (endpoints.length === 0) throw this.noEndpoints(this.emptyReason);
    let chosen = this.picker.pick(endpoints, { key, tried, attempt });
    if (chosen === undefined && tried !== undefined && tried.size > 0) {
      // Every endpoint was tried: start a new round rather than fail while retries remain.
      tried.clear();
      chosen = this.picker.pick(endpoints, { key, tried, attempt });
    }
    if (chosen === undefined) throw this.noEndpoints(`picker '${this.picker.name}' found no acceptable endpoint`);
    return chosen;
  }

  private noEndpoints(reason: string): NoEndpointsError {
    return new NoEndpointsError(this.service, reason, { cause: this.discoveryStats.lastError });
  }

  private plan(options: RunOptions) {
    const input = checkObject(options, 'options');
    checkKnownKeys(input, RUN_KEYS, 'options');
    const defaults = this.config.retry;
    return {
      key: input.key === undefined ? undefined : checkString(input.key, 'key'),
      signal: input.signal === undefined ? undefined : checkSignal(input.signal, 'signal'),
      idempotent: input.idempotent === undefined ? false : checkBoolean(input.idempotent, 'idempotent'),
      timeoutMs: input.timeoutMs === undefined ? undefined : checkNumber(input.timeoutMs, 'timeoutMs', { min: 0 }),
      attemptTimeoutMs: input.attemptTimeoutMs === undefined ? undefined : checkNumber(input.attemptTimeoutMs, 'attemptTimeoutMs', { min: 0 }),
      retries: input.retries === undefined ? defaults.retries : checkNumber(input.retries, 'retries', { min: 0, max: 100, integer: true }),
      backoffBaseMs: defaults.backoffBaseMs,
      backoffMaxMs: defaults.backoffMaxMs,
    };
  }

  private waitForFirstLookup(signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.firstLookupWaiters.delete(done);
        resolve();
      };
      const onAbort = (): void => {
        done();
        reject(signal?.reason);
      };
      // Past the deadline, proceed: the pick then fails fast with the reason.
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      timer?.unref();
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.firstLookupWaiters.add(done);
    });
  }

  private onDiscovery(update: DiscoveryUpdate): void {
    if (this.closed) return;
    const now = this.config.clock();
    const stats = this.discoveryStats;
    if (update.kind === 'error') {
      this.discoveryStats = { ...stats, lookups: stats.lookups + 1, failures: stats.failures + 1, lastError: update.error, lastErrorAt: now };
      if (this.pool.size === 0) this.emptyReason = `DNS lookup failed: ${update.error.message}`;
      this.emit('resolve-error', update.error);
      this.emit('error', update.error);
    } else {
      this.discoveryStats = { ...stats, lookups: stats.lookups + 1, queries: stats.queries + update.queries, lastSuccessAt: now };
      const change = this.pool.update(update.kind === 'targets' ? update.targets : []);
      if (update.kind === 'empty') this.emptyReason = update.reason;
      if (change !== undefined) {
        this.picker.update?.(change.endpoints);
        this.emit('change', change);
      }
      if (update.kind === 'empty') this.emit('empty', { reason: update.reason });
      else this.emit('resolve', { endpoints: update.targets.length, ttlMs: update.ttlMs, queries: update.queries, durationMs: update.durationMs });
    }
    if (!this.firstLookupDone) {
      this.firstLookupDone = true;
      for (const wake of [...this.firstLookupWaiters]) wake();
    }
  }
}

function checkString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InvalidOptionError(field, value, 'a string');
  return value;
}

/** Creates a balancer and starts discovery. */
export function createBalancer(options: BalancerOptions): Balancer {
  return new Balancer(options);
}
