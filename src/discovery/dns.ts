import type { Clock } from '../clock.js';
import { ResolutionError } from '../errors.js';
import { timerDelay } from '../timer-delay.js';
import type { DnsResolver } from './dns-resolver.js';
import { LookupReport } from './lookup-report.js';
import type { DiscoverySource, DiscoveryUpdate, LookupDetails } from './source.js';

export interface RefreshPolicy {
  /** Floor of the refresh interval, ms (also the first failure backoff). */
  readonly minMs: number;
  /** Ceiling of the refresh interval and of the failure backoff, ms. */
  readonly maxMs: number;
  /** Fraction by which a refresh is brought forward at random (0.1 = up to 10% early). */
  readonly jitter: number;
}

export interface DnsDiscoveryOptions {
  readonly service: string;
  readonly resolver: DnsResolver;
  readonly refresh: RefreshPolicy;
  /** How long an authoritative empty answer must last before the pool is emptied, ms. */
  readonly emptyGraceMs: number;
  readonly clock: Clock;
  readonly random: () => number;
}

/**
 * Keeps a service's targets current: re-queries when the shortest record TTL runs out (clamped
 * and jittered; behind a cache, just after the cache's copy expires), keeps the last good answer
 * and backs off exponentially on failures, and runs at most one lookup at a time.
 */
export class DnsDiscovery implements DiscoverySource {
  private onUpdate: ((update: DiscoveryUpdate) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private failures = 0;
  private emptySince: number | undefined;
  private lastLookupAt = Number.NEGATIVE_INFINITY;
  /** Identities of the last answer, to notice removals. */
  private lastIds: ReadonlySet<string> = new Set();
  /** While following up a removal: the current follow-up interval, doubling from `minMs`. */
  private followUpMs: number | undefined;
  private timerDueAt = Number.POSITIVE_INFINITY;
  private closed = false;
  /** What lookups that sent no update set aside (an empty answer within the grace period): sent with the next update. */
  private unreported = new LookupReport();
  private readonly cache = new CacheCopy();

  constructor(private readonly options: DnsDiscoveryOptions) {}

  start(onUpdate: (update: DiscoveryUpdate) => void): void {
    this.onUpdate = onUpdate;
    void this.refresh();
  }

  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.inflight !== undefined) return this.inflight;
    const lookup = this.lookup().finally(() => {
      if (this.inflight === lookup) this.inflight = undefined;
    });
    this.inflight = lookup;
    return lookup;
  }

  /**
   * A refused connection suggests the pod is gone: look up now rather than at the TTL, but never
   * sooner than `refresh.minMs` after the previous lookup (grpc-js re-resolves on connection loss
   * the same way, with a floor).
   */
  hint(): void {
    if (this.closed || this.inflight !== undefined) return;
    const earliest = this.lastLookupAt + this.options.refresh.minMs;
    const now = this.options.clock();
    if (now >= earliest) {
      void this.refresh();
    } else if (earliest < this.timerDueAt) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.schedule(earliest - now);
    }
  }

  close(): void {
    this.closed = true;
    this.onUpdate = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
  }

  private async lookup(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const { clock, refresh } = this.options;
    const started = clock();
    this.lastLookupAt = started;
    let update: DiscoveryUpdate | undefined;
    let nextMs: number;
    let details: Omit<LookupDetails, 'nextLookupInMs'>;
    const report = this.unreported;
    try {
      const resolution = await this.options.resolver.resolve(this.abort.signal, report);
      const answered = resolution.kind === 'targets';
      details = {
        asked: resolution.asked ?? [],
        answeredName: answered ? resolution.name : undefined,
        server: resolution.server,
        rcode: answered ? undefined : resolution.rcode,
        ttlMs: resolution.ttl * 1000,
      };
      const durationMs = clock() - started;
      this.failures = 0;
      if (resolution.kind === 'targets') {
        this.emptySince = undefined;
        const ttlMs = resolution.ttl * 1000;
        const answeredAt = clock();
        this.cache.observe(resolution.ttl, started, answeredAt);
        const ttlDelayMs =
          this.cache.nextLookupMs(answeredAt, refresh, this.options.random) ?? this.jittered(clamp(ttlMs, refresh.minMs, refresh.maxMs));
        nextMs = this.followUp(
          resolution.targets.map((t) => t.id),
          ttlDelayMs,
        );
        update = { kind: 'targets', targets: resolution.targets, ttlMs, queries: resolution.queries, durationMs };
      } else {
        const now = clock();
        this.emptySince ??= now;
        const waited = now - this.emptySince;
        nextMs = this.jittered(clamp(resolution.ttl * 1000, refresh.minMs, refresh.maxMs));
        if (waited >= this.options.emptyGraceMs) {
          update = {
            kind: 'empty',
            reason: resolution.detail ?? `DNS answered ${resolution.rcode}`,
            queries: resolution.queries,
            durationMs,
          };
        } else {
          // Look again when the grace period ends rather than a whole TTL later.
          nextMs = Math.max(1, Math.min(nextMs, this.options.emptyGraceMs - waited));
        }
      }
    } catch (error) {
      if (this.closed) return;
      this.failures++;
      nextMs = this.backoff();
      const resolutionError =
        error instanceof ResolutionError
          ? error
          : new ResolutionError(this.options.service, 'OTHER', String((error as Error)?.message ?? error), { cause: error });
      update = { kind: 'error', error: resolutionError, retryInMs: nextMs, durationMs: clock() - started };
      details = {
        asked: [...this.options.resolver.asked],
        answeredName: undefined,
        server: resolutionError.server,
        rcode: undefined,
        ttlMs: undefined,
      };
    }
    if (this.closed) return;
    this.schedule(nextMs);
    if (update === undefined) return;
    update = { ...update, details: { ...details, nextLookupInMs: nextMs } };
    this.unreported = new LookupReport();
    if (report.skipped.length > 0) update = { ...update, skipped: report.skipped };
    if (report.droppedMessages > 0) update = { ...update, droppedMessages: report.droppedMessages };
    // The answer is in: a refresh() asked for by a listener of this update (one awaiting ready(),
    // say) wants a new lookup, not this one.
    this.inflight = undefined;
    this.onUpdate?.(update);
  }

  /**
   * A pod that leaves DNS is often the first half of a replacement (a rolling update, a
   * StatefulSet pod restarting with a new IP): after a removal, look again at `minMs`, then at
   * twice that, and so on until the TTL interval is reached, so the replacement is found within
   * about a second of entering DNS rather than a TTL later. Costs a few queries per removal.
   */
  private followUp(ids: readonly string[], ttlDelayMs: number): number {
    const current = new Set(ids);
    let removed = false;
    for (const id of this.lastIds) {
      if (!current.has(id)) {
        removed = true;
        break;
      }
    }
    this.lastIds = current;
    if (removed) this.followUpMs = this.options.refresh.minMs;
    else if (this.followUpMs !== undefined) this.followUpMs *= 2;
    if (this.followUpMs === undefined || this.followUpMs >= ttlDelayMs) {
      this.followUpMs = undefined;
      return ttlDelayMs;
    }
    return this.followUpMs;
  }

  private schedule(delayMs: number): void {
    this.timerDueAt = this.options.clock() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDueAt = Number.POSITIVE_INFINITY;
      void this.refresh();
    }, timerDelay(delayMs));
    this.timer.unref();
  }

  /**
   * Brought forward by up to `jitter`, never later, so records are not used past their TTL;
   * never below the floor, which protects the DNS server.
   */
  private jittered(delayMs: number): number {
    const { minMs, jitter } = this.options.refresh;
    return Math.max(minMs, Math.round(delayMs * (1 - jitter * this.options.random())));
  }

  /** Exponential from minMs, capped at maxMs, with equal jitter (half fixed, half random). */
  private backoff(): number {
    const { minMs, maxMs } = this.options.refresh;
    const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(this.failures - 1, 30));
    return Math.max(1, Math.round(ceiling / 2 + (ceiling / 2) * this.options.random()));
  }
}

/**
 * Behind a cache, the lookups after its copy expires are spread over this many ms (a fleet behind
 * one cache does not arrive at the same instant), and lag the expiry by at most this much.
 */
const AFTER_EXPIRY_SPREAD_MS = 200;
const SECOND_MS = 1000;
/**
 * Looking up once a copy, just after it is fetched, we cannot tell a cache from an authority (both
 * answer the full TTL): after this many copies without seeing a TTL count down, look once mid-copy.
 */
const COPIES_BETWEEN_CHECKS = 4;

/**
 * What the TTLs of the answers say about a caching resolver between us and the authority (CoreDNS's
 * `cache`, NodeLocal DNSCache, Unbound). A cache answers from its copy with the TTL counting down in
 * whole seconds and asks the authority again only once the copy has expired: at one instant, the
 * same for every client behind it. Asking before that instant gets the old copy again; a lookup
 * should land just after it.
 *
 * An answer with TTL t says the copy expires t − 1 … t s after it (a cache that rounds up and
 * never serves TTL 0, like CoreDNS) or t … t + 1 s after it (one that serves a copy's last second
 * as TTL 0, like Unbound; assumed once a counted-down TTL 0 is seen). Answers from the same copy
 * narrow that second down; so does knowing that a new copy was fetched only after the last one
 * expired. While the window is wider than the spread, a lookup a whole number of seconds before its
 * middle tells by its TTL which half holds the expiry; such a lookup also checks, now and then, that
 * the answers still count down.
 */
class CacheCopy {
  /** The highest TTL of the answers since the model last held: what the cache got from the authority, s. */
  private fullTtl = -1;
  /** Answers have counted down: they come from a cache's copy. */
  private behindCache = false;
  /** Fresh copies since a TTL was last seen counting down. */
  private copiesUnchecked = 0;
  /** The cache serves a copy's last second as TTL 0 (Unbound) rather than rounding up (CoreDNS). */
  private lastSecondAsZero = false;
  /** The current copy expires after `after` and by `by` (clock ms). */
  private after = Number.NEGATIVE_INFINITY;
  private by = Number.POSITIVE_INFINITY;

  /** An answer of `ttl` seconds to a lookup sent at `sentAt` came back at `receivedAt`. */
  observe(ttl: number, sentAt: number, receivedAt: number): void {
    const sameCopy = sentAt <= this.by && this.overlaps(ttl, sentAt, receivedAt);
    if (ttl > this.fullTtl || (ttl === this.fullTtl && !sameCopy)) {
      // A fresh copy, or the authority itself. One that did not count down though the last copy
      // could not have expired yet means there is no cache (any more).
      if (sentAt <= this.after) this.behindCache = false;
      this.copiesUnchecked++;
      const previousAfter = this.after;
      this.fullTtl = ttl;
      this.setWindow(ttl, sentAt, receivedAt);
      // It was fetched once the previous copy had expired, which was after `previousAfter`.
      if (this.behindCache) this.narrow(previousAfter + (this.secondsLeft(ttl) + 1) * SECOND_MS, this.by, ttl, sentAt, receivedAt);
      return;
    }
    if (sentAt > this.by) {
      // Counted down, yet the copy we knew of has expired: another cache, a stale copy, or a lower
      // TTL at the authority. Take this answer as it is.
      this.fullTtl = ttl;
      this.setWindow(ttl, sentAt, receivedAt);
      return;
    }
    if (ttl < this.fullTtl) {
      this.behindCache = true;
      this.copiesUnchecked = 0;
    }
    if (ttl === 0 && this.behindCache && !this.lastSecondAsZero) {
      this.lastSecondAsZero = true;
      this.setWindow(ttl, sentAt, receivedAt);
      return;
    }
    const left = this.secondsLeft(ttl);
    this.narrow(sentAt + left * SECOND_MS, receivedAt + (left + 1) * SECOND_MS, ttl, sentAt, receivedAt);
  }

  /**
   * Ms from `now` to the next lookup, never below `minMs`, nor above `maxMs`; undefined when the
   * answers come straight from an authority, or the copy outlives `maxMs` (then the TTL, clamped
   * and jittered earlier, is the rule).
   */
  nextLookupMs(now: number, refresh: RefreshPolicy, random: () => number): number | undefined {
    if (!this.behindCache || this.after - now > refresh.maxMs) return undefined;
    const width = this.by - this.after;
    let at = this.by + random() * Math.max(0, AFTER_EXPIRY_SPREAD_MS - width);
    if (width > AFTER_EXPIRY_SPREAD_MS || this.copiesUnchecked >= COPIES_BETWEEN_CHECKS) {
      const middle = (this.after + this.by) / 2;
      const seconds = Math.floor((middle - now - refresh.minMs) / SECOND_MS);
      if (seconds >= 1) at = middle - seconds * SECOND_MS;
    }
    return clamp(Math.round(at - now), refresh.minMs, refresh.maxMs);
  }

  /** Seconds the copy has at least left after an answer of `ttl` (less than a second more at most). */
  private secondsLeft(ttl: number): number {
    return this.lastSecondAsZero ? ttl : ttl - 1;
  }

  /** Whether an answer of `ttl` fits the current copy's window. */
  private overlaps(ttl: number, sentAt: number, receivedAt: number): boolean {
    const left = this.secondsLeft(ttl);
    return Math.max(this.after, sentAt + left * SECOND_MS) < Math.min(this.by, receivedAt + (left + 1) * SECOND_MS);
  }

  private setWindow(ttl: number, sentAt: number, receivedAt: number): void {
    this.after = sentAt + this.secondsLeft(ttl) * SECOND_MS;
    this.by = receivedAt + (this.secondsLeft(ttl) + 1) * SECOND_MS;
  }

  /** Intersects the window with (after, by]; when nothing is left, the model failed: start over from this answer. */
  private narrow(after: number, by: number, ttl: number, sentAt: number, receivedAt: number): void {
    const newAfter = Math.max(this.after, after);
    const newBy = Math.min(this.by, by);
    if (newAfter < newBy) {
      this.after = newAfter;
      this.by = newBy;
    } else {
      this.fullTtl = ttl;
      this.setWindow(ttl, sentAt, receivedAt);
    }
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
