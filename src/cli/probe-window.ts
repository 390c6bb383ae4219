/** Probe results of one endpoint over the last `windowMs`: latency percentiles and success rate. */
export class ProbeWindow {
  private samples: { readonly at: number; readonly ms: number; readonly ok: boolean }[] = [];

  constructor(private readonly windowMs: number) {}

  record(at: number, ms: number, ok: boolean): void {
    this.samples.push({ at, ms, ok });
    if (this.samples.length > 10_000) this.samples.shift();
  }

  summary(now: number): {
    readonly count: number;
    readonly p50Ms: number | undefined;
    readonly p99Ms: number | undefined;
    readonly successRate: number | undefined;
  } {
    const from = now - this.windowMs;
    let drop = 0;
    while (drop < this.samples.length && this.samples[drop]!.at < from) drop++;
    if (drop > 0) this.samples = this.samples.slice(drop);
    const latencies = this.samples
      .filter((s) => s.ok)
      .map((s) => s.ms)
      .sort((a, b) => a - b);
    const ok = latencies.length;
    return {
      count: this.samples.length,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      successRate: this.samples.length === 0 ? undefined : ok / this.samples.length,
    };
  }
}

/** Nearest-rank quantile of sorted values. */
function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}
