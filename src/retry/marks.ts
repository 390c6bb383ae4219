/** Errors that were returned because the retry budget refused a retry. */
const budgetExhausted = new WeakSet<object>();

/** @internal */
export function markBudgetExhausted(error: unknown): void {
  if (typeof error === 'object' && error !== null) budgetExhausted.add(error);
}

/**
 * True when `run()` returned this error without retrying because the retry budget was spent
 * (the error itself is the original one, unchanged).
 */
export function isRetryBudgetExhausted(error: unknown): boolean {
  return typeof error === 'object' && error !== null && budgetExhausted.has(error);
}
