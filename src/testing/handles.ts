/**
 * Resolves once libuv has run the close callbacks of handles closed before the call. `close`
 * events fire before libuv frees the handle, so without this a caller that checks
 * `process.getActiveResourcesInfo()` right after `await x.close()` still sees them.
 */
export async function handlesReleased(): Promise<void> {
  // Close callbacks run after the check phase: two turns of setImmediate are past them.
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
}
