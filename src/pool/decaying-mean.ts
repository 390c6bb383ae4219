/**
 * A time-weighted moving average of latency without a peak rule: each sample weighs
 * 1 − e^(−Δt/τ) for the time Δt since the previous one, so the estimate tracks the mean over
 * about τ whatever the request rate. Read without samples, it decays toward zero (τ_idle), so an
 * endpoint that was avoided for being slow is probed again.
 *
 * Why beside PeakEwma: at hundreds of responses per second the peak rule holds each endpoint's
 * estimate near its recent maximum for about τ, which compresses the gap between a fast and a slow
 * endpoint and makes a new endpoint (no maximum yet) look fastest. See docs/pickers.md.
 */
export class DecayingMean {
  private estimate: number;
  private stamp: number;
  private seeded = false;

  constructor(
    private readonly averageMs: number,
    private readonly idleDecayMs: number,
    private readonly defaultMs: number,
    now: number,
  ) {
    this.estimate = defaultMs;
    this.stamp = now;
  }

  observe(latencyMs: number, now: number): void {
    if (!this.seeded) return this.restart(latencyMs, now);
    const sample = latencyMs < 0 ? 0 : latencyMs;
    const w = Math.exp(-Math.max(0, now - this.stamp) / this.averageMs);
    this.estimate = this.estimate * w + sample * (1 - w);
    this.stamp = now;
  }

  /** Starts over from this sample, as from a first one (the old estimate is out of date). */
  restart(latencyMs: number, now: number): void {
    this.seeded = true;
    this.estimate = latencyMs < 0 ? 0 : latencyMs;
    this.stamp = now;
  }

  value(now: number): number {
    if (!this.seeded) return this.defaultMs;
    const idle = now - this.stamp;
    return idle <= 0 ? this.estimate : this.estimate * Math.exp(-idle / this.idleDecayMs);
  }
}
