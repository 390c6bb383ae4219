import type { BalancerConfig } from './config.js';
import { InvalidOptionError } from './errors.js';
import { checkBoolean, checkKnownKeys, checkMilliseconds, checkNumber, checkObject, checkSignal } from './option-checks.js';
import { checkBackoff, checkHedge, DEFAULTS, MAX_RETRIES, type RunOptions } from './options.js';
import type { FailoverPlan } from './retry/failover-host.js';
import type { LatencyHistogram } from './retry/latency-histogram.js';
import { MAX_TIMER_MS } from './timer-delay.js';

const RUN_KEYS = ['key', 'signal', 'idempotent', 'timeoutMs', 'attemptTimeoutMs', 'retries', 'hedge', 'backoff'] as const;
const RUN_KEY_SET: ReadonlySet<string> = new Set(RUN_KEYS);
const MIN_HEDGE_DELAY_MS = 1;
/** A hedge of today's kind: the first attempt and one more. */
const DEFAULT_HEDGE_ATTEMPTS = 2;

/**
 * Turns the options of `run()` and `dispatch()` into a call's plan: checked (each error names
 * the field and the value), with the balancer's defaults applied and a percentile hedge's delay
 * read from the recent latencies.
 */
export class RunPlanner {
  private readonly frozenPlans = new WeakMap<RunOptions, FailoverPlan>();

  constructor(
    /** The balancer's retry settings, which a call's options override. */
    private readonly defaults: BalancerConfig['retry'],
    private readonly latencies: LatencyHistogram,
  ) {}

  plan(options: RunOptions): FailoverPlan {
    // Frozen options cannot change: their plan is made once (the adapters pass the same few objects
    // on every call; a plan per call was 100 bytes of garbage that lived as long as the call).
    const frozen = Object.isFrozen(options) && (options.backoff === undefined || Object.isFrozen(options.backoff));
    if (frozen) {
      const cached = this.frozenPlans.get(options);
      if (cached !== undefined) return cached;
    }
    const plan = this.newPlan(options);
    // A percentile hedge's delay follows the latencies: planned per call.
    if (frozen && (options.hedge === undefined || (Object.isFrozen(options.hedge) && options.hedge.percentile === undefined)))
      this.frozenPlans.set(options, plan);
    return plan;
  }

  private newPlan(options: RunOptions): FailoverPlan {
    const input = checkObject(options, 'options');
    // `for in` allocates nothing, unlike Object.keys: checkKnownKeys only when a key is unknown.
    for (const name in input) if (!RUN_KEY_SET.has(name)) checkKnownKeys(input, RUN_KEYS, 'options');
    const defaults = this.defaults;
    const idempotent = input.idempotent === undefined ? false : checkBoolean(input.idempotent, 'idempotent');
    const key = input.key === undefined ? undefined : checkString(input.key, 'key');
    const signal = input.signal === undefined ? undefined : checkSignal(input.signal, 'signal');
    const timeoutMs = input.timeoutMs === undefined ? undefined : checkMilliseconds(input.timeoutMs, 'timeoutMs');
    const attemptTimeoutMs =
      input.attemptTimeoutMs === undefined ? undefined : checkMilliseconds(input.attemptTimeoutMs, 'attemptTimeoutMs');
    const retries =
      input.retries === undefined ? defaults.retries : checkNumber(input.retries, 'retries', { min: 0, max: MAX_RETRIES, integer: true });
    const backoff = this.backoff(input.backoff);
    const hedge = input.hedge === undefined ? undefined : this.hedgePlan(input.hedge, idempotent);
    return {
      key,
      signal,
      idempotent,
      timeoutMs,
      attemptTimeoutMs,
      retries,
      backoffBaseMs: backoff.backoffBaseMs,
      backoffMaxMs: backoff.backoffMaxMs,
      backoffMultiplier: backoff.backoffMultiplier,
      hedgeDelayMs: hedge === undefined ? undefined : hedge.hedgeDelayMs,
      hedgeMaxAttempts: hedge === undefined ? DEFAULT_HEDGE_ATTEMPTS : hedge.hedgeMaxAttempts,
    };
  }

  private backoff(value: unknown): Pick<FailoverPlan, 'backoffBaseMs' | 'backoffMaxMs' | 'backoffMultiplier'> {
    const defaults = this.defaults;
    if (value === undefined)
      return { backoffBaseMs: defaults.backoffBaseMs, backoffMaxMs: defaults.backoffMaxMs, backoffMultiplier: DEFAULTS.backoffMultiplier };
    const backoff = checkBackoff(value);
    return {
      backoffBaseMs: backoff.initialMs ?? defaults.backoffBaseMs,
      // An initial backoff above the default cap is what the caller asked for: the cap follows it.
      backoffMaxMs: backoff.maxMs ?? Math.max(defaults.backoffMaxMs, backoff.initialMs ?? 0),
      backoffMultiplier: backoff.multiplier ?? DEFAULTS.backoffMultiplier,
    };
  }

  private hedgePlan(value: unknown, idempotent: boolean): Pick<FailoverPlan, 'hedgeDelayMs' | 'hedgeMaxAttempts'> {
    const hedge = checkHedge(value);
    if (!idempotent)
      throw new InvalidOptionError('hedge', value, 'to be used with idempotent: true only (a hedge sends the request twice)');
    const hedgeMaxAttempts = hedge.maxAttempts ?? DEFAULT_HEDGE_ATTEMPTS;
    if (hedge.percentile === undefined) return { hedgeDelayMs: hedge.delayMs, hedgeMaxAttempts };
    const observed = this.latencies.percentile(hedge.percentile);
    const hedgeDelayMs = observed === undefined ? hedge.delayMs : Math.min(MAX_TIMER_MS, Math.max(MIN_HEDGE_DELAY_MS, observed));
    return { hedgeDelayMs, hedgeMaxAttempts };
  }
}

/** The plan of a call that waited `waitedMs` for the first lookup: the deadline covers the wait too. */
export function afterWaiting(plan: FailoverPlan, waitedMs: number): FailoverPlan {
  if (plan.timeoutMs === undefined) return plan;
  return { ...plan, timeoutMs: Math.max(0, plan.timeoutMs - waitedMs) };
}

function checkString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InvalidOptionError(field, value, 'a string');
  return value;
}
