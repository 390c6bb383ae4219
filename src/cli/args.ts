import { parseArgs } from 'node:util';
import { InvalidOptionError } from '../errors.js';
import { createBalancer, pickerNames, type Balancer, type BalancerOptions, type PickerName } from '../index.js';
import { UsageError } from './usage-error.js';

/** A probe the watch command sends through the balancer. */
export type ProbeSpec = { readonly kind: 'tcp' } | { readonly kind: 'http'; readonly path: string } | { readonly kind: 'grpc-health' };

/** What `watch` and `resolve` share: the service and how to look it up. */
export interface LookupArgs {
  readonly service: string;
  readonly options: BalancerOptions;
  /** 'SRV _http._tcp' or 'A/AAAA port 8080', for headers. */
  readonly mode: string;
  readonly json: boolean;
}

export interface WatchArgs extends LookupArgs {
  readonly picker: PickerName;
  readonly probe: ProbeSpec | undefined;
  readonly intervalMs: number;
}

const LOOKUP_FLAGS = {
  port: { type: 'string' },
  'port-name': { type: 'string' },
  protocol: { type: 'string' },
  'dns-server': { type: 'string', multiple: true },
  family: { type: 'string' },
  search: { type: 'string', multiple: true },
  ndots: { type: 'string' },
  'dns-timeout': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const WATCH_FLAGS = {
  ...LOOKUP_FLAGS,
  picker: { type: 'string' },
  probe: { type: 'string' },
  interval: { type: 'string' },
  'slow-start': { type: 'string' },
  'subset-size': { type: 'string' },
  'client-id': { type: 'string' },
} as const;

/** Option fields of createBalancer, by the flag that sets them: its errors name the flag. */
const FLAG_OF_FIELD: Record<string, string> = {
  service: '<service>',
  port: '--port',
  portName: '--port-name',
  protocol: '--protocol',
  dnsServers: '--dns-server',
  family: '--family',
  search: '--search',
  ndots: '--ndots',
  dnsTimeoutMs: '--dns-timeout',
  picker: '--picker',
  slowStart: '--slow-start',
  subset: '--subset-size',
  'subset.clientId': '--client-id',
};

/** Parses argv after the command name, or returns 'help' for --help. */
export function parseLookupArgs(argv: readonly string[]): LookupArgs | 'help' {
  const { values, positionals } = parse(argv, LOOKUP_FLAGS);
  if (values.help === true) return 'help';
  return lookupArgs(values, positionals, {});
}

export function parseWatchArgs(argv: readonly string[]): WatchArgs | 'help' {
  const { values, positionals } = parse(argv, WATCH_FLAGS);
  if (values.help === true) return 'help';
  const picker = values.picker ?? 'round-robin';
  if (!(pickerNames as readonly string[]).includes(picker)) throw new UsageError('--picker', picker, `one of ${pickerNames.join(', ')}`);
  const intervalMs = values.interval === undefined ? 1000 : integer('--interval', values.interval, 100, 3_600_000);
  const extra: Partial<Record<string, unknown>> = { picker };
  if (values['slow-start'] !== undefined) extra.slowStart = { windowMs: integer('--slow-start', values['slow-start'], 0, 3_600_000) };
  if (values['subset-size'] !== undefined) {
    const size = integer('--subset-size', values['subset-size'], 1, 10_000);
    extra.subset = values['client-id'] === undefined ? { size } : { size, clientId: values['client-id'] };
  } else if (values['client-id'] !== undefined) {
    throw new UsageError('--client-id', values['client-id'], 'only with --subset-size');
  }
  return { ...lookupArgs(values, positionals, extra), picker: picker as PickerName, probe: parseProbe(values.probe), intervalMs };
}

/** createBalancer, with an invalid option reported as the flag that set it. */
export function balancerFor(args: LookupArgs): Balancer {
  try {
    return createBalancer(args.options);
  } catch (error) {
    if (!(error instanceof InvalidOptionError)) throw error;
    const key = /^[A-Za-z]+/.exec(error.field)?.[0] ?? error.field;
    const expected = /\(expected (.*)\)$/.exec(error.message)?.[1] ?? 'a valid value';
    throw new UsageError(FLAG_OF_FIELD[error.field] ?? FLAG_OF_FIELD[key] ?? error.field, error.value, expected);
  }
}

type Flags = Record<string, { readonly type: 'string' | 'boolean'; readonly multiple?: boolean; readonly short?: string }>;

function parse<F extends Flags>(argv: readonly string[], options: F) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs says which flag ("Unknown option '--prot'", "Option '--port <value>' argument missing").
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    const flag = /'(-[^']*?)(?: <value>)?'/.exec(message)?.[1] ?? '<arguments>';
    throw new UsageError(flag, undefined, message);
  }
}

function lookupArgs(
  values: Record<string, string | boolean | string[] | undefined>,
  positionals: string[],
  extra: Partial<Record<string, unknown>>,
): LookupArgs {
  if (positionals.length === 0)
    throw new UsageError(
      '<service>',
      undefined,
      "missing: the headless Service's DNS name, such as web-headless.default.svc.cluster.local",
    );
  if (positionals.length > 1) throw new UsageError('<service>', positionals.slice(1).join(' '), 'one service name only');
  const service = positionals[0]!;
  const port = str(values.port);
  const portName = str(values['port-name']);
  const protocol = str(values.protocol);
  if (port !== undefined && portName !== undefined)
    throw new UsageError('--port', port, 'no --port with --port-name (A/AAAA records with a port, or SRV records by port name)');
  if (port === undefined && portName === undefined)
    throw new UsageError('--port', undefined, 'missing: --port N (A/AAAA records) or --port-name NAME (SRV records)');
  if (protocol !== undefined && portName === undefined) throw new UsageError('--protocol', protocol, 'only with --port-name');
  if (protocol !== undefined && !['tcp', 'udp', 'sctp'].includes(protocol))
    throw new UsageError('--protocol', protocol, 'tcp, udp or sctp');
  const options: Record<string, unknown> = { service, ...extra };
  if (port !== undefined) options.port = integer('--port', port, 1, 65535);
  if (portName !== undefined) {
    options.portName = portName;
    if (protocol !== undefined) options.protocol = protocol;
  }
  const servers = values['dns-server'];
  if (Array.isArray(servers)) options.dnsServers = servers;
  const family = str(values.family);
  if (family !== undefined) {
    if (family !== '4' && family !== '6' && family !== 'auto') throw new UsageError('--family', family, '4, 6 or auto');
    options.family = family === 'auto' ? 'auto' : Number(family);
  }
  // `--search=` alone: no search domains (instead of /etc/resolv.conf's).
  const search = values.search;
  if (Array.isArray(search)) options.search = search.filter((domain) => domain !== '');
  const ndots = str(values.ndots);
  if (ndots !== undefined) options.ndots = integer('--ndots', ndots, 0, 15);
  const dnsTimeout = str(values['dns-timeout']);
  if (dnsTimeout !== undefined) options.dnsTimeoutMs = integer('--dns-timeout', dnsTimeout, 1, 60_000);
  const mode = portName === undefined ? `A/AAAA, port ${options.port as number}` : `SRV _${portName}._${protocol ?? 'tcp'}`;
  return { service, options: options as unknown as BalancerOptions, mode, json: values.json === true };
}

function parseProbe(value: string | boolean | string[] | undefined): ProbeSpec | undefined {
  if (value === undefined) return undefined;
  if (value === 'tcp') return { kind: 'tcp' };
  if (value === 'grpc-health') return { kind: 'grpc-health' };
  if (value === 'http') return { kind: 'http', path: '/' };
  if (typeof value === 'string' && value.startsWith('http:/')) return { kind: 'http', path: value.slice('http:'.length) };
  throw new UsageError('--probe', value, 'tcp, http, http:/PATH or grpc-health');
}

/** A decimal integer in [min, max]: `Number()` would also take '0x10', '1e3' or ' 5'. */
function integer(flag: string, value: string, min: number, max: number): number {
  const n = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max)) throw new UsageError(flag, value, `an integer from ${min} to ${max}`);
  return n;
}

function str(value: string | boolean | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
