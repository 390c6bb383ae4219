/** Colour, or plain text: colour only on a terminal, and never with NO_COLOR set (no-color.org). */
export interface Style {
  readonly color: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

export function styleFor(isTTY: boolean, env: NodeJS.ProcessEnv): Style {
  const color = isTTY && (env.NO_COLOR === undefined || env.NO_COLOR === '');
  const sgr = (on: number, off: number) => (text: string) => (color ? `\x1b[${on}m${text}\x1b[${off}m` : text);
  return { color, bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) };
}

/** '850 ms', '4.2 s', '2 min 5 s'. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Local wall-clock time with milliseconds: '14:03:07.412'. */
export function clockTime(date: Date): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** The pod's name: the first label of its DNS name (SRV), else the address. */
export function podLabel(endpoint: { readonly name: string | undefined; readonly address: string }): string {
  return endpoint.name === undefined ? endpoint.address : (endpoint.name.split('.')[0] ?? endpoint.name);
}

/** Text columns padded to widths (ignoring SGR codes when measuring). */
export function columns(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((cell, i) => {
      const width = widths[i];
      if (width === undefined || i === cells.length - 1) return cell;
      return cell + ' '.repeat(Math.max(1, width - visibleLength(cell)));
    })
    .join('');
}

export function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}
