import { timerDelay } from '../timer-delay.js';

/**
 * Full-jitter exponential backoff (the AWS architecture blog's "full jitter", as Envoy uses, and
 * gRFC A6's retry backoff): a uniform delay in [0, min(cap, base · multiplier^(retry-1))).
 */
export function fullJitterBackoff(retry: number, baseMs: number, maxMs: number, random: () => number, multiplier = 2): number {
  // The exponent is bounded so that the growth stays finite (0 · ∞ would be NaN); the cap applies long before.
  const growth = multiplier ** Math.max(0, Math.min(retry - 1, 100));
  const ceiling = Math.min(maxMs, baseMs * (Number.isFinite(growth) ? growth : Number.MAX_VALUE));
  // Clamped: an injected `random` outside [0, 1) must not make a delay that setTimeout mangles.
  return timerDelay(Math.min(ceiling, Math.floor(random() * ceiling)));
}
