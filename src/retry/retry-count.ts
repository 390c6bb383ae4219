import type { FailureKind } from '../failure-kind.js';

/**
 * What to do after a failed attempt: `give-up` (the call ends with this failure), `resend` (at
 * once: the request never reached a pod; free, or one of `retries`), `retry` (after a backoff, if
 * the retry budget allows: the request may have reached a pod).
 */
export type NextStep = 'give-up' | 'resend' | 'retry';

/**
 * The one count of a call's retries. `retries: N` allows exactly N retries after the first
 * attempt, whatever failed. Besides them, a request that provably never reached a pod (refused
 * connection, no route) is re-sent for free, once per endpoint of the pool: it added no load
 * anywhere, so stale or dead entries cannot use up a call's retries while a live pod is left —
 * also when the retries are spent, and at `retries: 0`. Decisions only: the budget, the backoff
 * and the sending belong to the caller of `next()`.
 */
export class RetryCount {
  private retriesLeft: number;
  /** Free re-sends left; fixed at the pool's size on the first failure that needs one. */
  private freeResendsLeft: number | undefined;
  private retriesWithBackoff = 0;

  constructor(retries: number) {
    this.retriesLeft = retries;
  }

  /**
   * The step after a failure of this kind. `resend` takes a free re-send (or else a retry) at
   * once; `retry` takes nothing yet: call `take()` once the budget allowed it.
   */
  next(kind: FailureKind, idempotent: boolean, poolSize: number): NextStep {
    if (kind === 'fatal' || (kind === 'maybe-sent' && !idempotent)) return 'give-up';
    if (kind === 'not-sent') {
      this.freeResendsLeft ??= poolSize;
      if (this.freeResendsLeft > 0) {
        this.freeResendsLeft--;
        return 'resend';
      }
      if (this.retriesLeft <= 0) return 'give-up';
      this.retriesLeft--;
      return 'resend';
    }
    return this.retriesLeft > 0 ? 'retry' : 'give-up';
  }

  /** Takes the retry `next()` offered; returns its number among the retries with a backoff (1, 2, …). */
  take(): number {
    this.retriesLeft--;
    return ++this.retriesWithBackoff;
  }

  /** Takes the retry `next()` offered, after a wait the server chose: the next backoff is the first again (gRFC A6). */
  takeAfterPushback(): void {
    this.retriesLeft--;
    this.retriesWithBackoff = 0;
  }
}
