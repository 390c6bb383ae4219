import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BalancerClosedError, type Balancer, type DrainingEvent, type Endpoint } from '../../src/index.js';
import { createDispatcher } from '../../src/http/index.js';
import { createGrpcChannel } from '../../src/grpc/index.js';
import type { Service } from '../../src/testing/index.js';
import { loadEcho, type GrpcService } from '../support/grpc-pods.js';
import { unary } from '../support/grpc-unary.js';
import { startKnotCluster, type GrpcKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { bundleFixture } from '../support/fixture-bundle.js';

/**
 * Graceful shutdown on real Knot DNS and real pods: close({ drainMs }) lets calls in flight finish
 * (run(), HTTP through the dispatcher, gRPC through the channel), refuses new ones at once, ends
 * those that outlive the drain with BalancerClosedError at drainMs, and a process that awaits it
 * ends by itself afterwards with nothing left open.
 */
const SLOW_MS = 200;

/** A GET of the pod through node:http, aborted by `signal`; the pod's name. */
const podOf = (endpoint: Endpoint, signal: AbortSignal): Promise<string> =>
  new Promise((resolve, reject) => {
    const req = httpRequest({ host: endpoint.address, port: endpoint.port, path: '/', signal, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve((JSON.parse(body) as { pod: string }).pod));
    });
    req.on('error', reject);
    req.end();
  });

describe('HTTP pods', () => {
  let env: HttpKnotCluster;
  let slow: Service;
  let stuck: Service;

  beforeAll(async () => {
    env = await startKnotCluster({ ttl: 5 });
    slow = await env.cluster.createService({ name: 'slow', replicas: 2, behaviour: { delayMs: SLOW_MS } });
    stuck = await env.cluster.createService({ name: 'stuck', replicas: 2, behaviour: { hang: true } });
  });

  afterAll(async () => {
    await env?.close();
  });

  async function balancer(service: Service): Promise<Balancer> {
    const lb = env.balancer({ service: service.fqdn, portName: 'http' });
    await lb.ready({ timeoutMs: 5000 });
    return lb;
  }

  it(`a run() against a pod answering in ${SLOW_MS} ms finishes under close({ drainMs: 1000 }); new calls are refused meanwhile`, async () => {
    const lb = await balancer(slow);
    const calls = Array.from({ length: 4 }, () => lb.run((endpoint, { signal }) => podOf(endpoint, signal)));
    const drains: DrainingEvent[] = [];
    lb.on('draining', (event) => drains.push(event));
    let stopped: number | undefined;
    lb.on('close', (event) => (stopped = event.stopped));
    const started = performance.now();
    const closing = lb.close({ drainMs: 1000 });
    expect(lb.stats()).toMatchObject({ state: 'draining', inflight: 4 });
    await expect(lb.run(async () => 'new')).rejects.toBeInstanceOf(BalancerClosedError);
    await closing;
    const closeMs = performance.now() - started;
    const results = await Promise.all(calls);
    expect(results.every((pod) => pod.startsWith('slow-'))).toBe(true);
    expect(drains).toEqual([{ drainMs: 1000, calls: 4 }]);
    // Closed when the last call ended: none was cut by the drain's end.
    expect(stopped).toBe(0);
    expect(closeMs).toBeGreaterThanOrEqual(SLOW_MS - 50);
    expect(lb.stats()).toMatchObject({ state: 'closed', inflight: 0 });
  });

  it('a call that outlives the drain ends with BalancerClosedError at drainMs', async () => {
    const lb = await balancer(stuck);
    let aborted: unknown;
    const call = lb.run((endpoint, { signal }) => {
      signal.addEventListener('abort', () => (aborted = signal.reason), { once: true });
      return podOf(endpoint, signal);
    });
    const settledAt = call.then(
      () => performance.now(),
      () => performance.now(),
    );
    const started = performance.now();
    await lb.close({ drainMs: 300 });
    const closeMs = performance.now() - started;
    await expect(call).rejects.toBeInstanceOf(BalancerClosedError);
    expect(aborted).toBeInstanceOf(BalancerClosedError);
    // At drainMs, not when the pod's socket would give up (never: it hangs).
    expect(closeMs).toBeGreaterThanOrEqual(295);
    expect(closeMs).toBeLessThan(2000);
    expect((await settledAt) - started).toBeLessThan(2000);
  });

  it('through the dispatcher: requests in flight get their answers, new ones fail with BalancerClosedError, then the dispatcher closes', async () => {
    const lb = await balancer(slow);
    const dispatcher = createDispatcher(lb);
    env.onClose(() => dispatcher.close());
    const url = `http://${slow.fqdn}:8080/`;
    const inFlight = Array.from({ length: 4 }, async () => {
      const res = await request(url, { dispatcher });
      return { status: res.statusCode, pod: ((await res.body.json()) as { pod: string }).pod };
    });
    await new Promise((resolve) => setTimeout(resolve, 20)); // the requests reach their pods
    const closing = lb.close({ drainMs: 1000 });
    const refused = await request(url, { dispatcher }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BalancerClosedError);
    const viaFetch = await fetch(url, { dispatcher } as unknown as RequestInit).catch((error: unknown) => error);
    expect((viaFetch as Error).cause).toBeInstanceOf(BalancerClosedError);
    await closing;
    for (const result of await Promise.all(inFlight)) expect(result).toMatchObject({ status: 200, pod: expect.stringMatching(/^slow-/) });
    await dispatcher.close();
    expect(dispatcher.stats()).toMatchObject({ closed: true, active: 0 });
  });

  it('dispatcher.close() and close({ drainMs }) at once, in either order: requests in flight get their answers', async () => {
    for (const dispatcherFirst of [true, false]) {
      const lb = await balancer(slow);
      const dispatcher = createDispatcher(lb);
      env.onClose(() => dispatcher.close());
      const url = `http://${slow.fqdn}:8080/`;
      const inFlight = Array.from({ length: 3 }, async () => {
        const res = await request(url, { dispatcher });
        await res.body.text();
        return res.statusCode;
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const closed = dispatcherFirst
        ? [dispatcher.close(), lb.close({ drainMs: 1000 })]
        : [lb.close({ drainMs: 1000 }), dispatcher.close()];
      await Promise.all(closed);
      expect(await Promise.all(inFlight)).toEqual([200, 200, 200]);
      expect(lb.stats().state).toBe('closed');
    }
  });
});

describe('gRPC pods', () => {
  const Echo = loadEcho();
  let env: GrpcKnotCluster;
  let echo: GrpcService;

  beforeAll(async () => {
    env = await startKnotCluster({ ttl: 5, pods: 'grpc' });
    echo = await env.cluster.createService({ name: 'echo', replicas: 2 });
  });

  afterAll(async () => {
    await env?.close();
  });

  async function connect(): Promise<{ lb: Balancer; channel: ReturnType<typeof createGrpcChannel>; client: InstanceType<typeof Echo> }> {
    const lb = env.balancer({ service: echo.fqdn, portName: 'grpc' });
    await lb.ready({ timeoutMs: 5000 });
    const channel = createGrpcChannel(lb, { credentials: grpc.credentials.createInsecure() });
    const client = channel.client(Echo);
    env.onClose(async () => {
      client.close();
      await channel.close();
    });
    return { lb, channel, client };
  }

  it(`unary calls of ${SLOW_MS} ms finish under close({ drainMs: 1000 }); a new call fails UNAVAILABLE; one that outlives a drain fails UNAVAILABLE at drainMs`, async () => {
    const { lb, channel, client } = await connect();
    const inFlight = Array.from({ length: 4 }, () => unary(client, { text: 'x', delayMs: SLOW_MS }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closing = lb.close({ drainMs: 1000 });
    const refused = await unary(client, { text: 'new' });
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error.code).toBe(grpc.status.UNAVAILABLE);
    expect(!refused.ok && refused.error.details).toMatch(/balancer is closed/);
    await closing;
    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true]);
    await channel.close();

    const second = await connect();
    const long = unary(second.client, { text: 'long', delayMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    await second.lb.close({ drainMs: 300 });
    const result = await long;
    expect(performance.now() - started).toBeLessThan(2000); // the pod would answer after 5 s
    expect(!result.ok && result.error.code).toBe(grpc.status.UNAVAILABLE);
    expect(!result.ok && result.error.details).toMatch(/balancer is closed/);
  });

  it("the channel is SHUTDOWN from the balancer's drain on: watchers woken, waitForReady fails, calls in flight finish", async () => {
    const { lb, channel, client } = await connect();
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (e) => (e ? reject(e) : resolve())));
    expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.READY);
    const woken = new Promise<Error | undefined>((resolve) =>
      channel.watchConnectivityState(grpc.connectivityState.READY, Date.now() + 30_000, resolve),
    );
    const inFlight = unary(client, { text: 'x', delayMs: SLOW_MS });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closing = lb.close({ drainMs: 1000 });
    expect(lb.stats().state).toBe('draining');
    expect(await woken).toBeUndefined(); // woken by the drain, not by its 30 s deadline
    expect(channel.getConnectivityState(true)).toBe(grpc.connectivityState.SHUTDOWN);
    expect(() => channel.watchConnectivityState(grpc.connectivityState.SHUTDOWN, Date.now() + 1000, () => {})).toThrow(/shut down/);
    const ready = await new Promise<Error | undefined>((resolve) => client.waitForReady(Date.now() + 5000, resolve));
    expect(ready?.message).toMatch(/closed/);
    expect((await inFlight).ok).toBe(true); // SHUTDOWN refuses new calls; the drain's run on
    await closing;
    expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.SHUTDOWN);

    // a balancer closed without a drain, and one closed before the channel was made
    const second = await connect();
    const idle = second.channel.getConnectivityState(false);
    const wake = new Promise<Error | undefined>((resolve) => second.channel.watchConnectivityState(idle, Date.now() + 30_000, resolve));
    await second.lb.close();
    expect(await wake).toBeUndefined();
    expect(second.channel.getConnectivityState(true)).toBe(grpc.connectivityState.SHUTDOWN);
    const late = createGrpcChannel(second.lb, { credentials: grpc.credentials.createInsecure() });
    expect(late.getConnectivityState(true)).toBe(grpc.connectivityState.SHUTDOWN);
    expect(late.stats().channels).toBe(0); // tryToConnect made no pod channel
    await late.close();
  });

  it('channel.close() and close({ drainMs }) at once, in either order: calls in flight finish', async () => {
    for (const channelFirst of [true, false]) {
      const { lb, channel, client } = await connect();
      const inFlight = Array.from({ length: 3 }, () => unary(client, { text: 'x', delayMs: SLOW_MS }));
      await new Promise((resolve) => setTimeout(resolve, 20));
      await Promise.all(channelFirst ? [channel.close(), lb.close({ drainMs: 1000 })] : [lb.close({ drainMs: 1000 }), channel.close()]);
      expect((await Promise.all(inFlight)).map((r) => r.ok)).toEqual([true, true, true]);
      expect(channel.stats()).toMatchObject({ closed: true, active: 0 });
    }
  });
});

describe('a process that awaits close({ drainMs })', () => {
  let env: HttpKnotCluster;
  let slow: Service;
  let dir: string;
  let script: string;

  beforeAll(async () => {
    env = await startKnotCluster({ ttl: 5 });
    slow = await env.cluster.createService({ name: 'slow', replicas: 2, behaviour: { delayMs: SLOW_MS } });
    dir = await mkdtemp(join(tmpdir(), 'headless-lb-drain-'));
    script = join(dir, 'drain-exit.mjs');
    await bundleFixture('drain-exit', script);
  });

  afterAll(async () => {
    await env?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function runChild(mode: 'slow' | 'stuck'): Promise<{ code: number | null; stderr: string; report: Record<string, unknown> | undefined }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [script, mode, env.knot.address, slow.fqdn], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.on('error', reject);
      child.on('exit', (code) => {
        clearTimeout(killer);
        let report: Record<string, unknown> | undefined;
        try {
          report = JSON.parse(out.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
        } catch {
          report = undefined;
        }
        resolve({ code, stderr: err, report });
      });
    });
  }

  it('gets the slow answer, then ends by itself with no handle left', async () => {
    const { code, stderr, report } = await runChild('slow');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(report).toMatchObject({ result: 'slow', state: 'closed', active: [], alive: [] });
  });

  it('waits the whole drain for a call that holds no handle (the drain timer is ref’d), ends it with BalancerClosedError, then ends', async () => {
    const { code, stderr, report } = await runChild('stuck');
    expect(stderr).toBe('');
    expect(code).toBe(0); // not 13: the top-level await settled
    expect(report).toMatchObject({ error: 'BalancerClosedError', state: 'closed', active: [], alive: [] });
    expect(report?.closeMs).toBeGreaterThanOrEqual(495);
  });
});
