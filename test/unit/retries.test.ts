import { afterEach, describe, expect, it } from 'vitest';
import { RetryableError, createBalancer, isRetryBudgetExhausted, type Balancer, type RunOptions } from '../../src/index.js';
import { HttpStatusError } from '../../src/http/errors.js';
import { refused, reset, staticEndpoints } from './support.js';

/**
 * `retries: N` is exactly N retries after the first attempt, for every kind of failure, through
 * run() and dispatch() alike; a request that never reached a pod is re-sent for free once per
 * endpoint of the pool, also once the retries are spent; a retry budget token is taken and a
 * backoff slept only for a retry that is then made.
 */

const POOL = 3;
/** Budget tokens of the test balancers: percent 0, so only the reserve (clock frozen at 0). */
const TOKENS = 10;

const balancers: Balancer[] = [];
afterEach(async () => {
  await Promise.all(balancers.splice(0).map((lb) => lb.close()));
});

interface Harness {
  readonly lb: Balancer;
  /** Backoffs computed so far: the injected random source is read once per backoff, and nowhere else here. */
  backoffs(): number;
}

function harness(tokens = TOKENS, pool = POOL): Harness {
  let draws = 0;
  const lb = createBalancer({
    endpoints: staticEndpoints(pool),
    retry: { retries: 2, backoffBaseMs: 2, backoffMaxMs: 4 },
    retryBudget: { percent: 0, minPerSecond: tokens / 10, windowMs: 10_000 },
    outlierDetection: false, // ejection would change the picks, not the counts
    clock: () => 0,
    // Every backoff is > 0 ms (computed means slept). Round-robin reads it once, at creation;
    // after that, only a backoff does.
    random: () => {
      draws++;
      return 0.5;
    },
  });
  balancers.push(lb);
  const atCreation = draws;
  return { lb, backoffs: () => draws - atCreation };
}

type Kind = 'not-sent' | 'maybe-sent' | 'retryable' | 'http-503';
const KINDS: readonly Kind[] = ['not-sent', 'maybe-sent', 'retryable', 'http-503'];

function failure(kind: Kind | 'app'): Error {
  switch (kind) {
    case 'not-sent':
      return refused();
    case 'maybe-sent':
      return reset();
    case 'retryable':
      return new RetryableError('503');
    case 'http-503':
      // What the HTTP adapter reports for a failure status: the classify path it takes.
      return new HttpStatusError(503, '127.0.0.11:8080');
    default:
      return new Error('404');
  }
}

type Step = Kind | 'app' | 'ok';

interface Outcome {
  readonly attempts: number;
  readonly result: string;
  readonly tokens: number;
  readonly backoffs: number;
}

/** Runs one call whose attempt n behaves as `script[n - 1]` (the last step repeats). */
async function call(h: Harness, how: 'run' | 'dispatch', script: readonly Step[], options: RunOptions): Promise<Outcome> {
  const { lb } = h;
  const tokensBefore = lb.stats().retryBudgetLeft;
  const backoffsBefore = h.backoffs();
  let attempts = 0;
  const step = (attempt: number): Step => script[Math.min(attempt, script.length) - 1]!;
  const describe = (error: unknown): string => `error:${(error as { code?: string }).code}`;
  let result: string;
  if (how === 'run') {
    result = await lb
      .run((_endpoint, { attempt }) => {
        attempts++;
        const s = step(attempt);
        return s === 'ok' ? Promise.resolve('ok') : Promise.reject(failure(s));
      }, options)
      .catch(describe);
  } else {
    result = await new Promise<string>((resolve) => {
      lb.dispatch<string>(
        {
          startAttempt(_endpoint, handle) {
            attempts++;
            const s = step(handle.attempt);
            setImmediate(() => (s === 'ok' ? handle.succeed('ok') : handle.fail(failure(s))));
          },
          succeeded: resolve,
          failed: (error) => resolve(describe(error)),
        },
        options,
      );
    });
  }
  return { attempts, result, tokens: tokensBefore - lb.stats().retryBudgetLeft, backoffs: h.backoffs() - backoffsBefore };
}

const CODES: Record<Kind, string> = {
  'not-sent': 'ECONNREFUSED',
  'maybe-sent': 'ECONNRESET',
  retryable: 'ERR_HLB_RETRYABLE',
  'http-503': 'ERR_HLB_RETRYABLE',
};

/** The documented counts when every attempt fails with `kind`. */
function expected(kind: Kind, retries: number, idempotent: boolean): Outcome {
  const result = `error:${CODES[kind]}`;
  if (kind === 'not-sent') return { attempts: 1 + POOL + retries, result, tokens: 0, backoffs: 0 }; // free re-sends, then the retries; no budget, no backoff
  if (!idempotent) return { attempts: 1, result, tokens: 0, backoffs: 0 };
  return { attempts: 1 + retries, result, tokens: retries, backoffs: retries };
}

describe('retries: N is exactly N retries after the first attempt', () => {
  for (const how of ['run', 'dispatch'] as const) {
    for (const kind of KINDS) {
      for (const idempotent of [false, true]) {
        for (const retries of [0, 1, 2, 3]) {
          it(`${how}(): ${kind}, idempotent ${idempotent}, retries ${retries}`, async () => {
            const outcome = await call(harness(), how, [kind], { idempotent, retries });
            expect(outcome).toEqual(expected(kind, retries, idempotent));
          });
        }
      }
    }
  }

  it('takes the default from the balancer (retry.retries 2: three attempts)', async () => {
    for (const how of ['run', 'dispatch'] as const) {
      expect(await call(harness(), how, ['maybe-sent'], { idempotent: true })).toMatchObject({ attempts: 3, tokens: 2, backoffs: 2 });
    }
  });

  it('never retries an application error', async () => {
    for (const how of ['run', 'dispatch'] as const) {
      expect(await call(harness(), how, ['app'], { idempotent: true, retries: 3 })).toEqual({
        attempts: 1,
        result: 'error:undefined',
        tokens: 0,
        backoffs: 0,
      });
    }
  });

  it('succeeds on the last retry allowed', async () => {
    for (const how of ['run', 'dispatch'] as const) {
      for (const retries of [1, 2, 3]) {
        const script: Step[] = [...Array<Step>(retries).fill('maybe-sent'), 'ok'];
        expect(await call(harness(), how, script, { idempotent: true, retries })).toEqual({
          attempts: retries + 1,
          result: 'ok',
          tokens: retries,
          backoffs: retries,
        });
      }
    }
  });
});

describe('free re-sends of requests that never reached a pod', () => {
  it('re-sends a refused connection after the retries are spent: reset → reset → refused → a live pod (retries 2)', async () => {
    for (const how of ['run', 'dispatch'] as const) {
      const outcome = await call(harness(TOKENS, 4), how, ['maybe-sent', 'maybe-sent', 'not-sent', 'ok'], { idempotent: true, retries: 2 });
      expect(outcome).toEqual({ attempts: 4, result: 'ok', tokens: 2, backoffs: 2 });
    }
  });

  it('re-sends a refused connection at retries: 0, idempotent or not', async () => {
    for (const how of ['run', 'dispatch'] as const) {
      for (const idempotent of [false, true]) {
        expect(await call(harness(), how, ['not-sent', 'ok'], { idempotent, retries: 0 })).toEqual({
          attempts: 2,
          result: 'ok',
          tokens: 0,
          backoffs: 0,
        });
      }
    }
  });

  it('re-sends at most once per endpoint of the pool for free; then a refused connection uses a retry', async () => {
    for (const how of ['run', 'dispatch'] as const) {
      // 3 free re-sends, then the one retry, then the second retry is missing: the call fails.
      expect(await call(harness(), how, ['not-sent'], { retries: 1 })).toMatchObject({
        attempts: 1 + POOL + 1,
        result: 'error:ECONNREFUSED',
      });
      // A retry used by a reset does not take the free re-sends away.
      expect(
        await call(harness(), how, ['maybe-sent', 'not-sent', 'not-sent', 'not-sent', 'ok'], { idempotent: true, retries: 1 }),
      ).toEqual({
        attempts: 5,
        result: 'ok',
        tokens: 1,
        backoffs: 1,
      });
    }
  });
});

describe('the retry budget', () => {
  it('is asked only for a retry that will be made, and no backoff is slept when it refuses', async () => {
    for (const how of ['run', 'dispatch'] as const) {
      const h = harness(1);
      const first = await call(h, how, ['maybe-sent'], { idempotent: true, retries: 3 });
      // One token: one retry made (and its backoff), then the budget refuses: no sleep, the call ends.
      expect(first).toEqual({ attempts: 2, result: 'error:ECONNRESET', tokens: 1, backoffs: 1 });
      const exhausted: unknown[] = [];
      h.lb.on('budget-exhausted', ({ error }) => exhausted.push(error));
      const second = await call(h, how, ['maybe-sent'], { idempotent: true, retries: 3 });
      expect(second).toEqual({ attempts: 1, result: 'error:ECONNRESET', tokens: 0, backoffs: 0 });
      expect(exhausted).toHaveLength(1);
      expect(isRetryBudgetExhausted(exhausted[0])).toBe(true);
      // Refused connections take no token: still re-sent.
      expect(await call(h, how, ['not-sent', 'ok'], { retries: 0 })).toMatchObject({ attempts: 2, result: 'ok' });
    }
  });

  it('is not asked when no retry is left (retries 0, or spent)', async () => {
    for (const how of ['run', 'dispatch'] as const) {
      const h = harness();
      let exhausted = 0;
      h.lb.on('budget-exhausted', () => exhausted++);
      expect(await call(h, how, ['maybe-sent'], { idempotent: true, retries: 0 })).toEqual({
        attempts: 1,
        result: 'error:ECONNRESET',
        tokens: 0,
        backoffs: 0,
      });
      expect(await call(h, how, ['maybe-sent'], { idempotent: true, retries: 1 })).toEqual({
        attempts: 2,
        result: 'error:ECONNRESET',
        tokens: 1,
        backoffs: 1,
      });
      expect(exhausted).toBe(0);
    }
  });
});
