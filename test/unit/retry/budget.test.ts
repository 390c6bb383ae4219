import { describe, expect, it } from 'vitest';
import { Budget } from '../../../src/retry/budget.js';

describe('Budget', () => {
  it('allows minPerSecond × window with no traffic, then refuses', () => {
    let now = 0;
    const budget = new Budget({ percent: 0.2, minPerSecond: 10, windowMs: 10_000 }, () => now);
    let granted = 0;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(100);
    now += 5_000;
    expect(budget.tryWithdraw()).toBe(false); // still inside the window
    now += 6_000;
    expect(budget.tryWithdraw()).toBe(true); // the withdrawals left the window
  });

  it('adds percent of the calls in the window', () => {
    let now = 0;
    const budget = new Budget({ percent: 0.2, minPerSecond: 0, windowMs: 10_000 }, () => now);
    for (let i = 0; i < 1000; i++) budget.deposit();
    expect(budget.available()).toBe(200);
    let granted = 0;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(200);
    now = 20_000;
    expect(budget.available()).toBe(0);
  });

  it('keeps retries within 20% of calls + 10/s in any window (property)', () => {
    let now = 0;
    const budget = new Budget({ percent: 0.2, minPerSecond: 10, windowMs: 10_000 }, () => now);
    const events: { t: number; retry: boolean }[] = [];
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let step = 0; step < 50_000; step++) {
      now += rand() * 5;
      budget.deposit();
      events.push({ t: now, retry: false });
      // every call fails and asks for up to 3 retries
      for (let r = 0; r < 3 && budget.tryWithdraw(); r++) events.push({ t: now, retry: true });
    }
    // Check every 10 s window ending at a call.
    let start = 0;
    let calls = 0;
    let retries = 0;
    let worstExcess = Number.NEGATIVE_INFINITY;
    for (let end = 0; end < events.length; end++) {
      const e = events[end]!;
      if (e.retry) retries++;
      else calls++;
      while (events[start]!.t <= e.t - 10_000) {
        if (events[start]!.retry) retries--;
        else calls--;
        start++;
      }
      worstExcess = Math.max(worstExcess, retries - (0.2 * calls + 100));
    }
    // The window moves in whole 1 s buckets: allow one bucket's worth (≤ 0.2 × 400 calls + 10).
    expect(worstExcess).toBeLessThanOrEqual(90);
  });
});
