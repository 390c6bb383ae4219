import type { Endpoint } from '../pool/endpoint.js';
import type { OutlierDetector } from '../pool/outlier-detector.js';
import type { EndpointPool } from '../pool/pool.js';
import { shardIdentity } from './shard-key.js';
import type { Subset } from './subset.js';

/** Called when panic mode starts (`active: true`) or ends. */
export type PanicListener = (active: boolean, healthy: number, total: number) => void;

/**
 * The endpoints a request may go to now, the list every pick draws from (Finagle keeps the same
 * rule in its `PanicMode`): the endpoints not ejected, of the best SRV priority present; all of
 * them when too few are healthy (panic mode: a pick over the whole pool beats refusing every
 * request). Rebuilt only when health or the pool changed.
 */
export class Candidates {
  private list: readonly Endpoint[] = [];
  /** What requests without a key draw from: the subset's members, or `list` without subsetting. */
  private keylessList: readonly Endpoint[] = [];
  private healthyCount = 0;
  private panicking = false;
  private stale = true;

  constructor(
    private readonly pool: EndpointPool,
    private readonly detector: OutlierDetector | undefined,
    /**
     * Consecutive failures from which an endpoint counts as failing (not healthy, though the
     * ejection cap may keep it in): outlier detection's threshold, or never without it.
     */
    private readonly failingAfter: number,
    private readonly panicThreshold: number,
    private readonly onPanic: PanicListener,
    /**
     * Deterministic subsetting of requests without a key (keyed ones keep the whole pool, so a
     * key reaches its owner on every client). Off when undefined.
     */
    private readonly subset?: Subset,
  ) {}

  /** Healthy endpoints at the last rebuild. */
  get healthy(): number {
    return this.healthyCount;
  }

  /** Whether panic mode was on at the last rebuild. */
  get panic(): boolean {
    return this.panicking;
  }

  /** The pool or an endpoint's health changed: rebuild before the next pick. */
  markStale(): void {
    this.stale = true;
  }

  /** Whether the endpoint's run of failures makes it count as not healthy. */
  isFailing(endpoint: Endpoint): boolean {
    return endpoint.consecutiveFailures >= this.failingAfter;
  }

  /** The candidates now (ejections that ran out end first). */
  current(): readonly Endpoint[] {
    this.refresh();
    return this.list;
  }

  /**
   * The candidates of a request without a key: with subsetting, the subset's usable members (an
   * ejected member is replaced by the next pod in this client's order, at once); in panic mode
   * the subset's own members whatever their health, so that panic does not open connections to
   * the whole pool. The same as `current()` without subsetting.
   */
  keyless(): readonly Endpoint[] {
    this.refresh();
    return this.keylessList;
  }

  /** Rebuilds the list if anything changed since the last time. */
  refresh(): void {
    if (this.detector?.expire()) this.stale = true;
    if (!this.stale) return;
    this.stale = false;
    const all = this.pool.endpoints;
    const available: Endpoint[] = [];
    let healthy = 0;
    let bestPriority = Number.POSITIVE_INFINITY;
    for (const endpoint of all) {
      if (endpoint.state === 'ejected') continue;
      available.push(endpoint);
      bestPriority = Math.min(bestPriority, endpoint.priority);
      // An endpoint kept in only by the ejection cap is not healthy.
      if (endpoint.consecutiveFailures < this.failingAfter) healthy++;
    }
    this.healthyCount = healthy;
    const panic = all.length > 0 && healthy / all.length < this.panicThreshold;
    const preferred = available.some((e) => e.priority !== bestPriority) ? available.filter((e) => e.priority === bestPriority) : available;
    this.list = panic || preferred.length === 0 ? all : preferred.length === all.length ? all : preferred;
    this.keylessList = this.subsetOf(all, panic);
    if (panic !== this.panicking) {
      this.panicking = panic;
      this.onPanic(panic, healthy, all.length);
    }
  }

  private subsetOf(all: readonly Endpoint[], panic: boolean): readonly Endpoint[] {
    if (this.subset === undefined) return this.list;
    if (panic || this.list === all) return this.subset.select(all, shardIdentity);
    const usable = new Set(this.list);
    return this.subset.select(all, shardIdentity, (endpoint) => usable.has(endpoint));
  }
}
