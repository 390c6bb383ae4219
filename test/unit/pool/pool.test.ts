import { describe, expect, it } from 'vitest';
import { EndpointPool } from '../../../src/pool/pool.js';
import type { Target } from '../../../src/target.js';

const metrics = { decayMs: 10_000, defaultRttMs: 30 };
const target = (id: string, address: string, extra: Partial<Target> = {}): Target => ({
  id,
  address,
  addresses: [address],
  port: 8080,
  family: 4,
  name: id,
  weight: 1,
  priority: 0,
  ...extra,
});

describe('EndpointPool', () => {
  it('reports added endpoints once and nothing when nothing changed', () => {
    const pool = new EndpointPool(() => 0, metrics);
    const first = pool.update([target('web-0', '127.0.0.11'), target('web-1', '127.0.0.12')]);
    expect(first?.added.map((e) => e.id)).toEqual(['web-0', 'web-1']);
    expect(pool.update([target('web-0', '127.0.0.11'), target('web-1', '127.0.0.12')])).toBeUndefined();
  });

  it('ignores a reshuffle of the same records', () => {
    const pool = new EndpointPool(() => 0, metrics);
    pool.update([target('a', '127.0.0.11'), target('b', '127.0.0.12')]);
    expect(pool.update([target('b', '127.0.0.12'), target('a', '127.0.0.11')])).toBeUndefined();
    expect(pool.endpoints.map((e) => e.id)).toEqual(['a', 'b']);
  });

  it('keeps identity and statistics across refreshes and IP changes', () => {
    let now = 0;
    const pool = new EndpointPool(() => now, metrics);
    pool.update([target('web-0', '127.0.0.11')]);
    const endpoint = pool.endpoints[0]!;
    const started = endpoint.start();
    now = 12;
    endpoint.finish(started, 'success');
    const change = pool.update([target('web-0', '127.0.0.21')]);
    expect(change?.updated).toEqual([endpoint]);
    expect(change?.readdressed).toEqual([endpoint]);
    expect(change?.added).toEqual([]);
    expect(change?.removed).toEqual([]);
    expect(pool.endpoints[0]).toBe(endpoint);
    expect(endpoint.address).toBe('127.0.0.21');
    expect(endpoint.successes).toBe(1);
    expect(endpoint.lastLatencyMs).toBe(12);
  });

  it('reports removals and appends new endpoints after surviving ones', () => {
    const pool = new EndpointPool(() => 0, metrics);
    pool.update([target('a', '127.0.0.11'), target('b', '127.0.0.12')]);
    const change = pool.update([target('c', '127.0.0.13'), target('b', '127.0.0.12')]);
    expect(change?.removed.map((e) => e.id)).toEqual(['a']);
    expect(change?.added.map((e) => e.id)).toEqual(['c']);
    expect(pool.endpoints.map((e) => e.id)).toEqual(['b', 'c']);
    expect(pool.clear()?.removed.map((e) => e.id)).toEqual(['b', 'c']);
    expect(pool.size).toBe(0);
  });

  it('counts in-flight requests, failures and consecutive failures', () => {
    const pool = new EndpointPool(() => 0, metrics);
    pool.update([target('a', '127.0.0.11')]);
    const e = pool.endpoints[0]!;
    const s1 = e.start();
    const s2 = e.start();
    expect(e.inflight).toBe(2);
    e.finish(s1, 'failure');
    e.finish(s2, 'failure');
    expect(e.consecutiveFailures).toBe(2);
    const s3 = e.start();
    e.finish(s3, 'cancelled');
    expect(e.inflight).toBe(0);
    expect(e.failures).toBe(2);
  });
});

describe('EndpointPool weight changes', () => {
  it('reports a weight change as updated but not readdressed', () => {
    const pool = new EndpointPool(() => 0, metrics);
    pool.update([target('a', '127.0.0.11', { weight: 33 })]);
    const change = pool.update([target('a', '127.0.0.11', { weight: 25 })]);
    expect(change?.updated.map((e) => e.id)).toEqual(['a']);
    expect(change?.readdressed).toEqual([]);
    expect(pool.endpoints[0]!.weight).toBe(25);
  });
});
