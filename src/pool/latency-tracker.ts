import { DecayingMean } from './decaying-mean.js';
import { PeakEwma } from './peak-ewma.js';

/** Settings of an endpoint's latency estimates (the balancer's `latency` option). */
export interface LatencyTrackerOptions {
  readonly decayMs: number;
  readonly defaultRttMs: number;
  readonly averageMs: number;
}

/**
 * An endpoint's latency estimates (peak-EWMA and decaying mean) and whether they are current.
 *
 * An estimate is current from the second response after it (re)started: it starts when the
 * endpoint joins, is readdressed, or answers after a silence, and from the faster of its first two
 * responses, because the first often paid for a connection set-up (TCP, TLS, HTTP/2, a gRPC
 * channel). It stops being current while the endpoint is idle and has not answered for
 * `reprobeAfterMs`: `averageMs`, doubled (up to `decayMs`) for each re-probe after which the
 * endpoint stays avoided, and back to `averageMs` once it is in regular use again. So a pod that
 * stays slow is re-probed less and less often, and one that only had a bad moment is back after
 * `averageMs`.
 */
export class LatencyTracker {
  readonly peakEwma: PeakEwma;
  readonly mean: DecayingMean;
  private readonly averageMs: number;
  private readonly maxReprobeMs: number;
  /** When the last successful response arrived (clock ms); −∞ before the first and after a readdress. */
  private sampledAt = Number.NEGATIVE_INFINITY;
  /** Responses since the estimates (re)started, counted up to 2. */
  private probeResponses = 0;
  /** The latency of the first of them. */
  private firstResponse = 0;
  /** Whether a response came after the two probe responses: the endpoint was in regular use. */
  private usedSinceProbe = false;
  private reprobeAfterMs: number;

  constructor(options: LatencyTrackerOptions, now: number) {
    this.peakEwma = new PeakEwma(options.decayMs, options.defaultRttMs, now);
    this.mean = new DecayingMean(options.averageMs, options.decayMs, options.defaultRttMs, now);
    this.averageMs = options.averageMs;
    this.maxReprobeMs = Math.max(options.averageMs, options.decayMs);
    this.reprobeAfterMs = options.averageMs;
  }

  /**
   * The estimate to compare at `now` (the mean, or peak-EWMA), or 0 when there is no current one.
   * `idle`: nothing in flight on the endpoint (a busy endpoint keeps its estimate: its responses
   * are just slow to come).
   */
  current(mean: boolean, idle: boolean, now: number): number {
    if (this.probeResponses < 2 || (idle && now - this.sampledAt >= this.reprobeAfterMs)) return 0;
    return mean ? this.mean.value(now) : this.peakEwma.value(now);
  }

  /** Records a successful response of `latencyMs` at `now`. */
  observe(latencyMs: number, now: number): void {
    if (now - this.sampledAt >= this.reprobeAfterMs) {
      // The first response, or the first after a silence: the old estimates describe nothing
      // current any more. An endpoint avoided ever since its last probe is probed less often.
      if (this.probeResponses >= 2 && !this.usedSinceProbe) this.reprobeAfterMs = Math.min(2 * this.reprobeAfterMs, this.maxReprobeMs);
      this.restart(latencyMs, now, 1);
      this.firstResponse = latencyMs;
    } else if (this.probeResponses < 2) {
      this.restart(Math.min(this.firstResponse, latencyMs), now, 2);
    } else {
      this.peakEwma.observe(latencyMs, now);
      this.mean.observe(latencyMs, now);
      this.usedSinceProbe = true;
      this.reprobeAfterMs = this.averageMs;
    }
    this.sampledAt = now;
  }

  /**
   * Records that a request took at least `latencyMs` (it was abandoned unanswered): as a response
   * when that is above what the estimates say now, else not at all, since a lower bound below
   * the estimate says nothing new.
   */
  observeAtLeast(latencyMs: number, now: number): void {
    // Above both estimates, a sample raises each (peak-EWMA jumps to it); below either, it would lower it.
    if (latencyMs > Math.max(this.current(false, false, now), this.current(true, false, now))) this.observe(latencyMs, now);
  }

  /** A new container behind the same identity: its predecessor's latency says nothing about it. */
  forget(): void {
    this.sampledAt = Number.NEGATIVE_INFINITY;
    this.probeResponses = 0;
    this.reprobeAfterMs = this.averageMs;
  }

  private restart(latencyMs: number, now: number, responses: number): void {
    this.peakEwma.restart(latencyMs, now);
    this.mean.restart(latencyMs, now);
    this.probeResponses = responses;
    this.usedSinceProbe = false;
  }
}
