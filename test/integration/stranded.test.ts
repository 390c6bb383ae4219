import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type Service } from '../../src/testing/index.js';
import { bundleFixture } from '../support/fixture-bundle.js';

/**
 * Callers are never stranded: a script that awaits the balancer at the top level ends when its
 * await settles, with that result — not earlier with exit code 13 (an unsettled top-level await,
 * which is what unref'd timers under a pending promise did), and not held open by background
 * timers afterwards. Each case runs test/fixtures/stranded-callers.ts in a child process.
 */
let dir: string;
let script: string;
/** A DNS "server" that takes every query and never answers. */
let silentDns: Socket;
let silentDnsAddress: string;
let queriesSeen = 0;
/** A real DNS server with a long TTL, for an idle balancer that has a refresh an hour ahead. */
let cluster: Cluster;
let service: Service;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'headless-lb-stranded-'));
  script = join(dir, 'stranded-callers.mjs');
  silentDns = createSocket('udp4');
  silentDns.on('message', () => queriesSeen++);
  await new Promise<void>((resolve) => silentDns.bind(0, '127.0.0.1', resolve));
  silentDnsAddress = `127.0.0.1:${silentDns.address().port}`;
  cluster = await startCluster({ ttl: 3600 });
  service = await cluster.createService({ name: 'idle', replicas: 2 });
  await bundleFixture('stranded-callers', script);
});

afterAll(async () => {
  silentDns?.close();
  await cluster?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface ChildResult {
  readonly code: number | null;
  readonly report: Record<string, unknown> | undefined;
  readonly stderr: string;
}

/** Runs the fixture in `mode`; a child still alive after `killAfterMs` is killed (code null). */
function runChild(mode: string, args: readonly string[] = [], killAfterMs = 20_000): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, mode, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(killer);
      const last = out.trim().split('\n').at(-1);
      let report: Record<string, unknown> | undefined;
      try {
        report = last === undefined || last === '' ? undefined : (JSON.parse(last) as Record<string, unknown>);
      } catch {
        report = undefined;
      }
      resolve({ code, report, stderr: err });
    });
  });
}

describe('a caller awaiting the balancer keeps the process alive until its promise settles', () => {
  it('ready() against a silent DNS server rejects at its timeout with NoEndpointsError, then the process ends', async () => {
    const before = queriesSeen;
    const { code, report, stderr } = await runChild('ready-silent', [silentDnsAddress]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(report).toMatchObject({ name: 'NoEndpointsError', code: 'ERR_HLB_NO_ENDPOINTS' });
    expect(report?.message).toMatch(/not ready after 1500 ms/);
    expect(queriesSeen).toBeGreaterThan(before); // it did ask the silent server
  });

  it('an uncaught ready() rejection ends the process with exit code 1 and the typed error, not 13', async () => {
    const { code, report, stderr } = await runChild('ready-silent-uncaught', [silentDnsAddress]);
    expect(code).toBe(1);
    expect(report).toBeUndefined();
    expect(stderr).toMatch(/NoEndpointsError/);
    expect(stderr).toMatch(/not ready after 1500 ms/);
  });

  it('run() resolves across backoffs that nothing else keeps the process alive for', async () => {
    const { code, report, stderr } = await runChild('run-backoff');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(report).toEqual({ result: 'ok', attempts: 4 });
  });

  it("run()'s deadline rejects with DeadlineExceededError though the attempt hangs", async () => {
    const { code, report } = await runChild('run-deadline');
    expect(code).toBe(0);
    expect(report).toMatchObject({ name: 'DeadlineExceededError' });
  });

  it("an attempt's timeout moves the call on to a retry", async () => {
    const { code, report } = await runChild('run-attempt-timeout');
    expect(code).toBe(0);
    expect(report).toEqual({ result: 'second' });
  });
});

describe('background timers do not hold the process', () => {
  it('a process holding an idle balancer over static endpoints ends by itself', async () => {
    const { code, report } = await runChild('idle-static');
    expect(code).toBe(0);
    expect(report).toEqual({ result: expect.stringMatching(/^web-/) });
  });

  it('a process holding an idle DNS balancer (TTL one hour) ends by itself', async () => {
    const { code, report } = await runChild('idle-dns', [cluster.dnsServer, service.fqdn]);
    expect(code).toBe(0);
    expect(report).toEqual({ endpoints: 2 });
  });
});

describe('close() settles every pending call', () => {
  it('ends ready(), calls waiting for the first lookup, in a backoff or with an attempt in flight, with BalancerClosedError, and leaves no handle', async () => {
    // Every wait in the child is 60 s: a call close() failed to settle, or a timer it left, keeps the child until the kill.
    const { code, report, stderr } = await runChild('close-pending', [silentDnsAddress]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const settled = report?.settled as Record<string, string>;
    expect(Object.keys(settled)).toHaveLength(11);
    for (const [call, outcome] of Object.entries(settled)) expect({ call, outcome }).toEqual({ call, outcome: 'BalancerClosedError' });
    // Every attempt in flight (five: three of run(), a hedged one, a dispatched one) had its signal aborted with the BalancerClosedError.
    expect(report?.signals).toEqual(Array(5).fill('BalancerClosedError'));
    expect(report?.alive).toEqual([]);
  });
});
