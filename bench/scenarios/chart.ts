/**
 * A small dependency-free SVG line chart: linear or log axes, one polyline per
 * series, a legend, optional vertical event markers and horizontal reference lines. Enough for
 * the scenario benchmark's charts (docs/img/scenario-*.svg); deterministic output.
 */

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  /** Drawn thicker and on top (headless-lb). */
  readonly emphasis?: boolean;
  /** Drawn dashed (the oracles). */
  readonly dashed?: boolean;
  readonly color?: string;
}

export interface Tick {
  readonly value: number;
  readonly label: string;
}

export interface ChartOptions {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly x: { readonly min: number; readonly max: number; readonly log?: boolean; readonly ticks: readonly Tick[] };
  /** With `log`, values below `min` (zeros too) are drawn at `min`. */
  readonly y: { readonly min: number; readonly max: number; readonly log?: boolean; readonly ticks: readonly Tick[] };
  readonly series: readonly Series[];
  /** Vertical lines, e.g. the DNS change. */
  readonly markers?: readonly { readonly x: number; readonly label: string }[];
  /** Horizontal lines, e.g. a fair share. */
  readonly references?: readonly { readonly y: number; readonly label: string }[];
  readonly width?: number;
  readonly height?: number;
}

/** Colour-blind-friendly palette (Okabe–Ito) plus greys. */
export const PALETTE = ['#0072B2', '#56B4E9', '#009E73', '#E69F00', '#D55E00', '#CC79A7', '#F0E442', '#000000', '#999999'];

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const round = (v: number): string => (Math.round(v * 10) / 10).toString();

export function lineChart(options: ChartOptions): string {
  const width = options.width ?? 760;
  const legendRows = Math.ceil(options.series.length / 3);
  const height = (options.height ?? 380) + legendRows * 18;
  const margin = { left: 64, right: 20, top: options.subtitle === undefined ? 40 : 58, bottom: 66 + legendRows * 18 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const { x, y } = options;
  const xOf = (v: number): number => {
    const t = x.log
      ? (Math.log10(Math.max(v, x.min)) - Math.log10(x.min)) / (Math.log10(x.max) - Math.log10(x.min))
      : (v - x.min) / (x.max - x.min);
    return margin.left + Math.min(1, Math.max(0, t)) * plotW;
  };
  const yOf = (v: number): number => {
    const t = y.log
      ? (Math.log10(Math.max(v, y.min)) - Math.log10(y.min)) / (Math.log10(y.max) - Math.log10(y.min))
      : (v - y.min) / (y.max - y.min);
    return margin.top + (1 - Math.min(1, Math.max(0, t))) * plotH;
  };

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${margin.left}" y="22" font-size="15" font-weight="600">${escape(options.title)}</text>`);
  if (options.subtitle !== undefined) out.push(`<text x="${margin.left}" y="40" fill="#555">${escape(options.subtitle)}</text>`);

  // grid and ticks
  for (const tick of y.ticks) {
    const py = round(yOf(tick.value));
    out.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${py}" y2="${py}" stroke="#e5e5e5"/>`);
    out.push(
      `<text x="${margin.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle" fill="#333">${escape(tick.label)}</text>`,
    );
  }
  for (const tick of x.ticks) {
    const px = round(xOf(tick.value));
    out.push(`<line x1="${px}" x2="${px}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${px}" y="${margin.top + plotH + 16}" text-anchor="middle" fill="#333">${escape(tick.label)}</text>`);
  }
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  out.push(
    `<text x="${margin.left + plotW / 2}" y="${margin.top + plotH + 36}" text-anchor="middle" fill="#222">${escape(options.xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#222">${escape(options.yLabel)}</text>`,
  );

  for (const reference of options.references ?? []) {
    const py = round(yOf(reference.y));
    out.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${py}" y2="${py}" stroke="#777" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${margin.left + plotW - 4}" y="${Number(py) - 4}" text-anchor="end" fill="#555">${escape(reference.label)}</text>`);
  }
  for (const marker of options.markers ?? []) {
    const px = round(xOf(marker.x));
    out.push(`<line x1="${px}" x2="${px}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#444" stroke-dasharray="5 3"/>`);
    out.push(`<text x="${Number(px) + 4}" y="${margin.top + 12}" fill="#444">${escape(marker.label)}</text>`);
  }

  // series: plain first, emphasised on top
  const ordered = options.series
    .map((s, i) => ({ s, color: s.color ?? PALETTE[i % PALETTE.length]! }))
    .sort((a, b) => Number(a.s.emphasis ?? false) - Number(b.s.emphasis ?? false));
  out.push(`<g fill="none" stroke-linejoin="round" stroke-linecap="round">`);
  for (const { s, color } of ordered) {
    const points = s.points.filter(([px, py]) => Number.isFinite(px) && Number.isFinite(py));
    if (points.length === 0) continue;
    const path = points.map(([px, py]) => `${round(xOf(px))},${round(yOf(py))}`).join(' ');
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<polyline points="${path}" stroke="${color}" stroke-width="${s.emphasis === true ? 2.6 : 1.5}"${dash}><title>${escape(s.name)}</title></polyline>`,
    );
  }
  out.push(`</g>`);

  // legend, three per row
  const legendTop = margin.top + plotH + 58;
  const columnW = plotW / 3;
  options.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const lx = margin.left + (i % 3) * columnW;
    const ly = legendTop + Math.floor(i / 3) * 18;
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<line x1="${round(lx)}" x2="${round(lx + 22)}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="${s.emphasis === true ? 2.6 : 1.5}"${dash}/>`,
    );
    out.push(`<text x="${round(lx + 28)}" y="${ly}" dominant-baseline="middle" fill="#222">${escape(s.name)}</text>`);
  });
  out.push(`</svg>`);
  return `${out.join('\n')}\n`;
}
