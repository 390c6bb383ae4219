/*
 * The phases of a protocol adapter's call and of its attempts, named once for the HTTP and the
 * gRPC adapter (both run their calls through `Balancer.dispatch()`).
 *
 * An attempt is Waiting from its start until its pod answers. An answer *commits* the call to the
 * attempt: the call is pinned to that pod, everything flows straight to the caller, and the
 * balancer is told `succeed`. An answer may instead be *held*, kept from the caller until it is
 * decided: an HTTP failure status is paused while the balancer decides about a retry (delivered
 * after all, or discarded), a unary gRPC response waits for its status. An attempt that fails
 * before it commits tells the balancer `fail`; the balancer retries it only while the call can
 * *replay* its request (`canReplay`: an HTTP body that is a value; the gRPC messages sent so far,
 * still kept). An attempt the call no longer wants (the caller cancelled, the deadline passed, a
 * hedged attempt committed, a held response went elsewhere) is dropped: what it says later is ignored.
 */

/** Where one attempt stands. */
export const enum AttemptPhase {
  /** Sent; no answer yet. */
  Waiting,
  /** The pod answered; the answer is kept from the caller until it is decided. */
  Held,
  /** The call is pinned to this attempt. */
  Committed,
  /** Failed before it committed; the balancer was told. */
  Failed,
  /** No longer wanted by its call: what it says is ignored. */
  Dropped,
}

/** Where a call stands. */
export const enum CallPhase {
  /** Attempts may run; none has committed. */
  Pending,
  /** One attempt committed: the response is the caller's. */
  Committed,
  /** The caller has its outcome. */
  Done,
}
