import { Dispatcher, errors } from 'undici';
import { InvalidOptionError } from '../errors.js';
import type { RunOptions } from '../options.js';
import type { PoolChange } from '../pool/pool.js';
import { HttpCall, type CallHost, type HttpBalancer } from './call.js';
import { toDownstream } from './downstream.js';
import { resolveHttpOptions, type HttpDispatcherOptions, type ResolvedHttpOptions } from './options.js';
import { Origins } from './origin.js';
import { defaultMaxPods } from '../pod-bound.js';
import { PodPools, type PodPoolsStats } from './pools.js';
import { mergeBackoff, type RequestOverrides } from './request-options.js';

export type { HttpBalancer } from './call.js';

export interface HeadlessDispatcherStats extends PodPoolsStats {
  readonly closed: boolean;
  readonly destroyed: boolean;
}

/**
 * An undici Dispatcher that sends each request to one pod of a headless Service, chosen by the
 * balancer's picker, over one keep-alive pool per pod, and fails over to another pod when that
 * is safe. Use it with `undici.request`, `undici.fetch` or Node's global `fetch`
 * (`{ dispatcher }`). Closing it closes its pools, not the balancer.
 *
 * The facade: options, pools, lifecycle. Each request is an `HttpCall` (call.ts), which runs its
 * attempts (attempt.ts) on the pods' pools.
 */
export class HeadlessDispatcher extends Dispatcher implements CallHost {
  /** @internal */ readonly lb: HttpBalancer;
  /** @internal */ readonly options: ResolvedHttpOptions;
  /** @internal */ readonly pools: PodPools;
  /** @internal */ readonly origins: Origins;
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
    this.origins = new Origins(this.options.servername);
    this.pools = new PodPools(
      this.options.pool,
      this.options.drainTimeoutMs,
      this.options.idleTimeoutMs,
      this.options.maxPods ?? defaultMaxPods(lb),
      (event, origin, targets, error) => {
        if (event === 'connect') this.emit('connect', origin, [this, ...targets]);
        else if (event === 'disconnect') this.emit('disconnect', origin, [this, ...targets], error as errors.UndiciError);
        else this.emit('connectionError', origin, [this, ...targets], error as errors.UndiciError);
      },
    );
    const { retries, timeoutMs, attemptTimeoutMs, backoff } = this.options;
    this.keylessRunOptions = [
      Object.freeze({ idempotent: false, retries, timeoutMs, attemptTimeoutMs, backoff }),
      Object.freeze({ idempotent: true, retries, timeoutMs, attemptTimeoutMs, backoff }),
    ];
    lb.on('change', this.onChange);
  }

  /** @internal The options of one request's `lb.dispatch()`. */
  runOptions(key: string | undefined, idempotent: boolean, hedge: boolean, overrides: RequestOverrides | undefined): RunOptions {
    if (overrides !== undefined) return this.overriddenRunOptions(key, idempotent, hedge, overrides);
    if (key === undefined && !hedge) return this.keylessRunOptions[idempotent ? 1 : 0];
    const { retries, timeoutMs, attemptTimeoutMs, backoff } = this.options;
    return { key, idempotent, hedge: hedge ? this.options.hedge : undefined, retries, timeoutMs, attemptTimeoutMs, backoff };
  }

  /** A request with a policy of its own: the dispatcher's, field by field, where the request sets nothing. */
  private overriddenRunOptions(key: string | undefined, idempotent: boolean, hedge: boolean, overrides: RequestOverrides): RunOptions {
    const options = this.options;
    return {
      key,
      idempotent,
      hedge: hedge ? overrides.hedge || options.hedge : undefined,
      retries: overrides.retries ?? options.retries,
      timeoutMs: overrides.timeoutMs ?? options.timeoutMs,
      attemptTimeoutMs: overrides.attemptTimeoutMs ?? options.attemptTimeoutMs,
      backoff: mergeBackoff(options.backoff, overrides.backoff),
    };
  }

  /** `true` once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.closedFlag;
  }

  get destroyed(): boolean {
    return this.destroyedFlag;
  }

  /** Pools and the pods they go to, the bound and its evictions, draining pools, requests in flight. */
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
}

/** Creates an undici Dispatcher over the pods of `lb`. Closing it does not close the balancer. */
export function createDispatcher(lb: HttpBalancer, options?: HttpDispatcherOptions): HeadlessDispatcher {
  return new HeadlessDispatcher(lb, options);
}
