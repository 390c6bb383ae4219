import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/testing/index.js';
import { buildCli, runCli } from '../support/cli.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';

/**
 * `headless-lb resolve` as a child process against a real Knot serving the test kit's pods: its
 * output and exit code for each case (0 endpoints, 1 NXDOMAIN/NODATA, 2 DNS failure, 64 usage).
 */

let env: HttpKnotCluster;
let web: Service;
let cli: string;
let silent: dgram.Socket;
let silentServer: string;

beforeAll(async () => {
  [env, cli] = await Promise.all([startKnotCluster({ ttl: 5 }), buildCli('resolve')]);
  web = await env.cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });
  // A DNS server that never answers: every lookup times out.
  silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  silentServer = `127.0.0.1:${silent.address().port}`;
});

afterAll(async () => {
  silent?.close();
  await env?.close();
});

const dns = () => ['--dns-server', env.knot.address, '--search='];

describe('headless-lb resolve', () => {
  it('prints the pool and what DNS said, exit 0 (SRV)', async () => {
    const result = await runCli(cli, ['resolve', web.fqdn, '--port-name', 'http', ...dns()]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${web.fqdn} (SRV _http._tcp): 3 endpoints`);
    expect(result.stdout).toMatch(new RegExp(`asked\\s+_http\\._tcp\\.${web.fqdn.replaceAll('.', '\\.')}\\s+answered`));
    expect(result.stdout).toContain(`server  ${env.knot.address}`);
    expect(result.stdout).toContain('TTL     5 s');
    for (const pod of web.pods)
      expect(result.stdout).toMatch(
        new RegExp(`${pod.fqdn.replaceAll('.', '\\.')}\\s+${pod.ip.replaceAll('.', '\\.')}\\s+8080\\s+33\\s+0`),
      );
    expect(result.stdout).not.toContain('\x1b['); // not a terminal: no colour
    expect(result.stderr).toBe('');
  });

  it('says which search candidate answered (--json)', async () => {
    const result = await runCli(cli, [
      'resolve',
      'web-headless',
      '--port',
      '8080',
      '--dns-server',
      env.knot.address,
      '--search',
      'nope.svc.cluster.local',
      '--search',
      'default.svc.cluster.local',
      '--ndots',
      '5',
      '--json',
    ]);
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(answer).toMatchObject({
      outcome: 'endpoints',
      asked: ['web-headless.nope.svc.cluster.local', web.fqdn],
      answeredName: web.fqdn,
      server: env.knot.address,
      ttlMs: 5000,
      error: null,
    });
    expect((answer.endpoints as { address: string; port: number }[]).map((e) => `${e.address}:${e.port}`).sort()).toEqual(
      web.pods.map((p) => `${p.ip}:8080`).sort(),
    );
  });

  it('exits 1 on NXDOMAIN', async () => {
    const result = await runCli(cli, ['resolve', 'nope.default.svc.cluster.local', '--port', '8080', ...dns()]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('no endpoints (NXDOMAIN)');
    expect(result.stdout).toContain('(negative caching)');
  });

  it('exits 1 on NODATA (no AAAA for an IPv4 service)', async () => {
    const result = await runCli(cli, ['resolve', web.fqdn, '--port', '8080', '--family', '6', ...dns(), '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ outcome: 'empty', rcode: 'NODATA', endpoints: [] });
  });

  it('exits 2 when the server refuses (a name outside its zones)', async () => {
    const result = await runCli(cli, ['resolve', 'web.example.com', '--port', '8080', ...dns()]);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain('lookup failed (REFUSED)');
  });

  it('exits 2 when DNS does not answer (timeout)', async () => {
    const result = await runCli(cli, [
      'resolve',
      web.fqdn,
      '--port',
      '8080',
      '--dns-server',
      silentServer,
      '--search=',
      '--dns-timeout',
      '200',
      '--json',
    ]);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ outcome: 'error', server: silentServer, error: { reason: 'TIMEOUT' } });
    expect(result.ms).toBeLessThan(5000); // 2 attempts of 200 ms, then the process ends: no handle left
  });

  it.each([
    [['resolve', web?.fqdn ?? 'x'], '--port: missing'],
    [['resolve', 'x', '--port', 'abc'], 'invalid --port "abc": expected an integer from 1 to 65535'],
    [['resolve', 'x', '--port', '0x50'], 'invalid --port "0x50"'],
    [['resolve', 'x', '--port', '80', '--port-name', 'http'], 'invalid --port "80": expected no --port with --port-name'],
    [['resolve', 'x', '--port', '80', '--family', '5'], 'invalid --family "5": expected 4, 6 or auto'],
    [['resolve', 'x', '--port', '80', '--dns-server', 'dns.example'], 'invalid --dns-server "dns.example"'],
    [['resolve', 'x', '--port', '80', '--protocol', 'udp'], 'invalid --protocol "udp": expected only with --port-name'],
    [['resolve', 'x', '--port', '80', '--bogus'], "Unknown option '--bogus'"],
    [['resolve', '--port', '80'], '<service>: missing'],
    [['resolve', 'bad..name', '--port', '80'], 'invalid <service> "bad..name"'],
    [['watch', 'x', '--port', '80', '--probe', 'udp'], 'invalid --probe "udp": expected tcp, http, http:/PATH or grpc-health'],
    [['watch', 'x', '--port', '80', '--picker', 'fastest'], 'invalid --picker "fastest"'],
    [['watch', 'x', '--port', '80', '--interval', '5'], 'invalid --interval "5": expected an integer from 100'],
    [['frobnicate'], 'invalid <command> "frobnicate"'],
  ])('exits 64 on a usage error: %j', async (args, message) => {
    const result = await runCli(cli, args);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });

  it.each(['resolve', 'watch', 'demo'])('%s --help shows usage with examples, exit 0', async (command) => {
    const result = await runCli(cli, [command, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: headless-lb ${command}`);
    expect(result.stdout).toMatch(/Examples?:\n/);
  });
});
