import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBalancer } from '../../src/index.js';
import { startCluster, type Cluster, type Service } from '../../src/testing/index.js';
import { startLoad } from '../support/load.js';

/**
 * least-latency over real HTTP pods of equal speed (the test kit's pods on 127.x, answering in
 * about 10 ms, as a small real service does): at 1, 2 and 16 requests in flight, every pod gets
 * a real share (a quarter of an even one at least: on a loaded machine, scheduling noise makes
 * equal pods look unequal for a while), with both estimators. Every balancer starts with no measurement of any pod, so this
 * also covers pods without a response yet (once starved at 1 in flight by the 30 ms default RTT)
 * and first responses that pay for the connection set-up. Shares only, no timing assertions;
 * each loop is bounded in requests and time.
 */
const PODS = 4;
const REQUESTS = 600;
let cluster: Cluster;
let svc: Service;

beforeAll(async () => {
  cluster = await startCluster();
  svc = await cluster.createService({ name: 'equal-speed', replicas: PODS, behaviour: { delayMs: 10 } });
});

afterAll(async () => {
  await cluster?.close();
});

describe.each(['mean', 'peak-ewma'] as const)('least-latency (estimator %s) over pods of equal speed', (estimator) => {
  it.each([1, 2, 16])(
    'gives every pod at least a quarter of its share at %i in flight',
    async (concurrency) => {
      const lb = createBalancer({
        endpoints: svc.pods.map((pod) => ({ address: pod.ip, port: svc.port, name: pod.name })),
        picker: { type: 'least-latency', estimator },
      });
      try {
        await lb.ready();
        const result = await startLoad(lb, { concurrency, maxRequests: REQUESTS, maxMs: 25_000 }).finished();
        expect(result.failed).toBe(0);
        const shares = Object.fromEntries(svc.pods.map((pod) => [pod.name, result.byPod.get(pod.name) ?? 0]));
        for (const pod of svc.pods) expect(shares[pod.name], JSON.stringify(shares)).toBeGreaterThanOrEqual(result.ok / (4 * PODS));
      } finally {
        await lb.close();
      }
    },
    40_000,
  );
});
