import type { Clock } from './clock.js';
import type { LiveCalls } from './retry/live-calls.js';

/**
 * A `close({ drainMs })` in progress: waits until the balancer's last live call has ended, or
 * until `drainMs` has passed, whichever comes first, then calls `done` once.
 */
export class Drain {
  private timer: NodeJS.Timeout | undefined;
  /** Clock time at which the drain ends whatever the calls do. */
  private endsAt: number;
  private over = false;

  constructor(
    private readonly calls: LiveCalls,
    drainMs: number,
    private readonly clock: Clock,
    private readonly done: () => void,
  ) {
    this.endsAt = clock() + drainMs;
    // Ref'd: the caller awaits close(), and a drain must end even if nothing else keeps the process up.
    this.timer = setTimeout(finish, drainMs, this);
    // Checked a microtask later: a dispatched call whose first attempt failed leaves the list just
    // before its retries join it again.
    calls.onEmpty = () => queueMicrotask(() => this.checkCalls());
  }

  /** Ends the drain `drainMs` from now if that is sooner than planned (at once for 0). */
  shorten(drainMs: number): void {
    if (this.over) return;
    const endsAt = this.clock() + drainMs;
    if (endsAt >= this.endsAt) return;
    this.endsAt = endsAt;
    clearTimeout(this.timer);
    if (drainMs === 0) this.finish();
    else this.timer = setTimeout(finish, drainMs, this);
  }

  finish(): void {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.timer);
    this.calls.onEmpty = undefined;
    this.done();
  }

  private checkCalls(): void {
    if (this.calls.empty) this.finish();
  }
}

function finish(drain: Drain): void {
  drain.finish();
}
