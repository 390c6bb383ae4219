import type { Clock } from '../clock.js';
import type { FailureKind } from '../failure-kind.js';
import { MAX_TIMER_MS } from '../timer-delay.js';
import type { Endpoint } from './endpoint.js';
import { OutcomeWindow } from './outcome-window.js';

export interface OutlierDetectionConfig {
  /** Consecutive failures that eject an endpoint (Envoy: 5). */
  readonly consecutiveFailures: number;
  /** Eject when the failure share over `windowMs` reaches this (with at least `minRequests`); 1 turns it off. */
  readonly failureRate: number;
  readonly minRequests: number;
  readonly windowMs: number;
  /** A refused connection ejects at once: the pod is not listening. */
  readonly ejectOnConnectFailure: boolean;
  /** First ejection length; the n-th lasts n × this (Envoy: 30 s). */
  readonly baseEjectionMs: number;
  /** Cap of an ejection (Envoy: 300 s). */
  readonly maxEjectionMs: number;
  /** At most this share of the pool ejected at once (at least one endpoint can always be). */
  readonly maxEjectedPercent: number;
  /** Ejection lengths vary at random by ± this share. */
  readonly jitter: number;
}

export type EjectionReason = 'consecutive-failures' | 'failure-rate' | 'connect-failure' | 'probation-failure';

export interface OutlierEvents {
  onEject(endpoint: Endpoint, reason: EjectionReason, durationMs: number): void;
  onReturn(endpoint: Endpoint): void;
  onRecover(endpoint: Endpoint): void;
}

/**
 * Passive health checking (Envoy's outlier detection, Finagle's failure accrual): watches the
 * outcome of every request and ejects an endpoint that keeps failing, for base × n (jittered,
 * capped), never more than `maxEjectedPercent` of the pool. When its time is up it returns on
 * probation: one success makes it healthy, one failure ejects it again for longer.
 */
export class OutlierDetector {
  private ejected = new Set<Endpoint>();
  private nextExpiry = Number.POSITIVE_INFINITY;

  constructor(
    private readonly config: OutlierDetectionConfig,
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly poolSize: () => number,
    private readonly events: OutlierEvents,
  ) {}

  /** Endpoints now ejected. */
  get ejectedCount(): number {
    return this.ejected.size;
  }

  onSuccess(endpoint: Endpoint, now: number = this.clock()): void {
    const health = endpoint.health;
    if (this.config.failureRate < 1) this.window(endpoint, now).record(true, now);
    if (health.state === 'probation') {
      health.state = 'healthy';
      health.healthySince = now;
      this.events.onRecover(endpoint);
    }
  }

  /** Returns true when the endpoint was ejected by this failure. */
  onFailure(endpoint: Endpoint, kind: FailureKind, now: number = this.clock()): boolean {
    const health = endpoint.health;
    if (health.state === 'ejected') return false;
    let reason: EjectionReason | undefined;
    if (this.config.failureRate < 1) {
      const window = this.window(endpoint, now);
      window.record(false, now);
      const total = window.total(now);
      if (total >= this.config.minRequests && window.failures(now) / total >= this.config.failureRate) reason = 'failure-rate';
    }
    if (endpoint.consecutiveFailures >= this.config.consecutiveFailures) reason = 'consecutive-failures';
    if (kind === 'not-sent' && this.config.ejectOnConnectFailure) reason = 'connect-failure';
    if (health.state === 'probation') reason = 'probation-failure';
    if (reason === undefined) return false;
    return this.eject(endpoint, reason, now);
  }

  /**
   * Returns endpoints whose ejection is over (on probation). Cheap when nothing is due.
   * Returns true when any state changed.
   */
  expire(now?: number): boolean {
    if (this.nextExpiry === Number.POSITIVE_INFINITY) return false; // nothing ejected: no clock read
    now ??= this.clock();
    if (now < this.nextExpiry) return false;
    let changed = false;
    let next = Number.POSITIVE_INFINITY;
    for (const endpoint of this.ejected) {
      const health = endpoint.health;
      if (health.ejectedUntil <= now) {
        this.ejected.delete(endpoint);
        health.state = 'probation';
        health.availableSince = now;
        health.window?.reset();
        changed = true;
        this.events.onReturn(endpoint);
      } else {
        next = Math.min(next, health.ejectedUntil);
      }
    }
    this.nextExpiry = next;
    return changed;
  }

  /**
   * A new container behind the same identity (a pod restarted with a new IP): its predecessor's
   * failures say nothing about it, so it starts healthy.
   */
  reinstate(endpoint: Endpoint): void {
    const health = endpoint.health;
    this.ejected.delete(endpoint);
    health.window?.reset();
    health.ejections = 0;
    if (health.state !== 'healthy') {
      const now = this.clock();
      health.state = 'healthy';
      health.availableSince = now;
      health.healthySince = now;
      this.events.onReturn(endpoint);
    }
  }

  /** Forgets endpoints that left the pool. */
  forget(removed: readonly Endpoint[]): void {
    for (const endpoint of removed) this.ejected.delete(endpoint);
  }

  private eject(endpoint: Endpoint, reason: EjectionReason, now: number): boolean {
    const size = this.poolSize();
    const cap = Math.max(1, Math.floor((size * this.config.maxEjectedPercent) / 100));
    if (this.ejected.size >= cap) return false;
    const health = endpoint.health;
    // Forgive one past ejection per base period spent healthy (Envoy decrements the multiplier).
    if (health.state === 'healthy' && health.ejections > 0) {
      const forgiven = Math.floor((now - health.healthySince) / this.config.baseEjectionMs);
      health.ejections = Math.max(0, health.ejections - forgiven);
    }
    health.ejections += 1;
    health.totalEjections += 1;
    const nominal = Math.min(this.config.maxEjectionMs, this.config.baseEjectionMs * health.ejections);
    const duration = Math.min(MAX_TIMER_MS, Math.max(1, Math.round(nominal * (1 + this.config.jitter * (2 * this.random() - 1)))));
    health.state = 'ejected';
    health.ejectedUntil = now + duration;
    this.ejected.add(endpoint);
    this.nextExpiry = Math.min(this.nextExpiry, health.ejectedUntil);
    this.events.onEject(endpoint, reason, duration);
    return true;
  }

  private window(endpoint: Endpoint, now: number): OutcomeWindow {
    return (endpoint.health.window ??= new OutcomeWindow(this.config.windowMs, now));
  }
}
