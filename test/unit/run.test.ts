import { afterEach, describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  DeadlineExceededError,
  NoEndpointsError,
  RetryableError,
  createBalancer,
  type Balancer,
  type Endpoint,
} from '../../src/index.js';
import { refused, reset, staticEndpoints } from './support.js';

let lb: Balancer;
afterEach(async () => {
  await lb?.close();
});

function staticBalancer(count = 3, retries = 2): Balancer {
  lb = createBalancer({
    endpoints: staticEndpoints(count),
    retry: { retries, backoffBaseMs: 1, backoffMaxMs: 2 },
  });
  return lb;
}

describe('run()', () => {
  it('records success, latency and in-flight on the endpoint', async () => {
    const lb = staticBalancer(1);
    let seenInflight = -1;
    const result = await lb.run(async (endpoint) => {
      seenInflight = endpoint.inflight;
      return endpoint.name;
    });
    expect(result).toBe('web-0');
    expect(seenInflight).toBe(1);
    const endpoint = lb.endpoints()[0]!;
    expect(endpoint.inflight).toBe(0);
    expect(endpoint.successes).toBe(1);
    expect(endpoint.hasLatency).toBe(true);
  });

  it('fails over to a different endpoint when the connection is refused, even when not idempotent', async () => {
    const lb = staticBalancer(3);
    const seen: string[] = [];
    const result = await lb.run(async (endpoint, { attempt }) => {
      seen.push(endpoint.id);
      if (attempt < 3) throw refused();
      return attempt;
    });
    expect(result).toBe(3);
    expect(new Set(seen).size).toBe(3);
  });

  it('never re-sends a non-idempotent request that may have reached the pod', async () => {
    const lb = staticBalancer(3);
    let calls = 0;
    await expect(
      lb.run(async () => {
        calls++;
        throw reset();
      }),
    ).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(calls).toBe(1);
    expect(lb.endpoints().reduce((n, e) => n + e.failures, 0)).toBe(1);
  });

  it('retries resets and RetryableErrors for idempotent calls, on other endpoints', async () => {
    const lb = staticBalancer(3);
    const seen = new Set<Endpoint>();
    const result = await lb.run(
      async (endpoint, { attempt }) => {
        seen.add(endpoint);
        if (attempt === 1) throw reset();
        if (attempt === 2) throw new RetryableError('503');
        return 'ok';
      },
      { idempotent: true },
    );
    expect(result).toBe('ok');
    expect(seen.size).toBe(3);
  });

  it('does not retry application errors', async () => {
    const lb = staticBalancer(3);
    let calls = 0;
    await expect(
      lb.run(
        async () => {
          calls++;
          throw new Error('404');
        },
        { idempotent: true },
      ),
    ).rejects.toThrow('404');
    expect(calls).toBe(1);
  });

  it("backs off per the call's backoff options (full jitter, the multiplier applied), and checks them", async () => {
    lb = createBalancer({ endpoints: staticEndpoints(2), random: () => 0.999 });
    const starts: number[] = [];
    await expect(
      lb.run(
        async () => {
          starts.push(performance.now());
          throw reset();
        },
        { idempotent: true, retries: 2, backoff: { initialMs: 40, maxMs: 1000, multiplier: 3 } },
      ),
    ).rejects.toMatchObject({ code: 'ECONNRESET' });
    // Ceilings 40 and 120 ms, random near 1: waits of ~40 and ~120 ms.
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(38);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(115);
    // An initialMs above the balancer's cap (250 ms) and no maxMs: the cap rises to it.
    starts.length = 0;
    await expect(
      lb.run(
        async () => {
          starts.push(performance.now());
          throw reset();
        },
        { idempotent: true, retries: 1, backoff: { initialMs: 400 } },
      ),
    ).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(390);
    for (const [backoff, field] of [
      [{ multiplier: 0 }, 'backoff.multiplier'],
      [{ multiplier: Number.NaN }, 'backoff.multiplier'],
      [{ multiplier: 1001 }, 'backoff.multiplier'],
      [{ initialMs: 2 ** 31 }, 'backoff.initialMs'],
      [{ maxMs: -1 }, 'backoff.maxMs'],
      [{ jitter: 1 }, 'backoff.jitter'],
      ['fast', 'backoff'],
    ] as const) {
      await expect(lb.run(async () => 1, { backoff: backoff as never })).rejects.toMatchObject({ code: 'ERR_HLB_INVALID_OPTION', field });
    }
  });

  it('stops at the retry limit with the last error', async () => {
    const lb = staticBalancer(2, 3);
    let calls = 0;
    await expect(
      lb.run(async () => {
        calls++;
        throw refused();
      }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // 1 attempt + one free re-send per endpoint (2: refused connections) + the 3 retries.
    expect(calls).toBe(6);
  });

  it('gives each attempt its own signal and times out a hung attempt', async () => {
    const lb = staticBalancer(2);
    const signals: AbortSignal[] = [];
    const result = await lb.run(
      (_endpoint, { signal, attempt }) => {
        signals.push(signal);
        if (attempt === 1) return new Promise<string>(() => {}); // hangs, ignores its signal
        return Promise.resolve('second');
      },
      { idempotent: true, attemptTimeoutMs: 20 },
    );
    expect(result).toBe('second');
    expect(signals[0]!.aborted).toBe(true);
    expect(signals[0]!.reason).toBeInstanceOf(AttemptTimeoutError);
    expect(signals[1]).not.toBe(signals[0]);
  });

  it('enforces the deadline across attempts even if the callback ignores its signal', async () => {
    const lb = staticBalancer(2);
    let attemptSignal: AbortSignal | undefined;
    const started = Date.now();
    await expect(
      lb.run(
        (_e, { signal }) => {
          attemptSignal = signal;
          return new Promise(() => {});
        },
        { timeoutMs: 30 },
      ),
    ).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(attemptSignal?.aborted).toBe(true);
  });

  it('stops at once on abort and does not retry aborted work', async () => {
    const lb = staticBalancer(3);
    const controller = new AbortController();
    let calls = 0;
    const pending = lb.run(
      (_e, { signal }) => {
        calls++;
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(reset())));
      },
      { idempotent: true, signal: controller.signal },
    );
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toBe(1);
    // Cancelled work is neither a success nor a failure of the endpoint.
    expect(lb.endpoints().reduce((n, e) => n + e.failures + e.inflight, 0)).toBe(0);
  });

  it('rejects an already aborted call without calling back', async () => {
    const lb = staticBalancer(1);
    let calls = 0;
    await expect(lb.run(async () => calls++, { signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow('early');
    expect(calls).toBe(0);
  });

  it('fails fast with NoEndpointsError on an empty pool', async () => {
    lb = createBalancer({ endpoints: [] });
    await expect(lb.run(async () => 1)).rejects.toBeInstanceOf(NoEndpointsError);
    expect(() => lb.pick()).toThrow(NoEndpointsError);
  });

  it('retries on the only endpoint when it is all there is', async () => {
    const lb = staticBalancer(1);
    const result = await lb.run(async (_e, { attempt }) => {
      if (attempt === 1) throw refused();
      return attempt;
    });
    expect(result).toBe(2);
  });
});

describe('run() signals', () => {
  it('gives every attempt a signal of its own, even when nothing can abort the call', async () => {
    const lb = staticBalancer(1);
    const signals = new Set<AbortSignal>();
    for (let i = 0; i < 20; i++) {
      await lb.run(async (_endpoint, { signal }) => {
        signal.addEventListener('abort', () => {}); // a listener the callback never removes
        signals.add(signal);
      });
    }
    expect(signals.size).toBe(20);
    expect([...signals].every((s) => !s.aborted)).toBe(true);
  });
});
