import type { Metadata } from '@grpc/grpc-js';

/** The trailer by which a server asks for a retry after a delay, or for none (gRFC A6). */
export const PUSHBACK_KEY = 'grpc-retry-pushback-ms';

/** The longest wait a timer holds (2^31−1 ms, ~24.8 days). */
const MAX_PUSHBACK_MS = 2 ** 31 - 1;

/** A non-negative decimal integer, no sign, no space; at most 10 digits so that the number stays exact. */
const DECIMAL = /^[0-9]{1,10}$/;

/**
 * What a failed attempt's trailers say about the next attempt (gRFC A6's server pushback):
 * `undefined` when there is no pushback (the backoff applies), the wait in ms, or `'stop'`.
 * The value comes from a pod, so it is read strictly: one entry of a non-negative decimal
 * integer. Anything else is A6's "negative or unparseable": no further attempt. So is a wait
 * above 2^31−1 ms: no timer holds it, and a retry ~25 days away is none a caller waits for.
 */
export function pushbackOf(trailers: Metadata | undefined): number | 'stop' | undefined {
  const values = trailers?.get(PUSHBACK_KEY);
  if (values === undefined || values.length === 0) return undefined;
  return values.length === 1 ? parsePushback(values[0]) : 'stop';
}

/** One entry's value: the wait in ms, or `'stop'`. */
export function parsePushback(value: unknown): number | 'stop' {
  if (typeof value !== 'string' || !DECIMAL.test(value)) return 'stop';
  const ms = Number(value);
  return ms <= MAX_PUSHBACK_MS ? ms : 'stop';
}
