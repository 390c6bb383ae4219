/**
 * Every error the library throws or emits is a HeadlessLbError with a stable `code`,
 * so callers can branch on `err.code` without string matching.
 */
export class HeadlessLbError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An option or argument is invalid. Names the field and the value it was given. */
export class InvalidOptionError extends HeadlessLbError {
  readonly field: string;
  readonly value: unknown;

  constructor(field: string, value: unknown, expected: string) {
    super('ERR_HLB_INVALID_OPTION', `Invalid option ${field}: ${describeValue(value)} (expected ${expected})`);
    this.field = field;
    this.value = value;
  }
}

/** The pool has no endpoint to send to: the service has no ready pods, or none is usable. */
export class NoEndpointsError extends HeadlessLbError {
  readonly service: string;

  constructor(service: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_HLB_NO_ENDPOINTS', `No endpoints for ${service}: ${reason}`, options);
    this.service = service;
  }
}

/**
 * Why a DNS resolution failed. `NXDOMAIN` and `NODATA` are not failures: they mean "no pods".
 * `UNUSABLE`: the answer had records, but none could be used (each is in a 'records-skipped'
 * event). `MALFORMED` is no longer produced: an undecodable message is dropped, and the lookup
 * waits for the genuine answer until `TIMEOUT`.
 */
export type ResolutionFailure = 'TIMEOUT' | 'SERVFAIL' | 'REFUSED' | 'FORMERR' | 'NOTIMP' | 'MALFORMED' | 'UNUSABLE' | 'NETWORK' | 'OTHER';

/** A DNS query failed (timeout, SERVFAIL, refused, garbage). The last good pool is kept. */
export class ResolutionError extends HeadlessLbError {
  readonly service: string;
  readonly reason: ResolutionFailure;
  readonly server: string | undefined;

  constructor(service: string, reason: ResolutionFailure, detail: string, options?: { cause?: unknown; server?: string }) {
    super('ERR_HLB_RESOLUTION', `Resolving ${service} failed (${reason}): ${detail}`, options);
    this.service = service;
    this.reason = reason;
    this.server = options?.server;
  }
}

/** The call's deadline (`timeoutMs`) passed before any attempt succeeded. */
export class DeadlineExceededError extends HeadlessLbError {
  readonly timeoutMs: number;
  readonly attempts: number;

  constructor(timeoutMs: number, attempts: number, options?: { cause?: unknown }) {
    super('ERR_HLB_DEADLINE_EXCEEDED', `Deadline of ${timeoutMs} ms exceeded after ${attempts} attempt(s)`, options);
    this.timeoutMs = timeoutMs;
    this.attempts = attempts;
  }
}

/** One attempt ran longer than `attemptTimeoutMs`; the attempt's signal was aborted. */
export class AttemptTimeoutError extends HeadlessLbError {
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super('ERR_HLB_ATTEMPT_TIMEOUT', `Attempt timed out after ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** The balancer was closed; no further calls are accepted. */
export class BalancerClosedError extends HeadlessLbError {
  constructor() {
    super('ERR_HLB_CLOSED', 'The balancer is closed');
  }
}

/**
 * Throw this from a `run()` callback to say the attempt failed in a way that is worth retrying
 * on another endpoint (for example an HTTP 503). It is retried only for idempotent calls.
 * `retryAfterMs`: the server asked for the next attempt this late (gRPC's server pushback): that
 * wait replaces the backoff, and the backoff sequence starts over after it. It is clamped to
 * what a timer holds; the retries, the retry budget and the deadline still apply.
 */
export class RetryableError extends HeadlessLbError {
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super('ERR_HLB_RETRYABLE', message, options);
    const after = options?.retryAfterMs;
    if (after !== undefined && !(typeof after === 'number' && after >= 0))
      throw new InvalidOptionError('retryAfterMs', after, 'a number of ms, 0 or more');
    this.retryAfterMs = after;
  }
}

/** The wait a failed attempt asked for before the next one (`RetryableError.retryAfterMs`), if any. */
export function retryAfterOf(error: unknown): number | undefined {
  return error instanceof RetryableError ? error.retryAfterMs : undefined;
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Throw this (or wrap an error in it) from a `run()` callback when the request provably never
 * reached the endpoint, for example a gRPC call that failed before a connection existed. Such
 * attempts are retried on another endpoint even for non-idempotent calls.
 */
export class NotSentError extends HeadlessLbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_HLB_NOT_SENT', message, options);
  }
}
