import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, type BalancerOptions } from '../../src/index.js';
import { createGrpcChannel, type GrpcChannelOptions, type GrpcServiceConfig, type HeadlessChannel } from '../../src/grpc/index.js';
import { loadEcho, type EchoClient, type GrpcService } from '../support/grpc-pods.js';
import { unary } from '../support/grpc-unary.js';
import { startKnotCluster, type GrpcKnotCluster } from '../support/knot-cluster.js';
import { sleep } from '../support/wait.js';
import { echoOverPods, type EchoOverPods } from '../support/grpc-echo-client.js';

/**
 * `createGrpcChannel({ serviceConfig })` against a real Knot DNS and real grpc-js pods on 127.x:
 * a retry policy through a pod crash under load, methods outside the config, bad configs, timeouts,
 * waitForReady, throttling, and the same retry decisions as grpc-js's own for every status code.
 */
const TTL = 2;
const Echo = loadEcho();
const insecure = grpc.credentials.createInsecure();
const UNARY = { service: 'hlb.test.Echo', method: 'Unary' };
const RETRY_UNAVAILABLE = {
  maxAttempts: 4,
  initialBackoff: '0.01s',
  maxBackoff: '0.1s',
  backoffMultiplier: 2,
  retryableStatusCodes: ['UNAVAILABLE'],
};
let env: GrpcKnotCluster;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL, pods: 'grpc' });
});

afterAll(async () => {
  await env?.close();
});

function connect(service: string, options: Partial<GrpcChannelOptions> = {}, lbOptions: Partial<BalancerOptions> = {}): EchoOverPods {
  return echoOverPods(env, service, options, lbOptions);
}

function requests(svc: GrpcService): number {
  return svc.pods.reduce((n, pod) => n + pod.requests, 0);
}

/** A closed loop of unary calls (20 ms each at the pod), bounded by count and time; counts failures. */
async function crashUnderLoad(
  svc: GrpcService,
  client: EchoClient,
  channel: HeadlessChannel,
): Promise<{ ok: number; failed: number; errors: string[] }> {
  let ok = 0;
  let failed = 0;
  let started = 0;
  const errors: string[] = [];
  const stopAt = performance.now() + 10_000;
  let running = true;
  const worker = async (): Promise<void> => {
    while (running && started < 1500 && performance.now() < stopAt) {
      started++;
      const result = await unary(client, { text: 'load', delayMs: 20 }, { deadlineMs: 5000 });
      if (result.ok) ok++;
      else {
        failed++;
        if (errors.length < 10) errors.push(result.error.message);
      }
    }
  };
  const workers = Promise.all(Array.from({ length: 8 }, worker));
  await sleep(300);
  const dead = svc.pods[0]!;
  const deadChannel = [...channel.pods.channels()].find((p) => p.endpoint.address === dead.address)!;
  const waitFrom = performance.now();
  while (dead.inflight < 2 && performance.now() - waitFrom < 2000) await new Promise<void>((resolve) => setImmediate(resolve));
  const inFlight = dead.inflight;
  await svc.crashPod(dead.name); // still in DNS: reconnects are refused
  const seen = performance.now();
  while (deadChannel.state === grpc.connectivityState.READY && performance.now() - seen < 3000) await sleep(5);
  await sleep(300);
  running = false;
  await workers;
  expect(inFlight).toBeGreaterThanOrEqual(2); // calls were on the pod when it died
  return { ok, failed, errors };
}

describe('retry policy', () => {
  it('a retry policy on UNAVAILABLE loses no call when a pod crashes under load; without it, the calls in flight fail', async () => {
    const plain = await env.cluster.createService({ name: 'crash-plain', replicas: 3 });
    const without = connect(plain.fqdn);
    await without.lb.ready();
    const before = await crashUnderLoad(plain, without.client, without.channel);

    const configured = await env.cluster.createService({ name: 'crash-config', replicas: 3 });
    const withConfig = connect(configured.fqdn, {
      serviceConfig: JSON.stringify({ methodConfig: [{ name: [UNARY], retryPolicy: RETRY_UNAVAILABLE }] }),
    });
    await withConfig.lb.ready();
    const after = await crashUnderLoad(configured, withConfig.client, withConfig.channel);

    console.log(
      `pod crash under load (8 in flight): without a service config ${before.failed} failed of ${before.ok + before.failed}; ` +
        `with retryPolicy on UNAVAILABLE ${after.failed} failed of ${after.ok + after.failed}`,
    );
    expect(before.failed).toBeGreaterThan(0);
    expect(before.errors.every((e) => /UNAVAILABLE/.test(e))).toBe(true);
    expect(after.errors).toEqual([]);
    expect(after.failed).toBe(0);
    expect(after.ok).toBeGreaterThan(50);
  });

  it('retries a method in the config maxAttempts times in all; a method outside it is not retried', async () => {
    const svc = await env.cluster.createService({ name: 'outside', replicas: 3 });
    const { lb, client } = connect(
      svc.fqdn,
      {
        serviceConfig: { methodConfig: [{ name: [{ service: 'hlb.test.Echo', method: 'ClientStream' }], retryPolicy: RETRY_UNAVAILABLE }] },
      },
      { outlierDetection: false },
    );
    await lb.ready();
    for (const pod of svc.pods) pod.setBehaviour({ status: grpc.status.UNAVAILABLE });

    const unaryResult = await unary(client, { text: 'x' });
    expect(unaryResult.ok).toBe(false);
    expect(requests(svc)).toBe(1);

    const streamError = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.ClientStream(new grpc.Metadata(), {}, (error) => resolve(error));
      call.write({ text: 'a' });
      call.write({ text: 'b' });
      call.end();
    });
    expect(streamError?.code).toBe(grpc.status.UNAVAILABLE);
    expect(requests(svc)).toBe(1 + 4);
  });

  it('stops retrying once the throttle is below half its tokens (retryThrottling)', async () => {
    const svc = await env.cluster.createService({ name: 'throttled', replicas: 2 });
    const { lb, client, channel } = connect(
      svc.fqdn,
      {
        serviceConfig: {
          methodConfig: [{ name: [UNARY], retryPolicy: RETRY_UNAVAILABLE }],
          retryThrottling: { maxTokens: 6, tokenRatio: 1 },
        },
      },
      { outlierDetection: false },
    );
    await lb.ready();
    for (const pod of svc.pods) pod.setBehaviour({ status: grpc.status.UNAVAILABLE });
    // 6 tokens: each failure takes one; a retry only while more than 3 are left.
    await unary(client, { text: 'x' });
    expect(requests(svc)).toBe(3); // 5, 4 → retried; 3 → not
    await unary(client, { text: 'x' });
    expect(requests(svc)).toBe(4);
    expect(channel.throttle!.available).toBe(2);
    for (const pod of svc.pods) pod.setBehaviour({});
    for (let i = 0; i < 4; i++) expect((await unary(client, { text: 'ok' })).ok).toBe(true); // back to 6
    for (const pod of svc.pods) pod.setBehaviour({ status: grpc.status.UNAVAILABLE });
    await unary(client, { text: 'x' });
    expect(requests(svc)).toBe(4 + 4 + 3);
  });
});

describe('the retry budget', () => {
  it("still applies: a spent budget stops a retry policy's retries", async () => {
    const svc = await env.cluster.createService({ name: 'budget', replicas: 2 });
    const { lb, client } = connect(
      svc.fqdn,
      { serviceConfig: { methodConfig: [{ name: [UNARY], retryPolicy: RETRY_UNAVAILABLE }] } },
      { outlierDetection: false, retryBudget: { percent: 0, minPerSecond: 0 } },
    );
    await lb.ready();
    for (const pod of svc.pods) pod.setBehaviour({ status: grpc.status.UNAVAILABLE });
    const result = await unary(client, { text: 'x' });
    expect(result.ok ? 0 : result.error.code).toBe(grpc.status.UNAVAILABLE);
    expect(requests(svc)).toBe(1);
  });
});

describe('bad service configs', () => {
  it.each([
    [
      { methodConfig: [{ name: [UNARY], retryPolicy: { ...RETRY_UNAVAILABLE, maxAttempts: 1 } }] },
      'serviceConfig.methodConfig[0].retryPolicy.maxAttempts',
    ],
    ['{"methodConfig": [{"name": [{}], "timeout": "1h"}]}', 'serviceConfig.methodConfig[0].timeout'],
    [{ methodConfig: [{ name: [UNARY] }, { name: [UNARY] }] }, 'serviceConfig.methodConfig[1].name[0]'],
    ['{not json', 'serviceConfig'],
  ])('createGrpcChannel refuses %j naming %s', async (serviceConfig, field) => {
    const svc = await env.cluster.createService({ name: `bad-${field.length}-${String(serviceConfig).length}`, replicas: 1 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'grpc' });
    let error: unknown;
    try {
      createGrpcChannel(lb, { credentials: insecure, serviceConfig: serviceConfig as GrpcServiceConfig });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ field });
    expect((error as Error).message).toContain(field);
  });
});

describe('timeout and waitForReady', () => {
  it("the config's timeout shortens the deadline; a caller's shorter deadline stays; a 23-day timeout does not fire at once", async () => {
    const svc = await env.cluster.createService({ name: 'timeouts', replicas: 2 });
    const { lb, client } = connect(svc.fqdn, {
      serviceConfig: {
        methodConfig: [
          { name: [UNARY], timeout: '0.2s' },
          { name: [{ service: 'hlb.test.Echo' }], timeout: '2000000s' },
        ],
      },
    });
    await lb.ready();
    let started = performance.now();
    const cut = await unary(client, { text: 'slow', delayMs: 1000 });
    expect(cut.ok ? 0 : cut.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(performance.now() - started).toBeLessThan(800);
    started = performance.now();
    const shorter = await unary(client, { text: 'slow', delayMs: 1000 }, { deadlineMs: 50 });
    expect(shorter.ok ? 0 : shorter.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(performance.now() - started).toBeLessThan(180);
    // 23 days: the deadline timer is re-armed, not fired at once. (The config refuses more than
    // 2^31−1 ms; a grpc-js server takes a grpc-timeout near that as expired.)
    const replies = await new Promise<number>((resolve, reject) => {
      let n = 0;
      const stream = client.ServerStream({ text: 'long', count: 3, delayMs: 20 });
      stream.on('data', () => n++);
      stream.on('error', reject);
      stream.on('end', () => resolve(n));
    });
    expect(replies).toBe(3);
  });

  it('waitForReady: with no pod reachable, a call waits for one until its deadline; without it, it fails at once', async () => {
    const svc = await env.cluster.createService({ name: 'wait-ready', replicas: 1 });
    const waiting = connect(svc.fqdn, { serviceConfig: { methodConfig: [{ name: [UNARY], waitForReady: true }] } });
    const failing = connect(svc.fqdn);
    await Promise.all([waiting.lb.ready(), failing.lb.ready()]);
    await svc.crashPod(svc.pods[0]!.name); // stays in DNS: connections refused

    let started = performance.now();
    const fast = await unary(failing.client, { text: 'x' }, { deadlineMs: 3000 });
    expect(fast.ok ? 0 : fast.error.code).toBe(grpc.status.UNAVAILABLE);
    expect(performance.now() - started).toBeLessThan(1000);

    // The call's own option wins over the config's (A6).
    started = performance.now();
    const optedOut = await unary(waiting.client, { text: 'x' }, { deadlineMs: 3000, metadata: new grpc.Metadata({ waitForReady: false }) });
    expect(optedOut.ok ? 0 : optedOut.error.code).toBe(grpc.status.UNAVAILABLE);
    expect(performance.now() - started).toBeLessThan(1000);

    started = performance.now();
    const expired = await unary(waiting.client, { text: 'x' }, { deadlineMs: 400 });
    expect(expired.ok ? 0 : expired.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(performance.now() - started).toBeGreaterThanOrEqual(380);

    started = performance.now();
    const call = unary(waiting.client, { text: 'x' }, { deadlineMs: 8000 });
    await sleep(300);
    const fresh = await svc.restartPod(svc.pods[0]!.name); // a new IP, in DNS at once
    const answered = await call;
    expect(answered.ok && answered.reply.address).toBe(fresh.address);
    console.log(`waitForReady: the call waited ${Math.round(performance.now() - started)} ms for the restarted pod`);
  });
});

describe('the same retry decisions as grpc-js', () => {
  // A config with a retry policy for some codes (by name, lower case and number), and a
  // load-balancing config that headless-lb ignores (its picker chooses).
  const SERVICE_CONFIG = {
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: [
      {
        name: [UNARY],
        retryPolicy: {
          maxAttempts: 3,
          initialBackoff: '0.01s',
          maxBackoff: '0.05s',
          backoffMultiplier: 2,
          retryableStatusCodes: ['CANCELLED', 'unknown', 'DEADLINE_EXCEEDED', 8, 'ABORTED', 'INTERNAL', 'UNAVAILABLE', 16],
        },
      },
    ],
  };

  it('attempts at the server for every status code 1..16: plain grpc-js (grpc.service_config) vs headless-lb (serviceConfig)', async () => {
    const svc = await env.cluster.createService({ name: 'table', replicas: 3 });
    const json = JSON.stringify(SERVICE_CONFIG);
    const plain = new Echo(`ipv4:${svc.pods.map((pod) => `${pod.address}:${svc.port}`).join(',')}`, insecure, {
      'grpc.service_config': json,
    }) as EchoClient;
    env.onClose(() => plain.close());
    const { lb, client } = connect(svc.fqdn, { serviceConfig: json }, { outlierDetection: false, retryBudget: false });
    await lb.ready();
    const rows: { code: string; grpcJs: number; headless: number }[] = [];
    for (let code = 1; code <= 16; code++) {
      for (const pod of svc.pods) pod.setBehaviour({ status: code });
      let before = requests(svc);
      const a = await unary(plain, { text: 'x' }, { deadlineMs: 5000 });
      const grpcJs = requests(svc) - before;
      before = requests(svc);
      const b = await unary(client, { text: 'x' }, { deadlineMs: 5000 });
      const headless = requests(svc) - before;
      expect(a.ok || b.ok).toBe(false);
      expect(b.ok ? 0 : b.error.code).toBe(a.ok ? 0 : a.error.code);
      rows.push({ code: grpc.status[code]!, grpcJs, headless });
    }
    console.table(rows);
    for (const row of rows) expect(row.headless, row.code).toBe(row.grpcJs);
    const retried = SERVICE_CONFIG.methodConfig[0]!.retryPolicy.retryableStatusCodes.length;
    expect(rows.filter((r) => r.grpcJs === 3)).toHaveLength(retried);
    expect(rows.filter((r) => r.grpcJs === 1)).toHaveLength(16 - retried);
  });
  it('retryThrottling: the same attempts per call as grpc-js while the tokens run out and refill', async () => {
    const svc = await env.cluster.createService({ name: 'table-throttle', replicas: 3 });
    const json = JSON.stringify({
      methodConfig: [{ name: [UNARY], retryPolicy: { ...RETRY_UNAVAILABLE, maxAttempts: 3 } }],
      retryThrottling: { maxTokens: 7, tokenRatio: 1 },
    });
    const plain = new Echo(`ipv4:${svc.pods.map((pod) => `${pod.address}:${svc.port}`).join(',')}`, insecure, {
      'grpc.service_config': json,
    }) as EchoClient;
    env.onClose(() => plain.close());
    const { lb, client } = connect(svc.fqdn, { serviceConfig: json }, { outlierDetection: false, retryBudget: false });
    await lb.ready();
    // Failing calls, then successes that refill, then failing calls again.
    const script = ['fail', 'fail', 'fail', 'fail', 'ok', 'ok', 'ok', 'ok', 'ok', 'fail', 'fail', 'fail'] as const;
    const attempts = async (target: EchoClient): Promise<number[]> => {
      const counts: number[] = [];
      for (const step of script) {
        for (const pod of svc.pods) pod.setBehaviour(step === 'fail' ? { status: grpc.status.UNAVAILABLE } : {});
        const before = requests(svc);
        await unary(target, { text: 'x' }, { deadlineMs: 5000 });
        counts.push(requests(svc) - before);
      }
      return counts;
    };
    const grpcJs = await attempts(plain);
    const headless = await attempts(client);
    console.log(`attempts per call, grpc-js: ${grpcJs.join(' ')}; headless-lb: ${headless.join(' ')}`);
    expect(headless).toEqual(grpcJs);
    // 7 tokens, retries above 3.5: 6, 5 retried, 4 last attempt; 3, 2, 1 not retried; 5 OKs: 6; 5, 4 retried, 3 last; 2 not.
    expect(grpcJs).toEqual([3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1]);
  });
});
