import type { ResolutionError } from '../errors.js';
import type { Target } from '../target.js';
import type { SkippedRecord } from './lookup-report.js';

/** What a discovery source reports after each lookup. */
export type DiscoveryUpdate =
  /** The current set of targets (never empty). */
  (
    | {
        readonly kind: 'targets';
        readonly targets: readonly Target[];
        readonly ttlMs: number;
        readonly queries: number;
        readonly durationMs: number;
      }
    /** An authoritative statement that the service has no ready endpoints (after any grace period). */
    | { readonly kind: 'empty'; readonly reason: string; readonly queries: number; readonly durationMs: number }
    /** The lookup failed; the last known targets still stand. */
    | { readonly kind: 'error'; readonly error: ResolutionError; readonly retryInMs: number; readonly durationMs: number }
  ) &
    SetAside & { readonly details?: LookupDetails };

/** What a DNS lookup asked and was told, for observers (the balancer's 'lookup' event). */
export interface LookupDetails {
  /** Names asked, in search-list order, up to the one that answered. */
  readonly asked: readonly string[];
  /** The name whose records were used (undefined when none had any, or the lookup failed). */
  readonly answeredName: string | undefined;
  /** The DNS server of the last answer, 'ip:port' (for a failure, the error's server). */
  readonly server: string | undefined;
  /** NXDOMAIN or NODATA for an empty answer. */
  readonly rcode: 'NXDOMAIN' | 'NODATA' | undefined;
  /** The answer's TTL (the negative-caching TTL for an empty one), ms; undefined after a failure. */
  readonly ttlMs: number | undefined;
  /** When discovery looks up next, ms from the end of this lookup. */
  readonly nextLookupInMs: number;
}

/** What a lookup received but did not use, on an update of any kind. */
export interface SetAside {
  /** Records not used, each with the reason. */
  readonly skipped?: readonly SkippedRecord[];
  /** Messages dropped as not the genuine answer (undecodable, wrong ID, wrong question). */
  readonly droppedMessages?: number;
}

/**
 * Where endpoints come from. DNS is the first source and a static list the second; a
 * Kubernetes EndpointSlice watcher can be added later by implementing this interface.
 */
export interface DiscoverySource {
  /** Starts discovery; `onUpdate` is called after every lookup. */
  start(onUpdate: (update: DiscoveryUpdate) => void): void;
  /** Looks up now (joining a lookup already in flight) and resolves when it is done. */
  refresh(): Promise<void>;
  /**
   * Evidence that the last answer may be stale (a connection to an endpoint was refused): look up
   * again soon, as rate limits allow. Optional.
   */
  hint?(): void;
  /** Stops timers and cancels work in flight. */
  close(): void;
}
