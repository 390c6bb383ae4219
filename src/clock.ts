/** Milliseconds from a monotonic origin. Injected so that time-based logic is testable. */
export type Clock = () => number;

export const monotonicClock: Clock = () => performance.now();
