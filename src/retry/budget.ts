import type { Clock } from '../clock.js';

export interface BudgetOptions {
  /** Extra attempts allowed as a share of the calls in the window (0.2 = 20%). */
  readonly percent: number;
  /** Extra attempts always allowed per second, whatever the traffic (a reserve for low traffic). */
  readonly minPerSecond: number;
  /** Length of the sliding window, ms. */
  readonly windowMs: number;
}

const BUCKETS = 10;

/**
 * A retry budget (Finagle's RetryBudget, Linkerd's retry budget): over a sliding window, extra
 * attempts may be at most `percent` of the calls plus `minPerSecond` per second. A failing fleet
 * then sees at most 1.2× its normal load from one client instead of a retry storm.
 */
export class Budget {
  private readonly bucketMs: number;
  private readonly deposits = new Float64Array(BUCKETS);
  private readonly withdrawals = new Float64Array(BUCKETS);
  private depositSum = 0;
  private withdrawalSum = 0;
  private head: number;

  constructor(
    private readonly options: BudgetOptions,
    private readonly clock: Clock,
  ) {
    this.bucketMs = options.windowMs / BUCKETS;
    this.head = Math.floor(clock() / this.bucketMs);
  }

  /** Counts one call. */
  deposit(): void {
    const i = this.advance();
    this.deposits[i]! += 1;
    this.depositSum += 1;
  }

  /** Takes one extra attempt if the budget allows; false when it is spent. */
  tryWithdraw(): boolean {
    if (this.available() < 1) return false;
    const i = this.advance();
    this.withdrawals[i]! += 1;
    this.withdrawalSum += 1;
    return true;
  }

  /** Extra attempts that could be taken now. */
  available(): number {
    this.advance();
    const reserve = (this.options.minPerSecond * this.options.windowMs) / 1000;
    return Math.max(0, Math.floor(reserve + this.options.percent * this.depositSum - this.withdrawalSum));
  }

  /** Moves the window to now, dropping buckets that fell out of it; returns the current bucket. */
  private advance(): number {
    const now = Math.floor(this.clock() / this.bucketMs);
    const steps = Math.min(now - this.head, BUCKETS);
    for (let s = 1; s <= steps; s++) {
      const i = (this.head + s) % BUCKETS;
      this.depositSum -= this.deposits[i]!;
      this.withdrawalSum -= this.withdrawals[i]!;
      this.deposits[i] = 0;
      this.withdrawals[i] = 0;
    }
    if (now > this.head) this.head = now;
    return this.head % BUCKETS;
  }
}
