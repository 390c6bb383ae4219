import * as undici from 'undici';
import { Pool, type Dispatcher } from 'undici';
import { BoundedPods } from '../pod-bound.js';
import type { Endpoint } from '../pool/endpoint.js';
import type { PoolChange } from '../pool/pool.js';
import type { PodPoolOptions } from './options.js';

/**
 * Whether the installed undici drives pool handlers through the controller API only (undici 8,
 * the major that added `Dispatcher1Wrapper`, its bridge for legacy handlers); undici 7 takes the
 * legacy handlers as they are. The attempts are made for it (see `ControllerApiAttempt` in attempt.ts).
 */
export const controllerApiOnly = (undici as { Dispatcher1Wrapper?: unknown }).Dispatcher1Wrapper !== undefined;

/** One keep-alive pool to one pod, for one scheme and TLS server name. */
export interface PodPool {
  readonly pool: Pool;
  /** `http://10.1.2.3:8080` */
  readonly origin: string;
  readonly endpoint: Endpoint;
  /** The endpoint's `host` when the pool was made: an endpoint that changes address gets a new pool. */
  readonly host: string;
  readonly protocol: string;
  readonly servername: string | undefined;
  /** Requests dispatched to this pool and not yet finished. */
  active: number;
  /** Set on every request; the idle sweep clears it (cheaper than a timestamp per request). */
  used: boolean;
  /** Consecutive sweeps that found the pool unused and idle. */
  idleSweeps: number;
}

export interface PodPoolsStats {
  /** Pools serving current endpoints. */
  readonly pools: number;
  /** Pods those pools go to: at most `maxPods`. */
  readonly pods: number;
  /** The most pods the dispatcher keeps pools open to (`maxPods`; Infinity: no bound). */
  readonly maxPods: number;
  /** Pods whose pools were closed to make room for another pod's, since the start. */
  readonly evictions: number;
  /** Pools of departed (or readdressed) endpoints and evicted pools, finishing their in-flight requests. */
  readonly draining: number;
  /** Requests in flight across all pools. */
  readonly active: number;
}

type Forward = (event: 'connect' | 'disconnect' | 'connectionError', origin: URL, targets: readonly Dispatcher[], error?: Error) => void;

interface Draining {
  /** Destroys the pool when its endpoint has gone and it is still not closed; none for an evicted pool of a pod still there. */
  timer: NodeJS.Timeout | undefined;
  readonly done: Promise<void>;
}

/**
 * The pools of a dispatcher: created on first use, one per endpoint (and scheme/server name), for
 * at most `maxPods` pods (the least recently used pod's pools are closed to make room), drained
 * when their endpoint leaves or changes address, closed when idle.
 */
export class PodPools {
  /** By endpoint, in order of use. A list is changed in place, so that pruning it keeps its recency. */
  private readonly live: BoundedPods<PodPool[]>;
  private readonly draining = new Map<PodPool, Draining>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Sweep interval, ms: half the idle timeout, at most 30 s. */
  private readonly sweepMs: number;
  /** Sweeps in a row that must find a pool unused to close it: idle for idleTimeoutMs to idleTimeoutMs + one sweep. */
  private readonly sweepsToClose: number;
  private readonly options: PodPoolOptions;

  constructor(
    options: PodPoolOptions,
    private readonly drainTimeoutMs: number,
    private readonly idleTimeoutMs: number,
    maxPods: number,
    private readonly forward: Forward,
  ) {
    // One HTTP/1.1 connection pool per pod, whichever the undici: undici 8 would offer HTTP/2 on TLS.
    this.options = controllerApiOnly && options.allowH2 === undefined ? { ...options, allowH2: false } : options;
    this.sweepMs = Math.min(30_000, Math.max(5, idleTimeoutMs / 2));
    this.sweepsToClose = Math.max(2, Math.ceil(idleTimeoutMs / this.sweepMs));
    // An evicted pod is still in the Service: its pools finish their requests however long they take.
    this.live = new BoundedPods<PodPool[]>(maxPods, (list) => {
      for (const entry of list) this.drain(entry, false);
    });
  }

  /** The pool for this endpoint, scheme and server name; made on first use. */
  acquire(endpoint: Endpoint, protocol: string, servername: string | undefined): PodPool {
    const host = endpoint.host;
    const list = this.live.get(endpoint);
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const entry = list[i]!;
        if (entry.host === host && entry.protocol === protocol && entry.servername === servername) return entry;
      }
    }
    return this.create(endpoint, host, protocol, servername, list);
  }

  // Apart from acquire(), which stays free of closures (see retry/call-scope.ts).
  private create(endpoint: Endpoint, host: string, protocol: string, servername: string | undefined, list: PodPool[] | undefined): PodPool {
    const origin = `${protocol}//${host}`;
    const pool = new Pool(origin, this.options);
    const entry: PodPool = { pool, origin, endpoint, host, protocol, servername, active: 0, used: true, idleSweeps: 0 };
    pool.on('connect', (o, targets) => this.forward('connect', o, targets));
    pool.on('disconnect', (o, targets, error) => this.forward('disconnect', o, targets, error));
    pool.on('connectionError', (o, targets, error) => this.forward('connectionError', o, targets, error));
    endpoint.openPools++;
    // The new pool is the most recent: an eviction this causes never closes the pool it returns.
    if (list === undefined) this.live.set(endpoint, [entry]);
    else list.push(entry);
    this.startSweep();
    return entry;
  }

  /** Drains the pools of removed endpoints and the stale-address pools of updated ones. */
  onChange(change: PoolChange): void {
    for (const endpoint of change.removed) {
      const list = this.live.peek(endpoint);
      if (list !== undefined) {
        this.live.delete(endpoint);
        for (const entry of list) this.drain(entry, true);
      }
      // Pools evicted earlier and still finishing: the pod has gone, so they now get the drain timeout too.
      for (const [entry, draining] of this.draining) {
        if (entry.endpoint === endpoint && draining.timer === undefined) draining.timer = this.destroyLater(entry);
      }
    }
    for (const endpoint of change.readdressed) {
      const list = this.live.peek(endpoint);
      if (list === undefined) continue;
      prune(
        list,
        (entry) => entry.host === endpoint.host,
        (entry) => this.drain(entry, true),
      );
      if (list.length === 0) this.live.delete(endpoint);
    }
  }

  stats(): PodPoolsStats {
    let pools = 0;
    let active = 0;
    for (const list of this.live.values()) {
      pools += list.length;
      for (const entry of list) active += entry.active;
    }
    for (const entry of this.draining.keys()) active += entry.active;
    return { pools, pods: this.live.size, maxPods: this.live.max, evictions: this.live.evictions, draining: this.draining.size, active };
  }

  /** Closes every pool gracefully (in-flight requests finish); resolves when all are closed. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopSweep();
    for (const list of this.live.values()) for (const entry of list) this.drain(entry, true);
    this.live.clear();
    await Promise.all([...this.draining.values()].map((d) => d.done));
  }

  /** Destroys every pool: requests in flight fail with `err`. */
  async destroy(err: Error | null): Promise<void> {
    this.closed = true;
    this.stopSweep();
    const all: Promise<void>[] = [];
    for (const list of this.live.values()) for (const entry of list) all.push(this.destroyNow(entry, err));
    this.live.clear();
    for (const [entry, { timer }] of this.draining) {
      clearTimeout(timer);
      all.push(entry.pool.destroy(err).catch(() => {}));
    }
    this.draining.clear();
    await Promise.all(all);
  }

  private destroyNow(entry: PodPool, err: Error | null): Promise<void> {
    entry.endpoint.openPools--;
    return entry.pool.destroy(err).catch(() => {});
  }

  /** Closes a pool once its requests finish; `timed`: destroys it after the drain timeout whatever they do. */
  private drain(entry: PodPool, timed: boolean): void {
    if (this.draining.has(entry)) return;
    const draining: Draining = {
      timer: undefined,
      done: entry.pool
        .close()
        .catch(() => {})
        .finally(() => {
          clearTimeout(draining.timer);
          this.draining.delete(entry);
          entry.endpoint.openPools--;
        }),
    };
    if (timed) draining.timer = this.destroyLater(entry);
    this.draining.set(entry, draining);
  }

  private destroyLater(entry: PodPool): NodeJS.Timeout {
    const timer = setTimeout(() => void entry.pool.destroy().catch(() => {}), this.drainTimeoutMs);
    timer.unref();
    return timer;
  }

  private startSweep(): void {
    if (this.sweepTimer !== undefined || this.idleTimeoutMs === 0 || this.closed) return;
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepMs);
    this.sweepTimer.unref();
  }

  private stopSweep(): void {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  private sweep(): void {
    for (const [endpoint, list] of this.live.entries()) {
      prune(
        list,
        (entry) => this.stillInUse(entry),
        (entry) => this.drain(entry, true),
      );
      if (list.length === 0) this.live.delete(endpoint);
    }
    if (this.live.size === 0) this.stopSweep();
  }

  /** Whether the sweep keeps this pool: used since the last sweep, busy, or idle for fewer sweeps than it takes to close. */
  private stillInUse(entry: PodPool): boolean {
    if (entry.used || entry.active > 0) {
      entry.used = false;
      entry.idleSweeps = 0;
    } else {
      entry.idleSweeps++;
    }
    return entry.idleSweeps < this.sweepsToClose;
  }
}

/** Keeps in `list` (in place) the entries `keep` accepts, and hands the others to `drop`. */
function prune(list: PodPool[], keep: (entry: PodPool) => boolean, drop: (entry: PodPool) => void): void {
  let kept = 0;
  for (const entry of list) {
    if (keep(entry)) list[kept++] = entry;
    else drop(entry);
  }
  list.length = kept;
}
