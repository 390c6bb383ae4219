/**
 * Peak-sensitive exponentially weighted moving average of latency (Finagle's PeakEwma,
 * Linkerd's tower `PeakEwma`). A sample above the estimate replaces it at once, so a pod that
 * turns slow is penalised on its first slow response; lower samples pull it down gradually.
 * Decay is by elapsed time, not by sample count, so unevenly sampled endpoints are comparable,
 * and the estimate also decays toward zero while an endpoint receives no traffic, so an
 * endpoint that was avoided for being slow is eventually probed again.
 */
export class PeakEwma {
  private estimate: number;
  private stamp: number;
  private seeded = false;

  /**
   * @param decayMs time constant τ of the decay (Finagle/Linkerd: 10 s)
   * @param defaultMs estimate before the first sample (Linkerd: 30 ms), so new endpoints are neither flooded nor starved
   */
  constructor(
    private readonly decayMs: number,
    private readonly defaultMs: number,
    now: number,
  ) {
    this.estimate = defaultMs;
    this.stamp = now;
  }

  /** Whether at least one sample was observed. */
  get hasSamples(): boolean {
    return this.seeded;
  }

  observe(latencyMs: number, now: number): void {
    if (!this.seeded) return this.restart(latencyMs, now);
    const sample = latencyMs < 0 ? 0 : latencyMs;
    if (sample > this.estimate) {
      this.estimate = sample;
    } else {
      const elapsed = Math.max(0, now - this.stamp);
      const w = Math.exp(-elapsed / this.decayMs);
      this.estimate = this.estimate * w + sample * (1 - w);
    }
    this.stamp = now;
  }

  /** Starts over from this sample, as from a first one (the old estimate is out of date). */
  restart(latencyMs: number, now: number): void {
    this.seeded = true;
    this.estimate = latencyMs < 0 ? 0 : latencyMs;
    this.stamp = now;
  }

  /** The estimate at `now`, decayed toward zero for the time since the last sample. */
  value(now: number): number {
    if (!this.seeded) return this.defaultMs;
    const elapsed = now - this.stamp;
    if (elapsed <= 0) return this.estimate;
    return this.estimate * Math.exp(-elapsed / this.decayMs);
  }
}
