import { InvalidOptionError } from '../errors.js';
import { checkBoolean, checkKnownKeys, checkMilliseconds, checkNumber, checkObject } from '../option-checks.js';
import { checkBackoff, checkHedge, MAX_RETRIES, type BackoffOptions, type HedgeOptions } from '../options.js';

/**
 * One request's own policy, overriding the dispatcher's (`createDispatcher` options) for that
 * request: `undici.request(url, { dispatcher, headlessLb: { retries: 0 } })`, or the same in
 * `dispatcher.request({ ... })` and `dispatcher.dispatch()`. undici passes unknown dispatch
 * options through to the dispatcher untouched (undici 7 and 8, also through `compose()`'s
 * interceptors); `fetch` does not, see the `x-headless-lb` header (override-header.ts).
 */
export interface HttpRequestOptions {
  /**
   * The request may be sent twice: re-sent after a failure that may have reached a pod, and
   * hedged. Wins over undici's own `idempotent` option and over the method list.
   */
  readonly idempotent?: boolean;
  /** Retries after the first attempt, 0 … 100. */
  readonly retries?: number;
  /** Deadline until response headers, all attempts together, ms (0 … 2^31−1). */
  readonly timeoutMs?: number;
  /** Deadline of each attempt until response headers, ms (0 … 2^31−1). */
  readonly attemptTimeoutMs?: number;
  /**
   * Hedge this request (`{ delayMs }` or `{ percentile }`), or `false` not to hedge it although
   * the dispatcher hedges. A hedged request must be idempotent and have no stream body.
   */
  readonly hedge?: HedgeOptions | false;
  /**
   * Backoff of this request's retries (`{ initialMs, maxMs, multiplier }`, full jitter); a field
   * it does not set keeps the dispatcher's `backoff`, then the balancer's `retry` settings.
   */
  readonly backoff?: BackoffOptions;
}

declare module 'undici' {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Dispatcher {
    interface DispatchOptions {
      /** headless-lb's per-request options (`headless-lb/http`): the dispatcher's policy overridden for this request. */
      headlessLb?: HttpRequestOptions;
    }
  }
}

/** A request's overrides after validation; `undefined` fields keep the dispatcher's setting. */
export interface RequestOverrides {
  idempotent: boolean | undefined;
  retries: number | undefined;
  timeoutMs: number | undefined;
  attemptTimeoutMs: number | undefined;
  hedge: HedgeOptions | false | undefined;
  backoff: BackoffOptions | undefined;
  /** How errors about this override name it: `headlessLb.hedge` or `x-headless-lb: hedge-delay-ms`. */
  hedgeField: string;
}

const KEYS = ['idempotent', 'retries', 'timeoutMs', 'attemptTimeoutMs', 'hedge', 'backoff'] as const;

export function emptyOverrides(hedgeField: string): RequestOverrides {
  return {
    idempotent: undefined,
    retries: undefined,
    timeoutMs: undefined,
    attemptTimeoutMs: undefined,
    hedge: undefined,
    backoff: undefined,
    hedgeField,
  };
}

/** Validates the `headlessLb` dispatch option; each error names `headlessLb.<field>` and the value. */
export function checkRequestOptions(value: unknown, field = 'headlessLb'): RequestOverrides {
  const input = checkObject(value, field);
  checkKnownKeys(input, KEYS, field);
  const overrides = emptyOverrides(`${field}.hedge`);
  if (input.idempotent !== undefined) overrides.idempotent = checkBoolean(input.idempotent, `${field}.idempotent`);
  if (input.retries !== undefined)
    overrides.retries = checkNumber(input.retries, `${field}.retries`, { min: 0, max: MAX_RETRIES, integer: true });
  if (input.timeoutMs !== undefined) overrides.timeoutMs = checkMilliseconds(input.timeoutMs, `${field}.timeoutMs`);
  if (input.attemptTimeoutMs !== undefined)
    overrides.attemptTimeoutMs = checkMilliseconds(input.attemptTimeoutMs, `${field}.attemptTimeoutMs`);
  if (input.hedge === false) overrides.hedge = false;
  else if (input.hedge !== undefined) overrides.hedge = checkHedge(input.hedge, `${field}.hedge`);
  if (input.backoff !== undefined) overrides.backoff = checkBackoff(input.backoff, `${field}.backoff`);
  return overrides;
}

/** The header's overrides with the code's on top: what the caller's code says wins, field by field. */
export function mergeOverrides(header: RequestOverrides, code: RequestOverrides): RequestOverrides {
  const hedgeFromCode = code.hedge !== undefined;
  return {
    idempotent: code.idempotent ?? header.idempotent,
    retries: code.retries ?? header.retries,
    timeoutMs: code.timeoutMs ?? header.timeoutMs,
    attemptTimeoutMs: code.attemptTimeoutMs ?? header.attemptTimeoutMs,
    hedge: hedgeFromCode ? code.hedge : header.hedge,
    backoff: mergeBackoff(header.backoff, code.backoff),
    hedgeField: hedgeFromCode ? code.hedgeField : header.hedgeField,
  };
}

/** Backoff fields of `top` over those of `under`: each sets only what it names. */
export function mergeBackoff(under: BackoffOptions | undefined, top: BackoffOptions | undefined): BackoffOptions | undefined {
  if (under === undefined) return top;
  if (top === undefined) return under;
  return { ...under, ...top };
}

/** A request that asked for a hedge it cannot have: an error, not a silent unhedged request. */
export function unhedgeable(overrides: RequestOverrides, why: string): InvalidOptionError {
  return new InvalidOptionError(overrides.hedgeField, overrides.hedge, why);
}
