import { status as Status } from '@grpc/grpc-js';
import { InvalidOptionError } from '../errors.js';
import { MAX_TIMER_MS } from '../timer-delay.js';

/*
 * gRPC service configs (gRFC A6, grpc's doc/service_config.md): the JSON that users give grpc-js
 * as `grpc.service_config`, read here for `createGrpcChannel({ serviceConfig })`. Accepted and
 * refused as grpc-js 1.14 accepts and refuses them, except that values grpc-js would crash on
 * later, or silently ignore while they are wrong (a `methodConfig` that is not a list, NaN
 * numbers, a duration beyond a timer's reach), are refused here. Every error names the path.
 */

/** The service config as users write it (`grpc.service_config`, parsed). */
export interface GrpcServiceConfig {
  readonly methodConfig?: readonly GrpcMethodConfig[];
  readonly retryThrottling?: { readonly maxTokens: number; readonly tokenRatio: number };
  /** Accepted and ignored: the balancer's picker chooses the pod. */
  readonly loadBalancingConfig?: readonly Record<string, unknown>[];
  /** Accepted and ignored: the balancer's picker chooses the pod. */
  readonly loadBalancingPolicy?: string;
}

/** A status code by number (1, 14) or name (`'UNAVAILABLE'`, any case). */
export type GrpcStatusCodeName = number | string;

export interface GrpcMethodConfig {
  /** `{ service, method }`: a method; `{ service }`: every method of a service; `{}`: the default. */
  readonly name: readonly { readonly service?: string; readonly method?: string }[];
  readonly waitForReady?: boolean;
  /** A duration such as `'1.5s'`. */
  readonly timeout?: string | { readonly seconds: number; readonly nanos: number };
  /** Accepted and ignored (grpc-js ignores it too); use `channelOptions`' message size limits. */
  readonly maxRequestBytes?: number;
  /** Accepted and ignored (grpc-js ignores it too). */
  readonly maxResponseBytes?: number;
  readonly retryPolicy?: {
    readonly maxAttempts: number;
    readonly initialBackoff: string;
    readonly maxBackoff: string;
    readonly backoffMultiplier: number;
    readonly retryableStatusCodes: readonly GrpcStatusCodeName[];
  };
  readonly hedgingPolicy?: {
    readonly maxAttempts: number;
    readonly hedgingDelay?: string;
    readonly nonFatalStatusCodes?: readonly GrpcStatusCodeName[];
  };
}

/** grpc caps the attempts of a retry or hedging policy at 5 (gRFC A6; grpc-js's default limit). */
export const MAX_POLICY_ATTEMPTS = 5;

export interface RetryPolicy {
  /** Attempts in all, capped at 5. */
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly backoffMultiplier: number;
  readonly retryableCodes: ReadonlySet<number>;
}

export interface HedgingPolicy {
  /** Attempts in all, capped at 5. */
  readonly maxAttempts: number;
  readonly hedgingDelayMs: number;
  readonly nonFatalCodes: ReadonlySet<number>;
}

/** One `methodConfig` entry, checked, durations in ms. */
export interface MethodConfig {
  /** Its position in `methodConfig`, for messages. */
  readonly index: number;
  readonly waitForReady: boolean | undefined;
  readonly timeoutMs: number | undefined;
  readonly retryPolicy: RetryPolicy | undefined;
  readonly hedgingPolicy: HedgingPolicy | undefined;
}

export interface RetryThrottling {
  readonly maxTokens: number;
  readonly tokenRatio: number;
}

/** A checked service config, indexed for gRFC A6's matching (see `methodConfigFor`). */
export interface ServiceConfig {
  readonly methodConfigs: readonly MethodConfig[];
  /** By `'<service>/<method>'`. */
  readonly byMethod: ReadonlyMap<string, MethodConfig>;
  /** By service, for names without a method. */
  readonly byService: ReadonlyMap<string, MethodConfig>;
  /** The entry with an empty name, if any. */
  readonly fallback: MethodConfig | undefined;
  readonly retryThrottling: RetryThrottling | undefined;
}

/** grpc's JSON duration: seconds with up to 9 decimals, then `s` (as grpc-js checks it). */
const DURATION = /^\d+(\.\d{1,9})?s$/;

const STATUS_NAMES: ReadonlyMap<string, number> = new Map(
  Object.entries(Status).filter((entry): entry is [string, number] => typeof entry[1] === 'number'),
);

/**
 * Checks a service config (an object, or its JSON as for `grpc.service_config`) and indexes its
 * method configs. Throws InvalidOptionError naming the path (`serviceConfig.methodConfig[0]...`).
 */
export function parseServiceConfig(input: unknown, field = 'serviceConfig'): ServiceConfig {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input) as unknown;
    } catch (error) {
      throw new InvalidOptionError(field, input, `a service config object or its JSON (${(error as Error).message})`);
    }
  }
  const config = object(value, field);
  const policy = own(config, 'loadBalancingPolicy');
  if (policy !== undefined && typeof policy !== 'string') throw new InvalidOptionError(`${field}.loadBalancingPolicy`, policy, 'a string');
  const lbConfigs = own(config, 'loadBalancingConfig');
  if (lbConfigs !== undefined) {
    list(lbConfigs, `${field}.loadBalancingConfig`).forEach((entry, i) => {
      const path = `${field}.loadBalancingConfig[${i}]`;
      if (Object.keys(object(entry, path)).length !== 1)
        throw new InvalidOptionError(path, entry, 'an object with exactly one key, the policy name');
    });
  }
  const methodConfigs: MethodConfig[] = [];
  const byMethod = new Map<string, MethodConfig>();
  const byService = new Map<string, MethodConfig>();
  let fallback: MethodConfig | undefined;
  const entries = own(config, 'methodConfig');
  if (entries !== undefined) {
    list(entries, `${field}.methodConfig`).forEach((entry, index) => {
      const path = `${field}.methodConfig[${index}]`;
      const methodConfig = parseMethodConfig(object(entry, path), index, path);
      methodConfigs.push(methodConfig);
      const names = own(entry as Record<string, unknown>, 'name');
      list(names, `${path}.name`).forEach((name, j) => {
        const namePath = `${path}.name[${j}]`;
        const { service, method } = parseName(object(name, namePath), namePath);
        // Duplicates are refused, as grpc-js refuses them: which entry would win is not obvious.
        const duplicate = (): never => {
          throw new InvalidOptionError(namePath, name, `a name no other entry has (${service ?? ''}/${method ?? ''} is there already)`);
        };
        if (service === undefined) {
          if (fallback !== undefined) duplicate();
          fallback = methodConfig;
        } else if (method === undefined) {
          if (byService.has(service)) duplicate();
          byService.set(service, methodConfig);
        } else {
          const key = `${service}/${method}`;
          if (byMethod.has(key)) duplicate();
          byMethod.set(key, methodConfig);
        }
      });
    });
  }
  const throttling = own(config, 'retryThrottling');
  return {
    methodConfigs,
    byMethod,
    byService,
    fallback,
    retryThrottling: throttling === undefined ? undefined : parseThrottling(throttling, `${field}.retryThrottling`),
  };
}

/**
 * The entry of a method (`'/pkg.Service/Method'`) as gRFC A6 chooses it: the exact service and
 * method, else the service's entry, else the default entry (empty name); undefined when none.
 */
export function methodConfigFor(config: ServiceConfig, path: string): MethodConfig | undefined {
  // As grpc-js splits a method path: the first two non-empty parts.
  const parts = path.split('/').filter((part) => part.length > 0);
  const service = parts[0] ?? '';
  const method = parts[1] ?? '';
  return config.byMethod.get(`${service}/${method}`) ?? config.byService.get(service) ?? config.fallback;
}

/** A name: an unset or empty service means the default entry, which must not name a method. */
function parseName(name: Record<string, unknown>, path: string): { service?: string; method?: string } {
  const service = own(name, 'service');
  const method = own(name, 'method');
  if (service !== undefined && typeof service !== 'string') throw new InvalidOptionError(`${path}.service`, service, 'a string');
  if (method !== undefined && typeof method !== 'string') throw new InvalidOptionError(`${path}.method`, method, 'a string');
  if (service === undefined || service === '') {
    if (method !== undefined) throw new InvalidOptionError(`${path}.method`, method, 'no method in a name without a service');
    return {};
  }
  return method === undefined || method === '' ? { service } : { service, method };
}

function parseMethodConfig(entry: Record<string, unknown>, index: number, path: string): MethodConfig {
  const waitForReady = own(entry, 'waitForReady');
  if (waitForReady !== undefined && typeof waitForReady !== 'boolean')
    throw new InvalidOptionError(`${path}.waitForReady`, waitForReady, 'true or false');
  const timeout = own(entry, 'timeout');
  for (const bytes of ['maxRequestBytes', 'maxResponseBytes']) {
    const value = own(entry, bytes);
    if (value !== undefined && (typeof value !== 'number' || !(value >= 0)))
      throw new InvalidOptionError(`${path}.${bytes}`, value, 'a number of bytes');
  }
  const retry = own(entry, 'retryPolicy');
  const hedging = own(entry, 'hedgingPolicy');
  if (retry !== undefined && hedging !== undefined)
    throw new InvalidOptionError(`${path}.hedgingPolicy`, hedging, 'not both a retryPolicy and a hedgingPolicy');
  return {
    index,
    waitForReady,
    timeoutMs: timeout === undefined ? undefined : timeoutMs(timeout, `${path}.timeout`),
    retryPolicy: retry === undefined ? undefined : parseRetryPolicy(object(retry, `${path}.retryPolicy`), `${path}.retryPolicy`),
    hedgingPolicy:
      hedging === undefined ? undefined : parseHedgingPolicy(object(hedging, `${path}.hedgingPolicy`), `${path}.hedgingPolicy`),
  };
}

function parseRetryPolicy(policy: Record<string, unknown>, path: string): RetryPolicy {
  const maxAttempts = attempts(own(policy, 'maxAttempts'), `${path}.maxAttempts`);
  const initialBackoffMs = duration(own(policy, 'initialBackoff'), `${path}.initialBackoff`);
  const maxBackoffMs = duration(own(policy, 'maxBackoff'), `${path}.maxBackoff`);
  const multiplier = own(policy, 'backoffMultiplier');
  if (typeof multiplier !== 'number' || !Number.isFinite(multiplier) || multiplier <= 0)
    throw new InvalidOptionError(`${path}.backoffMultiplier`, multiplier, 'a number greater than 0');
  const codes = own(policy, 'retryableStatusCodes');
  if (Array.isArray(codes) && codes.length === 0)
    throw new InvalidOptionError(`${path}.retryableStatusCodes`, codes, 'a non-empty list of status codes');
  const retryableCodes = statusCodes(codes, `${path}.retryableStatusCodes`);
  return { maxAttempts, initialBackoffMs, maxBackoffMs, backoffMultiplier: multiplier, retryableCodes };
}

function parseHedgingPolicy(policy: Record<string, unknown>, path: string): HedgingPolicy {
  const maxAttempts = attempts(own(policy, 'maxAttempts'), `${path}.maxAttempts`);
  const delay = own(policy, 'hedgingDelay');
  const codes = own(policy, 'nonFatalStatusCodes');
  return {
    maxAttempts,
    hedgingDelayMs: delay === undefined ? 0 : duration(delay, `${path}.hedgingDelay`),
    nonFatalCodes: codes === undefined ? new Set() : statusCodes(codes, `${path}.nonFatalStatusCodes`),
  };
}

function parseThrottling(value: unknown, path: string): RetryThrottling {
  const throttling = object(value, path);
  const maxTokens = own(throttling, 'maxTokens');
  if (typeof maxTokens !== 'number' || !(maxTokens > 0 && maxTokens <= 1000))
    throw new InvalidOptionError(`${path}.maxTokens`, maxTokens, 'a number in (0, 1000]');
  const tokenRatio = own(throttling, 'tokenRatio');
  if (typeof tokenRatio !== 'number' || !Number.isFinite(tokenRatio) || tokenRatio <= 0)
    throw new InvalidOptionError(`${path}.tokenRatio`, tokenRatio, 'a number greater than 0');
  // Three decimals, as grpc-js keeps them.
  return { maxTokens: Number(maxTokens.toFixed(3)), tokenRatio: Number(tokenRatio.toFixed(3)) };
}

/** 2 or more; more than 5 counts as 5 (A6). */
function attempts(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 2)
    throw new InvalidOptionError(path, value, 'an integer of at least 2 (more than 5 counts as 5)');
  return Math.min(value, MAX_POLICY_ATTEMPTS);
}

function statusCodes(value: unknown, path: string): Set<number> {
  const codes = new Set<number>();
  list(value, path).forEach((code, i) => {
    let number: number | undefined;
    if (typeof code === 'number') number = Number.isInteger(code) && code >= 0 && code <= 16 ? code : undefined;
    else if (typeof code === 'string') number = STATUS_NAMES.get(code.toUpperCase());
    if (number === undefined) throw new InvalidOptionError(`${path}[${i}]`, code, "a status code: 0..16 or a name such as 'UNAVAILABLE'");
    if (number !== Status.OK) codes.add(number); // OK is accepted (grpc-js does) but never a failure
  });
  return codes;
}

/** A timeout: a duration string, or `{ seconds, nanos }` as grpc-js also takes. */
function timeoutMs(value: unknown, path: string): number {
  if (typeof value === 'string') return duration(value, path);
  const timeout = object(value, path);
  const seconds = own(timeout, 'seconds');
  const nanos = own(timeout, 'nanos');
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0)
    throw new InvalidOptionError(`${path}.seconds`, seconds, 'a whole number of seconds, 0 or more');
  if (typeof nanos !== 'number' || !Number.isInteger(nanos) || nanos < 0 || nanos >= 1e9)
    throw new InvalidOptionError(`${path}.nanos`, nanos, 'an integer 0..999999999');
  return bounded(seconds * 1000 + nanos / 1e6, value, path);
}

/** A duration string in ms, at most 2^31−1 (like every ms option: a longer timer fires at once). */
function duration(value: unknown, path: string): number {
  if (typeof value !== 'string' || !DURATION.test(value))
    throw new InvalidOptionError(path, value, "a duration such as '0.1s' or '5s' (seconds, up to 9 decimals)");
  return bounded(Number(value.slice(0, -1)) * 1000, value, path);
}

function bounded(ms: number, value: unknown, path: string): number {
  if (!(ms <= MAX_TIMER_MS))
    throw new InvalidOptionError(
      path,
      value,
      `a duration of at most ${MAX_TIMER_MS / 1000}s (2^31−1 ms, the longest delay Node timers honour)`,
    );
  return ms;
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidOptionError(path, value, 'an object');
  return value as Record<string, unknown>;
}

function list(value: unknown, path: string): readonly unknown[] {
  if (!Array.isArray(value)) throw new InvalidOptionError(path, value, 'a list');
  return value;
}

/** An own property only: a polluted Object.prototype must not add a retry policy. */
function own(value: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(value, key) ? value[key] : undefined;
}
