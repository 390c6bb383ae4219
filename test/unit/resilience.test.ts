import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../support/random.js';
import { createBalancer, isRetryBudgetExhausted, type Balancer, type BalancerOptions, type Picker } from '../../src/index.js';
import { refused, reset, staticEndpoints } from './support.js';

let lb: Balancer | undefined;
afterEach(async () => {
  await lb?.close();
  lb = undefined;
});

function balancer(count: number, options: Partial<BalancerOptions> = {}): Balancer {
  lb = createBalancer({
    endpoints: staticEndpoints(count),
    retry: { retries: 2, backoffBaseMs: 1, backoffMaxMs: 2 },
    random: seededRandom(42),
    ...options,
  } as BalancerOptions);
  return lb;
}

describe('outlier ejection in the balancer', () => {
  it('stops sending to an ejected endpoint and emits eject', async () => {
    const lb = balancer(4);
    const ejected: string[] = [];
    lb.on('eject', ({ endpoint }) => ejected.push(endpoint.id));
    const seen = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      await lb.run(async (endpoint) => {
        seen.set(endpoint.id, (seen.get(endpoint.id) ?? 0) + 1);
        if (endpoint.id === 'web-2') throw refused();
        return 'ok';
      });
    }
    expect(ejected).toEqual(['web-2']);
    expect(seen.get('web-2')).toBe(1);
    expect(lb.stats().healthy).toBe(3);
  });
});

describe('panic mode', () => {
  it('spreads over all endpoints when fewer than half are healthy, and says so', async () => {
    const lb = balancer(4, { outlierDetection: { maxEjectedPercent: 50 } });
    const panics: boolean[] = [];
    lb.on('panic', ({ active }) => panics.push(active));
    const failing = new Set(['web-0', 'web-1', 'web-2']);
    const seen = new Set<string>();
    let failed = 0;
    for (let i = 0; i < 300; i++) {
      try {
        await lb.run(
          async (endpoint) => {
            seen.add(endpoint.id);
            if (failing.has(endpoint.id)) throw reset();
            return 'ok';
          },
          { idempotent: true },
        );
      } catch {
        failed++;
      }
    }
    expect(panics).toEqual([true]);
    expect(lb.stats().panic).toBe(true);
    // In panic all four keep getting traffic; retries find the healthy one.
    expect(seen.size).toBe(4);
    expect(failed).toBeLessThan(300);
  });

  it('is off with panicThreshold 0', async () => {
    const lb = balancer(2, { panicThreshold: 0 });
    await lb.run(async (e) => {
      if (e.id === 'web-0') throw refused();
      return 1;
    });
    expect(lb.stats().panic).toBe(false);
  });
});

describe('retry budget', () => {
  it('stops retrying when the budget is spent and marks the original error', async () => {
    const lb = balancer(3, {
      retryBudget: { percent: 0, minPerSecond: 1, windowMs: 10_000 }, // 10 retries in the window
      outlierDetection: false,
    });
    let attempts = 0;
    let exhausted = 0;
    const errors: unknown[] = [];
    lb.on('budget-exhausted', () => exhausted++);
    for (let i = 0; i < 20; i++) {
      await lb
        .run(
          async () => {
            attempts++;
            throw reset();
          },
          { idempotent: true },
        )
        .catch((e: unknown) => errors.push(e));
    }
    expect(attempts).toBe(20 + 10);
    expect(exhausted).toBeGreaterThan(0);
    expect(errors.every((e) => (e as { code?: string }).code === 'ECONNRESET')).toBe(true);
    expect(errors.filter(isRetryBudgetExhausted).length).toBe(exhausted);
    expect(lb.stats().retries).toBe(10);
  });
});

describe('hedging', () => {
  it('sends a second attempt after the delay, takes the first success and aborts the loser', async () => {
    const lb = balancer(2, { hedgeBudget: { percent: 1, minPerSecond: 10 } });
    const aborted: string[] = [];
    const result = await lb.run(
      (endpoint, { signal, hedged }) =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => resolve(`${hedged ? 'hedge' : 'primary'}`), hedged ? 5 : 200);
          signal.addEventListener('abort', () => {
            aborted.push(endpoint.id);
            clearTimeout(timer);
            reject(signal.reason);
          });
        }),
      { idempotent: true, hedge: { delayMs: 10 } },
    );
    expect(result).toBe('hedge');
    expect(aborted).toHaveLength(1);
    expect(lb.stats().hedges).toBe(1);
    await new Promise((r) => setTimeout(r, 5));
    // The loser was cancelled: neither a failure nor still in flight.
    expect(lb.endpoints().every((e) => e.inflight === 0 && e.failures === 0)).toBe(true);
  });

  it('sends no hedge when every pod was tried: not to the pod that just failed this call', async () => {
    // Always the first pod not tried yet: after a new round it would be the pod that failed attempt 1.
    const firstUntried: Picker = { name: 'first-untried', pick: (endpoints, request) => endpoints.find((e) => !request.tried?.has(e)) };
    const lb = balancer(2, {
      picker: firstUntried,
      hedgeBudget: { percent: 1, minPerSecond: 10 },
      retry: { retries: 2, backoffBaseMs: 1, backoffMaxMs: 1 },
    });
    const sent: { endpoint: string; attempt: number; hedged: boolean }[] = [];
    const result = await lb.run(
      (endpoint, { attempt, hedged }) => {
        sent.push({ endpoint: endpoint.id, attempt, hedged });
        if (attempt === 1) return Promise.reject(reset());
        return new Promise<string>((resolve) => setTimeout(() => resolve('slow retry'), 40)); // slower than the hedge delay
      },
      { idempotent: true, hedge: { delayMs: 5 } },
    );
    expect(result).toBe('slow retry');
    // The retry went to the other pod; with both tried, its hedge would have gone back to the first.
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ attempt: 2, hedged: false });
    expect(sent[1]!.endpoint).not.toBe(sent[0]!.endpoint);
    expect(lb.stats().hedges).toBe(0);
  });

  it('does not hedge a fast call, and refuses to hedge a non-idempotent one', async () => {
    const lb = balancer(2);
    await lb.run(async () => 'fast', { idempotent: true, hedge: { delayMs: 50 } });
    expect(lb.stats().hedges).toBe(0);
    await expect(lb.run(async () => 1, { hedge: { delayMs: 5 } })).rejects.toMatchObject({ field: 'hedge' });
  });

  it('hedges at a latency percentile of the balancer', async () => {
    let now = 0;
    const lb = balancer(2, { clock: () => now, hedgeBudget: { percent: 1, minPerSecond: 10 } });
    for (let i = 0; i < 100; i++) {
      await lb.run(async () => {
        now += i < 90 ? 2 : 40; // p90 ≈ 2 ms, p95 ≈ 40 ms
      });
    }
    let hedged = false;
    await lb.run(
      (_e, context) =>
        new Promise<void>((resolve) => {
          if (context.hedged) hedged = true;
          setTimeout(resolve, context.hedged ? 1 : 30).unref();
        }),
      { idempotent: true, hedge: { percentile: 0.5 } },
    );
    expect(hedged).toBe(true);
  });
});

describe('slow start', () => {
  it("ramps a new endpoint's share along (t / window), within ±10% of the curve", async () => {
    let now = 0;
    const lb = balancer(3, { clock: () => now, slowStart: { windowMs: 10_000, minWeight: 0.05 } });
    await lb.ready();
    // Endpoints of the first lookup start warm; make one look as if it had just joined.
    const newcomer = lb.endpoints()[2]!;
    newcomer.health.availableSince = 0;
    for (const endpoint of lb.endpoints()) if (endpoint !== newcomer) endpoint.health.availableSince = Number.NEGATIVE_INFINITY;
    for (const t of [2_500, 5_000, 7_500]) {
      now = t;
      let picks = 0;
      const n = 30_000;
      for (let i = 0; i < n; i++) if (lb.pick() === newcomer) picks++;
      const weight = t / 10_000;
      const expected = weight / (2 + weight); // its weight against two warm endpoints
      expect(Math.abs(picks / n - expected) / expected).toBeLessThan(0.1);
    }
  });
});
