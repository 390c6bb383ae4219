import { AttemptTimeoutError } from '../errors.js';
import type { Endpoint } from '../pool/endpoint.js';
import type { CallScope } from './call-scope.js';
import { CANCELLED, OUTRUN, SUCCEEDED, type AttemptOutcome } from './failover-host.js';

/** Why the other attempts of a hedged round are aborted (hedging.ts). */
export const HEDGE_LOST = Object.freeze(
  Object.assign(new Error('another attempt of this call ended it first'), { name: 'AbortError', code: 'ERR_HLB_HEDGE_LOST' }),
);

function abortedOutcome(reason: unknown, error: unknown): AttemptOutcome {
  if (reason === HEDGE_LOST) return OUTRUN;
  return reason instanceof AttemptTimeoutError ? { kind: 'error', error } : CANCELLED;
}

/**
 * Runs the callback on one endpoint with a signal of its own, and records its outcome once: an
 * attempt that is not the inline first one (an attempt timeout, a hedge, or a retry). The signal
 * aborts when `cancel` does (the call stopped, or its hedged round ended) or when the attempt
 * times out; the attempt's timer is ref'd (the caller waits on it) and cleared as soon as the
 * attempt settles or is aborted.
 */
export function launch<T>(
  call: CallScope<T>,
  endpoint: Endpoint,
  attempt: number,
  isHedge: boolean,
  cancel: AbortSignal = call.signal,
): Promise<T> {
  const { host, plan } = call;
  const own = new AbortController();
  const signal = own.signal;
  let timer: NodeJS.Timeout | undefined;
  const forward = (): void => {
    clearTimeout(timer);
    own.abort(cancel.reason);
  };
  if (cancel.aborted) own.abort(cancel.reason);
  else cancel.addEventListener('abort', forward, { once: true });
  const startedAt = host.attemptStarted(endpoint, attempt, isHedge);
  let recorded = false;
  const record = (outcome: AttemptOutcome): void => {
    if (recorded) return;
    recorded = true;
    host.attemptEnded(endpoint, startedAt, outcome, attempt, isHedge);
  };
  let timedOut: Promise<never> | undefined;
  if (plan.attemptTimeoutMs !== undefined && !signal.aborted) {
    timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new AttemptTimeoutError(plan.attemptTimeoutMs!);
        // The attempt is abandoned: it counts now as a failure of this endpoint.
        record({ kind: 'error', error });
        reject(error);
        own.abort(error);
      }, plan.attemptTimeoutMs);
    });
  }
  let work: Promise<T>;
  try {
    work = Promise.resolve(call.fn(endpoint, { signal, attempt, hedged: isHedge }));
  } catch (error) {
    work = Promise.reject(error);
  }
  // The endpoint's statistics follow the real work, even when it outlives the attempt.
  work.then(
    () => record(SUCCEEDED),
    (error: unknown) => record(signal.aborted ? abortedOutcome(signal.reason, error) : { kind: 'error', error }),
  );
  const settled = timedOut === undefined ? work : Promise.race([work, timedOut]);
  return settled.finally(() => {
    clearTimeout(timer);
    cancel.removeEventListener('abort', forward);
  });
}
