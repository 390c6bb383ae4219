import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DnsResolver, Resolution } from '../../../src/discovery/dns-resolver.js';
import { DnsDiscovery } from '../../../src/discovery/dns.js';
import { type LookupReport } from '../../../src/discovery/lookup-report.js';
import type { DiscoveryUpdate } from '../../../src/discovery/source.js';
import { ResolutionError } from '../../../src/errors.js';
import type { Target } from '../../../src/target.js';

const target: Target = {
  id: 'web-0',
  address: '127.0.0.11',
  addresses: ['127.0.0.11'],
  port: 80,
  family: 4,
  name: 'web-0',
  weight: 1,
  priority: 0,
};

/** A resolver that answers from a script, one entry per lookup (the last one repeats). */
function scriptedResolver(script: (Resolution | Error)[]): DnsResolver & { calls: number } {
  const resolver = {
    calls: 0,
    asked: [] as string[],
    async resolve(): Promise<Resolution> {
      const step = script[Math.min(resolver.calls, script.length - 1)]!;
      resolver.calls++;
      if (step instanceof Error) throw step;
      return step;
    },
  };
  return resolver as unknown as DnsResolver & { calls: number };
}

const records = (ttl: number): Resolution => ({ kind: 'targets', targets: [target], ttl, name: 'web', queries: 1 });
const nxdomain: Resolution = { kind: 'empty', rcode: 'NXDOMAIN', ttl: 5, queries: 1 };
const servfail = new ResolutionError('web', 'SERVFAIL', 'SERVFAIL from 127.0.0.1:53');

function start(resolver: DnsResolver, options: { random?: number; emptyGraceMs?: number } = {}) {
  const updates: DiscoveryUpdate[] = [];
  const discovery = new DnsDiscovery({
    service: 'web',
    resolver,
    refresh: { minMs: 1000, maxMs: 30_000, jitter: 0.1 },
    emptyGraceMs: options.emptyGraceMs ?? 0,
    clock: () => Date.now(),
    random: () => options.random ?? 0,
  });
  discovery.start((u) => updates.push(u));
  return { discovery, updates };
}

describe('DnsDiscovery', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('re-queries when the TTL runs out, clamped to the floor and ceiling', async () => {
    const resolver = scriptedResolver([records(5), records(0), records(3600), records(5)]);
    const { discovery, updates } = start(resolver);
    await vi.advanceTimersByTimeAsync(0);
    expect(resolver.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(4999);
    expect(resolver.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(resolver.calls).toBe(2); // TTL 5 s
    await vi.advanceTimersByTimeAsync(1000);
    expect(resolver.calls).toBe(3); // TTL 0 → the 1 s floor
    await vi.advanceTimersByTimeAsync(29_999);
    expect(resolver.calls).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(resolver.calls).toBe(4); // TTL 3600 → the 30 s ceiling
    expect(updates.every((u) => u.kind === 'targets')).toBe(true);
    discovery.close();
  });

  it('brings refreshes forward by the jitter, never later than the TTL', async () => {
    const resolver = scriptedResolver([records(10)]);
    const { discovery } = start(resolver, { random: 0.999 });
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(9000);
    expect(resolver.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(20);
    expect(resolver.calls).toBe(2);
    discovery.close();
  });

  it('backs off exponentially on failures and resets after a success', async () => {
    const resolver = scriptedResolver([servfail, servfail, servfail, records(5)]);
    const { discovery, updates } = start(resolver, { random: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(updates[0]).toMatchObject({ kind: 'error', retryInMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(updates[1]).toMatchObject({ kind: 'error', retryInMs: 2000 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(updates[2]).toMatchObject({ kind: 'error', retryInMs: 4000 });
    await vi.advanceTimersByTimeAsync(4000);
    expect(updates[3]?.kind).toBe('targets');
    discovery.close();
  });

  it('runs at most one lookup at a time; refresh() joins it', async () => {
    let release: (r: Resolution) => void = () => {};
    let calls = 0;
    const resolver = {
      resolve: () => {
        calls++;
        return new Promise<Resolution>((r) => (release = r));
      },
    } as unknown as DnsResolver;
    const { discovery } = start(resolver);
    const a = discovery.refresh();
    const b = discovery.refresh();
    expect(calls).toBe(1);
    release(records(5));
    await Promise.all([a, b]);
    expect(calls).toBe(1);
    discovery.close();
  });

  it('waits out the empty grace period before reporting an empty pool', async () => {
    const resolver = scriptedResolver([records(5), nxdomain, nxdomain, records(5)]);
    const { discovery, updates } = start(resolver, { emptyGraceMs: 3000 });
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(5000); // first NXDOMAIN: within grace, no update
    expect(updates.map((u) => u.kind)).toEqual(['targets']);
    await vi.advanceTimersByTimeAsync(3000); // grace over, still NXDOMAIN
    expect(updates.map((u) => u.kind)).toEqual(['targets', 'empty']);
    discovery.close();
  });

  it('looks up early on a hint, but not sooner than the floor after the last lookup', async () => {
    const resolver = scriptedResolver([records(30)]);
    const { discovery } = start(resolver);
    await vi.advanceTimersByTimeAsync(0);
    expect(resolver.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(400);
    discovery.hint();
    await vi.advanceTimersByTimeAsync(599);
    expect(resolver.calls).toBe(1); // the floor (1 s) has not passed
    await vi.advanceTimersByTimeAsync(1);
    expect(resolver.calls).toBe(2);
    await vi.advanceTimersByTimeAsync(5000);
    discovery.hint();
    await vi.advanceTimersByTimeAsync(0);
    expect(resolver.calls).toBe(3); // long after the floor: at once
    discovery.close();
  });

  it('follows up a removal at the floor, doubling, until the TTL interval', async () => {
    const two: Resolution = {
      kind: 'targets',
      targets: [target, { ...target, id: 'web-1', name: 'web-1' }],
      ttl: 10,
      name: 'web',
      queries: 1,
    };
    const one: Resolution = { ...two, targets: [target] };
    const resolver = scriptedResolver([two, one, one, one, one, one]);
    const { discovery } = start(resolver);
    await vi.advanceTimersByTimeAsync(0); // two pods
    await vi.advanceTimersByTimeAsync(10_000); // TTL: web-1 is gone
    expect(resolver.calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1000); // follow-up at the floor
    expect(resolver.calls).toBe(3);
    await vi.advanceTimersByTimeAsync(2000); // then twice that
    expect(resolver.calls).toBe(4);
    await vi.advanceTimersByTimeAsync(4000);
    expect(resolver.calls).toBe(5);
    await vi.advanceTimersByTimeAsync(8000); // 8 s: still under the 10 s TTL interval
    expect(resolver.calls).toBe(6);
    await vi.advanceTimersByTimeAsync(9999); // back to the TTL
    expect(resolver.calls).toBe(6);
    await vi.advanceTimersByTimeAsync(1);
    expect(resolver.calls).toBe(7);
    discovery.close();
  });

  it('passes on what a lookup set aside, holding it while the empty grace period sends no update', async () => {
    const answers: Resolution[] = [records(5), nxdomain, nxdomain];
    let call = 0;
    const resolver = {
      async resolve(_signal?: AbortSignal, report?: LookupReport): Promise<Resolution> {
        report!.skip({ type: 'A', name: 'evil.example', ttl: 5, data: `127.0.66.${call}` }, 'answer', 'foreign-owner');
        report!.drop();
        return answers[Math.min(call++, answers.length - 1)]!;
      },
    } as unknown as DnsResolver;
    const { discovery, updates } = start(resolver, { emptyGraceMs: 3000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(updates[0]).toMatchObject({ kind: 'targets', droppedMessages: 1, skipped: [{ data: '127.0.66.0', reason: 'foreign-owner' }] });
    await vi.advanceTimersByTimeAsync(5000); // NXDOMAIN within grace: no update yet
    expect(updates).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(3000); // grace over: the update carries both lookups' records
    expect(updates[1]).toMatchObject({ kind: 'empty', droppedMessages: 2 });
    expect(updates[1]!.skipped?.map((r) => r.data)).toEqual(['127.0.66.1', '127.0.66.2']);
    discovery.close();
  });

  it('stops looking up after close()', async () => {
    const resolver = scriptedResolver([records(1)]);
    const { discovery } = start(resolver);
    await vi.advanceTimersByTimeAsync(0);
    discovery.close();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(resolver.calls).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
