import { seededRandom } from '../../test/support/random.js';
export { seededRandom };
import type { Clock } from '../../src/clock.js';
import { Endpoint, InflightTotal } from '../../src/pool/endpoint.js';

export function podName(i: number): string {
  return `web-${i}.web-headless.default.svc.cluster.local`;
}

/** n endpoints named like StatefulSet pods, each with `weight(i)`, sharing an in-flight total as a balancer's do. */
export function pods(n: number, clock: Clock, weight: (i: number) => number = () => 1, first = 0): Endpoint[] {
  const metrics = { decayMs: 10_000, defaultRttMs: 30, inflightTotal: new InflightTotal() };
  return Array.from({ length: n }, (_, k) => {
    const i = first + k;
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    return new Endpoint(
      { id: podName(i), address, addresses: [address], port: 8080, family: 4, name: podName(i), weight: weight(i), priority: 0 },
      clock,
      metrics,
    );
  });
}

/** Endpoints with the given names as identities (fresh objects, as another client would build), sharing an in-flight total. */
export function named(names: readonly string[], clock: Clock): Endpoint[] {
  const metrics = { decayMs: 10_000, defaultRttMs: 30, inflightTotal: new InflightTotal() };
  return names.map((name, i) => {
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    return new Endpoint({ id: name, address, addresses: [address], port: 8080, family: 4, name, weight: 1, priority: 0 }, clock, metrics);
  });
}

/**
 * Zipf-distributed ranks in [0, count): P(rank k) ∝ 1/(k+1)^s, sampled by inverting the
 * cumulative distribution with a binary search.
 */
export function zipf(count: number, s: number, random: () => number): () => number {
  const cumulative = new Float64Array(count);
  let total = 0;
  for (let k = 0; k < count; k++) cumulative[k] = total += 1 / (k + 1) ** s;
  return () => {
    const u = random() * total;
    let lo = 0;
    let hi = count - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
