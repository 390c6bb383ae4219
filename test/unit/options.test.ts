import { describe, expect, it } from 'vitest';
import { InvalidOptionError, createBalancer, type BalancerOptions } from '../../src/index.js';

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
