/** A call in progress that the balancer can end when it closes. */
export interface LiveCall {
  /** Links of the balancer's list of live calls (the list is intrusive: tracking allocates nothing). */
  prevLive: LiveCall | undefined;
  nextLive: LiveCall | undefined;
  /** Ends the call at once with `reason`: its promise rejects (or `failed` is called), its attempt's signal aborts, its timers stop. */
  stop(reason: unknown): void;
}

/**
 * The calls of a balancer that have not ended yet, so that `close()` can settle every one of them.
 * A doubly linked list through the calls themselves: adding and removing cost a few writes and no
 * allocation, on every call.
 */
export class LiveCalls {
  private head: LiveCall | undefined;
  /** Calls in the list. */
  size = 0;
  /** Called when the last call leaves the list (a drain waits for it). */
  onEmpty: (() => void) | undefined = undefined;

  add(call: LiveCall): void {
    this.size++;
    call.prevLive = undefined;
    call.nextLive = this.head;
    if (this.head !== undefined) this.head.prevLive = call;
    this.head = call;
  }

  /** Removes a call; a call not in the list is left alone. */
  delete(call: LiveCall): void {
    const { prevLive, nextLive } = call;
    if (prevLive === undefined) {
      if (this.head !== call) return;
      this.head = nextLive;
    } else {
      prevLive.nextLive = nextLive;
    }
    if (nextLive !== undefined) nextLive.prevLive = prevLive;
    call.prevLive = undefined;
    call.nextLive = undefined;
    if (--this.size === 0) this.onEmpty?.();
  }

  get empty(): boolean {
    return this.head === undefined;
  }

  /**
   * Stops every call, each with its own error from `reason()`. A call's callback that throws does
   * not keep the others from being stopped: the first such error is thrown at the end.
   */
  stopAll(reason: () => unknown): void {
    this.onEmpty = undefined;
    let thrown: { error: unknown } | undefined;
    for (let call = this.head; call !== undefined; call = this.head) {
      this.delete(call);
      try {
        call.stop(reason());
      } catch (error) {
        thrown ??= { error };
      }
    }
    if (thrown !== undefined) throw thrown.error;
  }
}
