import type { DiscoveryUpdate } from './discovery/source.js';
import type { ResolutionError } from './errors.js';

/**
 * One lookup, as the balancer's 'lookup' event reports it: what was asked, who answered and with
 * what TTL, and when the next lookup is due. Emitted after every lookup that reports (success,
 * empty answer or failure), after that lookup's other events, so the pool is already updated.
 * The DNS fields are undefined for a static list.
 */
export interface LookupEvent {
  readonly outcome: 'endpoints' | 'empty' | 'error';
  /** Endpoints the answer gave (0 when empty or failed). */
  readonly endpoints: number;
  /** Names asked, in search-list order, up to the one that answered: the search expansion. */
  readonly asked: readonly string[];
  /** The name whose records were used. */
  readonly answeredName: string | undefined;
  /** The DNS server of the last answer, 'ip:port' (for a failure, the server that failed). */
  readonly server: string | undefined;
  /** NXDOMAIN or NODATA, for an empty answer. */
  readonly rcode: 'NXDOMAIN' | 'NODATA' | undefined;
  /** Record TTL (negative-caching TTL when empty), ms; undefined after a failure. */
  readonly ttlMs: number | undefined;
  /** Ms from now to the next lookup (the TTL refresh, a follow-up, or a failure backoff). */
  readonly nextLookupInMs: number | undefined;
  readonly durationMs: number;
  readonly error: ResolutionError | undefined;
}

/** The 'lookup' event of a discovery update. */
export function lookupEvent(update: DiscoveryUpdate): LookupEvent {
  const details = update.details;
  return {
    outcome: update.kind === 'targets' ? 'endpoints' : update.kind,
    endpoints: update.kind === 'targets' ? update.targets.length : 0,
    asked: details?.asked ?? [],
    answeredName: details?.answeredName,
    server: details?.server,
    rcode: details?.rcode,
    ttlMs: details?.ttlMs ?? (update.kind === 'targets' ? update.ttlMs : undefined),
    nextLookupInMs: details?.nextLookupInMs ?? (update.kind === 'error' ? update.retryInMs : undefined),
    durationMs: update.durationMs,
    error: update.kind === 'error' ? update.error : undefined,
  };
}
