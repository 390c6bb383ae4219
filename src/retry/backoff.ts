import { timerDelay } from '../timer-delay.js';

/**
 * Full-jitter exponential backoff (the AWS architecture blog's "full jitter", as Envoy uses):
 * a uniform delay in [0, min(cap, base · 2^(retry-1))).
 */
export function fullJitterBackoff(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(retry - 1, 30)));
  // Clamped: an injected `random` outside [0, 1) must not make a delay that setTimeout mangles.
  return timerDelay(Math.min(ceiling, Math.floor(random() * ceiling)));
}
