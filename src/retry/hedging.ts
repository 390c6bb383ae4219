import { retryAfterOf } from '../errors.js';
import { classifyFailure } from '../failure-kind.js';
import type { Endpoint } from '../pool/endpoint.js';
import { timerDelay } from '../timer-delay.js';
import { HEDGE_LOST, launch } from './attempt.js';
import type { CallScope } from './call-scope.js';

/**
 * A hedged round (gRFC A6's hedging): the primary attempt, then another one on an endpoint this
 * call has not tried every `plan.hedgeDelayMs` while none has succeeded, up to
 * `plan.hedgeMaxAttempts` in all, each within the hedge budget. The first success wins and the
 * others are aborted. A dispatched call may refuse further hedges (`mayHedge`, e.g. a gRPC client
 * stream past its retry buffer). A failure that a retry could mend (not `fatal`) sends the next
 * hedge at once while other attempts still run, or whenever the call has no retries (`retries: 0`,
 * as A6's hedged methods), or after the wait it asked for (`RetryableError.retryAfterMs`, A6's
 * pushback); a fatal one ends the round with it at once (A6: such a status commits the call),
 * aborting the others. When every attempt failed, the first failure goes to the retry
 * loop. The hedge timer is ref'd (the caller waits on what it starts) and cleared when the
 * round ends or the call stops.
 */
export function hedged<T>(call: CallScope<T>, tried: Set<Endpoint>, primary: Endpoint, attempt: number): Promise<T> {
  const { host, plan } = call;
  const cancel = call.signal;
  const round = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let pending = 0;
    let started = 0;
    let done = false;
    /** False once a hedge could not be sent (budget spent, no endpoint left): none follows. */
    let hedging = true;
    let firstError: unknown;
    let hedgeTimer: NodeJS.Timeout | undefined;
    /** The hedge timer waits out a failure's pushback: the round stays open though no attempt runs. */
    let pushedBack = false;
    const end = (reason: unknown): void => {
      done = true;
      clearTimeout(hedgeTimer);
      if (pushedBack) {
        pushedBack = false;
        call.hooks?.retryWait?.(undefined);
      }
      cancel.removeEventListener('abort', onCancel);
      round.abort(reason);
    };
    // The call stopped: every attempt is aborted and the round ends now, whatever they do.
    const onCancel = (): void => {
      if (done) return;
      end(cancel.reason);
      reject(cancel.reason);
    };
    const start = (endpoint: Endpoint, isHedge: boolean): void => {
      pending++;
      started++;
      launch(call, endpoint, attempt, isHedge, round.signal).then(
        (value) => {
          pending--;
          if (done) return;
          end(HEDGE_LOST); // the others, if any, are cancelled
          resolve(value);
        },
        (error: unknown) => {
          pending--;
          if (done) return;
          if (classifyFailure(error) === 'fatal') {
            end(HEDGE_LOST);
            reject(error);
            return;
          }
          firstError ??= error;
          // The next hedge at once: while the others run, or always when the call has no retries
          // of its own (A6: a hedged method's attempts are all hedges). After the wait the
          // failure asked for, if any (A6's pushback); the hedge delay applies again after it.
          if (pending > 0 || plan.retries === 0) {
            const asked = retryAfterOf(error);
            if (asked === undefined || asked === 0) sendHedge();
            else if (hedging && started < plan.hedgeMaxAttempts) {
              clearTimeout(hedgeTimer);
              hedgeTimer = setTimeout(hedgeAfterPushback, timerDelay(asked));
              pushedBack = true;
              // A dispatched call that ends meanwhile ends the wait (and, asked, allows no hedge).
              call.hooks?.retryWait?.(hedgeAfterPushback);
              return;
            }
          }
          if (pending > 0 || pushedBack) return;
          // Every attempt failed: the retry logic decides.
          end(HEDGE_LOST);
          reject(firstError);
        },
      );
    };
    /** The pushback wait is over: the next hedge; the round ends if none could be sent and none runs. */
    const hedgeAfterPushback = (): void => {
      if (!pushedBack) return;
      sendHedge();
      if (done || pending > 0) return;
      end(HEDGE_LOST);
      reject(firstError);
    };
    const sendHedge = (): void => {
      clearTimeout(hedgeTimer);
      hedgeTimer = undefined;
      if (pushedBack) {
        pushedBack = false;
        call.hooks?.retryWait?.(undefined);
      }
      if (done || !hedging || started >= plan.hedgeMaxAttempts) return;
      if (call.hooks?.mayHedge?.() === false) {
        hedging = false;
        return;
      }
      let next: Endpoint | undefined;
      try {
        next = host.allowHedge() ? host.pickFor(plan.key, tried, attempt, false) : undefined;
      } catch {
        next = undefined;
      }
      if (next === undefined || tried.has(next)) {
        hedging = false;
        return;
      }
      tried.add(next);
      start(next, true);
      if (started < plan.hedgeMaxAttempts) hedgeTimer = setTimeout(sendHedge, plan.hedgeDelayMs);
    };
    if (cancel.aborted) return onCancel();
    cancel.addEventListener('abort', onCancel, { once: true });
    start(primary, false);
    hedgeTimer = setTimeout(sendHedge, plan.hedgeDelayMs);
  });
}
