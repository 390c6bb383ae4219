import { InvalidOptionError } from '../errors.js';
import { LeastLatencyPicker, type LatencyEstimator } from './least-latency.js';
import { LeastRequestPicker } from './least-request.js';
import type { Picker } from './picker.js';
import { RandomPicker } from './random.js';
import { RoundRobinPicker } from './round-robin.js';
import { DEFAULT_BOUNDED_LOAD, ShardKeyPicker } from './shard-key.js';
import { WeightedRoundRobinPicker } from './weighted-round-robin.js';

export type { Picker, PickRequest } from './picker.js';
export { LeastLatencyPicker, latencyCost, meanLatencyCost, type LatencyEstimator } from './least-latency.js';
export { LeastRequestPicker } from './least-request.js';
export { RandomPicker } from './random.js';
export { RoundRobinPicker } from './round-robin.js';
export { DEFAULT_BOUNDED_LOAD, DEFAULT_SHARD_CACHE_SIZE, ShardKeyPicker, shardIdentity, shardKeyOrder } from './shard-key.js';
export { WeightedRoundRobinPicker } from './weighted-round-robin.js';

/** Names of the built-in pickers. */
export type PickerName = 'round-robin' | 'random' | 'least-request' | 'least-latency' | 'weighted-round-robin' | 'shard-key';

/** Shared services a picker may use; injected so tests control time and randomness. */
export interface PickerContext {
  readonly random: () => number;
  readonly clock: () => number;
}

export const pickerNames: readonly PickerName[] = [
  'round-robin',
  'random',
  'least-request',
  'least-latency',
  'weighted-round-robin',
  'shard-key',
];

export interface RoundRobinPickerOptions {
  readonly type: 'round-robin';
}
export interface RandomPickerOptions {
  readonly type: 'random';
}
/** P2C on in-flight requests. */
export interface LeastRequestPickerOptions {
  readonly type: 'least-request';
}
/**
 * P2C on an expected wait: mean latency × (1 + in-flight/2) by default, or peak-EWMA × (in-flight + 1)
 * with `estimator: 'peak-ewma'`. Decay, averaging time and default RTT are the balancer's `latency` option.
 */
export interface LeastLatencyPickerOptions {
  readonly type: 'least-latency';
  /**
   * `'mean'` (default): mean latency over ~1 s (`latency.averageMs`) × (1 + in-flight / 2).
   * `'peak-ewma'`: peak-EWMA (`latency.decayMs`) × (in-flight + 1), Finagle's and Linkerd's rule.
   * Measured side by side in docs/benchmarks.md ("Least-latency on real pods").
   */
  readonly estimator?: LatencyEstimator;
}
/** Smooth weighted round-robin over endpoint weights (SRV weight, or `weight` in a static list). */
export interface WeightedRoundRobinPickerOptions {
  readonly type: 'weighted-round-robin';
}
/** Consistent hashing of `key` onto the endpoints' stable identities (rendezvous hashing). */
export interface ShardKeyPickerOptions {
  readonly type: 'shard-key';
  /** Picker for requests without a key. Default `'round-robin'`. */
  readonly fallback?: Exclude<PickerName, 'shard-key'> | Picker | Exclude<PickerOptions, ShardKeyPickerOptions>;
  /**
   * Bounded-load mode: capacity factor c ≥ 1 (`true` = 1.25). An endpoint takes a key's request
   * only while it has fewer than ⌈c × average in-flight⌉ requests; the overflow goes to the key's
   * next endpoint. Off by default.
   */
  readonly boundedLoad?: boolean | number;
  /** Entries of the lookup table that caches keys' first choices (default 4096; 0 disables). */
  readonly cacheSize?: number;
}

/** A built-in picker with its options. */
export type PickerOptions =
  | RoundRobinPickerOptions
  | RandomPickerOptions
  | LeastRequestPickerOptions
  | LeastLatencyPickerOptions
  | WeightedRoundRobinPickerOptions
  | ShardKeyPickerOptions;

/**
 * How a picker is chosen (the `picker` option): a built-in name, a built-in with options
 * (`{ type: 'shard-key', boundedLoad: 1.25 }`), or your own Picker.
 */
export type PickerSpec = PickerName | PickerOptions | Picker;

const OPTION_KEYS: Readonly<Record<PickerName, readonly string[]>> = {
  'round-robin': [],
  random: [],
  'least-request': [],
  'least-latency': ['estimator'],
  'weighted-round-robin': [],
  'shard-key': ['fallback', 'boundedLoad', 'cacheSize'],
};

/** Load-metric settings people may look for on the picker; they belong to the balancer. */
const BALANCER_LEVEL_KEYS: Readonly<Record<string, string>> = {
  decayMs: 'latency.decayMs',
  defaultRttMs: 'latency.defaultRttMs',
};

const MAX_CACHE_SIZE = 1 << 20;

/** Builds a picker from its name or options, or returns the user's own picker. */
export function createPicker(spec: PickerSpec, context: PickerContext, field = 'picker'): Picker {
  if (isCustomPicker(spec)) return spec;
  if (typeof spec === 'string') return build(spec, undefined, context, field);
  if (typeof spec === 'object' && spec !== null && typeof (spec as { type?: unknown }).type === 'string') {
    return build((spec as { type: string }).type, spec as PickerOptions, context, field);
  }
  throw new InvalidOptionError(field, spec, expectedSpec());
}

function build(name: string, options: PickerOptions | undefined, context: PickerContext, field: string): Picker {
  const typeField = options === undefined ? field : `${field}.type`;
  if (!isPickerName(name)) throw new InvalidOptionError(typeField, name, expectedSpec());
  if (options !== undefined) rejectUnknownKeys(name, options, field);
  switch (name) {
    case 'round-robin':
      return new RoundRobinPicker(context.random);
    case 'random':
      return new RandomPicker(context.random);
    case 'least-request':
      return new LeastRequestPicker(context.random);
    case 'least-latency': {
      const estimator = (options as LeastLatencyPickerOptions | undefined)?.estimator ?? 'mean';
      if (estimator !== 'peak-ewma' && estimator !== 'mean')
        throw new InvalidOptionError(`${field}.estimator`, estimator, "'peak-ewma' or 'mean'");
      return new LeastLatencyPicker(context.random, estimator);
    }
    case 'weighted-round-robin':
      return new WeightedRoundRobinPicker(context.random);
    case 'shard-key':
      return buildShardKey(options as ShardKeyPickerOptions | undefined, context, field);
  }
}

function buildShardKey(options: ShardKeyPickerOptions | undefined, context: PickerContext, field: string): Picker {
  const fallbackSpec = options?.fallback ?? 'round-robin';
  const fallbackType =
    typeof fallbackSpec === 'object' && fallbackSpec !== null && !isCustomPicker(fallbackSpec)
      ? (fallbackSpec as { type?: unknown }).type
      : fallbackSpec;
  if (fallbackType === 'shard-key') {
    throw new InvalidOptionError(`${field}.fallback`, fallbackSpec, 'a picker for requests without a key (not shard-key)');
  }
  const fallback = createPicker(fallbackSpec as PickerSpec, context, `${field}.fallback`);

  const bounded = options?.boundedLoad;
  let boundedLoad: number | undefined;
  if (bounded === true) boundedLoad = DEFAULT_BOUNDED_LOAD;
  else if (bounded === undefined || bounded === false) boundedLoad = undefined;
  else if (typeof bounded === 'number' && Number.isFinite(bounded) && bounded >= 1) boundedLoad = bounded;
  else throw new InvalidOptionError(`${field}.boundedLoad`, bounded, 'a capacity factor ≥ 1 (e.g. 1.25), true (1.25) or false');

  const cacheSize = options?.cacheSize;
  if (cacheSize !== undefined && !(Number.isInteger(cacheSize) && cacheSize >= 0 && cacheSize <= MAX_CACHE_SIZE)) {
    throw new InvalidOptionError(`${field}.cacheSize`, cacheSize, `an integer from 0 to ${MAX_CACHE_SIZE}`);
  }
  return new ShardKeyPicker({ fallback, boundedLoad, cacheSize });
}

function rejectUnknownKeys(name: PickerName, options: PickerOptions, field: string): void {
  const known = OPTION_KEYS[name];
  for (const key of Object.keys(options)) {
    if (key === 'type' || known.includes(key)) continue;
    const value = (options as unknown as Record<string, unknown>)[key];
    const balancerKey = BALANCER_LEVEL_KEYS[key];
    const expected =
      balancerKey !== undefined
        ? `no picker option; set the balancer's ${balancerKey} instead`
        : known.length === 0
          ? `no option: '${name}' takes none`
          : `one of ${known.map((k) => `'${k}'`).join(', ')} for '${name}'`;
    throw new InvalidOptionError(`${field}.${key}`, value, expected);
  }
}

function isCustomPicker(spec: unknown): spec is Picker {
  return typeof spec === 'object' && spec !== null && typeof (spec as { pick?: unknown }).pick === 'function';
}

function isPickerName(name: string): name is PickerName {
  return (pickerNames as readonly string[]).includes(name);
}

function expectedSpec(): string {
  return `one of ${pickerNames.map((n) => `'${n}'`).join(', ')}, an object { type, ...options }, or an object with a pick() method`;
}
