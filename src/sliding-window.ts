/**
 * Counters over a sliding time window, kept in ten buckets: counts older than the window drop
 * out as time moves, at O(1) per operation (amortised), with no per-event memory. The window
 * moves in whole buckets, so it is exact to within one bucket (a tenth of the window).
 */
export class SlidingWindow<Series extends string> {
  private static readonly BUCKETS = 10;
  private readonly bucketMs: number;
  private readonly counts: Record<Series, Float64Array>;
  private readonly sums: Record<Series, number>;
  private readonly series: readonly Series[];
  private head: number;

  constructor(series: readonly Series[], windowMs: number, now: number) {
    this.series = series;
    this.bucketMs = windowMs / SlidingWindow.BUCKETS;
    this.counts = Object.fromEntries(series.map((s) => [s, new Float64Array(SlidingWindow.BUCKETS)])) as Record<Series, Float64Array>;
    this.sums = Object.fromEntries(series.map((s) => [s, 0])) as Record<Series, number>;
    this.head = Math.floor(now / this.bucketMs);
  }

  add(series: Series, now: number, amount = 1): void {
    const i = this.advance(now);
    this.counts[series][i]! += amount;
    this.sums[series] += amount;
  }

  /** The count of `series` over the window ending now. */
  sum(series: Series, now: number): number {
    this.advance(now);
    return this.sums[series];
  }

  clear(): void {
    for (const s of this.series) {
      this.counts[s].fill(0);
      this.sums[s] = 0;
    }
  }

  /** Moves the window to `now`, dropping buckets that fell out of it; returns the current bucket. */
  private advance(now: number): number {
    const bucket = Math.floor(now / this.bucketMs);
    const steps = Math.min(bucket - this.head, SlidingWindow.BUCKETS);
    for (let step = 1; step <= steps; step++) {
      const i = (this.head + step) % SlidingWindow.BUCKETS;
      for (const s of this.series) {
        this.sums[s] -= this.counts[s][i]!;
        this.counts[s][i] = 0;
      }
    }
    if (bucket > this.head) this.head = bucket;
    return this.head % SlidingWindow.BUCKETS;
  }
}
