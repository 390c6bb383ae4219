/**
 * Sorts a failed attempt by what it proves about the request:
 * - `not-sent`: the request never reached the pod (no connection was made), so it is safe to
 *   send it elsewhere even when it is not idempotent;
 * - `maybe-sent`: a transport failure after the connection was made (reset, timeout) or an
 *   error the caller marked retryable: the pod may have acted on it, so only idempotent calls
 *   are retried;
 * - `fatal`: anything else (an application error): not retried.
 */
export type FailureKind = 'not-sent' | 'maybe-sent' | 'fatal';

/** Errors raised before a connection exists: connection refused, no route, connect timeout. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_HLB_NOT_SENT',
]);

/** Errors after the request may have been written. */
const MAYBE_SENT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_HLB_ATTEMPT_TIMEOUT',
  'ERR_HLB_RETRYABLE',
]);

const MAX_DEPTH = 6;

export function classifyFailure(error: unknown): FailureKind {
  let maybeSent = false;
  const visit = (value: unknown, depth: number): boolean => {
    if (depth > MAX_DEPTH || value === null || typeof value !== 'object') return false;
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (NOT_SENT_CODES.has(code)) return true;
      if (MAYBE_SENT_CODES.has(code)) maybeSent = true;
    }
    // Node's happy-eyeballs connect reports every address's failure in an AggregateError.
    const inner = (value as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length > 0 && inner.every((e) => visit(e, depth + 1))) return true;
    return visit((value as { cause?: unknown }).cause, depth + 1);
  };
  if (visit(error, 0)) return 'not-sent';
  return maybeSent ? 'maybe-sent' : 'fatal';
}
