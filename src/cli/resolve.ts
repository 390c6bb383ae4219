import type { Balancer, LookupEvent, SkippedRecord } from '../index.js';
import { balancerFor, type LookupArgs } from './args.js';
import { columns, duration, type Style } from './style.js';
import { EXIT } from './usage-error.js';

export interface Output {
  write(text: string): void;
  error(text: string): void;
  readonly style: Style;
}

/**
 * `headless-lb resolve`: one lookup, as the balancer makes it, and what DNS said. Exit code 0
 * with endpoints, 1 when DNS says there are none (NXDOMAIN, NODATA), 2 when the lookup failed.
 */
export async function resolveCommand(args: LookupArgs, out: Output): Promise<number> {
  const lb = balancerFor(args);
  const skipped: SkippedRecord[] = [];
  lb.on('records-skipped', ({ records }) => skipped.push(...records));
  try {
    const lookup = await new Promise<LookupEvent>((resolve) => lb.once('lookup', resolve));
    const code = lookup.outcome === 'endpoints' ? EXIT.ok : lookup.outcome === 'empty' ? EXIT.empty : EXIT.dnsFailure;
    if (args.json) out.write(`${JSON.stringify(resolveJson(args, lb, lookup, skipped))}\n`);
    else out.write(resolveText(args, lb, lookup, skipped, out.style));
    return code;
  } finally {
    await lb.close();
  }
}

function resolveJson(args: LookupArgs, lb: Balancer, lookup: LookupEvent, skipped: readonly SkippedRecord[]) {
  return {
    service: args.service,
    outcome: lookup.outcome,
    rcode: lookup.rcode ?? null,
    asked: lookup.asked,
    answeredName: lookup.answeredName ?? null,
    server: lookup.server ?? null,
    ttlMs: lookup.ttlMs ?? null,
    durationMs: Math.round(lookup.durationMs * 1000) / 1000,
    endpoints: lb.endpoints().map((e) => ({
      name: e.name ?? null,
      address: e.address,
      addresses: e.addresses,
      port: e.port,
      weight: e.weight,
      priority: e.priority,
    })),
    skipped,
    error: lookup.error === undefined ? null : { reason: lookup.error.reason, message: lookup.error.message },
  };
}

function resolveText(args: LookupArgs, lb: Balancer, lookup: LookupEvent, skipped: readonly SkippedRecord[], style: Style): string {
  const lines: string[] = [];
  const verdict =
    lookup.outcome === 'endpoints'
      ? style.green(`${lookup.endpoints} endpoint${lookup.endpoints === 1 ? '' : 's'}`)
      : lookup.outcome === 'empty'
        ? style.yellow(`no endpoints (${lookup.rcode ?? 'empty'})`)
        : style.red(`lookup failed (${lookup.error?.reason ?? 'error'})`);
  lines.push(`${style.bold(args.service)} (${args.mode}): ${verdict}`);
  for (const [i, name] of lookup.asked.entries()) {
    const said = name === lookup.answeredName ? style.green('answered') : lookup.outcome === 'error' ? '' : 'no records';
    lines.push(`  ${i === 0 ? 'asked ' : '      '}  ${name}  ${said}`.trimEnd());
  }
  if (lookup.server !== undefined) lines.push(`  server  ${lookup.server}`);
  if (lookup.ttlMs !== undefined)
    lines.push(`  TTL     ${lookup.ttlMs / 1000} s${lookup.outcome === 'empty' ? ' (negative caching)' : ''}`);
  lines.push(`  took    ${duration(lookup.durationMs)}`);
  if (lookup.error !== undefined) lines.push(`  error   ${lookup.error.message}`);
  const endpoints = lb.endpoints();
  if (endpoints.length > 0) {
    const rows = [
      ['NAME', 'ADDRESS', 'PORT', 'WEIGHT', 'PRIORITY'],
      ...endpoints.map((e) => [e.name ?? '-', e.addresses.join(','), String(e.port), String(e.weight), String(e.priority)]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)) + 2);
    lines.push('');
    for (const [i, row] of rows.entries()) lines.push(`  ${i === 0 ? style.dim(columns(row, widths)) : columns(row, widths)}`);
  }
  if (skipped.length > 0) {
    lines.push('', `  records not used (${skipped.length}):`);
    for (const record of skipped)
      lines.push(`    ${record.name} ${record.type} ${record.data}  ${style.yellow(record.reason)} (${record.section})`);
  }
  return `${lines.join('\n')}\n`;
}
