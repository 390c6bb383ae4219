import type { Clock } from '../clock.js';
import { Endpoint, type EndpointMetricsOptions } from './endpoint.js';
import type { Target } from '../target.js';

/** What changed in the pool: reported once per real change. */
export interface PoolChange {
  readonly added: readonly Endpoint[];
  readonly removed: readonly Endpoint[];
  /** Endpoints that kept their identity but changed address, port, weight or priority. */
  readonly updated: readonly Endpoint[];
  /** The subset of `updated` whose address or port changed (a pod restarted with a new IP): move its connections. */
  readonly readdressed: readonly Endpoint[];
  /** The pool after the change. */
  readonly endpoints: readonly Endpoint[];
}

/**
 * Reconciles each discovery snapshot into long-lived Endpoint objects keyed by identity, so an
 * endpoint that survives a refresh keeps its statistics (and, in adapters, its connections).
 */
export class EndpointPool {
  private byId = new Map<string, Endpoint>();
  private list: readonly Endpoint[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly metrics: EndpointMetricsOptions,
  ) {}

  /** The current endpoints, in the order discovery reported them. A new array after every change. */
  get endpoints(): readonly Endpoint[] {
    return this.list;
  }

  get size(): number {
    return this.list.length;
  }

  /**
   * Applies a snapshot; returns the change, or undefined when nothing changed. Surviving
   * endpoints keep their order and new ones are appended, so a DNS server that shuffles its
   * records (CoreDNS does) causes no change at all.
   */
  update(targets: readonly Target[]): PoolChange | undefined {
    const incoming = new Map<string, Target>();
    for (const target of targets) if (!incoming.has(target.id)) incoming.set(target.id, target);
    const list: Endpoint[] = [];
    const added: Endpoint[] = [];
    const updated: Endpoint[] = [];
    const readdressed: Endpoint[] = [];
    const removed: Endpoint[] = [];
    for (const endpoint of this.list) {
      const target = incoming.get(endpoint.id);
      if (target === undefined) {
        endpoint.leavePool();
        removed.push(endpoint);
        continue;
      }
      const kind = endpoint.update(target);
      if (kind !== undefined) updated.push(endpoint);
      if (kind === 'readdressed') readdressed.push(endpoint);
      list.push(endpoint);
    }
    for (const [id, target] of incoming) {
      if (this.byId.has(id)) continue;
      const endpoint = new Endpoint(target, this.clock, this.metrics);
      added.push(endpoint);
      list.push(endpoint);
    }
    if (added.length === 0 && removed.length === 0 && updated.length === 0) return undefined;
    this.list = Object.freeze(list);
    this.byId = new Map(list.map((endpoint) => [endpoint.id, endpoint]));
    return { added, removed, updated, readdressed, endpoints: this.list };
  }

  /** Empties the pool (authoritative empty answer). */
  clear(): PoolChange | undefined {
    return this.update([]);
  }
}
