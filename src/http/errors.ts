import { HeadlessLbError } from '../errors.js';

/**
 * A pod answered with a status listed in `failureStatusCodes`. The attempt counts as a failure
 * of that pod, and a request that may be re-sent is retried on another pod. The caller sees this
 * error only as the `cause` of a `DeadlineExceededError`: when no retry is possible or allowed,
 * the response itself is passed through.
 */
export class HttpStatusError extends HeadlessLbError {
  readonly statusCode: number;
  /** The endpoint's `host` (`address:port`). */
  readonly endpoint: string;

  /** @internal */
  constructor(statusCode: number, endpoint: string) {
    // ERR_HLB_RETRYABLE: counts against the pod's health, and is retried for idempotent calls.
    super('ERR_HLB_RETRYABLE', `HTTP ${statusCode} from ${endpoint}`);
    this.statusCode = statusCode;
    this.endpoint = endpoint;
  }
}

/**
 * Internal: an attempt failed in a way that must not be retried although its error alone would
 * allow it (its body was already consumed, or the dispatcher is closing). The core's classifier
 * follows `cause`, so the original error is kept in `error`, and unwrapped before the caller sees it.
 * @internal
 */
export class FinalAttemptError extends HeadlessLbError {
  readonly error: unknown;

  constructor(error: unknown) {
    super('ERR_HLB_FINAL_ATTEMPT', 'attempt failed and cannot be retried');
    this.error = error;
  }
}

/** The error a caller should see for `error`: internal wrappers removed (also from a deadline's cause). */
export function publicError(error: unknown): Error {
  if (error instanceof FinalAttemptError) return publicError(error.error);
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof FinalAttemptError) {
      try {
        Object.defineProperty(error, 'cause', { value: publicError(cause), configurable: true, writable: true, enumerable: false });
      } catch {
        // a frozen error keeps its cause
      }
    }
    return error;
  }
  return new Error(String(error));
}
