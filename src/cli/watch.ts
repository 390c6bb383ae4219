import { balancerFor, type WatchArgs } from './args.js';
import type { Output } from './resolve.js';
import { clockTime, visibleLength } from './style.js';
import { renderFrame, snapshot } from './view.js';
import { WatchSession, type LogEntry } from './watch-session.js';

/** What `watch` writes to: a terminal it may redraw, or a stream. */
export interface Screen extends Output {
  readonly isTTY: boolean;
  readonly rows: number | undefined;
  readonly columns: number | undefined;
  onResize(listener: () => void): () => void;
}

const ENTER = '\x1b[?1049h\x1b[?25l'; // alternate screen, cursor hidden (as top does)
const LEAVE = '\x1b[?25h\x1b[?1049l';

/**
 * `headless-lb watch`: the live view until `stop` resolves (Ctrl-C). On a terminal, the screen
 * is redrawn in place; otherwise each refresh is printed as plain text; with --json, one JSON
 * object per line (each event as it happens, a snapshot every interval).
 */
export async function watchCommand(args: WatchArgs, screen: Screen, stop: Promise<unknown>): Promise<number> {
  const lb = balancerFor(args);
  const live = screen.isTTY && !args.json;
  const session = new WatchSession(lb, args, (entry: LogEntry) => {
    if (args.json) screen.write(`${JSON.stringify({ type: entry.type, time: entry.at.toISOString(), ...entry.data })}\n`);
    else if (!live && entry.type !== 'lookup') screen.write(`${clockTime(entry.at)}  ${entry.text}\n`);
  });
  const draw = (): void => {
    if (args.json) return screen.write(`${JSON.stringify(snapshot(session))}\n`);
    // Plain output prints events as they come: a frame without the log.
    const lines = renderFrame(session, screen.style, live ? screen.rows : undefined, live);
    if (!live) return screen.write(`${lines.join('\n')}\n\n`);
    const width = screen.columns ?? 200;
    const fitted = (screen.rows === undefined ? lines : lines.slice(0, screen.rows)).map((line) => fit(line, width));
    screen.write(`\x1b[H${fitted.join('\x1b[K\n')}\x1b[K\x1b[J`);
  };
  if (live) screen.write(ENTER);
  const stopResize = screen.onResize(draw);
  const probeTimer = setInterval(() => session.probeRound(), args.intervalMs);
  // The view redraws at least once a second (the countdown moves); plain and JSON output follow the interval.
  const drawTimer = setInterval(draw, live ? Math.min(1000, args.intervalMs) : args.intervalMs);
  session.probeRound();
  if (live) draw();
  try {
    await stop;
  } finally {
    clearInterval(probeTimer);
    clearInterval(drawTimer);
    stopResize();
    await session.close();
    if (live) screen.write(LEAVE);
  }
  return 0;
}

/** Cuts a line to the terminal's width (colour codes dropped from a line that is cut). */
function fit(line: string, width: number): string {
  if (visibleLength(line) <= width) return line;
  // eslint-disable-next-line no-control-regex
  return line.replace(/\x1b\[[0-9;]*m/g, '').slice(0, Math.max(0, width - 1)) + '…';
}
