import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BalancerClosedError,
  DeadlineExceededError,
  InvalidOptionError,
  RetryableError,
  createBalancer,
  type AttemptHandle,
  type Balancer,
  type CloseOptions,
} from '../../src/index.js';
import { refused, staticEndpoints } from './support.js';

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

describe('close({ drainMs })', () => {
  /** A balancer on fake timers, its clock the faked Date; backoffs of 100 ms. */
  function draining(count = 2): Balancer {
    vi.useFakeTimers();
    lb = createBalancer({
      endpoints: staticEndpoints(count),
      retry: { retries: 3, backoffBaseMs: 100, backoffMaxMs: 100 },
      random: () => 0.5,
      clock: () => Date.now(),
      outlierDetection: false,
    });
    return lb;
  }
  /** A call that ends when told. */
  function pending<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
    let resolve!: (value: T) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
    return { promise, resolve, reject };
  }

  it('lets a call in flight finish, refuses new calls meanwhile, then releases everything', async () => {
    const lb = draining();
    const work = pending<string>();
    const call = lb.run(() => work.promise);
    const events: unknown[] = [];
    lb.on('draining', (event) => events.push(['draining', event]));
    lb.on('close', (event) => events.push(['close', event]));
    let closed = false;
    const closing = lb.close({ drainMs: 1_000 }).then(() => (closed = true));
    expect(lb.isClosed).toBe(true);
    expect(lb.stats()).toMatchObject({ state: 'draining', inflight: 1 });
    expect(events).toEqual([['draining', { drainMs: 1_000, calls: 1 }]]);
    // New calls are refused at once, whatever their form.
    await expect(lb.run(async () => 1)).rejects.toBeInstanceOf(BalancerClosedError);
    await expect(lb.ready()).rejects.toBeInstanceOf(BalancerClosedError);
    await expect(lb.refresh()).rejects.toBeInstanceOf(BalancerClosedError);
    expect(() => lb.pick()).toThrow(BalancerClosedError);
    const refused = pending<unknown>();
    lb.dispatch({ startAttempt: () => refused.resolve('started'), succeeded: refused.resolve, failed: refused.resolve });
    expect(await refused.promise).toBeInstanceOf(BalancerClosedError);

    await vi.advanceTimersByTimeAsync(200);
    expect(closed).toBe(false);
    work.resolve('done');
    await expect(call).resolves.toBe('done');
    await closing;
    expect(lb.stats()).toMatchObject({ state: 'closed', inflight: 0 });
    expect(events).toEqual([
      ['draining', { drainMs: 1_000, calls: 1 }],
      ['close', { stopped: 0 }],
    ]);
    expect(vi.getTimerCount()).toBe(0);
    expect(lb.endpoints().every((e) => e.inflight === 0 && e.successes + e.failures <= 1)).toBe(true);
  });

  it('ends a call that outlives the drain at drainMs with BalancerClosedError and aborts its signal', async () => {
    const lb = draining();
    let signal: AbortSignal | undefined;
    const call = lb.run((_endpoint, context) => {
      signal = context.signal;
      return new Promise<never>(() => {}); // ignores its signal
    });
    call.catch(() => {});
    let stopped: number | undefined;
    lb.on('close', (event) => (stopped = event.stopped));
    let closed = false;
    const closing = lb.close({ drainMs: 500 }).then(() => (closed = true));
    await vi.advanceTimersByTimeAsync(499);
    expect(closed).toBe(false);
    expect(signal!.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await closing;
    await expect(call).rejects.toBeInstanceOf(BalancerClosedError);
    expect(signal!.reason).toBeInstanceOf(BalancerClosedError);
    expect(stopped).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('lets a call retry and back off during the drain: a retry is still the same call', async () => {
    const lb = draining();
    let attempts = 0;
    const call = lb.run(
      () => {
        attempts++;
        return attempts === 1 ? Promise.reject(new RetryableError('503')) : Promise.resolve('second');
      },
      { idempotent: true },
    );
    await vi.advanceTimersByTimeAsync(0); // the first attempt failed: the call sleeps its 50 ms backoff
    const closing = lb.close({ drainMs: 1_000 });
    expect(lb.stats().state).toBe('draining');
    await vi.advanceTimersByTimeAsync(100);
    await expect(call).resolves.toBe('second');
    await closing;
    expect(attempts).toBe(2);
    expect(lb.stats().retries).toBe(1);
  });

  it('keeps draining a dispatched call between its failed first attempt and its retry', async () => {
    const lb = draining();
    const handles: AttemptHandle<string>[] = [];
    const ends: unknown[] = [];
    lb.dispatch<string>({
      startAttempt: (_endpoint, handle) => handles.push(handle),
      succeeded: (value) => ends.push(value),
      failed: (error) => ends.push(error),
    });
    let closed = false;
    const closing = lb.close({ drainMs: 1_000 }).then(() => (closed = true));
    // Refused: never reached the pod, re-sent at once. The first attempt leaves the live calls just before its retry joins them.
    handles[0]!.fail(refused());
    await vi.advanceTimersByTimeAsync(0);
    expect(handles).toHaveLength(2);
    expect(closed).toBe(false);
    handles[1]!.succeed('retried');
    await closing;
    expect(ends).toEqual(['retried']);
  });

  it('sends the hedge of a call in flight during the drain', async () => {
    const lb = draining();
    const hedged: boolean[] = [];
    const call = lb.run(
      (_endpoint, context) => {
        hedged.push(context.hedged);
        return context.hedged ? Promise.resolve('hedge') : new Promise<never>(() => {});
      },
      { idempotent: true, hedge: { delayMs: 100 } },
    );
    const closing = lb.close({ drainMs: 1_000 });
    await vi.advanceTimersByTimeAsync(100);
    await expect(call).resolves.toBe('hedge');
    await closing;
    expect(hedged).toEqual([false, true]);
  });

  it('returns the same promise to every close(); an explicit shorter drainMs ends the drain sooner, close() without options joins', async () => {
    const lb = draining();
    const call = lb.run(() => new Promise<never>(() => {}));
    call.catch(() => {});
    let closed = false;
    const first = lb.close({ drainMs: 10_000 });
    void first.then(() => (closed = true));
    expect(lb.close()).toBe(first); // joins, as `await using` does
    expect(lb.close({ drainMs: 60_000 })).toBe(first); // never extends
    await vi.advanceTimersByTimeAsync(1_000);
    expect(closed).toBe(false);
    expect(lb.close({ drainMs: 500 })).toBe(first); // now ends at 1 500 ms
    await vi.advanceTimersByTimeAsync(499);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(closed).toBe(true);
    await expect(call).rejects.toBeInstanceOf(BalancerClosedError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends the drain at once on close({ drainMs: 0 })', async () => {
    const lb = draining();
    const call = lb.run(() => new Promise<never>(() => {}));
    call.catch(() => {});
    const first = lb.close({ drainMs: 10_000 });
    await lb.close({ drainMs: 0 });
    await first;
    await expect(call).rejects.toBeInstanceOf(BalancerClosedError);
    expect(lb.stats().state).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('closes at once, with no timer and no draining event, when no call is in flight', async () => {
    const lb = draining();
    const events: string[] = [];
    lb.on('draining', () => events.push('draining'));
    lb.on('close', () => events.push('close'));
    const closing = lb.close({ drainMs: 30_000 });
    expect(events).toEqual(['close']); // synchronously, as close() always did
    expect(vi.getTimerCount()).toBe(0);
    await closing;
    expect(lb.stats().state).toBe('closed');
  });

  it('ends calls still waiting for the first lookup at once: they sent nothing, and discovery stops', async () => {
    const neverAnswers = createBalancer({
      service: 'web.default.svc.cluster.local',
      port: 8080,
      dnsServers: ['127.0.0.1:9'],
      search: [],
      ndots: 1,
    });
    lb = neverAnswers;
    vi.useFakeTimers();
    const waiting = neverAnswers.run(async () => 1, { timeoutMs: 60_000 });
    waiting.catch(() => {});
    let stopped: number | undefined;
    neverAnswers.on('close', (event) => (stopped = event.stopped));
    await neverAnswers.close({ drainMs: 5_000 });
    await expect(waiting).rejects.toBeInstanceOf(BalancerClosedError);
    expect(stopped).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses a bad drainMs with InvalidOptionError naming it and the value, and stays open', async () => {
    const lb = balancer();
    for (const drainMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '1000', null]) {
      const error: unknown = await lb.close({ drainMs } as unknown as CloseOptions).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ field: 'drainMs', value: drainMs });
    }
    await expect(lb.close({ drain: 5 } as unknown as CloseOptions)).rejects.toMatchObject({ field: 'options.drain' });
    await expect(lb.close(null as unknown as CloseOptions)).rejects.toMatchObject({ field: 'options' });
    expect(lb.isClosed).toBe(false);
    await expect(lb.run(async () => 'still open')).resolves.toBe('still open');
    await lb.close({ drainMs: 2 ** 31 - 1 });
    expect(lb.stats().state).toBe('closed');
  });
});
