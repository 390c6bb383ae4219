/**
 * Turns trial metrics into the published artefacts: medians with min–max across runs, the
 * Markdown tables (baseline-shaped summary + per-scenario details), the targets check, and one
 * SVG chart per scenario.
 */
import type { TrialMetrics } from './analyze.js';
import { lineChart, type Series } from './chart.js';
import { CONTENDERS, contenderById, isOracle, oracleFor } from './contenders.js';
import type { ContenderId } from './protocol.js';
import { table } from '../support/measure.js';
import { CRASH_IN_DNS_MS, RESTART_GAP_MS, SLOW_DELAY_MS, type ScenarioId } from './scenarios.js';

/** Scenarios whose throughput counts (every pod fast). */
const THROUGHPUT_SCENARIOS: readonly ScenarioId[] = ['S1', 'S2', 'S3', 'S5'];

export interface Aggregate {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** null/undefined (never) sorts as +∞. */
export function aggregate(values: readonly (number | null | undefined)[]): Aggregate {
  const sorted = values.map((v) => (v === null || v === undefined ? Number.POSITIVE_INFINITY : v)).sort((a, b) => a - b);
  if (sorted.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1 ? sorted[mid]! : sorted[mid - 1]! === sorted[mid]! ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

const secs = (v: number): string => (v === Number.POSITIVE_INFINITY ? 'never' : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} s`);
const ms = (v: number): string => (Number.isNaN(v) ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const pct = (v: number): string => (v === 0 ? '0' : v < 0.01 ? '<0.01%' : `${v < 10 ? v.toFixed(2) : v.toFixed(1)}%`);
const kilo = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0));

function withRange(a: Aggregate, format: (v: number) => string): string {
  if (a.n <= 1 || a.min === a.max) return format(a.median);
  return `${format(a.median)} (${format(a.min)}–${format(a.max)})`;
}

export class Results {
  constructor(readonly trials: readonly TrialMetrics[]) {}

  get runs(): number {
    return Math.max(0, ...this.trials.map((t) => t.run));
  }

  contenders(): ContenderId[] {
    const present = new Set(this.trials.map((t) => t.contender));
    return CONTENDERS.map((c) => c.id).filter((id) => present.has(id));
  }

  scenarios(): ScenarioId[] {
    const present = new Set(this.trials.map((t) => t.scenario));
    return (['S1', 'S2', 'S3', 'S4', 'S5'] as const).filter((id) => present.has(id));
  }

  of(scenario: ScenarioId, contender: ContenderId): TrialMetrics[] {
    return this.trials.filter((t) => t.scenario === scenario && t.contender === contender);
  }

  agg(scenario: ScenarioId, contender: ContenderId, pick: (t: TrialMetrics) => number | null | undefined): Aggregate {
    return aggregate(this.of(scenario, contender).map(pick));
  }

  // ---------------------------------------------------------------- cells

  private failedCell(scenario: ScenarioId, contender: ContenderId): string {
    const trials = this.of(scenario, contender);
    if (trials.length === 0) return '–';
    const count = aggregate(trials.map((t) => t.failed));
    const share = aggregate(trials.map((t) => t.failedPct));
    if (count.max === 0) return '0';
    return `${withRange(count, (v) => v.toFixed(0))} (${pct(share.median)})`;
  }

  private newFirstCell(scenario: ScenarioId, contender: ContenderId): string {
    const trials = this.of(scenario, contender);
    if (trials.length === 0) return '–';
    const a = aggregate(trials.map((t) => t.newFirstS));
    const horizon = Math.min(...trials.map((t) => t.afterEventS - (scenario === 'S5' ? RESTART_GAP_MS / 1000 : 0)));
    const text = withRange(a, secs);
    return a.median === Number.POSITIVE_INFINITY ? `never (≥ ${horizon.toFixed(0)} s)` : text;
  }

  private deadCell(scenario: ScenarioId, contender: ContenderId): string {
    const trials = this.of(scenario, contender);
    if (trials.length === 0) return '–';
    const a = aggregate(trials.map((t) => t.deadLastTriedS));
    const untilEnd = trials.filter((t) => t.deadTriedUntilEnd === true).length;
    const text = a.max === 0 ? 'none after' : withRange(a, secs);
    return untilEnd > trials.length / 2 ? `${text} (run end)` : text;
  }

  private latencyCell(contender: ContenderId): string {
    const p50 = this.agg('S4', contender, (t) => t.p50);
    const p99 = this.agg('S4', contender, (t) => t.p99);
    const p999 = this.agg('S4', contender, (t) => t.p999);
    if (p50.n === 0) return '–';
    return `${ms(p50.median)} / ${ms(p99.median)} / ${ms(p999.median)} ms`;
  }

  /**
   * Throughput over the scenarios where every pod is fast (S1, S2, S3, S5; S4's slow pod caps
   * everyone but the latency-aware): the median of the per-scenario medians, and the median of
   * the per-scenario ratios to `reference`. Several short windows are steadier than one.
   */
  throughput(
    contender: ContenderId,
    reference: ContenderId,
  ): { rps: number; ratio: number | undefined; scenarios: ScenarioId[] } | undefined {
    const scenarios = THROUGHPUT_SCENARIOS.filter((s) => this.of(s, contender).length > 0);
    if (scenarios.length === 0) return undefined;
    const rps = scenarios.map((s) => this.agg(s, contender, (t) => t.throughput).median);
    const ratios = scenarios
      .filter((s) => this.of(s, reference).length > 0)
      .map((s) => this.agg(s, contender, (t) => t.throughput).median / this.agg(s, reference, (t) => t.throughput).median);
    return { rps: aggregate(rps).median, ratio: ratios.length === 0 ? undefined : aggregate(ratios).median, scenarios };
  }

  /**
   * HTTP against the plain undici Agent (the oracle); gRPC against grpc-js round_robin and, for
   * information, the gRPC oracle: the protocols' costs differ.
   */
  private throughputCell(contender: ContenderId): string {
    const t = this.throughput(contender, 'oracle');
    if (t === undefined) return '–';
    const percent = (reference: ContenderId): string | undefined => {
      if (reference === contender) return undefined;
      const ratio = this.throughput(contender, reference)?.ratio;
      return ratio === undefined ? undefined : `${(ratio * 100).toFixed(0)}%`;
    };
    if (contenderById(contender).transport === 'gRPC') {
      const parts = [
        [percent('grpc'), 'grpc-js'],
        [percent('grpc-oracle'), 'gRPC oracle'],
      ]
        .filter(([p]) => p !== undefined)
        .map(([p, name]) => `${p} of ${name}`);
      return parts.length === 0 ? kilo(t.rps) : `${kilo(t.rps)} (${parts.join(', ')})`;
    }
    const vsAgent = percent('oracle');
    return vsAgent === undefined ? kilo(t.rps) : `${kilo(t.rps)} (${vsAgent})`;
  }

  private dnsCell(scenario: ScenarioId, contender: ContenderId): string {
    const trials = this.of(scenario, contender);
    if (trials.length === 0) return '–';
    const perRefresh = aggregate(trials.map((t) => t.dns.perRefreshMedian));
    const max = Math.max(...trials.map((t) => t.dns.perRefreshMax));
    const refreshes = aggregate(trials.map((t) => t.dns.refreshes));
    if (refreshes.max === 0) return 'none';
    const types = [...new Set(trials.flatMap((t) => Object.keys(t.dns.byType)))].join('+');
    const kinds = types === '' ? '' : ` ${types}`;
    const median = Number.isInteger(perRefresh.median) ? perRefresh.median.toFixed(0) : perRefresh.median.toFixed(1);
    return `${median}${kinds}${max > perRefresh.median ? ` (max ${max})` : ''} × ${refreshes.median.toFixed(0)}`;
  }

  // ---------------------------------------------------------------- tables

  summaryTable(): string {
    const contenders = this.contenders();
    const header = ['scenario', 'metric', ...contenders.map((c) => contenderById(c).label)];
    const rows: string[][] = [];
    const has = (s: ScenarioId): boolean => this.scenarios().includes(s);
    const row = (scenario: string, metric: string, cell: (c: ContenderId) => string): void => {
      rows.push([scenario, metric, ...contenders.map(cell)]);
    };
    if (has('S1')) row('S1 scale-up 3→4', "new pod's first request after its DNS add", (c) => this.newFirstCell('S1', c));
    if (has('S2')) {
      row('S2 graceful scale-down', 'failed requests (% of all)', (c) => this.failedCell('S2', c));
      row('S2', 'last request to the removed pod after its DNS removal', (c) => this.deadCell('S2', c));
    }
    if (has('S3')) {
      row(`S3 pod crash, still in DNS ${CRASH_IN_DNS_MS / 1000} s`, 'failed requests (% of all)', (c) => this.failedCell('S3', c));
      row('S3', 'crashed pod still tried for', (c) => this.deadCell('S3', c));
    }
    if (has('S4')) {
      row(`S4 one pod ${SLOW_DELAY_MS} ms slow`, "slow pod's share", (c) => {
        const a = this.agg('S4', c, (t) => t.slowSharePct);
        return a.n === 0 ? '–' : withRange(a, (v) => `${v.toFixed(1)}%`);
      });
      row('S4', 'p50 / p99 / p99.9', (c) => this.latencyCell(c));
    }
    if (has('S5')) {
      row('S5 pod restart, new IP', 'failed requests (% of all)', (c) => this.failedCell('S5', c));
      row('S5', "new IP's first request after its DNS add", (c) => this.newFirstCell('S5', c));
      row('S5', 'old IP still tried for', (c) => this.deadCell('S5', c));
    }
    const throughputScenarios = THROUGHPUT_SCENARIOS.filter(has);
    if (throughputScenarios.length > 0) {
      row(
        'all',
        `throughput, req/s (median of ${throughputScenarios.join(' ')}; HTTP: % of the oracle (plain Agent); gRPC: % of grpc-js and of the gRPC oracle)`,
        (c) => this.throughputCell(c),
      );
    }
    const dnsScenario = has('S1') ? 'S1' : this.scenarios()[0];
    if (dnsScenario !== undefined) row('all', `DNS queries per refresh × refreshes, ${dnsScenario}`, (c) => this.dnsCell(dnsScenario, c));
    return table(header, rows);
  }

  detailTable(scenario: ScenarioId): string {
    const header = [
      'contender',
      'requests',
      'failed',
      'req/s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      scenarioMetricName(scenario),
      'DNS queries (per refresh × refreshes)',
      'most frequent error',
    ];
    const rows = this.contenders()
      .filter((c) => this.of(scenario, c).length > 0)
      .map((c) => {
        const trials = this.of(scenario, c);
        const metric =
          scenario === 'S1'
            ? this.newFirstCell(scenario, c)
            : scenario === 'S4'
              ? withRange(
                  this.agg(scenario, c, (t) => t.slowSharePct),
                  (v) => `${v.toFixed(1)}%`,
                )
              : scenario === 'S5'
                ? `${this.newFirstCell(scenario, c)}; old IP ${this.deadCell(scenario, c)}`
                : this.deadCell(scenario, c);
        const error = trials.flatMap((t) => t.errors).sort((a, b) => b.count - a.count)[0];
        return [
          contenderById(c).label,
          kilo(aggregate(trials.map((t) => t.requests)).median),
          this.failedCell(scenario, c),
          withRange(
            this.agg(scenario, c, (t) => t.throughput),
            kilo,
          ),
          ms(this.agg(scenario, c, (t) => t.p50).median),
          ms(this.agg(scenario, c, (t) => t.p99).median),
          ms(this.agg(scenario, c, (t) => t.p999).median),
          metric,
          this.dnsCell(scenario, c),
          error === undefined ? '' : `${error.message.replace(/\|/g, '\\|').slice(0, 70)} (${error.count})`,
        ];
      });
    return table(header, rows);
  }

  // ---------------------------------------------------------------- targets

  /** The targets for each headless-lb contender (docs/scenarios.md); medians across runs (failed counts: the worst run). */
  targets(): { lines: string[]; table: string } {
    const hlb = this.contenders().filter((c) => contenderById(c).headlessLb);
    const lines: string[] = [];
    const rows: string[][] = [];
    const mark = (ok: boolean | undefined, text: string): string => (ok === undefined ? '–' : `${ok ? 'PASS' : 'FAIL'} ${text}`);
    const best = (
      scenario: ScenarioId,
      pick: (t: TrialMetrics) => number | null | undefined,
      lowerIsBetter = true,
    ): { label: string; value: number } | undefined => {
      const others = this.contenders().filter((c) => !contenderById(c).headlessLb && !isOracle(c) && this.of(scenario, c).length > 0);
      let found: { label: string; value: number } | undefined;
      for (const c of others) {
        const v = this.agg(scenario, c, pick).median;
        if (found === undefined || (lowerIsBetter ? v < found.value : v > found.value)) found = { label: contenderById(c).label, value: v };
      }
      return found;
    };
    const checks: { name: string; cell: (c: ContenderId) => string }[] = [];
    if (this.scenarios().includes('S1')) {
      checks.push({
        name: 'S1 new pod ≤ TTL + 0.2 s = 5.2 s',
        cell: (c) => {
          const a = this.agg('S1', c, (t) => t.newFirstS);
          return a.n === 0 ? '–' : mark(a.median <= 5.2, secs(a.median));
        },
      });
    }
    for (const s of ['S2', 'S3', 'S5'] as const) {
      if (!this.scenarios().includes(s)) continue;
      checks.push({
        name: `${s} zero failed idempotent requests`,
        cell: (c) => {
          const trials = this.of(s, c);
          if (trials.length === 0) return '–';
          const worst = Math.max(...trials.map((t) => t.failed));
          return mark(worst === 0, `${worst} (worst run)`);
        },
      });
    }
    if (this.scenarios().includes('S4')) {
      checks.push({
        name: "S4 slow pod's share ≤ 1%",
        cell: (c) => {
          const a = this.agg('S4', c, (t) => t.slowSharePct);
          return a.n === 0 ? '–' : mark(a.median <= 1, `${a.median.toFixed(2)}%`);
        },
      });
      // Each against the oracle of its own protocol (gRPC costs more per call); the HTTP oracle
      // when the run has no gRPC oracle, said so in the cell.
      const reference = (c: ContenderId): ContenderId => {
        const own = oracleFor(c);
        return this.of('S4', own).length > 0 ? own : 'oracle';
      };
      const p99Of = (c: ContenderId): number => this.agg('S4', c, (t) => t.p99).median;
      const transports = new Set(hlb.map((c) => contenderById(c).transport));
      const references: string[] = [];
      const value = (c: ContenderId): string => (this.of('S4', c).length === 0 ? 'not in this run' : `${ms(p99Of(c))} ms`);
      if (transports.has('HTTP/1.1')) references.push(`HTTP: the plain Agent's, ${value('oracle')}`);
      if (transports.has('gRPC'))
        references.push(
          this.of('S4', 'grpc-oracle').length > 0
            ? `gRPC: the gRPC oracle's, ${value('grpc-oracle')}`
            : 'gRPC: no gRPC oracle in this run, the HTTP one',
        );
      checks.push({
        name: `S4 p99 ≤ 1.5 × the oracle's of its protocol (${references.join('; ')})`,
        cell: (c) => {
          const a = this.agg('S4', c, (t) => t.p99);
          const ref = reference(c);
          const refP99 = p99Of(ref);
          if (a.n === 0 || Number.isNaN(refP99)) return '–';
          const fallback = ref !== oracleFor(c) ? ` (vs the ${contenderById(ref).label})` : '';
          return mark(a.median <= 1.5 * refP99, `${ms(a.median)} ms = ${(a.median / refP99).toFixed(2)}×${fallback}`);
        },
      });
    }
    if (THROUGHPUT_SCENARIOS.some((sc) => this.scenarios().includes(sc))) {
      checks.push({
        name: 'throughput ≥ 90% of: HTTP the plain undici Agent (oracle); gRPC grpc-js round_robin (gRPC oracle shown, not judged)',
        cell: (c) => {
          const vsOracle = this.throughput(c, 'oracle');
          if (vsOracle === undefined) return '–';
          const agent = vsOracle.ratio === undefined ? undefined : `${(vsOracle.ratio * 100).toFixed(0)}%`;
          if (contenderById(c).transport === 'gRPC') {
            const vsGrpcOracle = this.throughput(c, 'grpc-oracle')?.ratio;
            const shown = [
              vsGrpcOracle === undefined ? undefined : `${(vsGrpcOracle * 100).toFixed(0)}% of the gRPC oracle`,
              agent === undefined ? undefined : `${agent} of the HTTP Agent`,
            ].filter((p) => p !== undefined);
            const also = shown.length === 0 ? '' : ` (${shown.join(', ')})`;
            const vsGrpc = this.throughput(c, 'grpc')?.ratio;
            if (vsGrpc === undefined) return `–${also}`;
            return mark(vsGrpc >= 0.9, `${(vsGrpc * 100).toFixed(0)}% of grpc-js${also}`);
          }
          return agent === undefined ? '–' : mark(vsOracle.ratio! >= 0.9, agent);
        },
      });
    }
    for (const check of checks) rows.push([check.name, ...hlb.map(check.cell)]);

    // "at least as good as the best contender"
    const compare = (
      scenario: ScenarioId,
      name: string,
      pick: (t: TrialMetrics) => number | null | undefined,
      format: (v: number) => string,
    ): void => {
      if (!this.scenarios().includes(scenario)) return;
      const other = best(scenario, pick);
      if (other === undefined) return;
      rows.push([
        `${name} vs the best other contender (${other.label}: ${format(other.value)})`,
        ...hlb.map((c) => {
          const a = this.agg(scenario, c, pick);
          return a.n === 0 ? '–' : mark(a.median <= other.value + 1e-9, format(a.median));
        }),
      ]);
    };
    compare('S1', 'S1 new pod', (t) => t.newFirstS, secs);
    compare(
      'S2',
      'S2 failed',
      (t) => t.failed,
      (v) => v.toFixed(0),
    );
    compare(
      'S3',
      'S3 failed',
      (t) => t.failed,
      (v) => v.toFixed(0),
    );
    compare(
      'S4',
      'S4 p99',
      (t) => t.p99,
      (v) => `${ms(v)} ms`,
    );
    compare(
      'S5',
      'S5 failed',
      (t) => t.failed,
      (v) => v.toFixed(0),
    );
    compare('S5', 'S5 new IP', (t) => t.newFirstS, secs);
    for (const row of rows) lines.push(`${row[0]}: ${row.slice(1).join(' | ')}`);
    return { lines, table: table(['target', ...hlb.map((c) => contenderById(c).label)], rows) };
  }

  // ---------------------------------------------------------------- charts

  /** One SVG per scenario, from the given run's trials. */
  charts(run: number): Map<ScenarioId, string> {
    const charts = new Map<ScenarioId, string>();
    for (const scenario of this.scenarios()) {
      const series: Series[] = [];
      for (const c of this.contenders()) {
        const trial = this.of(scenario, c).find((t) => t.run === run) ?? this.of(scenario, c)[0];
        if (trial === undefined) continue;
        const info = contenderById(c);
        const points = scenario === 'S4' ? trial.series.map(([nines, latency]) => [latency, nines] as const) : trial.series;
        series.push({ name: info.label, points, emphasis: info.headlessLb, dashed: isOracle(c), color: COLORS[c] });
      }
      charts.set(scenario, chartFor(scenario, series, run));
    }
    return charts;
  }
}

const COLORS: Record<ContenderId, string> = {
  'hlb-http-rr': '#56B4E9',
  'hlb-http-ll': '#0072B2',
  'hlb-grpc-ll': '#009E73',
  grpc: '#E69F00',
  'grpc-tuned': '#CC79A7',
  'undici-dns': '#D55E00',
  balanced: '#999999',
  oracle: '#000000',
  'grpc-oracle': '#5D3A9B',
};

function secondsTicks(min: number, max: number): { value: number; label: string }[] {
  const ticks: { value: number; label: string }[] = [];
  for (let v = Math.ceil(min); v <= max; v += 2) ticks.push({ value: v, label: `${v}` });
  return ticks;
}

function percentTicks(max: number, step: number): { value: number; label: string }[] {
  const ticks: { value: number; label: string }[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) ticks.push({ value: v, label: `${v}%` });
  return ticks;
}

function chartFor(scenario: ScenarioId, series: Series[], run: number): string {
  const maxX = Math.max(4, ...series.flatMap((s) => s.points.map(([x]) => x)));
  const minX = Math.min(0, ...series.flatMap((s) => s.points.map(([x]) => x)));
  const xAxis = { min: Math.floor(minX), max: Math.ceil(maxX), ticks: secondsTicks(Math.floor(minX), Math.ceil(maxX)) };
  const note = `Run ${run}, 16 in flight, 250 ms buckets.`;
  switch (scenario) {
    case 'S1':
      return lineChart({
        title: 'S1 scale-up 3→4: share of requests answered by the new pod',
        subtitle: `The new pod enters DNS (TTL 5 s) at 0 s. ${note}`,
        xLabel: 'seconds since the DNS change',
        yLabel: 'new pod, % of answered requests',
        x: xAxis,
        y: { min: 0, max: 60, ticks: percentTicks(60, 10) },
        series,
        markers: [{ x: 0, label: 'DNS add' }],
        references: [{ y: 25, label: 'fair share' }],
      });
    case 'S2':
      return lineChart({
        title: 'S2 graceful scale-down: requests still sent to the removed pod',
        subtitle: `The pod leaves DNS at 0 s, then shuts down gracefully. ${note}`,
        xLabel: 'seconds since the DNS removal',
        yLabel: 'removed pod, % of attempts (log)',
        x: xAxis,
        y: {
          min: 0.01,
          max: 100,
          log: true,
          ticks: [0.01, 0.1, 1, 10, 100].map((v) => ({ value: v, label: v === 0.01 ? '≤0.01%' : `${v}%` })),
        },
        series,
        markers: [{ x: 0, label: 'DNS removal, SIGTERM' }],
      });
    case 'S3':
      return lineChart({
        title: 'S3 pod crash: requests still sent to the crashed pod',
        subtitle: `The pod dies at 0 s and stays in DNS for ${CRASH_IN_DNS_MS / 1000} s. ${note}`,
        xLabel: 'seconds since the crash',
        yLabel: 'crashed pod, % of attempts (log)',
        x: xAxis,
        y: {
          min: 0.01,
          max: 100,
          log: true,
          ticks: [0.01, 0.1, 1, 10, 100].map((v) => ({ value: v, label: v === 0.01 ? '≤0.01%' : `${v}%` })),
        },
        series,
        markers: [
          { x: 0, label: 'crash' },
          { x: CRASH_IN_DNS_MS / 1000, label: 'DNS removal' },
        ],
      });
    case 'S4':
      return lineChart({
        title: `S4 one pod of four ${SLOW_DELAY_MS} ms slow: latency distribution`,
        subtitle: `Successful requests from 1 s on; further right is worse. Run ${run}, 16 in flight.`,
        xLabel: 'latency, ms',
        yLabel: 'percentile',
        x: {
          min: 0.1,
          max: 500,
          log: true,
          ticks: [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500].map((v) => ({ value: v, label: `${v}` })),
        },
        y: {
          min: 0,
          max: 4,
          ticks: [
            { value: 0, label: 'p0' },
            { value: 1, label: 'p90' },
            { value: 2, label: 'p99' },
            { value: 3, label: 'p99.9' },
            { value: 4, label: 'p99.99' },
          ],
        },
        series,
      });
    case 'S5':
      return lineChart({
        title: 'S5 pod restart with a new IP: share of requests answered by the new IP',
        subtitle: `Old pod out of DNS and stopped at 0 s, new IP in DNS at ${RESTART_GAP_MS / 1000} s. ${note}`,
        xLabel: 'seconds since the old pod left DNS',
        yLabel: 'new IP, % of answered requests',
        x: xAxis,
        y: { min: 0, max: 60, ticks: percentTicks(60, 10) },
        series,
        markers: [
          { x: 0, label: 'old out' },
          { x: RESTART_GAP_MS / 1000, label: 'new IP in DNS' },
        ],
        references: [{ y: 25, label: 'fair share' }],
      });
  }
}

function scenarioMetricName(scenario: ScenarioId): string {
  switch (scenario) {
    case 'S1':
      return 'new pod first request';
    case 'S2':
      return 'removed pod last tried';
    case 'S3':
      return 'crashed pod last tried';
    case 'S4':
      return "slow pod's share";
    case 'S5':
      return 'new IP first request; old IP last tried';
  }
}
