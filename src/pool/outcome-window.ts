import { SlidingWindow } from '../sliding-window.js';

/** Successes and failures of one endpoint over a sliding window: enough to judge a failure rate. */
export class OutcomeWindow {
  private readonly window: SlidingWindow<'success' | 'failure'>;

  constructor(windowMs: number, now: number) {
    this.window = new SlidingWindow(['success', 'failure'], windowMs, now);
  }

  record(success: boolean, now: number): void {
    this.window.add(success ? 'success' : 'failure', now);
  }

  /** Outcomes in the window. */
  total(now: number): number {
    return this.window.sum('success', now) + this.window.sum('failure', now);
  }

  /** Failures in the window. */
  failures(now: number): number {
    return this.window.sum('failure', now);
  }

  reset(): void {
    this.window.clear();
  }
}
