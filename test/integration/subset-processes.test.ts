import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/testing/index.js';
import type { ClientConfig, ClientReport, FromClient, ToClient } from '../fixtures/subset-client.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { waitFor } from '../support/wait.js';
import { bundleFixture } from '../support/fixture-bundle.js';

/**
 * Subsetting across processes, as in a cluster: 8 client processes (`api-0` … `api-7`, each its
 * own balancer and HTTP dispatcher, one connection per pod) over 32 testing-kit pods behind real
 * Knot DNS. Connections are counted at the pods; then a pod crash and a scale-up under load,
 * with no failed (idempotent) request. Every child is killed by PID at the end, and exits by
 * itself when this process's IPC channel closes.
 */
const CLIENTS = 8;
const SIZE = 8;
const PODS = 32;

let env: HttpKnotCluster;
let dir: string;
let script: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  env = await startKnotCluster({ ttl: 1 });
  dir = await mkdtemp(join(tmpdir(), 'headless-lb-subset-'));
  script = join(dir, 'subset-client.mjs');
  await bundleFixture('subset-client', script);
});

afterAll(async () => {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }
  await env?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A client process and a way to ask it something and await its answer. */
class Client {
  private readonly child: ChildProcess;
  private readonly waiting: ((message: FromClient) => void)[] = [];
  private stderr = '';
  /** Resolves when the client's balancer has its first lookup. */
  readonly started: Promise<FromClient>;

  constructor(config: ClientConfig) {
    this.child = fork(script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    children.push(this.child);
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d));
    this.child.on('message', (message: FromClient) => this.waiting.shift()?.(message));
    this.child.on('exit', (code, signal) => {
      for (const waiter of this.waiting.splice(0)) waiter({ type: 'report', report: undefined as never });
      if (code !== 0 && signal !== 'SIGKILL') this.stderr += `\nexited with ${code ?? signal}`;
    });
    this.started = this.ask({ type: 'config', config });
  }

  ask(message: ToClient, timeoutMs = 15_000): Promise<FromClient> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client gave no answer to ${message.type}: ${this.stderr}`)), timeoutMs);
      this.waiting.push((answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.child.send(message);
    });
  }

  /** Closes the IPC channel, as the end of this process would: the client exits by itself. */
  disconnect(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.disconnect();
    return exited;
  }

  async report(message: ToClient): Promise<ClientReport> {
    const answer = await this.ask(message);
    if (answer.type !== 'report' || answer.report === undefined) throw new Error(`client exited: ${this.stderr}`);
    return answer.report;
  }
}

/** Open connections per pod, counted at the pods. */
function connectionsAtPods(svc: Service): number[] {
  return svc.pods.map((pod) => pod.connections);
}

/** Max, mean, their ratio, and how many pods hold each number of connections. */
function balance(counts: readonly number[]): { max: number; mean: number; ratio: number; pods: Record<number, number> } {
  const max = Math.max(...counts);
  const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
  const pods: Record<number, number> = {};
  for (const count of counts) pods[count] = (pods[count] ?? 0) + 1;
  return { max, mean: Math.round(mean * 100) / 100, ratio: Math.round((max / mean) * 100) / 100, pods };
}

describe(`subsetting across ${CLIENTS} client processes over ${PODS} pods behind Knot`, () => {
  it('each pod holds about as many connections as the others; a crash and a scale-up under load fail no request', async () => {
    const svc = await env.cluster.createService({ name: 'subset-procs', replicas: PODS });
    const clients = Array.from(
      { length: CLIENTS },
      (_, n) => new Client({ dnsServers: env.dns.dnsServers, service: svc.fqdn, size: SIZE, clientId: `api-${n}` }),
    );
    await Promise.all(clients.map((client) => client.started));
    const before = await Promise.all(clients.map((client) => client.report({ type: 'wait-pods', pods: PODS })));
    for (const report of before) {
      expect(report.pods).toBe(PODS);
      expect(report.members).toHaveLength(SIZE);
    }

    await Promise.all(clients.map((client) => client.ask({ type: 'load', concurrency: 4, maxRequests: 20_000, maxMs: 40_000 })));
    try {
      // Every client has a pool to each member (one connection each): the pods see the subsets.
      const expected = new Map<string, number>();
      for (const report of before) for (const ip of report.members) expected.set(ip, (expected.get(ip) ?? 0) + 1);
      await waitFor(() => svc.pods.every((pod) => pod.connections === (expected.get(pod.ip) ?? 0)), {
        what: 'each pod to hold one connection per client whose subset it is in',
        timeoutMs: 10_000,
      });
      const steady = balance(connectionsAtPods(svc));
      console.log(`connections per pod (${CLIENTS} clients × ${SIZE} ÷ ${PODS} pods): ${JSON.stringify(steady)}`);
      expect(steady.mean).toBe((CLIENTS * SIZE) / PODS);
      // Few connections per pod (2 on average) make counts lumpy: 2 is a generous bound on max ÷ mean.
      expect(steady.ratio).toBeLessThanOrEqual(2);
      expect(Math.min(...connectionsAtPods(svc))).toBeGreaterThanOrEqual(1);

      // Crash a pod in two or more subsets: it stays in DNS and refuses connections.
      const victim = svc.pods.find((pod) => (expected.get(pod.ip) ?? 0) >= 2)!;
      await svc.crashPod(victim.name);
      await delay(1000);
      // Scale up under load.
      await svc.scale(PODS + 3);
      const after = await Promise.all(clients.map((client) => client.report({ type: 'wait-pods', pods: PODS + 3 })));
      await delay(1500);
      for (const report of after) {
        expect(report.members).toHaveLength(SIZE);
        expect(report.members).not.toContain(victim.ip);
      }
      const live = svc.pods.filter((pod) => pod.name !== victim.name);
      const afterChurn = balance(live.map((pod) => pod.connections));
      console.log(`after the crash and the scale-up (${live.length} pods): ${JSON.stringify(afterChurn)}`);
      expect(afterChurn.ratio).toBeLessThanOrEqual(2);
    } finally {
      const results = await Promise.all(clients.map((client) => client.report({ type: 'stop' })));
      let ok = 0;
      for (const result of results) {
        expect(result.failed, `${result.clientId}: ${result.errors.join('\n')}`).toBe(0);
        expect(result.ok).toBeGreaterThan(20); // a few seconds of load: ~200 to ~800 each, as the machine allows
        // The bound (twice the subset size by default) held.
        expect(result.dispatcher.maxPods).toBe(2 * SIZE);
        expect(result.dispatcher.pods).toBeLessThanOrEqual(2 * SIZE);
        ok += result.ok;
      }
      console.log(`requests: ${ok} ok, 0 failed`);
      const codes = await Promise.all(clients.map((client) => client.disconnect()));
      expect(codes).toEqual(clients.map(() => 0));
    }
    await svc.delete();
  });
});
