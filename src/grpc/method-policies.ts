import type { RunOptions } from '../options.js';
import type { GrpcMethodPolicy } from './method-policy.js';
import { methodConfigFor, type MethodConfig, type ServiceConfig } from './service-config.js';

/** Method paths whose match is remembered: grpc-js keeps 100; arbitrary paths must not grow a map without bound. */
const MAX_REMEMBERED_METHODS = 1000;

/**
 * The policies of a channel with a service config: a method that an entry matches (gRFC A6:
 * exact, then service-wide, then the default entry) follows the fields that entry sets; what it
 * leaves unset, and methods no entry matches, follow the channel's shorthand options. One frozen
 * policy per entry (two when the entry leaves retries to the shorthands: idempotent or not).
 */
export class MethodPolicies {
  /** Each method's entry, null for none; bounded. */
  private readonly matches = new Map<string, MethodConfig | null>();
  /** Per entry: [not idempotent, idempotent] (the same policy twice when the entry has its own retries). */
  private readonly byEntry = new Map<MethodConfig, readonly [GrpcMethodPolicy, GrpcMethodPolicy]>();
  /** The last method asked about and its policies: a client mostly calls the same few methods. */
  private lastMethod: string | undefined;
  private lastPolicies: readonly [GrpcMethodPolicy, GrpcMethodPolicy] | undefined;
  /** Some entry sets a timeout: calls need their deadline computed. */
  readonly hasTimeouts: boolean;

  constructor(
    private readonly config: ServiceConfig,
    /** The shorthand options' policies, [not idempotent, idempotent]. */
    private readonly shorthands: readonly [GrpcMethodPolicy, GrpcMethodPolicy],
  ) {
    for (const entry of config.methodConfigs) this.byEntry.set(entry, policiesOf(entry, shorthands));
    this.hasTimeouts = config.methodConfigs.some((entry) => entry.timeoutMs !== undefined);
  }

  policyFor(method: string, idempotent: (method: string) => boolean): GrpcMethodPolicy {
    let policies = this.lastPolicies;
    if (method !== this.lastMethod || policies === undefined) {
      let entry = this.matches.get(method);
      if (entry === undefined) {
        entry = methodConfigFor(this.config, method) ?? null;
        if (this.matches.size < MAX_REMEMBERED_METHODS) this.matches.set(method, entry);
      }
      policies = entry === null ? this.shorthands : this.byEntry.get(entry)!;
      this.lastMethod = method;
      this.lastPolicies = policies;
    }
    // The shorthand's idempotence is asked per call, as without a service config (it may be a function).
    return policies[0] === policies[1] ? policies[0] : policies[idempotent(method) ? 1 : 0];
  }
}

/** The policies of one entry; a retry or hedging policy makes the method idempotent. */
function policiesOf(
  entry: MethodConfig,
  shorthands: readonly [GrpcMethodPolicy, GrpcMethodPolicy],
): readonly [GrpcMethodPolicy, GrpcMethodPolicy] {
  const timeouts = {
    ...(entry.timeoutMs === undefined ? {} : { timeoutMs: entry.timeoutMs }),
    ...(entry.waitForReady === undefined ? {} : { waitForReady: entry.waitForReady }),
  };
  const { attemptTimeoutMs } = shorthands[0].runOptions;
  const retry = entry.retryPolicy;
  if (retry !== undefined) {
    const runOptions: RunOptions = {
      idempotent: true,
      retries: retry.maxAttempts - 1,
      attemptTimeoutMs,
      backoff: Object.freeze({ initialMs: retry.initialBackoffMs, maxMs: retry.maxBackoffMs, multiplier: retry.backoffMultiplier }),
    };
    const policy = Object.freeze({
      runOptions: Object.freeze(runOptions),
      retryableCodes: retry.retryableCodes,
      pushback: true,
      ...timeouts,
    });
    return [policy, policy];
  }
  const hedging = entry.hedgingPolicy;
  if (hedging !== undefined) {
    // Hedged attempts (retry/hedging.ts), and no retries of its own: a non-fatal status then sends
    // the next hedge at once, a fatal one ends the call, up to maxAttempts in all (gRFC A6).
    const runOptions: RunOptions = {
      idempotent: true,
      retries: 0,
      attemptTimeoutMs,
      hedge: Object.freeze({ delayMs: hedging.hedgingDelayMs, maxAttempts: hedging.maxAttempts }),
    };
    const policy = Object.freeze({
      runOptions: Object.freeze(runOptions),
      retryableCodes: hedging.nonFatalCodes,
      pushback: true,
      ...timeouts,
    });
    return [policy, policy];
  }
  if (entry.timeoutMs === undefined && entry.waitForReady === undefined) return shorthands;
  return [Object.freeze({ ...shorthands[0], ...timeouts }), Object.freeze({ ...shorthands[1], ...timeouts })];
}
