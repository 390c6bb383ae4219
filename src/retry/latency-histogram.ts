import type { Clock } from '../clock.js';

/** Buckets grow by 10%: a percentile is known to within 10%, over 0.01 ms … ~2 min. */
const GROWTH = 1.1;
const LOG_GROWTH = Math.log(GROWTH);
const MIN_MS = 0.01;
const BUCKETS = Math.ceil(Math.log(120_000 / MIN_MS) / LOG_GROWTH) + 1;
const WINDOWS = 3;

/**
 * Latencies of recent successful attempts, for hedging at a percentile (Finagle's
 * BackupRequestFilter keeps 3 × 10 s windows the same way). Log-scale buckets make recording O(1).
 */
export class LatencyHistogram {
  private readonly windows: Uint32Array[] = Array.from({ length: WINDOWS }, () => new Uint32Array(BUCKETS));
  private readonly totals = new Float64Array(WINDOWS);
  private current = 0;
  private windowStart: number;

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {
    this.windowStart = clock();
  }

  record(latencyMs: number, now: number = this.clock()): void {
    this.rotate(now);
    const bucket = latencyMs <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(latencyMs / MIN_MS) / LOG_GROWTH));
    this.windows[this.current]![bucket]! += 1;
    this.totals[this.current]! += 1;
  }

  /** Samples in the windows. */
  get count(): number {
    this.rotate();
    let n = 0;
    for (const total of this.totals) n += total;
    return n;
  }

  /** The latency at quantile q (0..1) over the windows, or undefined with no samples. */
  percentile(q: number): number | undefined {
    const total = this.count;
    if (total === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      for (const window of this.windows) seen += window[bucket]!;
      if (seen >= rank) return MIN_MS * GROWTH ** bucket;
    }
    return MIN_MS * GROWTH ** (BUCKETS - 1);
  }

  private rotate(now: number = this.clock()): void {
    if (now - this.windowStart < this.windowMs) return;
    const steps = Math.min(WINDOWS, Math.floor((now - this.windowStart) / this.windowMs));
    for (let s = 0; s < steps; s++) {
      this.current = (this.current + 1) % WINDOWS;
      this.windows[this.current]!.fill(0);
      this.totals[this.current] = 0;
    }
    this.windowStart += Math.floor((now - this.windowStart) / this.windowMs) * this.windowMs;
  }
}
