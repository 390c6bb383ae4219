import type { Clock } from './clock.js';
import type { AddressFamily } from './discovery/dns-resolver.js';
import { InvalidOptionError } from './errors.js';
import { checkKnownKeys, checkMilliseconds, checkNumber, checkObject } from './option-checks.js';
import type { PickerSpec } from './pickers/index.js';
import type { SubsetOptions } from './pickers/subset.js';

export type { SubsetOptions } from './pickers/subset.js';

/** An endpoint of a static list. */
export interface StaticEndpoint {
  readonly address: string;
  readonly port: number;
  /** Stable name (e.g. the pod name): the identity, and what shard keys hash on. */
  readonly name?: string;
  /** Relative weight for weighted pickers; default 1. */
  readonly weight?: number;
}

export interface RefreshOptions {
  /** Floor of the refresh interval (and first failure backoff), ms. Default 1000. */
  readonly minMs?: number;
  /** Ceiling of the refresh interval (and of the failure backoff), ms. Default 30000. */
  readonly maxMs?: number;
  /** Up to this fraction of the interval a refresh is brought forward at random. Default 0.1. */
  readonly jitter?: number;
}

export interface LatencyOptions {
  /** Time constant of the peak-EWMA decay, and of both estimates' decay while an endpoint gets no traffic, ms. Default 10000. */
  readonly decayMs?: number;
  /** Latency reported (`endpoint.latencyMs`) before an endpoint's first response, ms; least-latency probes such an endpoint instead. Default 30. */
  readonly defaultRttMs?: number;
  /** Averaging time of the mean latency estimate (`least-latency` with `estimator: 'mean'`), and the silence after which least-latency re-probes an endpoint, ms. Default 1000. */
  readonly averageMs?: number;
}

/** Defaults for every `run()` of the balancer; each call can override them. */
export interface RetryDefaults {
  /** Retries after the first attempt. Default 2. */
  readonly retries?: number;
  /** First backoff ceiling for retries of requests that may have been sent, ms. Default 25. */
  readonly backoffBaseMs?: number;
  /** Backoff cap, ms. Default 250. */
  readonly backoffMaxMs?: number;
}

/** Passive health checking (outlier ejection); `false` turns it off. */
export interface OutlierDetectionOptions {
  /** Consecutive failures that eject an endpoint. Default 5. */
  readonly consecutiveFailures?: number;
  /** Failure share over `windowMs` that ejects an endpoint (1 = off). Default 0.5. */
  readonly failureRate?: number;
  /** Requests in the window before the failure rate counts. Default 20. */
  readonly minRequests?: number;
  /** Window of the failure rate, ms. Default 10000. */
  readonly windowMs?: number;
  /** A refused connection (the pod is not listening) ejects at once. Default true. */
  readonly ejectOnConnectFailure?: boolean;
  /** First ejection, ms; the n-th lasts n × this. Default 30000. */
  readonly baseEjectionMs?: number;
  /** Longest ejection, ms. Default 300000. */
  readonly maxEjectionMs?: number;
  /** Most of the pool ejected at once, percent (at least one endpoint). Default 50. */
  readonly maxEjectedPercent?: number;
  /** Ejection lengths vary by ± this share. Default 0.1. */
  readonly jitter?: number;
}

/** Ramp a new or returning endpoint's share of traffic up over a window (Envoy's slow start). Requests with a key are exempt. */
export interface SlowStartOptions {
  /** Length of the ramp, ms; 0 turns slow start off. Default 0 (off). */
  readonly windowMs?: number;
  /** Shape: share = (t / window)^(1 / aggression). Default 1 (linear). */
  readonly aggression?: number;
  /** Smallest share during the ramp. Default 0.1. */
  readonly minWeight?: number;
}

/** A budget of extra attempts: `percent` of calls plus `minPerSecond`, over a sliding window. */
export interface BudgetOptions {
  readonly percent?: number;
  readonly minPerSecond?: number;
  readonly windowMs?: number;
}

/** The backoff of one call's retries (full jitter): uniform in [0, min(maxMs, initialMs · multiplier^(n−1))) before the n-th. */
export interface BackoffOptions {
  /** Ceiling of the first retry's delay, ms. Default: the balancer's `retry.backoffBaseMs` (25). */
  readonly initialMs?: number;
  /** Cap of the ceiling, ms. Default: the balancer's `retry.backoffMaxMs` (250), or `initialMs` when that is larger. */
  readonly maxMs?: number;
  /** Growth of the ceiling per retry, > 0 (up to 1000). Default 2. */
  readonly multiplier?: number;
}

/** Hedging of one idempotent call: more attempts on other endpoints while the first is slow. */
export interface HedgeOptions {
  /** Send a hedge after this long, ms, and the next one this long after it (also the fallback for `percentile` before any sample). */
  readonly delayMs?: number;
  /** Send hedges at this latency quantile of the balancer's recent attempts (e.g. 0.95). */
  readonly percentile?: number;
  /** Attempts at most at once, the first one included: 2 to 5 (grpc's cap). Default 2 (one hedge). */
  readonly maxAttempts?: number;
}

/** The most attempts a hedged call makes at once (grpc caps `hedgingPolicy.maxAttempts` at 5 too). */
export const MAX_HEDGE_ATTEMPTS = 5;

interface CommonOptions {
  /** Picker by name or your own. Default 'round-robin'. */
  readonly picker?: PickerSpec;
  readonly latency?: LatencyOptions;
  readonly retry?: RetryDefaults;
  /** Passive health checking. Default on (Envoy's defaults); false turns it off. */
  readonly outlierDetection?: OutlierDetectionOptions | false;
  /** Below this share of healthy endpoints, pick over all of them (panic mode). 0 turns it off. Default 0.5. */
  readonly panicThreshold?: number;
  readonly slowStart?: SlowStartOptions;
  /**
   * Deterministic subsetting: requests without a key go to `size` pods chosen from the pool and
   * `clientId` (default: the `HOSTNAME` environment variable, which Kubernetes sets to the pod
   * name, else a random id per process), instead of every pod. Requests with a key keep the whole
   * pool. Off by default. See docs/scaling.md.
   */
  readonly subset?: SubsetOptions;
  /** Retries of all calls: 20% of calls + 10/s over 10 s by default; false for no limit. */
  readonly retryBudget?: BudgetOptions | false;
  /** Hedged attempts of all calls: 5% of calls + 1/s over 10 s by default. */
  readonly hedgeBudget?: BudgetOptions;
  /**
   * Whether an error thrown by an attempt counts against the endpoint's health. Default: transport
   * errors, timeouts, RetryableError and NotSentError do; other (application) errors do not.
   */
  readonly isFailure?: (error: unknown) => boolean;
  /**
   * The only networks endpoints may be in, as CIDRs (IPv4 and IPv6): `['10.244.0.0/16', 'fd00::/8']`,
   * typically the cluster's pod CIDRs. DNS records outside them are skipped and reported; a static
   * `endpoints` entry outside them is an InvalidOptionError. Default: any address except
   * unspecified, multicast, broadcast and link-local ones (those are never taken from DNS).
   */
  readonly allowedAddresses?: readonly string[];
  /** Milliseconds from a monotonic origin; for tests. Default performance.now. */
  readonly clock?: Clock;
  /** Uniform random in [0, 1); for tests. Default Math.random. */
  readonly random?: () => number;
}

interface DnsOptions extends CommonOptions {
  /** Name of the headless Service: a FQDN, or a short name expanded with the search list. */
  readonly service: string;
  /** DNS servers as 'ip' or 'ip:port'. Default: the system resolvers (/etc/resolv.conf). */
  readonly dnsServers?: readonly string[];
  /** Timeout of one DNS message, ms. Default 1000. */
  readonly dnsTimeoutMs?: number;
  /** Rounds over the DNS servers before a lookup fails. Default 2. */
  readonly dnsAttempts?: number;
  /** Search domains for short names. Default: from /etc/resolv.conf. */
  readonly search?: readonly string[];
  /** Names with fewer dots are tried with the search domains first. Default: from /etc/resolv.conf (1 if absent). */
  readonly ndots?: number;
  /** Address records to use: 4, 6, or 'auto' (A, else AAAA). Default 'auto'. */
  readonly family?: AddressFamily;
  readonly refresh?: RefreshOptions;
  /** How long an authoritative empty answer must last before the pool empties, ms. Default 0. */
  readonly emptyGraceMs?: number;
  readonly endpoints?: never;
}

/** A/AAAA discovery: one endpoint per address, all on `port`. */
export interface AddressDiscoveryOptions extends DnsOptions {
  readonly port: number;
  readonly portName?: never;
}

/** SRV discovery: `_<portName>._<protocol>.<service>` gives pod names, ports and weights. */
export interface SrvDiscoveryOptions extends DnsOptions {
  readonly portName: string;
  /** Default 'tcp'. */
  readonly protocol?: 'tcp' | 'udp' | 'sctp';
  readonly port?: never;
}

/** A fixed list of endpoints (no DNS). */
export interface StaticOptions extends CommonOptions {
  readonly endpoints: readonly StaticEndpoint[];
  /** A label for errors and stats. Default 'static'. */
  readonly service?: string;
}

/**
 * Options of `createBalancer`. Every millisecond option (`…Ms`) takes a finite number up to
 * 2^31−1 (MAX_TIMER_MS, about 24.8 days), the longest delay Node's timers honour; ports are
 * integers 1–65535. Anything else, and unknown keys, throw InvalidOptionError.
 */
export type BalancerOptions = AddressDiscoveryOptions | SrvDiscoveryOptions | StaticOptions;

/** The most retries a call may have (`retries`, `retry.retries`, the adapters' `retries`). */
export const MAX_RETRIES = 100;

/** Options of one `run()` call. Its millisecond options take 0 … 2^31−1. */
export interface RunOptions {
  /** Shard key, for key-aware pickers. */
  readonly key?: string;
  /** Aborts the call and every attempt. */
  readonly signal?: AbortSignal;
  /** The call may be sent twice: also retry resets, timeouts and RetryableErrors. Default false. */
  readonly idempotent?: boolean;
  /** Deadline for the whole call, all attempts together, ms. */
  readonly timeoutMs?: number;
  /** Deadline for each attempt, ms. */
  readonly attemptTimeoutMs?: number;
  /** Retries after the first attempt (default from the balancer's `retry.retries`). */
  readonly retries?: number;
  /** Hedge this call (requires `idempotent: true`). */
  readonly hedge?: HedgeOptions;
  /** Backoff of this call's retries. Default: the balancer's `retry` settings, doubling. */
  readonly backoff?: BackoffOptions;
}

export const DEFAULTS = {
  picker: 'round-robin',
  refresh: { minMs: 1000, maxMs: 30_000, jitter: 0.1 },
  latency: { decayMs: 10_000, defaultRttMs: 30, averageMs: 1000 },
  retry: { retries: 2, backoffBaseMs: 25, backoffMaxMs: 250 },
  backoffMultiplier: 2,
  dnsTimeoutMs: 1000,
  dnsAttempts: 2,
  emptyGraceMs: 0,
  family: 'auto',
  protocol: 'tcp',
  readyTimeoutMs: 10_000,
  outlierDetection: {
    consecutiveFailures: 5,
    failureRate: 0.5,
    minRequests: 20,
    windowMs: 10_000,
    ejectOnConnectFailure: true,
    baseEjectionMs: 30_000,
    maxEjectionMs: 300_000,
    maxEjectedPercent: 50,
    jitter: 0.1,
  },
  panicThreshold: 0.5,
  slowStart: { windowMs: 0, aggression: 1, minWeight: 0.1 },
  retryBudget: { percent: 0.2, minPerSecond: 10, windowMs: 10_000 },
  hedgeBudget: { percent: 0.05, minPerSecond: 1, windowMs: 10_000 },
} as const;

/** A larger growth reaches any cap at the first retry: nothing to gain, and it keeps the arithmetic tame. */
export const MAX_BACKOFF_MULTIPLIER = 1000;

/** Validates backoff options (`initialMs`, `maxMs`, `multiplier`): the same rules for run() and the adapters. */
export function checkBackoff(value: unknown, field = 'backoff'): BackoffOptions {
  const backoff = checkObject(value, field);
  checkKnownKeys(backoff, ['initialMs', 'maxMs', 'multiplier'], field);
  const multiplier = backoff.multiplier;
  if (multiplier !== undefined && !(typeof multiplier === 'number' && multiplier > 0 && multiplier <= MAX_BACKOFF_MULTIPLIER))
    throw new InvalidOptionError(`${field}.multiplier`, multiplier, `a number greater than 0, up to ${MAX_BACKOFF_MULTIPLIER}`);
  return {
    ...(backoff.initialMs === undefined ? {} : { initialMs: checkMilliseconds(backoff.initialMs, `${field}.initialMs`) }),
    ...(backoff.maxMs === undefined ? {} : { maxMs: checkMilliseconds(backoff.maxMs, `${field}.maxMs`) }),
    ...(multiplier === undefined ? {} : { multiplier }),
  };
}

/** Validates hedge options (`{ delayMs }`, `{ percentile }` or both, `maxAttempts`): the same rules for run() and the adapters. */
export function checkHedge(value: unknown, field = 'hedge'): HedgeOptions {
  const hedge = checkObject(value, field);
  checkKnownKeys(hedge, ['delayMs', 'percentile', 'maxAttempts'], field);
  if (hedge.delayMs === undefined && hedge.percentile === undefined)
    throw new InvalidOptionError(field, value, '{ delayMs } or { percentile }');
  return {
    ...(hedge.delayMs === undefined ? {} : { delayMs: checkMilliseconds(hedge.delayMs, `${field}.delayMs`) }),
    ...(hedge.percentile === undefined ? {} : { percentile: checkNumber(hedge.percentile, `${field}.percentile`, { min: 0, max: 1 }) }),
    ...(hedge.maxAttempts === undefined
      ? {}
      : { maxAttempts: checkNumber(hedge.maxAttempts, `${field}.maxAttempts`, { min: 2, max: MAX_HEDGE_ATTEMPTS, integer: true }) }),
  };
}
