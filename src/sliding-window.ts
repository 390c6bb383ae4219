/**
 * Counters over a sliding time window, kept in ten buckets: counts older than the window drop
 * out as time moves, at O(1) per operation (amortised), with no per-event memory. The window
 * moves in whole buckets, so it is exact to within one bucket (a tenth of the window).
 *
 * Series are numbered (0, 1, ...) and every count lives in one typed array: this sits on the
 * path of every request (budgets, outcome windows), where string-keyed lookups cost more than
 * the counting itself.
 */
export class SlidingWindow {
  private static readonly BUCKETS = 10;
  private readonly bucketMs: number;
  /**
   * One array (one allocation, few cache lines): the count of series `s` in bucket `b` at
   * `s * BUCKETS + b`, then each series' sum over its buckets at `sumsAt + s`.
   */
  private readonly counts: Float64Array;
  private readonly sumsAt: number;
  private head: number;

  constructor(
    private readonly seriesCount: number,
    windowMs: number,
    now: number,
  ) {
    this.bucketMs = windowMs / SlidingWindow.BUCKETS;
    this.sumsAt = seriesCount * SlidingWindow.BUCKETS;
    this.counts = new Float64Array(this.sumsAt + seriesCount);
    this.head = Math.floor(now / this.bucketMs);
  }

  add(series: number, now: number, amount = 1): void {
    const i = this.advance(now);
    this.counts[series * SlidingWindow.BUCKETS + i]! += amount;
    this.counts[this.sumsAt + series]! += amount;
  }

  /** The count of `series` over the window ending now. */
  sum(series: number, now: number): number {
    this.advance(now);
    return this.counts[this.sumsAt + series]!;
  }

  clear(): void {
    this.counts.fill(0);
  }

  /** Moves the window to `now`, dropping buckets that fell out of it; returns the current bucket. */
  private advance(now: number): number {
    const bucket = Math.floor(now / this.bucketMs);
    if (bucket <= this.head) return this.head % SlidingWindow.BUCKETS;
    const steps = Math.min(bucket - this.head, SlidingWindow.BUCKETS);
    for (let step = 1; step <= steps; step++) {
      const i = (this.head + step) % SlidingWindow.BUCKETS;
      for (let s = 0; s < this.seriesCount; s++) {
        const at = s * SlidingWindow.BUCKETS + i;
        this.counts[this.sumsAt + s]! -= this.counts[at]!;
        this.counts[at] = 0;
      }
    }
    this.head = bucket;
    return bucket % SlidingWindow.BUCKETS;
  }
}
