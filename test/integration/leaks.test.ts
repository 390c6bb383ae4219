import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type Service } from '../../src/testing/index.js';
import { bundleFixture } from '../support/fixture-bundle.js';

/**
 * A process that only holds a balancer exits by itself, and `close()` leaves nothing behind:
 * run in a child process so that nothing of the test runner is counted.
 */
let cluster: Cluster;
let service: Service;
let dir: string;
let script: string;

beforeAll(async () => {
  cluster = await startCluster({ ttl: 1 });
  service = await cluster.createService({ name: 'leaks', replicas: 2 });
  dir = await mkdtemp(join(tmpdir(), 'headless-lb-leaks-'));
  script = join(dir, 'lifecycle.mjs');
  await bundleFixture('balancer-lifecycle', script);
});

afterAll(async () => {
  await cluster?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function runChild(mode: 'close' | 'no-close'): Promise<{ code: number | null; ms: number; report: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [script, cluster.dnsServer, service.fqdn, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(killer);
      try {
        resolve({ code, ms: performance.now() - started, report: JSON.parse(out.trim().split('\n').at(-1) ?? '{}') });
      } catch {
        reject(new Error(`child printed no report (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

describe('no handle left open', () => {
  it('close() releases every socket and timer, and the process exits by itself', async () => {
    const { code, report } = await runChild('close');
    expect(code).toBe(0);
    expect(report.ok).toBe(20);
    expect(report.active).toEqual([]);
    expect(report.alive).toEqual([]);
  });

  it('a process that holds an open balancer still exits by itself (timers are unref’d)', async () => {
    const { code, report } = await runChild('no-close');
    expect(code).toBe(0);
    expect(report.ok).toBe(20);
  });
});
