/**
 * The longest delay Node's timers honour: 2^31−1 ms, about 24.8 days. A longer delay (or
 * Infinity) makes `setTimeout` fire after 1 ms, so every millisecond option is bounded by this
 * and every computed delay is clamped to it.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** A computed delay made safe for `setTimeout`: within 0 … MAX_TIMER_MS (NaN counts as 0). */
export function timerDelay(ms: number): number {
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms > 0 ? ms : 0;
}
