import { Client, Pool } from 'undici';
import { InvalidOptionError } from '../errors.js';
import {
  checkDnsName,
  checkFunction,
  checkKnownKeys,
  checkMilliseconds,
  checkNumber,
  checkObject,
  optionalMilliseconds,
} from '../option-checks.js';
import { checkBackoff, checkHedge, MAX_RETRIES, type BackoffOptions, type HedgeOptions } from '../options.js';
import { checkMaxPods } from '../pod-bound.js';
import { resolvePerRequestHeader, type PerRequestHeaderKey } from './override-header.js';

/** What a `key` function sees of a request. */
export interface HttpRequestInfo {
  /** The request's origin as the caller wrote it, e.g. `'http://web-headless.default.svc.cluster.local:8080'`. */
  readonly origin: string;
  readonly method: string;
  /** Path and query, e.g. `'/users/42?x=1'`. */
  readonly path: string;
  /** A request header by name (case-insensitive); several values are joined with `', '`. */
  header(name: string): string | undefined;
}

/**
 * Options of each pod's undici `Pool`: `connections`, `pipelining`, `keepAliveTimeout`,
 * `headersTimeout`, `bodyTimeout`, `connect` (TLS options such as `ca`), `allowH2`, ...
 * `factory` and `socketPath` are not available: the dispatcher decides where each pool connects.
 */
export type PodPoolOptions = Omit<Pool.Options, 'factory' | 'socketPath'>;

export interface HttpDispatcherOptions {
  /** Request header that carries the shard key (case-insensitive), for key-aware pickers. */
  readonly keyHeader?: string;
  /** Computes the shard key of a request; takes precedence over `keyHeader`. Return undefined for no key. */
  readonly key?: (request: HttpRequestInfo) => string | undefined;
  /**
   * Response status codes that count as a failure of the pod: recorded on the endpoint (latency
   * pickers, outlier ejection) and, for requests that may be re-sent, retried on another pod.
   * Default `[502, 503, 504]`.
   */
  readonly failureStatusCodes?: readonly number[];
  /**
   * Methods that may be re-sent to another pod after a failure that may have reached a pod
   * (a reset, a timeout, a failure status). Default `GET, HEAD, OPTIONS, PUT, DELETE`.
   * A request's own `idempotent: true|false` dispatch option overrides this.
   */
  readonly idempotentMethods?: readonly string[];
  /** Retries after the first attempt. Default: the balancer's `retry.retries` (2). */
  readonly retries?: number;
  /**
   * Backoff of retries (`{ initialMs, maxMs, multiplier }`, full jitter). Default: the balancer's
   * `retry.backoffBaseMs` (25) and `retry.backoffMaxMs` (250), doubling.
   */
  readonly backoff?: BackoffOptions;
  /**
   * Hedge idempotent requests without a stream body: a second attempt on another pod when the
   * first has no response headers after `delayMs` (or the balancer's `percentile` latency), and
   * another each delay up to `maxAttempts` (default 2) in all; the first response wins. Hedges
   * draw on the balancer's hedge budget. Default: off.
   */
  readonly hedge?: HedgeOptions;
  /** Deadline until response headers arrive, all attempts together, ms. Default: none. */
  readonly timeoutMs?: number;
  /** Deadline of each attempt until response headers arrive, ms. Default: none (undici's `headersTimeout` still applies). */
  readonly attemptTimeoutMs?: number;
  /**
   * TLS server name for SNI and for the certificate check. Default: the request URL's hostname
   * (the Service name), or none when the URL's host is an IP address.
   */
  readonly servername?: string;
  /** Options for each pod's undici Pool. */
  readonly pool?: PodPoolOptions;
  /**
   * How long the pool of a pod that left the Service (or changed address) may take to finish its
   * in-flight requests before it is destroyed, ms. Default 30000 (Kubernetes' default grace period).
   */
  readonly drainTimeoutMs?: number;
  /** A pod's pool unused this long is closed; the next request re-creates it, ms. 0 keeps pools forever. Default 60000. */
  readonly idleTimeoutMs?: number;
  /**
   * The most pods the dispatcher keeps pools open to: when a request needs one more, the least
   * recently used pod's pool is closed (its requests in flight finish) and made again when needed.
   * An integer from 1, or Infinity. Default: twice the balancer's `subset.size` when subsetting is
   * on (room for ejected members' stand-ins and keyed requests), else Infinity.
   */
  readonly maxPods?: number;
  /**
   * Whether a request's `x-headless-lb` header may override this policy for that request
   * (`retries=1, timeout-ms=500, idempotent`; the way for `fetch`, which drops unknown options):
   * `true` for every key, or the keys it may set, such as `['retries', 'timeout-ms']`. The header
   * is then removed before the request leaves, and a bad one fails the request. Default `false`:
   * the header is an ordinary header, passed on untouched. Keep it off, or keep out `idempotent`
   * and `hedge`, where the header may come from outside (a proxy forwarding incoming headers).
   */
  readonly perRequestHeader?: boolean | readonly PerRequestHeaderKey[];
}

/** Options after validation and defaults. */
export interface ResolvedHttpOptions {
  readonly keyHeader: string | undefined;
  readonly key: ((request: HttpRequestInfo) => string | undefined) | undefined;
  readonly failureStatusCodes: ReadonlySet<number>;
  readonly idempotentMethods: ReadonlySet<string>;
  readonly retries: number | undefined;
  readonly backoff: BackoffOptions | undefined;
  readonly hedge: HedgeOptions | undefined;
  readonly timeoutMs: number | undefined;
  readonly attemptTimeoutMs: number | undefined;
  readonly servername: string | undefined;
  readonly pool: PodPoolOptions;
  readonly drainTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** undefined: the default, which depends on the balancer. */
  readonly maxPods: number | undefined;
  /** The `x-headless-lb` keys a request may set; `undefined`: the header is not read. */
  readonly perRequestHeader: ReadonlySet<PerRequestHeaderKey> | undefined;
}

export const HTTP_DEFAULTS = {
  failureStatusCodes: [502, 503, 504],
  idempotentMethods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
  drainTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
} as const;

const KEYS = [
  'keyHeader',
  'key',
  'failureStatusCodes',
  'idempotentMethods',
  'retries',
  'backoff',
  'hedge',
  'timeoutMs',
  'attemptTimeoutMs',
  'servername',
  'pool',
  'drainTimeoutMs',
  'idleTimeoutMs',
  'maxPods',
  'perRequestHeader',
] as const;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function resolveHttpOptions(input: HttpDispatcherOptions | undefined): ResolvedHttpOptions {
  const options = input === undefined ? {} : checkObject(input, 'options');
  checkKnownKeys(options, KEYS, '');

  let keyHeader: string | undefined;
  if (options.keyHeader !== undefined) {
    if (typeof options.keyHeader !== 'string' || !TOKEN.test(options.keyHeader)) {
      throw new InvalidOptionError('keyHeader', options.keyHeader, "a header name such as 'x-user-id'");
    }
    keyHeader = options.keyHeader.toLowerCase();
  }
  const key = options.key === undefined ? undefined : checkFunction<(request: HttpRequestInfo) => string | undefined>(options.key, 'key');

  const failureStatusCodes = new Set<number>();
  const codes = options.failureStatusCodes === undefined ? HTTP_DEFAULTS.failureStatusCodes : options.failureStatusCodes;
  if (!Array.isArray(codes)) throw new InvalidOptionError('failureStatusCodes', codes, 'an array of HTTP status codes (200..599)');
  codes.forEach((code: unknown, i: number) =>
    failureStatusCodes.add(checkNumber(code, `failureStatusCodes[${i}]`, { min: 200, max: 599, integer: true })),
  );

  const idempotentMethods = new Set<string>();
  const methods = options.idempotentMethods === undefined ? HTTP_DEFAULTS.idempotentMethods : options.idempotentMethods;
  if (!Array.isArray(methods))
    throw new InvalidOptionError('idempotentMethods', methods, "an array of HTTP methods such as ['GET', 'PUT']");
  methods.forEach((method: unknown, i: number) => {
    if (typeof method !== 'string' || !TOKEN.test(method))
      throw new InvalidOptionError(`idempotentMethods[${i}]`, method, 'an HTTP method name');
    idempotentMethods.add(method.toUpperCase());
  });

  const retries =
    options.retries === undefined ? undefined : checkNumber(options.retries, 'retries', { min: 0, max: MAX_RETRIES, integer: true });
  // Frozen: the run options that carry it are frozen, and the balancer plans those once.
  const backoff = options.backoff === undefined ? undefined : Object.freeze(checkBackoff(options.backoff));
  const hedge = options.hedge === undefined ? undefined : checkHedge(options.hedge);
  const timeoutMs = options.timeoutMs === undefined ? undefined : checkMilliseconds(options.timeoutMs, 'timeoutMs');
  const attemptTimeoutMs =
    options.attemptTimeoutMs === undefined ? undefined : checkMilliseconds(options.attemptTimeoutMs, 'attemptTimeoutMs');
  const servername = options.servername === undefined ? undefined : checkDnsName(options.servername, 'servername');
  const pool = options.pool === undefined ? {} : checkPoolOptions(options.pool);
  const drainTimeoutMs = optionalMilliseconds(options.drainTimeoutMs, 'drainTimeoutMs', HTTP_DEFAULTS.drainTimeoutMs);
  const idleTimeoutMs = optionalMilliseconds(options.idleTimeoutMs, 'idleTimeoutMs', HTTP_DEFAULTS.idleTimeoutMs);
  const maxPods = options.maxPods === undefined ? undefined : checkMaxPods(options.maxPods, 'maxPods');
  const perRequestHeader = resolvePerRequestHeader(options.perRequestHeader);

  return {
    keyHeader,
    key,
    failureStatusCodes,
    idempotentMethods,
    retries,
    backoff,
    hedge,
    timeoutMs,
    attemptTimeoutMs,
    servername,
    pool,
    drainTimeoutMs,
    idleTimeoutMs,
    maxPods,
    perRequestHeader,
  };
}

/**
 * undici's millisecond options, with the least each takes (undici checks the rest of their rules).
 * Each is also held to 2^31−1: undici's own timers would cope, but Node's (a socket's
 * `autoSelectFamilyAttemptTimeout`) fire after 1 ms beyond it, and a longer wait means nothing here.
 */
const POOL_MILLISECONDS: Readonly<Record<string, number>> = {
  connectTimeout: 0,
  headersTimeout: 0,
  bodyTimeout: 0,
  keepAliveTimeout: 0,
  keepAliveMaxTimeout: 0,
  keepAliveTimeoutThreshold: 0,
  clientTtl: 0,
  autoSelectFamilyAttemptTimeout: -1,
};
const CONNECT_MILLISECONDS: Readonly<Record<string, number>> = { timeout: 0, keepAliveInitialDelay: 0, autoSelectFamilyAttemptTimeout: -1 };

/** Lets undici validate the pool options now (a Pool connects lazily), so a bad value fails at creation, not at the first request. */
function checkPoolOptions(value: unknown): PodPoolOptions {
  const pool = checkObject(value, 'pool') as PodPoolOptions;
  for (const banned of ['factory', 'socketPath']) {
    if (banned in pool)
      throw new InvalidOptionError(
        `pool.${banned}`,
        (pool as Record<string, unknown>)[banned],
        'not set: the dispatcher decides where each pool connects',
      );
  }
  checkMillisecondFields(pool as Record<string, unknown>, POOL_MILLISECONDS, 'pool');
  const connect = (pool as Record<string, unknown>).connect;
  // `connect` may also be a connector function; its options are then its own business.
  if (connect !== null && typeof connect === 'object')
    checkMillisecondFields(connect as Record<string, unknown>, CONNECT_MILLISECONDS, 'pool.connect');
  // A Pool checks its own options; most (keepAliveMaxTimeout, maxHeaderSize, allowH2, ...) are
  // checked only by the Clients it makes at the first request: probe one of each.
  for (const make of [() => new Pool('http://127.0.0.1:1', pool), () => new Client('http://127.0.0.1:1', pool)]) {
    let probe: Pool | Client | undefined;
    try {
      probe = make();
    } catch (error) {
      throw new InvalidOptionError('pool', value, `undici Pool options (${(error as Error).message})`);
    } finally {
      void probe?.destroy().catch(() => {});
    }
  }
  return pool;
}

function checkMillisecondFields(options: Record<string, unknown>, fields: Readonly<Record<string, number>>, field: string): void {
  for (const [name, min] of Object.entries(fields)) {
    const value = options[name];
    // null is undici's "default" for these.
    if (value !== undefined && value !== null) checkMilliseconds(value, `${field}.${name}`, { min });
  }
}
