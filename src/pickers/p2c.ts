import type { Endpoint } from '../pool/endpoint.js';
import { healthRank } from './health.js';

/** The load of an endpoint as a P2C picker sees it: lower is better. */
export type LoadCost = (endpoint: Endpoint) => number;

/** Which of two endpoints a P2C picker keeps; `a` is the first draw, so returning it breaks ties at random. */
export type Prefer = (a: Endpoint, b: Endpoint) => Endpoint;

/**
 * Random draws before P2C over untried endpoints gives up on rejection sampling and counts the
 * untried ones instead: with few tried endpoints a draw almost always lands on an untried one.
 */
const REJECTION_DRAWS = 4;

/**
 * Power of two choices (Mitzenmacher 2001; Finagle `P2CPick`, Linkerd `gen_pair`): draw two
 * *distinct* endpoints at random and keep the better one, comparing health first, then cost.
 * Distinct matters: with two endpoints, independent draws would return the worse one 25% of
 * the time (Envoy documents this for its N_CHOICES); distinct draws never do.
 *
 * Endpoints in `tried` are skipped; the pair is drawn among the untried ones. `prefer` keeps one
 * of the pair (`preferCheaper` for a cost). Allocation-free.
 */
export function pickOfTwo(
  endpoints: readonly Endpoint[],
  tried: ReadonlySet<Endpoint> | undefined,
  random: () => number,
  prefer: Prefer,
): Endpoint | undefined {
  const n = endpoints.length;
  if (n === 0) return undefined;
  if (tried === undefined || tried.size === 0) {
    if (n === 1) return endpoints[0];
    const a = Math.floor(random() * n);
    return prefer(endpoints[a]!, endpoints[secondIndex(a, n, random)]!);
  }
  return pickOfTwoUntried(endpoints, tried, random, prefer);
}

/** A uniformly random index in [0, n) other than `first` (n ≥ 2): draw from n − 1, skip `first`. */
export function secondIndex(first: number, n: number, random: () => number): number {
  const b = Math.floor(random() * (n - 1));
  return b >= first ? b + 1 : b;
}

function pickOfTwoUntried(
  endpoints: readonly Endpoint[],
  tried: ReadonlySet<Endpoint>,
  random: () => number,
  prefer: Prefer,
): Endpoint | undefined {
  const n = endpoints.length;
  // Rejection sampling first: cheap and allocation-free when most endpoints are untried.
  for (let draw = 0; draw < REJECTION_DRAWS && n >= 2; draw++) {
    const a = Math.floor(random() * n);
    const b = secondIndex(a, n, random);
    const first = endpoints[a]!;
    const second = endpoints[b]!;
    const firstOk = !tried.has(first);
    const secondOk = !tried.has(second);
    if (firstOk && secondOk) return prefer(first, second);
  }
  // Many tried: draw the pair's ranks among the untried ones and find them by counting.
  let untried = 0;
  for (let i = 0; i < n; i++) if (!tried.has(endpoints[i]!)) untried++;
  if (untried === 0) return undefined;
  const rankA = Math.floor(random() * untried);
  const first = nthUntried(endpoints, tried, rankA);
  if (untried === 1) return first;
  const second = nthUntried(endpoints, tried, secondIndex(rankA, untried, random));
  return prefer(first!, second!);
}

function nthUntried(endpoints: readonly Endpoint[], tried: ReadonlySet<Endpoint>, rank: number): Endpoint | undefined {
  let seen = 0;
  for (let i = 0; i < endpoints.length; i++) {
    const endpoint = endpoints[i]!;
    if (tried.has(endpoint)) continue;
    if (seen === rank) return endpoint;
    seen++;
  }
  return undefined;
}

/** Health first, then cost; on a tie the first (itself a random draw) wins. */
export function preferCheaper(a: Endpoint, b: Endpoint, cost: LoadCost): Endpoint {
  const healthA = healthRank(a);
  const healthB = healthRank(b);
  if (healthA !== healthB) return healthA < healthB ? a : b;
  return cost(b) < cost(a) ? b : a;
}
