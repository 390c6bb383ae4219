import type { Balancer, BalancerStats, Endpoint, LookupEvent } from '../index.js';
import type { WatchArgs } from './args.js';
import { createProber, type Prober } from './probe.js';
import { ProbeWindow } from './probe-window.js';
import { duration, podLabel } from './style.js';

/** One line of the event log; `data` is what `--json` prints. */
export interface LogEntry {
  readonly at: Date;
  readonly type: string;
  /** 'good' (added, recovered), 'bad' (ejected, DNS errors), or neutral. */
  readonly tone: 'good' | 'bad' | 'warn' | 'plain';
  readonly text: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Probe results per endpoint over this window. */
const PROBE_WINDOW_MS = 30_000;
const LOG_LIMIT = 500;

/**
 * What `watch` shows, kept up to date from the balancer's events and the probes it sends
 * through the balancer: the last lookup, the event log, per-endpoint probe windows.
 */
export class WatchSession {
  readonly log: LogEntry[] = [];
  lastLookup: LookupEvent | undefined;
  /** performance.now() of the last lookup event. */
  lastLookupAt = 0;
  private readonly windows = new Map<string, ProbeWindow>();
  /** Last known address per endpoint id, to say where a readdressed one came from. */
  private readonly addresses = new Map<string, string>();
  private readonly prober: Prober | undefined;
  private probesInFlight = 0;
  private closed = false;

  constructor(
    readonly lb: Balancer,
    readonly args: WatchArgs,
    private readonly onEntry: (entry: LogEntry) => void,
  ) {
    this.prober = args.probe === undefined ? undefined : createProber(args.probe);
    lb.on('lookup', (event) => {
      this.lastLookup = event;
      this.lastLookupAt = performance.now();
      this.onEntry({ at: new Date(), type: 'lookup', tone: 'plain', text: '', data: lookupData(event) });
    });
    lb.on('change', ({ added, removed, readdressed }) => {
      for (const e of added) this.add('added', 'good', `+ ${podLabel(e)} added at ${e.host}`, { endpoint: endpointData(e) });
      for (const e of removed) this.add('removed', 'warn', `- ${podLabel(e)} removed (was at ${e.host})`, { endpoint: endpointData(e) });
      for (const e of readdressed) {
        const from = this.addresses.get(e.id);
        this.add('readdressed', 'warn', `~ ${podLabel(e)} readdressed ${from ?? '?'} → ${e.address}`, {
          endpoint: endpointData(e),
          from: from ?? null,
          to: e.address,
        });
      }
      for (const e of removed) this.addresses.delete(e.id);
      for (const e of lb.endpoints()) this.addresses.set(e.id, e.address);
    });
    lb.on('eject', ({ endpoint, reason, durationMs }) =>
      this.add('eject', 'bad', `✗ ${podLabel(endpoint)} ejected (${reason}) for ${duration(durationMs)}`, {
        endpoint: endpointData(endpoint),
        reason,
        durationMs,
      }),
    );
    lb.on('return', (e) =>
      this.add('return', 'warn', `↺ ${podLabel(e)} returns from ejection, on probation`, { endpoint: endpointData(e) }),
    );
    lb.on('recover', (e) => this.add('recover', 'good', `✓ ${podLabel(e)} recovered (healthy)`, { endpoint: endpointData(e) }));
    lb.on('resolve-error', (error) =>
      this.add('resolve-error', 'bad', `DNS error: ${error.message}`, {
        reason: error.reason,
        server: error.server ?? null,
        message: error.message,
      }),
    );
    lb.on('empty', ({ reason }) => this.add('empty', 'bad', `DNS: no endpoints (${reason})`, { reason }));
    lb.on('records-skipped', ({ records }) => {
      const shown = records.slice(0, 3).map((r) => `${r.name} ${r.type} ${r.data} (${r.reason})`);
      const more = records.length > 3 ? ` and ${records.length - 3} more` : '';
      this.add('records-skipped', 'warn', `DNS records not used: ${shown.join(', ')}${more}`, { records });
    });
    lb.on('panic', ({ active, healthy, total }) =>
      this.add(
        'panic',
        active ? 'bad' : 'good',
        active ? `panic: only ${healthy} of ${total} healthy, using all` : `panic over: ${healthy} of ${total} healthy`,
        { active, healthy, total },
      ),
    );
  }

  /** Sends one probe per endpoint through the balancer (its picker chooses), unless the last round is still out. */
  probeRound(): void {
    if (this.prober === undefined || this.closed) return;
    const size = Math.max(1, this.lb.endpoints().length);
    const timeoutMs = Math.max(1000, this.args.intervalMs);
    for (let i = 0; i < size && this.probesInFlight < 2 * size; i++) {
      this.probesInFlight++;
      this.lb
        .run((endpoint, { signal }) => this.probeOne(endpoint, signal), { idempotent: true, timeoutMs, attemptTimeoutMs: timeoutMs })
        .catch(() => {}) // each attempt's outcome is recorded; the call's is the balancer's business
        .finally(() => this.probesInFlight--);
    }
  }

  private async probeOne(endpoint: Endpoint, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    try {
      await this.prober!.probe(endpoint, signal);
      this.window(endpoint.id).record(performance.now(), performance.now() - started, true);
    } catch (error) {
      if (!this.closed) this.window(endpoint.id).record(performance.now(), performance.now() - started, false);
      throw error;
    }
  }

  probeSummary(id: string, now: number) {
    return this.windows.get(id)?.summary(now);
  }

  /** Probe windows of endpoints that left the pool are dropped. */
  stats(): BalancerStats {
    const stats = this.lb.stats();
    if (this.windows.size > stats.endpoints.length) {
      const ids = new Set(stats.endpoints.map((e) => e.id));
      for (const id of this.windows.keys()) if (!ids.has(id)) this.windows.delete(id);
    }
    return stats;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.lb.close();
    this.prober?.close();
  }

  private window(id: string): ProbeWindow {
    let window = this.windows.get(id);
    if (window === undefined) this.windows.set(id, (window = new ProbeWindow(PROBE_WINDOW_MS)));
    return window;
  }

  private add(type: string, tone: LogEntry['tone'], text: string, data: Record<string, unknown>): void {
    const entry: LogEntry = { at: new Date(), type, tone, text, data };
    this.log.push(entry);
    if (this.log.length > LOG_LIMIT) this.log.shift();
    this.onEntry(entry);
  }
}

export function endpointData(e: {
  readonly id: string;
  readonly name: string | undefined;
  readonly address: string;
  readonly port: number;
}) {
  return { id: e.id, pod: podLabel(e), name: e.name ?? null, address: e.address, port: e.port };
}

export function lookupData(event: LookupEvent) {
  return {
    outcome: event.outcome,
    endpoints: event.endpoints,
    asked: event.asked,
    answeredName: event.answeredName ?? null,
    server: event.server ?? null,
    rcode: event.rcode ?? null,
    ttlMs: event.ttlMs ?? null,
    nextLookupInMs: event.nextLookupInMs ?? null,
    durationMs: Math.round(event.durationMs * 1000) / 1000,
    error: event.error?.message ?? null,
  };
}
