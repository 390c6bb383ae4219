import { SlidingWindow } from '../sliding-window.js';

const SUCCESS = 0;
const FAILURE = 1;

/** Successes and failures of one endpoint over a sliding window: enough to judge a failure rate. */
export class OutcomeWindow {
  private readonly window: SlidingWindow;

  constructor(windowMs: number, now: number) {
    this.window = new SlidingWindow(2, windowMs, now);
  }

  record(success: boolean, now: number): void {
    this.window.add(success ? SUCCESS : FAILURE, now);
  }

  /** Outcomes in the window. */
  total(now: number): number {
    return this.window.sum(SUCCESS, now) + this.window.sum(FAILURE, now);
  }

  /** Failures in the window. */
  failures(now: number): number {
    return this.window.sum(FAILURE, now);
  }

  reset(): void {
    this.window.clear();
  }
}
