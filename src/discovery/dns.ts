import type { Clock } from '../clock.js';
import { ResolutionError } from '../errors.js';
import { timerDelay } from '../timer-delay.js';
import type { DnsResolver } from './dns-resolver.js';
import { LookupReport } from './lookup-report.js';
import type { DiscoverySource, DiscoveryUpdate } from './source.js';

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
 * and jittered), keeps the last good answer and backs off exponentially on failures, and runs
 * at most one lookup at a time.
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
    const report = this.unreported;
    try {
      const resolution = await this.options.resolver.resolve(this.abort.signal, report);
      const durationMs = clock() - started;
      this.failures = 0;
      if (resolution.kind === 'targets') {
        this.emptySince = undefined;
        const ttlMs = resolution.ttl * 1000;
        nextMs = this.followUp(resolution.targets.map((t) => t.id), this.jittered(clamp(ttlMs, refresh.minMs, refresh.maxMs)));
        update = { kind: 'targets', targets: resolution.targets, ttlMs, queries: resolution.queries, durationMs };
      } else {
        const now = clock();
        this.emptySince ??= now;
        const waited = now - this.emptySince;
        nextMs = this.jittered(clamp(resolution.ttl * 1000, refresh.minMs, refresh.maxMs));
        if (waited >= this.options.emptyGraceMs) {
          update = { kind: 'empty', reason: resolution.detail ?? `DNS answered ${resolution.rcode}`, queries: resolution.queries, durationMs };
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
        error instanceof ResolutionError ? error : new ResolutionError(this.options.service, 'OTHER', String((error as Error)?.message ?? error), { cause: error });
      update = { kind: 'error', error: resolutionError, retryInMs: nextMs, durationMs: clock() - started };
    }
    if (this.closed) return;
    this.schedule(nextMs);
    if (update === undefined) return;
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

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
