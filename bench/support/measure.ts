import { readFileSync } from 'node:fs';
import { arch, cpus, platform, release } from 'node:os';
import { join } from 'node:path';

/**
 * Nanoseconds per call of `loop(iterations)`: calibrates the iteration count so one sample
 * takes ≥ `sampleMs`, takes samples for `budgetMs`, and returns the median. Bounded in time.
 */
export function nsPerOp(loop: (iterations: number) => void, budgetMs = 300, sampleMs = 20): number {
  let iterations = 64;
  for (;;) {
    const started = process.hrtime.bigint();
    loop(iterations);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (elapsedMs >= sampleMs) break;
    iterations *= elapsedMs < sampleMs / 8 ? 8 : 2;
  }
  const samples: number[] = [];
  const deadline = performance.now() + budgetMs;
  while (samples.length < 5 || (performance.now() < deadline && samples.length < 200)) {
    const started = process.hrtime.bigint();
    loop(iterations);
    samples.push(Number(process.hrtime.bigint() - started) / iterations);
  }
  return median(samples);
}

/** The value at quantile `q` of an ascending list: index min(n − 1, ⌊q·n⌋); NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Keeps results observable so the JIT cannot drop the measured work. */
export const sink: { value: unknown } = { value: undefined };

export function machine(): string {
  const cpu = cpus();
  return `Node ${process.version}, ${platform()} ${release()} ${arch()}, ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}`;
}

/** A GitHub-flavoured Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function fixed(value: number, digits = 1): string {
  return value.toFixed(digits);
}

/** The version in `<root>/node_modules/<name>/package.json` (`name` '.' for the project itself), or 'unknown'. */
export function installedVersion(name: string, root = '.'): string {
  try {
    const path = name === '.' ? join(root, 'package.json') : join(root, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
