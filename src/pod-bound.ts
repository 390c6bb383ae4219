import { LRUCache } from 'lru-cache';
import { InvalidOptionError } from './errors.js';
import type { Endpoint } from './pool/endpoint.js';

/** The largest finite `maxPods`: far above any subset (at most 10,000 pods) and its room for keyed traffic. */
export const MAX_PODS_LIMIT = 1_000_000;

/** `maxPods` of an adapter: a positive integer, or `Infinity` for no bound. */
export function checkMaxPods(value: unknown, field: string): number {
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_PODS_LIMIT) {
    throw new InvalidOptionError(field, value, `an integer from 1 to ${MAX_PODS_LIMIT}, or Infinity for no bound`);
  }
  return value;
}

/**
 * The default bound for an adapter over `lb`: twice the subset size when subsetting is on (the
 * members, the pods that stand in for ejected ones, and room for keyed requests, which go over the
 * whole pool), else none: without a subset every pod is in use, and the pods that leave the
 * Service have their pools closed anyway.
 */
export function defaultMaxPods(lb: object): number {
  // Read from stats(), which a Balancer has; an adapter's balancer type does not require it.
  const stats = (lb as { stats?: () => { subset?: { size: number } } }).stats;
  const size = typeof stats === 'function' ? stats.call(lb).subset?.size : undefined;
  return size === undefined ? Number.POSITIVE_INFINITY : 2 * size;
}

/**
 * What an adapter holds open per pod (HTTP pools, gRPC channels), at most `max` pods' worth: when
 * one more pod is needed, the least recently used one's are handed to `evict`, which closes them
 * gracefully (their requests in flight finish). Each use (`get`) makes a pod the most recent.
 * Built on `lru-cache`; with `max` Infinity (the default without subsetting), a plain Map: nothing is
 * ever evicted, so a request pays for no recency bookkeeping.
 */
export class BoundedPods<V extends object> {
  private readonly cache: LRUCache<Endpoint, V> | Map<Endpoint, V>;
  private evicted = 0;

  constructor(
    readonly max: number,
    evict: (value: V, endpoint: Endpoint) => void,
  ) {
    const dispose = (value: V, endpoint: Endpoint, reason: LRUCache.DisposeReason): void => {
      if (reason !== 'evict') return; // deletes are the owner's own, and it handles their values
      this.evicted++;
      evict(value, endpoint);
    };
    this.cache = Number.isFinite(max) ? new LRUCache<Endpoint, V>({ max, dispose }) : new Map<Endpoint, V>();
  }

  /** This pod's value, made the most recently used. */
  get(endpoint: Endpoint): V | undefined {
    return this.cache.get(endpoint);
  }

  /** This pod's value, its recency unchanged. */
  peek(endpoint: Endpoint): V | undefined {
    return this.cache instanceof Map ? this.cache.get(endpoint) : this.cache.peek(endpoint);
  }

  /** Adds or replaces a pod's value (the most recent); may evict the least recent pod's. */
  set(endpoint: Endpoint, value: V): void {
    this.cache.set(endpoint, value);
  }

  /** Removes a pod's value without evicting it: the caller closes it as it sees fit. */
  delete(endpoint: Endpoint): void {
    this.cache.delete(endpoint);
  }

  has(endpoint: Endpoint): boolean {
    return this.cache.has(endpoint);
  }

  /** Pods held now. */
  get size(): number {
    return this.cache.size;
  }

  /** Pods whose values were evicted to make room, since the start. */
  get evictions(): number {
    return this.evicted;
  }

  /** A copy of the entries (most recently used first when bounded): safe to change the map while going over it. */
  entries(): [Endpoint, V][] {
    return [...this.cache.entries()];
  }

  /** The values (most recently used first when bounded; a live view: do not change the map while going over it). */
  values(): IterableIterator<V> {
    return this.cache.values();
  }

  /** Removes everything without evicting. */
  clear(): void {
    // clear() reports each value to dispose with reason 'delete', which is ignored.
    this.cache.clear();
  }
}
