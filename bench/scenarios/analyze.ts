/**
 * Metrics of one trial (one contender through one scenario), from the client's per-request
 * records, its per-IP attempt counts, the scenario's event times and the DNS proxy's log.
 */
import type { DnsQueryLog } from './dns-proxy.js';
import { RECORD_FIELDS, type ClientSummary, type ContenderId } from './protocol.js';
import type { ScenarioId } from './scenarios.js';
import { median, quantile } from '../support/measure.js';

/** Without an attempt hook, unattributed failures this close to the event (or to the previous one counted) are the dead pod's. */
export const UNATTRIBUTED_CHAIN_MS = 1000;

/**
 * For contenders without an attempt hook (grpc-js): the record indexes of failures that name no pod
 * but are taken as attempts on the dead pod — those started after the event in one chain of gaps
 * under UNATTRIBUTED_CHAIN_MS from it. A lone failure much later (grpc-js: a GOAWAY race on a
 * healthy pod, "Stream refused by server") is not the dead pod's.
 */
function unattributedDeadFailures(records: Float64Array, changeRel: number): Set<number> {
  const n = records.length / RECORD_FIELDS;
  const candidates: { i: number; start: number }[] = [];
  for (let i = 0; i < n; i++) {
    const at = i * RECORD_FIELDS;
    if (records[at + 3] === 0 && records[at + 2] === -1 && records[at]! >= changeRel) candidates.push({ i, start: records[at]! });
  }
  candidates.sort((a, b) => a.start - b.start);
  const out = new Set<number>();
  let last = changeRel;
  for (const c of candidates) {
    if (c.start - last > UNATTRIBUTED_CHAIN_MS) break;
    out.add(c.i);
    last = c.start;
  }
  return out;
}

/** Time series bucket of the charts, ms. */
export const SERIES_BUCKET_MS = 250;
/** Queries closer together than this are one refresh. */
export const REFRESH_GAP_MS = 250;
/** Percentiles of the S4 latency curve (the "nines" scale: 0, 90, 99, 99.9, 99.99). */
export const CURVE_NINES = Array.from({ length: 81 }, (_, i) => i * 0.05); // 0 … 4 nines

export interface TrialInput {
  readonly scenario: ScenarioId;
  readonly contender: ContenderId;
  readonly run: number;
  readonly summary: ClientSummary;
  readonly records: Float64Array;
  readonly events: Readonly<Record<string, number>>;
  readonly roles: { readonly newIp?: string; readonly deadIp?: string; readonly slowIp?: string };
  readonly dns: readonly DnsQueryLog[];
  /** Epoch ms the client process was spawned (DNS queries count from here). */
  readonly spawnedAt: number;
}

export interface DnsMetrics {
  readonly queries: number;
  readonly refreshes: number;
  readonly perRefreshMedian: number;
  readonly perRefreshMax: number;
  /** e.g. `{ SRV: 3, A: 0 }` */
  readonly byType: Readonly<Record<string, number>>;
}

export interface TrialMetrics {
  readonly scenario: ScenarioId;
  readonly contender: ContenderId;
  readonly run: number;
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  readonly failedPct: number;
  /** Successful requests per second over the whole window. */
  readonly throughput: number;
  /** Latency of successful requests sent after `measureFrom`, ms. */
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  /** S1, S5: seconds from the new pod's DNS add to its first answered request; null: never. */
  readonly newFirstS: number | null | undefined;
  /** S2, S3, S5: seconds after the event of the last attempt on the dead/removed pod (0: none after it). */
  readonly deadLastTriedS: number | undefined;
  /** The dead pod was still tried in the last 0.5 s of the run. */
  readonly deadTriedUntilEnd: boolean | undefined;
  /** S4: share of requests answered by the slow pod, %. */
  readonly slowSharePct: number | undefined;
  /** How long the run went on after the event, s ("never (≥ x s)"). */
  readonly afterEventS: number;
  readonly dns: DnsMetrics;
  /** Where attempts were seen: below the contender, or only from its results (grpc-js). */
  readonly attemptSource: 'hook' | 'results';
  readonly errors: ClientSummary['errors'];
  /** Per answering pod (by role: new, dead, slow, or its IP): answered requests and their latency, after warm-up. */
  readonly perPod: Readonly<Record<string, { readonly ok: number; readonly p50: number; readonly p99: number }>>;
  /** Chart data: [seconds since the event, value]. */
  readonly series: readonly (readonly [number, number])[];
}

export function dnsMetrics(queries: readonly DnsQueryLog[], from: number, to: number): DnsMetrics {
  const inWindow = queries.filter((q) => q.at >= from && q.at <= to).sort((a, b) => a.at - b.at);
  const bursts: number[] = [];
  let last = Number.NEGATIVE_INFINITY;
  for (const query of inWindow) {
    if (query.at - last > REFRESH_GAP_MS) bursts.push(0);
    bursts[bursts.length - 1]!++;
    last = query.at;
  }
  const byType: Record<string, number> = {};
  for (const query of inWindow) byType[query.type] = (byType[query.type] ?? 0) + 1;
  return {
    queries: inWindow.length,
    refreshes: bursts.length,
    perRefreshMedian: bursts.length === 0 ? 0 : median(bursts),
    perRefreshMax: bursts.length === 0 ? 0 : Math.max(...bursts),
    byType,
  };
}

export function analyze(input: TrialInput): TrialMetrics {
  const { summary, records, events, roles } = input;
  const loadStart = summary.loadStart;
  const windowS = (summary.loadEnd - loadStart) / 1000;
  const n = records.length / RECORD_FIELDS;
  const ipIndex = (ip: string | undefined): number => (ip === undefined ? -2 : summary.ips.indexOf(ip));
  const change = events.change ?? loadStart;
  const changeRel = change - loadStart;
  const measureFrom = input.scenario === 'S4' ? changeRel : 1000;

  // latency of successful requests after warm-up
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const at = i * RECORD_FIELDS;
    if (records[at + 3] === 1 && records[at]! >= measureFrom) latencies.push(records[at + 1]! - records[at]!);
  }
  const sorted = Float64Array.from(latencies).sort();

  // first answered request from a pod, by its request start (ms after loadStart)
  const firstOk = (ip: string | undefined): number | undefined => {
    const index = ipIndex(ip);
    if (index < 0) return undefined;
    let first: number | undefined;
    for (let i = 0; i < n; i++) {
      const at = i * RECORD_FIELDS;
      if (records[at + 2] === index && records[at + 3] === 1 && (first === undefined || records[at]! < first)) first = records[at]!;
    }
    return first;
  };

  // last attempt on a pod (ms after loadStart): seen by the hook, or from the results
  const hook = summary.attempts;
  const lastAttempt = (ip: string): number | undefined => {
    if (hook !== null) return hook[ip]?.last;
    const index = ipIndex(ip);
    const unattributed = unattributedDeadFailures(records, changeRel);
    let last: number | undefined;
    for (let i = 0; i < n; i++) {
      const at = i * RECORD_FIELDS;
      const mine = records[at + 2] === index || unattributed.has(i);
      if (mine && (last === undefined || records[at]! > last)) last = records[at]!;
    }
    return last;
  };

  let newFirstS: number | null | undefined;
  if (input.scenario === 'S1' || input.scenario === 'S5') {
    const added = input.scenario === 'S5' ? events.newInDns : events.change;
    const first = firstOk(roles.newIp);
    newFirstS = first === undefined || added === undefined ? null : Math.max(0, (loadStart + first - added) / 1000);
  }

  let deadLastTriedS: number | undefined;
  let deadTriedUntilEnd: boolean | undefined;
  if ((input.scenario === 'S2' || input.scenario === 'S3' || input.scenario === 'S5') && roles.deadIp !== undefined) {
    const last = lastAttempt(roles.deadIp);
    deadLastTriedS = last === undefined || last <= changeRel ? 0 : (last - changeRel) / 1000;
    deadTriedUntilEnd = last !== undefined && loadStart + last > summary.loadEnd - 500;
  }

  let slowSharePct: number | undefined;
  if (input.scenario === 'S4') {
    const slow = ipIndex(roles.slowIp);
    let total = 0;
    let onSlow = 0;
    for (let i = 0; i < n; i++) {
      const at = i * RECORD_FIELDS;
      if (records[at]! < measureFrom) continue;
      total++;
      if (records[at + 2] === slow) onSlow++;
    }
    slowSharePct = total === 0 ? 0 : (onSlow / total) * 100;
  }

  return {
    scenario: input.scenario,
    contender: input.contender,
    run: input.run,
    requests: summary.requests,
    ok: summary.ok,
    failed: summary.failed,
    failedPct: summary.requests === 0 ? 0 : (summary.failed / summary.requests) * 100,
    throughput: summary.ok / windowS,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    newFirstS,
    deadLastTriedS,
    deadTriedUntilEnd,
    slowSharePct,
    afterEventS: (summary.loadEnd - change) / 1000,
    dns: dnsMetrics(input.dns, input.spawnedAt, summary.loadEnd),
    attemptSource: hook === null ? 'results' : 'hook',
    errors: summary.errors,
    perPod: perPod(input, measureFrom),
    series: series(input, sorted, changeRel),
  };
}

function perPod(input: TrialInput, measureFrom: number): Record<string, { ok: number; p50: number; p99: number }> {
  const { summary, records, roles } = input;
  const n = records.length / RECORD_FIELDS;
  const byIndex = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const at = i * RECORD_FIELDS;
    if (records[at + 3] !== 1 || records[at]! < measureFrom) continue;
    const index = records[at + 2]!;
    let list = byIndex.get(index);
    if (list === undefined) byIndex.set(index, (list = []));
    list.push(records[at + 1]! - records[at]!);
  }
  const out: Record<string, { ok: number; p50: number; p99: number }> = {};
  for (const [index, list] of byIndex) {
    const ip = summary.ips[index] ?? 'unknown';
    const name = ip === roles.newIp ? 'new' : ip === roles.deadIp ? 'dead' : ip === roles.slowIp ? 'slow' : ip;
    const sorted = Float64Array.from(list).sort();
    out[name] = { ok: list.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
  }
  return out;
}

/** Chart data for the scenario, x in seconds since the event. */
function series(input: TrialInput, sortedLatencies: Float64Array, changeRel: number): [number, number][] {
  const { summary, records, roles } = input;
  const n = records.length / RECORD_FIELDS;
  if (input.scenario === 'S4') {
    // latency at each percentile of the nines scale: [nines, ms]
    return CURVE_NINES.filter((nines) => sortedLatencies.length * 10 ** -nines >= 1).map((nines) => [
      nines,
      quantile(sortedLatencies, 1 - 10 ** -nines),
    ]);
  }
  const buckets = Math.ceil((summary.loadEnd - summary.loadStart) / SERIES_BUCKET_MS);
  const total = new Float64Array(buckets);
  const hit = new Float64Array(buckets);
  const toX = (b: number): number => ((b + 0.5) * SERIES_BUCKET_MS - changeRel) / 1000;
  if (input.scenario === 'S1' || input.scenario === 'S5') {
    // share of answered requests served by the new pod
    const index = summary.ips.indexOf(roles.newIp ?? '');
    for (let i = 0; i < n; i++) {
      const at = i * RECORD_FIELDS;
      if (records[at + 3] !== 1) continue;
      const b = Math.floor(records[at]! / SERIES_BUCKET_MS);
      if (b < 0 || b >= buckets) continue;
      total[b]!++;
      if (records[at + 2] === index) hit[b]!++;
    }
  } else {
    // share of attempts sent to the dead/removed pod
    const dead = roles.deadIp ?? '';
    const hook = summary.attempts;
    if (hook !== null) {
      // the client counts attempts in buckets of SERIES_BUCKET_MS (the orchestrator asks it to)
      for (const [ip, stats] of Object.entries(hook)) {
        stats.buckets.forEach((count, b) => {
          if (b >= buckets) return;
          total[b]! += count;
          if (ip === dead) hit[b]! += count;
        });
      }
    } else {
      const index = summary.ips.indexOf(dead);
      const unattributed = unattributedDeadFailures(records, changeRel);
      for (let i = 0; i < n; i++) {
        const at = i * RECORD_FIELDS;
        const b = Math.floor(records[at]! / SERIES_BUCKET_MS);
        if (b < 0 || b >= buckets) continue;
        total[b]!++;
        if (records[at + 2] === index || unattributed.has(i)) hit[b]!++;
      }
    }
  }
  const out: [number, number][] = [];
  for (let b = 0; b < buckets; b++) if (total[b]! > 0) out.push([toX(b), (hit[b]! / total[b]!) * 100]);
  return out;
}
