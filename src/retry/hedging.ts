import type { Endpoint } from '../pool/endpoint.js';
import { launch } from './attempt.js';
import type { CallScope } from './call-scope.js';

/** Why the slower attempt of a hedged pair is aborted. */
const HEDGE_LOST = Object.freeze(
  Object.assign(new Error('another attempt of this call succeeded first'), { name: 'AbortError', code: 'ERR_HLB_HEDGE_LOST' }),
);

/**
 * The primary attempt, plus a twin on another endpoint if the primary is still running after the
 * delay (`plan.hedgeDelayMs`, within the hedge budget): the first success wins and the other is
 * aborted; when both fail, the first failure goes to the retry loop. The hedge timer is ref'd
 * (the caller waits on what it starts) and cleared when the pair settles or the call stops.
 */
export function hedged<T>(call: CallScope<T>, tried: Set<Endpoint>, primary: Endpoint, attempt: number): Promise<T> {
  const { host, plan } = call;
  const cancel = call.signal;
  const round = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let pending = 0;
    let done = false;
    let firstError: unknown;
    let hedgeTimer: NodeJS.Timeout | undefined;
    const end = (reason: unknown): void => {
      done = true;
      clearTimeout(hedgeTimer);
      cancel.removeEventListener('abort', onCancel);
      round.abort(reason);
    };
    // The call stopped: both attempts are aborted and the pair ends now, whatever they do.
    const onCancel = (): void => {
      if (done) return;
      end(cancel.reason);
      reject(cancel.reason);
    };
    const start = (endpoint: Endpoint, isHedge: boolean): void => {
      pending++;
      launch(call, endpoint, attempt, isHedge, round.signal).then(
        (value) => {
          pending--;
          if (done) return;
          end(HEDGE_LOST); // the loser, if any, is cancelled
          resolve(value);
        },
        (error: unknown) => {
          pending--;
          if (done) return;
          firstError ??= error;
          // Both failed, or the primary failed before the hedge was sent: let the retry logic decide.
          if (pending === 0) {
            end(HEDGE_LOST);
            reject(firstError);
          }
        },
      );
    };
    if (cancel.aborted) return onCancel();
    cancel.addEventListener('abort', onCancel, { once: true });
    start(primary, false);
    hedgeTimer = setTimeout(() => {
      hedgeTimer = undefined;
      if (done) return;
      let twin: Endpoint | undefined;
      try {
        twin = host.allowHedge() ? host.pickFor(plan.key, tried, attempt, false) : undefined;
      } catch {
        twin = undefined;
      }
      if (twin !== undefined && twin !== primary) {
        tried.add(twin);
        start(twin, true);
      }
    }, plan.hedgeDelayMs);
  });
}
