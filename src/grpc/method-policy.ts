import type { RunOptions } from '../options.js';

/**
 * What the channel does with the calls of one method: made from the channel's shorthand options
 * (`idempotent`, `retryableCodes`, `retries`, `attemptTimeoutMs`), or from the method's entry of a
 * service config. Shared by every call of the method.
 */
export interface GrpcMethodPolicy {
  /** The balancer options of a call without a shard key (frozen; a keyed call copies them). */
  readonly runOptions: Readonly<RunOptions>;
  /** Status codes after which the method's call may be sent again to another pod. */
  readonly retryableCodes: ReadonlySet<number>;
  /** The service config's `timeout`: the call's deadline is at most this far away, ms. */
  readonly timeoutMs?: number;
  /** The method has a service config's retry or hedging policy: a pod's `grpc-retry-pushback-ms` is honoured (pushback.ts). */
  readonly pushback?: boolean;
  /** The service config's `waitForReady`: with no pod reachable, wait for one (until the deadline) rather than fail. */
  readonly waitForReady?: boolean;
}
