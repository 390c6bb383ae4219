import type { Balancer } from '../balancer.js';
import { NoEndpointsError, NotSentError } from '../errors.js';
import type { PoolChange } from '../pool/pool.js';

/**
 * How often a waiting call tries again when the pool has not changed: a pod that refused
 * connections may come back at the same address (a container restart keeps the pod's IP).
 */
const RETRY_MS = 250;

/**
 * Whether a call ended with this error found no pod reachable: the pool was empty, or every pod it
 * tried refused the connection (the call never reached one). grpc-js's wait-for-ready calls wait
 * in that state (no READY subchannel) instead of failing with UNAVAILABLE.
 */
export function noPodReachable(error: unknown): boolean {
  return error instanceof NoEndpointsError || error instanceof NotSentError;
}

/**
 * A call of a `waitForReady` method that found no pod: it tries again when the pool changes (a pod
 * added), when the balancer closes (to fail at once), or every 250 ms with pods in the pool. The
 * call's deadline ends the wait (the call cancels it). The timer is ref'd: the caller waits on it.
 */
export class ReadyWait {
  private timer: NodeJS.Timeout | undefined;
  private readonly onChange = (change: PoolChange): void => {
    if (change.endpoints.length > 0) this.wake();
  };
  private readonly onClose = (): void => this.wake();

  constructor(
    private readonly lb: Pick<Balancer, 'on' | 'off' | 'endpoints'>,
    private readonly retry: () => void,
  ) {
    lb.on('change', this.onChange);
    lb.on('close', this.onClose);
    this.arm();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.lb.off('change', this.onChange);
    this.lb.off('close', this.onClose);
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      if (this.lb.endpoints().length > 0) this.wake();
      else this.arm();
    }, RETRY_MS);
  }

  private wake(): void {
    this.cancel();
    this.retry();
  }
}
