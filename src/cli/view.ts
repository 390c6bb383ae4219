import type { EndpointStats } from '../index.js';
import { clockTime, columns, duration, podLabel, type Style } from './style.js';
import { endpointData, lookupData, type LogEntry, type WatchSession } from './watch-session.js';

/** The screen of `watch`, as lines (coloured by `style`), fitted to `rows` lines when given. */
export function renderFrame(session: WatchSession, style: Style, rows: number | undefined, withEvents = true): string[] {
  const now = performance.now();
  const { args, lastLookup } = session;
  const stats = session.stats();
  const dns = stats.discovery;
  const lines: string[] = [];

  const probe =
    args.probe === undefined
      ? 'no probes'
      : `probe ${args.probe.kind === 'http' ? `http:${args.probe.path}` : args.probe.kind} every ${duration(args.intervalMs)}`;
  lines.push(
    `${style.bold('headless-lb watch')}  ${style.bold(args.service)}  ${style.dim(`${args.mode} · picker ${args.picker} · ${probe}`)}  ${style.dim(clockTime(new Date()))}`,
  );

  if (lastLookup === undefined) {
    lines.push(`${style.cyan('DNS ')}  looking up…`);
  } else {
    const asked = lastLookup.asked.map((name) => (name === lastLookup.answeredName ? style.green(`${name} ✓`) : style.dim(name)));
    lines.push(`${style.cyan('DNS ')}  server ${lastLookup.server ?? '-'}  names ${asked.length === 0 ? '-' : asked.join(' → ')}`);
    const dueIn = lastLookup.nextLookupInMs === undefined ? undefined : lastLookup.nextLookupInMs - (now - session.lastLookupAt);
    const ttl =
      lastLookup.ttlMs === undefined
        ? '-'
        : `${lastLookup.ttlMs / 1000} s${lastLookup.outcome === 'empty' ? ` (${lastLookup.rcode ?? 'empty'})` : ''}`;
    const lastOk = dns.lastSuccessAt === undefined ? 'never' : `${duration(now - dns.lastSuccessAt)} ago`;
    const lastError =
      dns.lastError === undefined || dns.lastErrorAt === undefined
        ? 'none'
        : style.red(`${duration(now - dns.lastErrorAt)} ago: ${dns.lastError.reason}`);
    lines.push(
      `      TTL ${ttl}  next lookup in ${dueIn === undefined ? '-' : duration(Math.max(0, dueIn))}  last success ${lastOk}  last error ${lastError}  failures ${dns.failures}/${dns.lookups}`,
    );
  }
  const panic = stats.panic ? style.red('PANIC (all endpoints used)') : 'no panic';
  const subset =
    stats.subset === undefined ? '' : `  subset ${stats.subset.members.length}/${stats.subset.size} as ${stats.subset.clientId}`;
  lines.push(
    `${style.cyan('Pool')}  ${stats.size} endpoint${stats.size === 1 ? '' : 's'}  ${stats.healthy === stats.size ? style.green(`${stats.healthy} healthy`) : style.yellow(`${stats.healthy} healthy`)}  ${panic}${subset}  calls ${stats.calls}  retries ${stats.retries}`,
  );
  lines.push('');

  const members = stats.subset === undefined ? undefined : new Set(stats.subset.members);
  const header = [
    'POD',
    'ADDRESS',
    'PORT',
    'W/PRI',
    'STATE',
    ...(members === undefined ? [] : ['SUBSET']),
    ...(args.probe === undefined ? [] : ['P50', 'P99', 'OK', 'PROBES']),
  ];
  const table = stats.endpoints.map((e) => endpointRow(session, e, now, style, members));
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => plainLength(row[i] ?? ''))) + 2);
  lines.push(style.dim(columns(header, widths)));
  if (table.length === 0) lines.push(style.dim('(no endpoints)'));
  for (const row of table) lines.push(columns(row, widths));
  if (!withEvents) return lines;
  lines.push('');

  lines.push(style.cyan('Events'));
  const room = rows === undefined ? 12 : Math.max(3, rows - lines.length - 1);
  const shown = session.log.slice(-room);
  if (shown.length === 0) lines.push(style.dim('(none yet)'));
  for (const entry of shown) lines.push(`${style.dim(clockTime(entry.at))}  ${tone(entry, style)}`);
  return lines;
}

function endpointRow(
  session: WatchSession,
  e: EndpointStats,
  now: number,
  style: Style,
  members: ReadonlySet<string> | undefined,
): string[] {
  let state: string;
  if (e.state === 'ejected') state = style.red(`ejected ${duration(e.ejectedForMs)} left`);
  else if (e.state === 'probation') state = style.yellow('probation');
  else if (e.slowStartWeight < 1) state = style.yellow(`slow start ${Math.round(e.slowStartWeight * 100)}%`);
  else state = style.green('healthy');
  const row = [podLabel(e), e.address, String(e.port), `${e.weight}/${priorityOf(session, e.id)}`, state];
  if (members !== undefined) row.push(members.has(e.id) ? style.green('member') : style.dim('-'));
  if (session.args.probe !== undefined) {
    const probe = session.probeSummary(e.id, now);
    const rate = probe?.successRate;
    row.push(
      latency(probe?.p50Ms),
      latency(probe?.p99Ms),
      rate === undefined ? '-' : rate === 1 ? style.green('100%') : style.red(`${(rate * 100).toFixed(rate > 0.99 ? 1 : 0)}%`),
      String(probe?.count ?? 0),
    );
  }
  return row;
}

/** Priority is not in stats(): read it off the live endpoint. */
function priorityOf(session: WatchSession, id: string): number {
  return session.lb.endpoints().find((e) => e.id === id)?.priority ?? 0;
}

function latency(ms: number | undefined): string {
  if (ms === undefined) return '-';
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function tone(entry: LogEntry, style: Style): string {
  if (entry.tone === 'good') return style.green(entry.text);
  if (entry.tone === 'bad') return style.red(entry.text);
  if (entry.tone === 'warn') return style.yellow(entry.text);
  return entry.text;
}

function plainLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** `watch --json`: the state now, one object. */
export function snapshot(session: WatchSession): Record<string, unknown> {
  const now = performance.now();
  const stats = session.stats();
  const lookup = session.lastLookup;
  return {
    type: 'snapshot',
    time: new Date().toISOString(),
    service: session.args.service,
    dns: {
      lastLookup: lookup === undefined ? null : lookupData(lookup),
      nextLookupInMs:
        lookup?.nextLookupInMs === undefined ? null : Math.max(0, Math.round(lookup.nextLookupInMs - (now - session.lastLookupAt))),
      lookups: stats.discovery.lookups,
      failures: stats.discovery.failures,
      lastSuccessAgoMs: stats.discovery.lastSuccessAt === undefined ? null : Math.round(now - stats.discovery.lastSuccessAt),
      lastError: stats.discovery.lastError?.message ?? null,
    },
    pool: { size: stats.size, healthy: stats.healthy, panic: stats.panic },
    subset: stats.subset === undefined ? null : { size: stats.subset.size, clientId: stats.subset.clientId, members: stats.subset.members },
    endpoints: stats.endpoints.map((e) => {
      const probe = session.probeSummary(e.id, now);
      return {
        ...endpointData(e),
        weight: e.weight,
        priority: priorityOf(session, e.id),
        state: e.state,
        ejectedForMs: Math.round(e.ejectedForMs),
        slowStartWeight: e.slowStartWeight,
        inSubset: stats.subset === undefined ? null : stats.subset.members.includes(e.id),
        probe:
          probe === undefined
            ? null
            : { count: probe.count, p50Ms: round(probe.p50Ms), p99Ms: round(probe.p99Ms), successRate: round(probe.successRate) },
      };
    }),
  };
}

function round(value: number | undefined): number | null {
  return value === undefined ? null : Math.round(value * 1000) / 1000;
}
