import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseLookupArgs, parseWatchArgs } from '../../src/cli/args.js';
import { UsageError } from '../../src/cli/usage-error.js';

/** Hostile command lines: the parser returns arguments or a UsageError naming the flag, nothing else. */

const FLAGS = [
  '--port',
  '--port-name',
  '--protocol',
  '--dns-server',
  '--family',
  '--search',
  '--ndots',
  '--dns-timeout',
  '--json',
  '--picker',
  '--probe',
  '--interval',
  '--slow-start',
  '--subset-size',
  '--client-id',
  '-h',
  '--bogus',
  '--',
  '-',
];
const VALUES = [
  '80',
  '0',
  '65536',
  '0x50',
  '1e3',
  ' 5',
  '-1',
  'http',
  'tcp',
  'udp',
  '4',
  '6',
  'auto',
  '127.0.0.1:53',
  'http:/x',
  'grpc-health',
  '',
  'web-headless',
  'a..b',
  '😀',
  '--port',
];
const token = fc.oneof(
  fc.constantFrom(...FLAGS, ...VALUES),
  fc.string({ maxLength: 12 }),
  fc.constantFrom(...FLAGS).chain((flag) => fc.constantFrom(...VALUES).map((value) => `${flag}=${value}`)),
);

describe('CLI argument parsing', () => {
  it('returns arguments or throws a UsageError that names a flag, for any argv', () => {
    fc.assert(
      fc.property(fc.array(token, { maxLength: 8 }), fc.boolean(), (argv, watch) => {
        try {
          const args = watch ? parseWatchArgs(argv) : parseLookupArgs(argv);
          if (args === 'help') return;
          expect(typeof args.service).toBe('string');
          const options = args.options as { port?: number; portName?: string };
          expect(options.port === undefined).not.toBe(options.portName === undefined); // exactly one
          if (options.port !== undefined) expect(Number.isInteger(options.port) && options.port >= 1 && options.port <= 65535).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(UsageError);
          expect((error as UsageError).flag).toMatch(/^(-|<)/);
          expect((error as UsageError).message).toContain((error as UsageError).flag);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('reads what it was given', () => {
    const args = parseWatchArgs([
      'web',
      '--port-name',
      'grpc',
      '--protocol',
      'tcp',
      '--dns-server',
      '10.96.0.10',
      '--dns-server',
      '10.96.0.11:5353',
      '--family',
      '6',
      '--search=',
      '--ndots',
      '2',
      '--probe',
      'http:/healthz',
      '--picker',
      'least-request',
      '--interval',
      '500',
      '--slow-start',
      '30000',
      '--json',
    ]);
    expect(args).toEqual({
      service: 'web',
      mode: 'SRV _grpc._tcp',
      json: true,
      picker: 'least-request',
      probe: { kind: 'http', path: '/healthz' },
      intervalMs: 500,
      options: {
        service: 'web',
        portName: 'grpc',
        protocol: 'tcp',
        dnsServers: ['10.96.0.10', '10.96.0.11:5353'],
        family: 6,
        search: [],
        ndots: 2,
        picker: 'least-request',
        slowStart: { windowMs: 30000 },
      },
    });
  });

  it('takes a subset for watch: --subset-size, and --client-id only with it', () => {
    const base = ['web', '--port', '80'];
    const args = parseWatchArgs([...base, '--subset-size', '5', '--client-id', 'api-3']);
    expect(args !== 'help' && args.options.subset).toEqual({ size: 5, clientId: 'api-3' });
    const noId = parseWatchArgs([...base, '--subset-size', '5']);
    expect(noId !== 'help' && noId.options.subset).toEqual({ size: 5 });
    expect(() => parseWatchArgs([...base, '--client-id', 'api-3'])).toThrow(/--client-id/);
    expect(() => parseWatchArgs([...base, '--subset-size', '0'])).toThrow(/--subset-size/);
  });
});
