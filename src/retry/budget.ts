import type { Clock } from '../clock.js';
import { SlidingWindow } from '../sliding-window.js';

export interface BudgetOptions {
  /** Extra attempts allowed as a share of the calls in the window (0.2 = 20%). */
  readonly percent: number;
  /** Extra attempts always allowed per second, whatever the traffic (a reserve for low traffic). */
  readonly minPerSecond: number;
  /** Length of the sliding window, ms. */
  readonly windowMs: number;
}

/** Series of the budget's window. */
const CALLS = 0;
const EXTRA = 1;

/**
 * A retry budget (Finagle's RetryBudget, Linkerd's retry budget): over a sliding window, extra
 * attempts may be at most `percent` of the calls plus `minPerSecond` per second. A failing fleet
 * then sees at most 1.2× its normal load from one client instead of a retry storm.
 */
export class Budget {
  private readonly window: SlidingWindow;

  constructor(
    private readonly options: BudgetOptions,
    private readonly clock: Clock,
  ) {
    this.window = new SlidingWindow(2, options.windowMs, clock());
  }

  /** Counts one call. */
  deposit(now: number = this.clock()): void {
    this.window.add(CALLS, now);
  }

  /** Takes one extra attempt if the budget allows; false when it is spent. */
  tryWithdraw(): boolean {
    const now = this.clock();
    if (this.available(now) < 1) return false;
    this.window.add(EXTRA, now);
    return true;
  }

  /** Extra attempts that could be taken now. */
  available(now: number = this.clock()): number {
    const reserve = (this.options.minPerSecond * this.options.windowMs) / 1000;
    return Math.max(0, Math.floor(reserve + this.options.percent * this.window.sum(CALLS, now) - this.window.sum(EXTRA, now)));
  }
}
