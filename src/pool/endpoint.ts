import type { Clock } from '../clock.js';
import type { OutcomeWindow } from './outcome-window.js';
import { LatencyTracker } from './latency-tracker.js';
import type { Target } from '../target.js';

/** Load-metric settings shared by every endpoint of a balancer. */
export interface EndpointMetricsOptions {
  /** Time constant of the peak-EWMA latency decay, ms. */
  readonly decayMs: number;
  /** Latency the estimates report before an endpoint's first response, ms. */
  readonly defaultRttMs: number;
  /**
   * Averaging time of the mean latency estimate, ms (its idle decay is `decayMs`). Default 1000.
   * Also the silence after which the estimates restart and an idle endpoint is probed again
   * (see `LatencyTracker`).
   */
  readonly averageMs?: number;
  /**
   * Shared by every endpoint of one balancer: their total in-flight count, kept up to date by
   * `start`/`finish`, so bounded-load shard-key hashing reads it in O(1) instead of summing.
   */
  readonly inflightTotal?: InflightTotal;
}

/**
 * Requests in flight over a group of endpoints (one balancer's pool, including endpoints that
 * left it but still finish requests). Create one per balancer and pass it in the metrics options.
 */
export class InflightTotal {
  count = 0;
}

/** The outcome of one request, as recorded on an endpoint. */
export type Outcome = 'success' | 'failure' | 'cancelled';

/**
 * Passive health: `ejected` endpoints get no traffic (outside panic mode); an endpoint back from
 * ejection is on `probation` until its first success.
 */
export type EndpointState = 'healthy' | 'ejected' | 'probation';

/**
 * Health bookkeeping, written by the outlier detector only.
 * @internal
 */
export interface EndpointHealth {
  state: EndpointState;
  /** Clock time the current ejection ends. */
  ejectedUntil: number;
  /** Ejection multiplier: ejections not yet forgiven by healthy time. */
  ejections: number;
  /** Total ejections over the endpoint's life. */
  totalEjections: number;
  /** When the endpoint last became available (added, or back from ejection): slow start ramps from here. */
  availableSince: number;
  /** When it last became healthy again, for forgiving past ejections. */
  healthySince: number;
  window: OutcomeWindow | undefined;
}

/**
 * A backend (one pod) in the pool. The object lives as long as the pod does: it keeps its
 * identity and load statistics across DNS refreshes, even when the pod's IP changes (SRV mode).
 * Pickers read the load fields; they never mutate them.
 */
export class Endpoint {
  readonly id: string;
  /** When the endpoint joined the pool (clock ms). */
  readonly addedAt: number;
  private target: Target;
  /** `host`, made when the address changes: adapters read it on every request. */
  private hostPort: string;
  private readonly clock: Clock;
  private readonly estimates: LatencyTracker;
  private inflightCount = 0;
  private readonly inflightTotalRef: InflightTotal | undefined;
  private successCount = 0;
  private failureCount = 0;
  private consecutive = 0;
  private lastLatency: number | undefined;
  /** @internal */
  readonly health: EndpointHealth;
  private inPoolNow = true;
  /**
   * Connection pools (HTTP) and pod channels (gRPC) open to this pod, over every adapter of the
   * balancer, draining ones included: the adapters count them, `stats()` shows them.
   * @internal
   */
  openPools = 0;

  /** @internal */
  constructor(target: Target, clock: Clock, metrics: EndpointMetricsOptions) {
    this.id = target.id;
    this.target = target;
    this.hostPort = hostPort(target);
    this.clock = clock;
    this.addedAt = clock();
    this.estimates = new LatencyTracker(
      { decayMs: metrics.decayMs, defaultRttMs: metrics.defaultRttMs, averageMs: metrics.averageMs ?? 1000 },
      this.addedAt,
    );
    this.inflightTotalRef = metrics.inflightTotal;
    this.health = {
      state: 'healthy',
      ejectedUntil: 0,
      ejections: 0,
      totalEjections: 0,
      availableSince: this.addedAt,
      healthySince: this.addedAt,
      window: undefined,
    };
  }

  get address(): string {
    return this.target.address;
  }
  get addresses(): readonly string[] {
    return this.target.addresses;
  }
  get port(): number {
    return this.target.port;
  }
  get family(): 4 | 6 {
    return this.target.family;
  }
  /** The pod's DNS name in SRV mode (or as given in a static list). */
  get name(): string | undefined {
    return this.target.name;
  }
  get weight(): number {
    return this.target.weight;
  }
  get priority(): number {
    return this.target.priority;
  }
  /** `address:port`, bracketed for IPv6: ready for a URL. */
  get host(): string {
    return this.hostPort;
  }

  /** Requests now in flight on this endpoint. */
  get inflight(): number {
    return this.inflightCount;
  }
  /**
   * The in-flight total shared with the other endpoints of the balancer, if it keeps one.
   * @internal
   */
  get inflightTotal(): InflightTotal | undefined {
    return this.inflightTotalRef;
  }
  get successes(): number {
    return this.successCount;
  }
  get failures(): number {
    return this.failureCount;
  }
  /** Failures since the last success. */
  get consecutiveFailures(): number {
    return this.consecutive;
  }
  /** Latency of the last successful request, ms. */
  get lastLatencyMs(): number | undefined {
    return this.lastLatency;
  }
  /** Peak-EWMA latency estimate now, ms (the default RTT until the first response). */
  get latencyMs(): number {
    return this.estimates.peakEwma.value(this.clock());
  }
  /** Mean latency over about `latency.averageMs` now, ms (no peak rule; decays toward zero while idle). */
  get meanLatencyMs(): number {
    return this.estimates.mean.value(this.clock());
  }
  /** Passive health state. */
  get state(): EndpointState {
    return this.health.state;
  }
  /** Times this endpoint was ejected. */
  get ejections(): number {
    return this.health.totalEjections;
  }

  /** Whether a latency sample was observed yet. */
  get hasLatency(): boolean {
    return this.estimates.peakEwma.hasSamples;
  }

  /**
   * The latency estimate least-latency compares at `now`, ms (the mean when `mean`, else
   * peak-EWMA), or 0 while the endpoint has no current estimate (see `LatencyTracker`). 0 is the
   * optimistic start of Finagle's PeakEwma: idle at 0, the endpoint looks free, so it is probed;
   * with a request in flight it gets the zero-latency penalty, so it is probed one request at a time.
   * @internal
   */
  currentLatency(mean: boolean, now: number): number {
    return this.estimates.current(mean, this.inflightCount === 0, now);
  }

  /**
   * The endpoint's clock, so that a picker reads the time once per pick.
   * @internal
   */
  now(): number {
    return this.clock();
  }

  /**
   * False once the endpoint left the pool (a returning pod gets a new Endpoint).
   * @internal
   */
  get inPool(): boolean {
    return this.inPoolNow;
  }

  /**
   * The pool dropped the endpoint: its late outcomes no longer judge its health.
   * @internal
   */
  leavePool(): void {
    this.inPoolNow = false;
  }

  /**
   * The endpoint was there from the start (the first lookup): not new, so slow start does not
   * ramp it up.
   * @internal
   */
  markEstablished(): void {
    this.health.availableSince = Number.NEGATIVE_INFINITY;
  }

  /**
   * Forgets the run of failures of a previous container behind this identity.
   * @internal
   */
  resetFailures(): void {
    this.consecutive = 0;
  }

  /**
   * Marks the start of a request; returns its start time for `finish`.
   * @internal
   */
  start(now: number = this.clock()): number {
    this.inflightCount++;
    if (this.inflightTotalRef !== undefined) this.inflightTotalRef.count++;
    return now;
  }

  /**
   * A request of this endpoint's was abandoned after `latencyMs` without an answer (it lost a
   * hedge): its latency estimates rise to at least that, and never fall because of it.
   * @internal
   */
  tookAtLeast(latencyMs: number, now: number = this.clock()): void {
    this.estimates.observeAtLeast(latencyMs, now);
  }

  /**
   * Marks the end of a request started with `start`.
   * @internal
   */
  finish(startedAt: number, outcome: Outcome, now: number = this.clock()): void {
    if (this.inflightCount > 0) {
      this.inflightCount--;
      if (this.inflightTotalRef !== undefined) this.inflightTotalRef.count--;
    }
    if (outcome === 'cancelled') return;
    if (outcome === 'success') {
      const latency = now - startedAt;
      this.successCount++;
      this.consecutive = 0;
      this.lastLatency = latency;
      this.estimates.observe(latency, now);
    } else {
      this.failureCount++;
      this.consecutive++;
    }
  }

  /**
   * Replaces the addressing data (same identity, e.g. a pod restarted with a new IP).
   * Returns 'readdressed' when the address or port changed (connections must move),
   * 'updated' when only other data changed (weight, priority), undefined when nothing did.
   * @internal
   */
  update(target: Target): 'readdressed' | 'updated' | undefined {
    const prev = this.target;
    const readdressed = prev.address !== target.address || prev.port !== target.port || prev.family !== target.family;
    const changed =
      readdressed ||
      prev.name !== target.name ||
      prev.weight !== target.weight ||
      prev.priority !== target.priority ||
      !sameList(prev.addresses, target.addresses);
    if (!changed) return undefined;
    this.target = target;
    if (readdressed) {
      this.hostPort = hostPort(target);
      this.estimates.forget();
    }
    return readdressed ? 'readdressed' : 'updated';
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      address: this.address,
      port: this.port,
      family: this.family,
      name: this.name,
      weight: this.weight,
      inflight: this.inflight,
      successes: this.successes,
      failures: this.failures,
      latencyMs: this.latencyMs,
      state: this.state,
      ejections: this.ejections,
    };
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hostPort(target: Target): string {
  return target.family === 6 ? `[${target.address}]:${target.port}` : `${target.address}:${target.port}`;
}
