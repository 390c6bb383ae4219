import { afterEach, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '../../support/random.js';
import {
  createBalancer,
  InvalidOptionError,
  RetryableError,
  type AttemptContext,
  type Balancer,
  type BalancerOptions,
} from '../../../src/index.js';
import type { Endpoint } from '../../../src/pool/endpoint.js';
import { reset, staticEndpoints } from '../support.js';

/*
 * Hedged rounds of more than two attempts (gRFC A6's hedgingPolicy): a hedge every delay, the
 * next one at once after a failure a retry could mend, the round's end at a fatal failure.
 * Timers are faked (setTimeout only), so "at once" means "before the next delay".
 */

let lb: Balancer | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await lb?.close();
  lb = undefined;
});

function balancer(count: number, options: Partial<BalancerOptions> = {}): Balancer {
  lb = createBalancer({
    endpoints: staticEndpoints(count),
    retry: { retries: 2, backoffBaseMs: 1, backoffMaxMs: 2 },
    hedgeBudget: { percent: 1, minPerSecond: 10 },
    outlierDetection: false,
    random: seededRandom(7),
    ...options,
  } as BalancerOptions);
  return lb;
}

interface Sent {
  readonly endpoint: string;
  readonly attempt: number;
  readonly hedged: boolean;
  aborted: boolean;
}

/** An attempt function whose attempts are settled by the test, in the order they were sent. */
function scripted(): {
  sent: Sent[];
  settle: Map<number, { resolve: (value: string) => void; reject: (error: unknown) => void }>;
  fn: (endpoint: Endpoint, context: AttemptContext) => Promise<string>;
} {
  const sent: Sent[] = [];
  const settle = new Map<number, { resolve: (value: string) => void; reject: (error: unknown) => void }>();
  const fn = (endpoint: Endpoint, { signal, attempt, hedged }: AttemptContext): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const entry: Sent = { endpoint: endpoint.id, attempt, hedged, aborted: false };
      settle.set(sent.length, { resolve, reject });
      sent.push(entry);
      signal.addEventListener('abort', () => {
        entry.aborted = true;
        reject(signal.reason);
      });
    });
  return { sent, settle, fn };
}

/** Lets the call path's promise reactions run (no timer moves). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('hedging with maxAttempts', () => {
  it('sends a hedge every delayMs on an untried pod, up to maxAttempts in all; the first success wins', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(5);
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, hedge: { delayMs: 100, maxAttempts: 3 } });
    await flush();
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(sent).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(3); // maxAttempts reached
    expect(new Set(sent.map((s) => s.endpoint)).size).toBe(3);
    expect(sent.map((s) => [s.attempt, s.hedged])).toEqual([
      [1, false],
      [1, true],
      [1, true],
    ]);
    settle.get(1)!.resolve('second');
    await expect(result).resolves.toBe('second');
    expect(sent.map((s) => s.aborted)).toEqual([true, false, true]);
    expect(lb.stats()).toMatchObject({ hedges: 2, retries: 0 });
    // The losers count as cancelled: no failure, nothing left in flight.
    expect(lb.endpoints().every((e) => e.inflight === 0 && e.failures === 0)).toBe(true);
  });

  it('sends the next hedge at once when an attempt fails with a retryable error while others run', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(5);
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, hedge: { delayMs: 100, maxAttempts: 4 } });
    await vi.advanceTimersByTimeAsync(100);
    expect(sent).toHaveLength(2);
    settle.get(1)!.reject(reset()); // the first hedge fails: the next one goes now, not at 200 ms
    await flush();
    expect(sent).toHaveLength(3);
    expect(sent[2]).toMatchObject({ attempt: 1, hedged: true });
    // The delay starts again from that hedge.
    await vi.advanceTimersByTimeAsync(99);
    expect(sent).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(4);
    settle.get(0)!.resolve('primary');
    await expect(result).resolves.toBe('primary');
    expect(lb.stats()).toMatchObject({ hedges: 3, retries: 0 });
  });

  it('ends the call at once with a fatal error, cancelling the other attempts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(5);
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, hedge: { delayMs: 100, maxAttempts: 5 } });
    const outcome = result.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(200);
    expect(sent).toHaveLength(3);
    const fatal = new Error('invalid argument'); // no retry code: an application error
    settle.get(1)!.reject(fatal);
    await flush();
    expect(await outcome).toBe(fatal);
    expect(sent.map((s) => s.aborted)).toEqual([true, false, true]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(3); // no hedge, no retry after it
    expect(lb.stats()).toMatchObject({ hedges: 2, retries: 0 });
  });

  it('hands the first failure to the retry loop when every attempt failed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(5, { retry: { retries: 1, backoffBaseMs: 1, backoffMaxMs: 1 } });
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, hedge: { delayMs: 100, maxAttempts: 2 } });
    await vi.advanceTimersByTimeAsync(100);
    expect(sent).toHaveLength(2);
    const first = reset();
    settle.get(0)!.reject(first);
    await flush();
    expect(sent).toHaveLength(2); // maxAttempts reached: waits for the other
    settle.get(1)!.reject(reset());
    await vi.advanceTimersByTimeAsync(5); // the backoff
    expect(sent).toHaveLength(3);
    expect(sent[2]).toMatchObject({ attempt: 2, hedged: false });
    settle.get(2)!.resolve('retried');
    await expect(result).resolves.toBe('retried');
    expect(lb.stats()).toMatchObject({ hedges: 1, retries: 1 });
  });

  it('with retries: 0, a failure with nothing else running sends the next hedge at once (A6), up to maxAttempts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(5);
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, retries: 0, hedge: { delayMs: 100, maxAttempts: 3 } });
    const outcome = result.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await flush();
    settle.get(0)!.reject(reset()); // before the delay: a hedge now instead of a retry
    await flush();
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ attempt: 1, hedged: true });
    settle.get(1)!.reject(reset());
    await flush();
    expect(sent).toHaveLength(3);
    const last = reset();
    settle.get(2)!.reject(last);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(3); // maxAttempts: the call fails with the first failure
    expect(await outcome).toBeInstanceOf(Error);
    expect(lb.stats()).toMatchObject({ hedges: 2, retries: 0 });
  });

  it('stops hedging when the hedge budget is spent, and says so once per refused hedge', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    // A reserve of exactly one hedge per window, nothing from traffic.
    const lb = balancer(5, { hedgeBudget: { percent: 0, minPerSecond: 0.1, windowMs: 10_000 } });
    let exhausted = 0;
    lb.on('hedge-budget-exhausted', () => exhausted++);
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, hedge: { delayMs: 100, maxAttempts: 5 } });
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(2);
    expect(exhausted).toBe(1);
    settle.get(0)!.resolve('primary');
    await expect(result).resolves.toBe('primary');
    expect(lb.stats().hedges).toBe(1);
  });

  it('sends no more hedges than there are untried pods', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(2);
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, hedge: { delayMs: 10, maxAttempts: 5 } });
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(2);
    expect(sent[0]!.endpoint).not.toBe(sent[1]!.endpoint);
    settle.get(1)!.resolve('hedge');
    await expect(result).resolves.toBe('hedge');
  });

  it('hedges dispatch() calls the same way', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(5);
    const handles: { signal: AbortSignal; succeed: (v: string) => void; fail: (e: unknown) => void }[] = [];
    const outcome = new Promise<string>((resolve, reject) =>
      lb.dispatch<string>(
        { startAttempt: (_endpoint, handle) => void handles.push(handle), succeeded: resolve, failed: reject },
        { idempotent: true, hedge: { delayMs: 50, maxAttempts: 3 } },
      ),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(handles).toHaveLength(3);
    handles[2]!.succeed('third');
    await expect(outcome).resolves.toBe('third');
    expect(handles.map((h) => h.signal.aborted)).toEqual([true, true, false]);
  });

  it('checks maxAttempts: an integer from 2 to 5, named in the error', async () => {
    const lb = balancer(2);
    for (const bad of [1, 6, 2.5, '3', Number.NaN]) {
      await expect(lb.run(async () => 1, { idempotent: true, hedge: { delayMs: 5, maxAttempts: bad as number } })).rejects.toSatisfy(
        (error: unknown) => error instanceof InvalidOptionError && error.field === 'hedge.maxAttempts',
      );
    }
    await expect(lb.run(async () => 1, { idempotent: true, hedge: { delayMs: 5, maxAttempts: 5 } })).resolves.toBe(1);
  });
});

describe('a hedge that loses', () => {
  it('teaches the pod it ran on that it takes at least that long (no failure counted)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let now = 1_000;
    const lb = balancer(2, { clock: () => now });
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, hedge: { delayMs: 100 } });
    await flush();
    const slow = lb.endpoints().find((e) => e.id === sent[0]!.endpoint)!;
    const fast = lb.endpoints().find((e) => e !== slow)!;
    expect(slow.latencyMs).toBe(30); // the default before any answer
    now += 100;
    await vi.advanceTimersByTimeAsync(100);
    now += 5;
    settle.get(1)!.resolve('hedge');
    await expect(result).resolves.toBe('hedge');
    expect(sent[0]!.aborted).toBe(true);
    expect(fast.latencyMs).toBe(5);
    expect(slow.latencyMs).toBe(105); // waited 105 ms unanswered
    expect(slow.failures).toBe(0);
    expect(slow.inflight).toBe(0);
  });
});

describe('hedging after a failure that asks for a wait (server pushback)', () => {
  it('sends the next hedge after that wait instead of at once, then every delayMs again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(5, { retry: { retries: 0 } } as Partial<BalancerOptions>);
    const { sent, settle, fn } = scripted();
    const result = lb.run(fn, { idempotent: true, hedge: { delayMs: 100, maxAttempts: 3 } });
    await flush();
    settle.get(0)!.reject(new RetryableError('pushed back', { retryAfterMs: 30 })); // nothing else runs
    await vi.advanceTimersByTimeAsync(29);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(99);
    expect(sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(3);
    settle.get(2)!.resolve('third');
    await expect(result).resolves.toBe('third');
  });

  it('ends the round with the first failure when no hedge is left after the wait', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const lb = balancer(5, { retry: { retries: 0 } } as Partial<BalancerOptions>);
    const { sent, settle, fn } = scripted();
    const outcome = lb.run(fn, { idempotent: true, hedge: { delayMs: 100, maxAttempts: 2 } }).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(100);
    expect(sent).toHaveLength(2);
    const first = new RetryableError('pushed back', { retryAfterMs: 30 });
    settle.get(0)!.reject(first);
    settle.get(1)!.reject(reset());
    await vi.advanceTimersByTimeAsync(0);
    expect(await outcome).toBe(first);
    expect(sent).toHaveLength(2);
  });
});
