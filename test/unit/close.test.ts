import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BalancerClosedError,
  DeadlineExceededError,
  RetryableError,
  createBalancer,
  type AttemptHandle,
  type Balancer,
} from '../../src/index.js';
import { staticEndpoints } from './support.js';

/** close() ends every pending call at once; the call's timers go with it. (Child-process checks: test/integration/stranded.test.ts.) */

let lb: Balancer | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await lb?.close();
  lb = undefined;
});

function balancer(count = 2): Balancer {
  lb = createBalancer({
    endpoints: staticEndpoints(count),
    retry: { retries: 3, backoffBaseMs: 10_000, backoffMaxMs: 10_000 },
    random: () => 0.5,
    outlierDetection: false,
  });
  return lb;
}

describe('close()', () => {
  it('ends a dispatched call with an attempt in flight once, aborts its signal, and ignores the late report', async () => {
    const lb = balancer();
    let handle: AttemptHandle<string> | undefined;
    const ends: unknown[] = [];
    lb.dispatch<string>({
      startAttempt: (_endpoint, h) => {
        handle = h;
      },
      succeeded: (value) => ends.push(value),
      failed: (error) => ends.push(error),
    });
    expect(lb.endpoints().reduce((n, e) => n + e.inflight, 0)).toBe(1);
    await lb.close();
    expect(ends).toHaveLength(1);
    expect(ends[0]).toBeInstanceOf(BalancerClosedError);
    expect(handle!.signal.aborted).toBe(true);
    expect(handle!.signal.reason).toBe(ends[0]);
    // The adapter reports later, as its socket's callbacks would: no second end, no retry; the attempt counts as cancelled.
    handle!.fail(new RetryableError('aborted'));
    handle!.succeed('late');
    expect(ends).toHaveLength(1);
    expect(lb.endpoints().every((e) => e.inflight === 0 && e.failures === 0)).toBe(true);
    expect(lb.stats().retries).toBe(0);
  });

  it('ends a run() sleeping in a backoff at once: the backoff timer is cleared and no attempt follows', async () => {
    vi.useFakeTimers();
    const lb = balancer();
    let attempts = 0;
    const call = lb.run(
      () => {
        attempts++;
        return Promise.reject(new RetryableError('503'));
      },
      { idempotent: true },
    );
    call.catch(() => {});
    await vi.advanceTimersByTimeAsync(0); // the first attempt fails; the call sleeps 5 s
    expect(attempts).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    await lb.close();
    await expect(call).rejects.toBeInstanceOf(BalancerClosedError);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(attempts).toBe(1);
  });

  it('clears the deadline, attempt and hedge timers of a call in flight', async () => {
    vi.useFakeTimers();
    const lb = balancer();
    const call = lb.run(() => new Promise<never>(() => {}), {
      idempotent: true,
      timeoutMs: 60_000,
      attemptTimeoutMs: 30_000,
      hedge: { delayMs: 20_000 },
    });
    call.catch(() => {});
    expect(vi.getTimerCount()).toBe(3);
    await lb.close();
    await expect(call).rejects.toBeInstanceOf(BalancerClosedError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects ready() and calls waiting for the first lookup, and clears their timers', async () => {
    // Closed before its first lookup can have an answer.
    const neverAnswers = createBalancer({
      service: 'web.default.svc.cluster.local',
      port: 8080,
      dnsServers: ['127.0.0.1:9'],
      search: [],
      ndots: 1,
    });
    lb = neverAnswers;
    vi.useFakeTimers();
    const waiting = [
      neverAnswers.ready({ timeoutMs: 60_000 }),
      neverAnswers.run(async () => 1, { timeoutMs: 60_000 }),
      neverAnswers.run(async () => 1),
    ];
    for (const p of waiting) p.catch(() => {});
    await neverAnswers.close();
    for (const p of waiting) await expect(p).rejects.toBeInstanceOf(BalancerClosedError);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('a stopped call sends nothing more', () => {
  it('sends no hedge after the deadline stopped the call', async () => {
    vi.useFakeTimers();
    const lb = balancer();
    let hedges = 0;
    const call = lb.run(
      (_endpoint, { hedged }) => {
        if (hedged) hedges++;
        return new Promise<never>(() => {}); // ignores its signal
      },
      { idempotent: true, timeoutMs: 1_000, hedge: { delayMs: 5_000 } },
    );
    call.catch(() => {});
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(call).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(hedges).toBe(0);
    expect(lb.stats().hedges).toBe(0);
  });
});
