const BUCKETS = 10;

/**
 * Successes and failures of one endpoint over a sliding window, in ten buckets: enough to judge
 * a failure rate without keeping every outcome.
 */
export class OutcomeWindow {
  private readonly successes = new Uint32Array(BUCKETS);
  private readonly failures = new Uint32Array(BUCKETS);
  private successSum = 0;
  private failureSum = 0;
  private head = 0;

  constructor(private readonly bucketMs: number) {}

  record(success: boolean, now: number): void {
    const i = this.advance(now);
    if (success) {
      this.successes[i]! += 1;
      this.successSum += 1;
    } else {
      this.failures[i]! += 1;
      this.failureSum += 1;
    }
  }

  /** Outcomes in the window. */
  total(now: number): number {
    this.advance(now);
    return this.successSum + this.failureSum;
  }

  /** Failure share in the window (0 when empty). */
  failureRate(now: number): number {
    this.advance(now);
    const total = this.successSum + this.failureSum;
    return total === 0 ? 0 : this.failureSum / total;
  }

  reset(): void {
    this.successes.fill(0);
    this.failures.fill(0);
    this.successSum = 0;
    this.failureSum = 0;
  }

  private advance(now: number): number {
    const bucket = Math.floor(now / this.bucketMs);
    const steps = Math.min(bucket - this.head, BUCKETS);
    for (let s = 1; s <= steps; s++) {
      const i = (this.head + s) % BUCKETS;
      this.successSum -= this.successes[i]!;
      this.failureSum -= this.failures[i]!;
      this.successes[i] = 0;
      this.failures[i] = 0;
    }
    if (bucket > this.head) this.head = bucket;
    return this.head % BUCKETS;
  }
}
