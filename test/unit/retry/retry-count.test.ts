import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FailureKind } from '../../../src/failure-kind.js';
import { RetryCount } from '../../../src/retry/retry-count.js';

/** Attempts made when every attempt fails with `kind` (the budget always allows). */
function attemptsWhenAllFail(kind: FailureKind, retries: number, idempotent: boolean, poolSize: number): number {
  const count = new RetryCount(retries);
  let attempts = 1;
  for (;;) {
    const step = count.next(kind, idempotent, poolSize);
    if (step === 'give-up') return attempts;
    if (step === 'retry') count.take();
    attempts++;
  }
}

describe('RetryCount', () => {
  it('allows exactly `retries` retries after the first attempt', () => {
    for (const retries of [0, 1, 2, 3, 10]) {
      expect(attemptsWhenAllFail('maybe-sent', retries, true, 3)).toBe(1 + retries);
      expect(attemptsWhenAllFail('maybe-sent', retries, false, 3)).toBe(1);
      expect(attemptsWhenAllFail('fatal', retries, true, 3)).toBe(1);
      // Re-sends of requests that never reached a pod: once per endpoint for free, then the retries.
      expect(attemptsWhenAllFail('not-sent', retries, false, 3)).toBe(1 + 3 + retries);
    }
  });

  it('numbers the retries with a backoff 1, 2, 3 …, and offers none when the retries are spent', () => {
    const count = new RetryCount(2);
    expect(count.next('maybe-sent', true, 3)).toBe('retry');
    expect(count.take()).toBe(1);
    expect(count.next('not-sent', true, 3)).toBe('resend'); // free
    expect(count.next('maybe-sent', true, 3)).toBe('retry');
    expect(count.take()).toBe(2);
    expect(count.next('maybe-sent', true, 3)).toBe('give-up');
    expect(count.next('not-sent', true, 3)).toBe('resend'); // free re-sends outlive the retries
  });

  it('takes nothing when it offers a retry that is then not made (the budget refused it)', () => {
    const count = new RetryCount(1);
    expect(count.next('maybe-sent', true, 3)).toBe('retry');
    expect(count.next('maybe-sent', true, 3)).toBe('retry');
    count.take();
    expect(count.next('maybe-sent', true, 3)).toBe('give-up');
  });

  it('never allows more than retries + pool size further attempts, nor more than `retries` that are not free (property)', () => {
    const kinds: FailureKind[] = ['not-sent', 'maybe-sent', 'fatal'];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 8 }),
        fc.boolean(),
        fc.array(fc.constantFrom(...kinds), { maxLength: 40 }),
        (retries, pool, idempotent, failures) => {
          const count = new RetryCount(retries);
          let further = 0;
          let withBackoff = 0;
          for (const kind of failures) {
            const step = count.next(kind, idempotent, pool);
            if (step === 'give-up') {
              expect(kind === 'fatal' || (kind === 'maybe-sent' && !idempotent) || further >= retries).toBe(true);
              continue;
            }
            if (step === 'retry') {
              expect(kind).toBe('maybe-sent');
              count.take();
              withBackoff++;
            }
            further++;
          }
          expect(further).toBeLessThanOrEqual(retries + pool);
          expect(withBackoff).toBeLessThanOrEqual(retries);
        },
      ),
    );
  });
});
