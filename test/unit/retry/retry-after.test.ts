import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createBalancer,
  DeadlineExceededError,
  InvalidOptionError,
  RetryableError,
  type Balancer,
  type BalancerOptions,
} from '../../../src/index.js';
import { reset, staticEndpoints } from '../support.js';

/*
 * A failure that asks for its retry after a given wait (`RetryableError.retryAfterMs`, gRPC's
 * server pushback): that wait replaces the backoff, and the backoff sequence starts over.
 * Timers are faked (setTimeout only); random() is 0.999, so each backoff is just under its ceiling.
 */

let lb: Balancer | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await lb?.close();
  lb = undefined;
});

function balancer(options: Partial<BalancerOptions> = {}): Balancer {
  lb = createBalancer({
    endpoints: staticEndpoints(3),
    retry: { retries: 4, backoffBaseMs: 100, backoffMaxMs: 100_000 },
    outlierDetection: false,
    random: () => 0.999,
    ...options,
  } as BalancerOptions);
  return lb;
}

const asking = (ms: number): RetryableError => new RetryableError('pushed back', { retryAfterMs: ms });

/** Runs a call whose attempts fail with `failures` in turn (then succeed); returns when each attempt started, ms. */
async function startTimes(
  failures: readonly Error[],
  options: Partial<BalancerOptions> = {},
  timeoutMs?: number,
): Promise<{ times: number[]; result: unknown; endedAt: number }> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  const start = Date.now();
  const times: number[] = [];
  const result = balancer(options)
    .run(
      () => {
        times.push(Date.now() - start);
        const failure = failures[times.length - 1];
        return failure === undefined ? Promise.resolve('ok') : Promise.reject(failure);
      },
      { idempotent: true, timeoutMs },
    )
    .catch((error: unknown) => error)
    .finally(() => (endedAt = Date.now() - start));
  let endedAt = -1;
  await vi.advanceTimersByTimeAsync(1_000_000);
  return { times, result: await result, endedAt };
}

describe('RetryableError.retryAfterMs', () => {
  it('retries after exactly the wait asked, then restarts the backoff sequence', async () => {
    // Backoffs 99, 199; the pushback 50 instead of 399; then 99 again, not 799.
    const { times, result } = await startTimes([reset(), reset(), asking(50), reset()]);
    expect(result).toBe('ok');
    expect(times).toEqual([0, 99, 298, 348, 447]);
  });

  it('retries at once after a pushback of 0', async () => {
    const { times } = await startTimes([asking(0), asking(0)]);
    expect(times).toEqual([0, 0, 0]);
  });

  it('still counts the retries and asks the retry budget', async () => {
    const failures = Array.from({ length: 10 }, () => asking(0));
    const { times, result } = await startTimes(failures, { retry: { retries: 2, backoffBaseMs: 100, backoffMaxMs: 100 } });
    expect(times).toHaveLength(3);
    expect(result).toBe(failures[2]);
    const refused = await startTimes(failures, { retryBudget: { percent: 0, minPerSecond: 0 } } as Partial<BalancerOptions>);
    expect(refused.times).toHaveLength(1);
  });

  it('is not retried when the call is not idempotent', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let attempts = 0;
    const error = asking(0);
    await expect(
      balancer().run(() => {
        attempts++;
        return Promise.reject(error);
      }),
    ).rejects.toBe(error);
    expect(attempts).toBe(1);
  });

  it('clamps a wait beyond a timer to what a timer holds; the deadline still ends the call', async () => {
    const { times, result, endedAt } = await startTimes([asking(Number.POSITIVE_INFINITY)], {}, 500_000);
    expect(times).toEqual([0]); // no 1 ms timer
    expect(result).toBeInstanceOf(DeadlineExceededError);
    expect(endedAt).toBe(500_000);
  });

  it('rejects a negative or NaN wait, naming the field', () => {
    for (const bad of [-1, Number.NaN]) {
      expect(() => new RetryableError('x', { retryAfterMs: bad })).toThrow(InvalidOptionError);
      expect(() => new RetryableError('x', { retryAfterMs: bad })).toThrow(/retryAfterMs/);
    }
  });
});
