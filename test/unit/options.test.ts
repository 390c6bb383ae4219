import { describe, expect, it } from 'vitest';
import { InvalidOptionError, createBalancer, type BalancerOptions } from '../../src/index.js';
import { parseDnsServer } from '../../src/discovery/dns-server-address.js';

function invalid(options: unknown): InvalidOptionError {
  try {
    const lb = createBalancer(options as BalancerOptions);
    void lb.close();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

const dns = { service: 'web-headless.default.svc.cluster.local', port: 8080, dnsServers: ['127.0.0.1:5353'] };

describe('option validation', () => {
  const cases: [string, unknown, string, unknown][] = [
    ['no options', undefined, 'options', undefined],
    ['missing service', { port: 8080 }, 'service', undefined],
    ['bad service', { ...dns, service: 'web_headless..default' }, 'service', 'web_headless..default'],
    ['IP as service', { ...dns, service: '10.0.0.1' }, 'service', '10.0.0.1'],
    ['no port or portName', { service: 'web', dnsServers: ['127.0.0.1'] }, 'port', undefined],
    ['port out of range', { ...dns, port: 70000 }, 'port', 70000],
    ['port as string', { ...dns, port: '8080' }, 'port', '8080'],
    ['port and portName', { ...dns, portName: 'http' }, 'portName', 'http'],
    ['bad portName', { service: 'web', portName: 'http port', dnsServers: ['127.0.0.1'] }, 'portName', 'http port'],
    ['bad protocol', { service: 'web', portName: 'http', protocol: 'quic', dnsServers: ['127.0.0.1'] }, 'protocol', 'quic'],
    ['bad dns server', { ...dns, dnsServers: ['dns.local:53'] }, 'dnsServers[0]', 'dns.local:53'],
    ['bad dns port', { ...dns, dnsServers: ['127.0.0.1:0'] }, 'dnsServers[0]', '127.0.0.1:0'],
    ['empty dns servers', { ...dns, dnsServers: [] }, 'dnsServers', []],
    ['refresh min > max', { ...dns, refresh: { minMs: 5000, maxMs: 1000 } }, 'refresh.maxMs', 1000],
    ['negative refresh', { ...dns, refresh: { minMs: -1 } }, 'refresh.minMs', -1],
    ['jitter > 1', { ...dns, refresh: { jitter: 2 } }, 'refresh.jitter', 2],
    ['unknown option', { ...dns, retires: 3 }, 'retires', 3],
    ['unknown refresh option', { ...dns, refresh: { min: 3 } }, 'refresh.min', 3],
    ['bad picker', { ...dns, picker: 'fastest' }, 'picker', 'fastest'],
    ['bad family', { ...dns, family: 5 }, 'family', 5],
    ['bad ndots', { ...dns, ndots: 1.5 }, 'ndots', 1.5],
    ['bad search', { ...dns, search: ['ok.local', 'bad domain'] }, 'search[1]', 'bad domain'],
    ['bad retries', { ...dns, retry: { retries: -1 } }, 'retry.retries', -1],
    ['bad latency decay', { ...dns, latency: { decayMs: 0 } }, 'latency.decayMs', 0],
    ['bad static address', { endpoints: [{ address: 'web-0', port: 80 }] }, 'endpoints[0].address', 'web-0'],
    ['bad static port', { endpoints: [{ address: '127.0.0.1', port: 0 }] }, 'endpoints[0].port', 0],
    ['bad static weight', { endpoints: [{ address: '127.0.0.1', port: 80, weight: -2 }] }, 'endpoints[0].weight', -2],
    ['static and port', { endpoints: [], port: 80 }, 'port', 80],
  ];

  it.each(cases)('%s → names %s', (_label, options, field, value) => {
    const error = invalid(options);
    expect(error.field).toBe(field);
    expect(error.value).toEqual(value);
    expect(error.message).toContain(field);
    expect(error.code).toBe('ERR_HLB_INVALID_OPTION');
  });

  it('validates run() options', async () => {
    const lb = createBalancer({ endpoints: [{ address: '127.0.0.1', port: 80 }] });
    await expect(lb.run(async () => 1, { timeoutMs: -5 })).rejects.toMatchObject({ field: 'timeoutMs', value: -5 });
    await expect(lb.run(async () => 1, { retries: 1.5 })).rejects.toMatchObject({ field: 'retries', value: 1.5 });
    await expect(lb.run(async () => 1, { key: 42 as unknown as string })).rejects.toMatchObject({ field: 'key', value: 42 });
    await expect(lb.run(async () => 1, { idempotent: 'yes' as unknown as boolean })).rejects.toMatchObject({ field: 'idempotent' });
    await expect(lb.run(async () => 1, { timeout: 5 } as never)).rejects.toMatchObject({ field: 'options.timeout' });
    await expect(lb.run('nope' as never)).rejects.toMatchObject({ field: 'fn' });
    await lb.close();
  });
});

/** 2^31−1: the longest delay Node's timers honour; one more and setTimeout fires after 1 ms. */
const MAX_MS = 2 ** 31 - 1;

/** `{ a: { b: value } }` for the path 'a.b', merged over `base`. */
function withPath(base: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  if (rest.length === 0) return { ...base, [head!]: value };
  return { ...base, [head!]: withPath((base[head!] as Record<string, unknown> | undefined) ?? {}, rest.join('.'), value) };
}

const one = { endpoints: [{ address: '127.0.0.1', port: 80, name: 'web-0' }] };

describe('millisecond options are bounded by 2^31−1', () => {
  // Every millisecond option of createBalancer, with a base that makes the rest valid.
  const balancerFields: [string, Record<string, unknown>][] = [
    ['dnsTimeoutMs', dns],
    ['refresh.minMs', dns],
    ['refresh.maxMs', dns],
    ['emptyGraceMs', dns],
    ['latency.decayMs', one],
    ['latency.defaultRttMs', one],
    ['latency.averageMs', one],
    ['retry.backoffBaseMs', one],
    ['retry.backoffMaxMs', one],
    ['outlierDetection.windowMs', one],
    ['outlierDetection.baseEjectionMs', one],
    ['outlierDetection.maxEjectionMs', one],
    ['slowStart.windowMs', one],
    ['retryBudget.windowMs', one],
    ['hedgeBudget.windowMs', one],
  ];

  it.each(balancerFields)('createBalancer %s: 2^31−1 accepted, 2^31 rejected', async (path, base) => {
    const lb = createBalancer(withPath(base, path, MAX_MS) as unknown as BalancerOptions);
    if (base === one) await expect(lb.run(async (endpoint) => endpoint.name)).resolves.toBe('web-0');
    await lb.close();
    const error = invalid(withPath(base, path, 2 ** 31));
    expect(error.field).toBe(path);
    expect(error.value).toBe(2 ** 31);
    expect(error.message).toContain('2147483647');
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, '100', null, true, {}, [5]])(
    'createBalancer rejects %s as milliseconds',
    (value) => {
      for (const [path, base] of balancerFields) {
        const error = invalid(withPath(base, path, value));
        expect(error.field, path).toBe(path);
        expect(error.value, path).toEqual(value);
      }
    },
  );

  it('rejects the values that misfired: refresh.maxMs 1e10, dnsTimeoutMs 3e9', () => {
    expect(invalid({ ...dns, refresh: { maxMs: 1e10 } })).toMatchObject({ field: 'refresh.maxMs', value: 1e10 });
    expect(invalid({ ...dns, dnsTimeoutMs: 3e9 })).toMatchObject({ field: 'dnsTimeoutMs', value: 3e9 });
    expect(invalid({ ...one, outlierDetection: { baseEjectionMs: 1000, maxEjectionMs: 500 } })).toMatchObject({
      field: 'outlierDetection.maxEjectionMs',
      value: 500,
    });
  });

  it('run(): timeoutMs, attemptTimeoutMs and hedge.delayMs up to 2^31−1', async () => {
    const lb = createBalancer(one as BalancerOptions);
    const slow = async (): Promise<string> => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return 'ok';
    };
    // 3e9 was accepted and fired after 1 ms: DeadlineExceededError for a 50 ms call.
    await expect(lb.run(slow, { timeoutMs: 3e9 })).rejects.toMatchObject({ name: 'InvalidOptionError', field: 'timeoutMs', value: 3e9 });
    await expect(lb.run(slow, { timeoutMs: 2 ** 31 })).rejects.toMatchObject({ field: 'timeoutMs', value: 2 ** 31 });
    await expect(lb.run(slow, { attemptTimeoutMs: 2 ** 31 })).rejects.toMatchObject({ field: 'attemptTimeoutMs', value: 2 ** 31 });
    await expect(lb.run(slow, { idempotent: true, hedge: { delayMs: 2 ** 31 } })).rejects.toMatchObject({
      field: 'hedge.delayMs',
      value: 2 ** 31,
    });
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1, '100']) {
      await expect(lb.run(slow, { timeoutMs: bad as number })).rejects.toBeInstanceOf(InvalidOptionError);
    }
    await expect(lb.run(slow, { timeoutMs: MAX_MS })).resolves.toBe('ok');
    await expect(lb.run(slow, { attemptTimeoutMs: MAX_MS })).resolves.toBe('ok');
    await expect(lb.run(slow, { idempotent: true, hedge: { delayMs: MAX_MS } })).resolves.toBe('ok');
    await lb.close();
  });

  it('ready(): timeoutMs up to 2^31−1', async () => {
    const lb = createBalancer(one as BalancerOptions);
    await expect(lb.ready({ timeoutMs: MAX_MS })).resolves.toBeUndefined();
    for (const bad of [2 ** 31, 3e9, Number.NaN, Number.POSITIVE_INFINITY, -1, '100']) {
      let error: unknown;
      try {
        await lb.ready({ timeoutMs: bad as number });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ field: 'timeoutMs', value: bad });
    }
    await lb.close();
  });
});

describe('ports are decimal 1–65535', () => {
  it.each([
    '127.0.0.1:0x35',
    '127.0.0.1:5e1',
    '127.0.0.1: 53',
    '127.0.0.1:+53',
    '127.0.0.1:53.0',
    '127.0.0.1:',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:000053',
    '[::1]:0x35',
    '[::1]:',
    '[::1]:70000',
  ])('dnsServers rejects %s', (server) => {
    const error = invalid({ ...dns, dnsServers: ['127.0.0.1', server] });
    expect(error.field).toBe('dnsServers[1]');
    expect(error.value).toBe(server);
  });

  it.each([
    ['127.0.0.1', { host: '127.0.0.1', port: 53 }],
    ['127.0.0.1:5353', { host: '127.0.0.1', port: 5353 }],
    ['127.0.0.1:00053', { host: '127.0.0.1', port: 53 }],
    ['127.0.0.1:65535', { host: '127.0.0.1', port: 65535 }],
    ['::1', { host: '::1', port: 53 }],
    ['[::1]:5353', { host: '::1', port: 5353 }],
  ])('dnsServers takes %s', (server, parsed) => {
    expect(parseDnsServer(server, 'dnsServers[0]')).toEqual(parsed);
  });

  it.each([0, 65536, 80.5, Number.NaN, Number.POSITIVE_INFINITY, '80', -80])(
    'port %s is rejected, as a DNS port and a static one',
    (port) => {
      expect(invalid({ ...dns, port })).toMatchObject({ field: 'port', value: port });
      expect(invalid({ endpoints: [{ address: '127.0.0.1', port }] })).toMatchObject({ field: 'endpoints[0].port', value: port });
    },
  );

  it('port 1 and 65535 are accepted', async () => {
    for (const port of [1, 65535]) {
      const lb = createBalancer({ endpoints: [{ address: '127.0.0.1', port }] });
      expect(lb.endpoints()[0]!.port).toBe(port);
      await lb.close();
    }
  });
});
