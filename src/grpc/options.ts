import { isIP } from 'node:net';
import { Channel, ChannelCredentials, type ChannelOptions, type Metadata } from '@grpc/grpc-js';
import { InvalidOptionError } from '../errors.js';
import {
  checkBoolean,
  checkFunction,
  checkKnownKeys,
  checkMilliseconds,
  checkNumber,
  checkObject,
  optionalMilliseconds,
} from '../option-checks.js';
import { checkHedge, type HedgeOptions } from '../options.js';
import { checkMaxPods } from '../pod-bound.js';
import { parsePort } from '../port.js';
import { parseServiceConfig, type GrpcServiceConfig, type ServiceConfig } from './service-config.js';

/** What a `key` function sees of a call. */
export interface GrpcCallInfo {
  /** The full method path, e.g. `'/orders.Orders/Get'`. */
  readonly method: string;
  /** The call's metadata as the client sends it (after its interceptors). Read it; do not change it. */
  readonly metadata: Metadata;
}

/**
 * Which methods may be sent twice: `true` (all), `false` (none), a list of full method paths
 * (`'/orders.Orders/Get'`, or `'/orders.Orders/*'` for every method of a service), or a predicate.
 */
export type GrpcIdempotentOption = boolean | readonly string[] | ((method: string) => boolean);

export interface GrpcChannelOptions {
  /** Credentials of every pod channel, e.g. `grpc.credentials.createInsecure()` or `createSsl(...)`. Required. */
  readonly credentials: ChannelCredentials;
  /**
   * Metadata key that carries the shard key (case-insensitive, not `-bin`), for key-aware
   * pickers such as `'shard-key'`. A call's `withKey()` key and the `key` function take precedence.
   */
  readonly keyMetadata?: string;
  /** Computes a call's shard key; takes precedence over `keyMetadata`. Return undefined for no key. */
  readonly key?: (call: GrpcCallInfo) => string | undefined;
  /**
   * Methods that may be re-sent to another pod after a failure that may have reached a pod
   * (UNAVAILABLE after the connection existed, or a status in `retryableCodes`), before any
   * response arrived. Calls that provably never reached a pod are re-sent whatever this says.
   * Default `false`.
   */
  readonly idempotent?: GrpcIdempotentOption;
  /** Status codes worth a retry of an idempotent call on another pod. Default `[UNAVAILABLE]` (14). */
  readonly retryableCodes?: readonly number[];
  /** Retries after the first attempt. Default: the balancer's `retry.retries` (2). */
  readonly retries?: number;
  /**
   * Deadline of each attempt, ms: a slower attempt is cancelled, counted against its pod and,
   * for idempotent methods, retried on another pod within the call's own deadline. Default: none.
   */
  readonly attemptTimeoutMs?: number;
  /**
   * `:authority` of every call (and the TLS name, unless `grpc.ssl_target_name_override` is set
   * in `channelOptions`). Default `'<service>:<port>'`, as a `dns:///<service>:<port>` channel sends.
   */
  readonly authority?: string;
  /** grpc-js options of each pod channel (keepalive, message sizes, ...). Merged over `POD_CHANNEL_DEFAULTS`. */
  readonly channelOptions?: ChannelOptions;
  /**
   * Hedge the calls of the `idempotent` methods (gRFC A6's hedging): another attempt on another
   * pod after `delayMs` (or the balancer's `percentile` latency) while none has answered, up to
   * `maxAttempts` (2 to 5, default 2) at once; the first to commit wins, the others are cancelled.
   * Hedges draw on the balancer's hedge budget. Default: off. See docs/grpc.md.
   */
  readonly hedge?: HedgeOptions;
  /** Requests bytes kept per call so it can be re-sent before the first response arrives. Default 262144 (grpc's own default). */
  readonly retryBufferBytes?: number;
  /**
   * How long the channel of a pod that left the Service (or changed address) may finish its calls
   * before it is closed anyway, ms. Default 30000 (Kubernetes' default grace period).
   */
  readonly drainTimeoutMs?: number;
  /**
   * The most pods the channel keeps pod channels open to: when a call needs one more, the least
   * recently used pod's channel is closed once its calls end, and made again when needed. An
   * integer from 1, or Infinity. Default: twice the balancer's `subset.size` when subsetting is on
   * (room for ejected members' stand-ins and keyed calls), else Infinity.
   */
  readonly maxPods?: number;
  /**
   * A gRPC service config (gRFC A6), as an object or as the JSON you give grpc-js as
   * `grpc.service_config`: per method (exact, service-wide, or default entry), a `retryPolicy` or
   * `hedgingPolicy`, a `timeout` and `waitForReady`; and `retryThrottling`. What an entry sets wins
   * over the shorthand options for the methods it matches (docs/grpc.md). Load-balancing fields are
   * accepted and ignored: the balancer's picker chooses. Not the pod channels' own config (that is
   * `channelOptions['grpc.service_config']`).
   */
  readonly serviceConfig?: GrpcServiceConfig | string;
}

/** Options after validation and defaults. */
export interface ResolvedGrpcOptions {
  readonly credentials: ChannelCredentials;
  readonly keyMetadata: string | undefined;
  readonly key: ((call: GrpcCallInfo) => string | undefined) | undefined;
  readonly isIdempotent: (method: string) => boolean;
  readonly retryableCodes: ReadonlySet<number>;
  readonly retries: number | undefined;
  readonly attemptTimeoutMs: number | undefined;
  /** The hedge of idempotent methods (frozen), if any. */
  readonly hedge: HedgeOptions | undefined;
  readonly authority: string | undefined;
  readonly channelOptions: ChannelOptions;
  readonly retryBufferBytes: number;
  readonly drainTimeoutMs: number;
  /** undefined: the default, which depends on the balancer. */
  readonly maxPods: number | undefined;
  readonly serviceConfig: ServiceConfig | undefined;
  /** False when the pod channels have a service config: grpc-js retry policies could hide an attempt that had a stream. */
  readonly podCallsSingleAttempt: boolean;
}

/**
 * Options every pod channel gets unless `channelOptions` overrides them. A pod channel talks to one
 * pod, so a long reconnect backoff (grpc-js: up to 120 s) only keeps a restarted pod dark: outlier
 * ejection already keeps traffic away from a pod that refuses connections.
 */
export const POD_CHANNEL_DEFAULTS: Readonly<ChannelOptions> = Object.freeze({
  'grpc.initial_reconnect_backoff_ms': 500,
  'grpc.max_reconnect_backoff_ms': 5000,
});

export const GRPC_DEFAULTS = {
  retryableCodes: [14],
  retryBufferBytes: 256 * 1024,
  drainTimeoutMs: 30_000,
} as const;

const KEYS = [
  'credentials',
  'keyMetadata',
  'key',
  'idempotent',
  'retryableCodes',
  'retries',
  'attemptTimeoutMs',
  'hedge',
  'authority',
  'channelOptions',
  'retryBufferBytes',
  'drainTimeoutMs',
  'maxPods',
  'serviceConfig',
] as const;

const METADATA_KEY = /^[0-9a-z_.-]+$/;
const METHOD_PATH = /^\/[^/\s]+\/([^/\s]+|\*)$/;
const AUTHORITY = /^[A-Za-z0-9._~%!$&'()*+,;=:[\]-]+$/;

export function resolveGrpcOptions(input: GrpcChannelOptions): ResolvedGrpcOptions {
  const options = checkObject(input, 'options');
  checkKnownKeys(options, KEYS, '');

  if (!(options.credentials instanceof ChannelCredentials)) {
    throw new InvalidOptionError('credentials', options.credentials, 'grpc ChannelCredentials, e.g. grpc.credentials.createInsecure()');
  }
  let keyMetadata: string | undefined;
  if (options.keyMetadata !== undefined) {
    const value = options.keyMetadata;
    if (typeof value !== 'string' || !METADATA_KEY.test(value.toLowerCase()) || value.toLowerCase().endsWith('-bin')) {
      throw new InvalidOptionError('keyMetadata', value, "an ASCII metadata key such as 'x-shard-key' (not -bin)");
    }
    keyMetadata = value.toLowerCase();
  }
  const key = options.key === undefined ? undefined : checkFunction<(call: GrpcCallInfo) => string | undefined>(options.key, 'key');
  const isIdempotent = idempotentPredicate(options.idempotent);

  const codes = options.retryableCodes === undefined ? GRPC_DEFAULTS.retryableCodes : options.retryableCodes;
  if (!Array.isArray(codes)) throw new InvalidOptionError('retryableCodes', codes, 'an array of gRPC status codes (1..16)');
  const retryableCodes = new Set<number>();
  codes.forEach((code: unknown, i: number) =>
    retryableCodes.add(checkNumber(code, `retryableCodes[${i}]`, { min: 1, max: 16, integer: true })),
  );

  const retries = options.retries === undefined ? undefined : checkNumber(options.retries, 'retries', { min: 0, max: 100, integer: true });
  const attemptTimeoutMs =
    options.attemptTimeoutMs === undefined ? undefined : checkMilliseconds(options.attemptTimeoutMs, 'attemptTimeoutMs', { min: 1 });
  const hedge = options.hedge === undefined ? undefined : Object.freeze(checkHedge(options.hedge));
  if (hedge !== undefined && (options.idempotent === undefined || options.idempotent === false))
    throw new InvalidOptionError('hedge', options.hedge, "idempotent methods to hedge: set 'idempotent' (a hedge sends a call twice)");
  const authority = options.authority === undefined ? undefined : checkAuthority(options.authority);
  const channelOptions =
    options.channelOptions === undefined ? {} : (checkObject(options.channelOptions, 'channelOptions') as ChannelOptions);
  for (const [name, value] of Object.entries(channelOptions)) {
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new InvalidOptionError(`channelOptions.${name}`, value, 'a string or a number');
    // grpc-js hands these to setTimeout (a keepalive of 3e9 ms would ping every millisecond); -1 is grpc's "unset".
    if (name.endsWith('_ms')) checkMilliseconds(value, `channelOptions.${name}`, { min: -1 });
  }
  const podChannelOptions = { ...POD_CHANNEL_DEFAULTS, ...channelOptions };
  if (options.channelOptions !== undefined) probeChannelOptions(options.credentials, podChannelOptions, options.channelOptions);
  const retryBufferBytes =
    options.retryBufferBytes === undefined
      ? GRPC_DEFAULTS.retryBufferBytes
      : checkNumber(options.retryBufferBytes, 'retryBufferBytes', { min: 0, integer: true });
  const drainTimeoutMs = optionalMilliseconds(options.drainTimeoutMs, 'drainTimeoutMs', GRPC_DEFAULTS.drainTimeoutMs);
  const maxPods = options.maxPods === undefined ? undefined : checkMaxPods(options.maxPods, 'maxPods');
  const serviceConfig = options.serviceConfig === undefined ? undefined : parseServiceConfig(options.serviceConfig);

  return {
    credentials: options.credentials,
    keyMetadata,
    key,
    isIdempotent,
    retryableCodes,
    retries,
    attemptTimeoutMs,
    hedge,
    authority,
    channelOptions: podChannelOptions,
    retryBufferBytes,
    drainTimeoutMs,
    maxPods,
    serviceConfig,
    podCallsSingleAttempt: channelOptions['grpc.service_config'] === undefined,
  };
}

/**
 * Lets grpc-js check the channel options now (pod channels are made at the first call to each
 * pod), so that a bad `grpc.service_config` fails at creation rather than every call. The probe
 * channel never connects.
 */
function probeChannelOptions(credentials: ChannelCredentials, channelOptions: ChannelOptions, value: unknown): void {
  let probe: Channel | undefined;
  try {
    probe = new Channel('ipv4:127.0.0.1:1', credentials, channelOptions);
  } catch (error) {
    throw new InvalidOptionError('channelOptions', value, `grpc-js channel options (${(error as Error).message})`);
  } finally {
    probe?.close();
  }
}

/** `host`, `host:port`, `[v6]:port` (or a bare IPv6 address); a port is decimal, 1–65535. */
function checkAuthority(value: unknown): string {
  const expected = "a host[:port] such as 'orders.default.svc.cluster.local:9090' (port: decimal 1-65535)";
  if (typeof value !== 'string' || value.length === 0 || !AUTHORITY.test(value)) throw new InvalidOptionError('authority', value, expected);
  if (isIP(value) === 6) return value;
  const hostPort = /^(\[[^\]]+\]|[^:[\]]+)(?::([^:]*))?$/.exec(value);
  if (hostPort === null || (hostPort[2] !== undefined && parsePort(hostPort[2]) === undefined))
    throw new InvalidOptionError('authority', value, expected);
  return value;
}

function idempotentPredicate(value: unknown): (method: string) => boolean {
  if (value === undefined) return () => false;
  if (typeof value === 'boolean') {
    const all = checkBoolean(value, 'idempotent');
    return () => all;
  }
  if (typeof value === 'function') return value as (method: string) => boolean;
  if (!Array.isArray(value))
    throw new InvalidOptionError('idempotent', value, "true, false, a list of method paths such as ['/orders.Orders/Get'], or a function");
  const methods = new Set<string>();
  const services = new Set<string>();
  value.forEach((path: unknown, i: number) => {
    if (typeof path !== 'string' || !METHOD_PATH.test(path)) {
      throw new InvalidOptionError(`idempotent[${i}]`, path, "a method path such as '/orders.Orders/Get' or '/orders.Orders/*'");
    }
    if (path.endsWith('/*')) services.add(path.slice(0, -1));
    else methods.add(path);
  });
  return (method) => methods.has(method) || (services.size > 0 && services.has(method.slice(0, method.lastIndexOf('/') + 1)));
}
