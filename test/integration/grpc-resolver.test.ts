import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/index.js';
import { registerHeadlessResolver } from '../../src/grpc/index.js';
import { loadEcho, type EchoClient, type EchoReply } from '../support/grpc-pods.js';
import { startKnotCluster, type GrpcKnotCluster } from '../support/knot-cluster.js';
import { sleep, waitFor } from '../support/wait.js';

/**
 * The `headless:` resolver scheme (grpc-js >= 1.14): grpc-js's own round_robin over the pods of a
 * headless Service, fed by headless-lb's TTL-driven discovery. Real Knot DNS, real grpc-js pods.
 * grpc-js 1.14 is the only version the resolver supports (the development dependency).
 */
const TTL = 2;
const SCHEME = 'headless-test';
const Echo = loadEcho();
let env: GrpcKnotCluster;
const clients: EchoClient[] = [];
const ROUND_ROBIN = { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL, pods: 'grpc' });
  registerHeadlessResolver({ scheme: SCHEME, discovery: env.dns });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await sleep(50);
  await env?.close();
});

function client(target: string, options: grpc.ClientOptions = ROUND_ROBIN): EchoClient {
  const c = new Echo(target, grpc.credentials.createInsecure(), options);
  clients.push(c);
  return c;
}

function call(c: EchoClient, deadlineMs = 3000): Promise<EchoReply> {
  return new Promise((resolve, reject) =>
    c.Unary({ text: 'x' }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (error, reply) =>
      error ? reject(error) : resolve(reply!),
    ),
  );
}

describe('headless: resolver scheme', () => {
  it('feeds grpc-js round_robin with every pod, by port number or by SRV port name', async () => {
    const svc = await env.cluster.createService({ name: 'resolve-spread', replicas: 3 });
    for (const target of [`${SCHEME}:///${svc.fqdn}:${svc.port}`, `${SCHEME}:///${svc.fqdn}:grpc`]) {
      const c = client(target);
      const pods = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        const reply = await call(c);
        pods.set(reply.pod, (pods.get(reply.pod) ?? 0) + 1);
      }
      expect(pods.size).toBe(3);
    }
  });

  it('an existing client sends to a new pod within TTL + 1 s (grpc-js alone never would)', async () => {
    const svc = await env.cluster.createService({ name: 'resolve-grow', replicas: 2 });
    const c = client(`${SCHEME}:///${svc.fqdn}:${svc.port}`);
    for (let i = 0; i < 10; i++) await call(c);
    await svc.scale(3);
    const published = performance.now();
    const added = svc.pods[2]!;
    let seenAfter = Number.POSITIVE_INFINITY;
    while (performance.now() - published < (TTL + 2) * 1000) {
      const reply = await call(c);
      if (reply.pod === added.name) {
        seenAfter = performance.now() - published;
        break;
      }
      await sleep(10);
    }
    expect(seenAfter).toBeLessThanOrEqual((TTL + 1) * 1000);
  });

  it('drains on scale-down: zero failed calls', async () => {
    const svc = await env.cluster.createService({ name: 'resolve-shrink', replicas: 3 });
    const c = client(`${SCHEME}:///${svc.fqdn}:${svc.port}`);
    let failed = 0;
    let ok = 0;
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        try {
          await new Promise<EchoReply>((resolve, reject) =>
            c.Unary({ text: 'x', delayMs: 50 }, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (error, reply) =>
              error ? reject(error) : resolve(reply!),
            ),
          );
          ok++;
        } catch {
          failed++;
        }
      }
    };
    const workers = Promise.all(Array.from({ length: 6 }, worker));
    await sleep(300);
    await svc.scale(1, 3000);
    await sleep(300);
    running = false;
    await workers;
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(20);
  });

  it('a service without pods fails calls with UNAVAILABLE, not a hang', async () => {
    const c = client(`${SCHEME}:///nothing-here.default.svc.cluster.local:9090`);
    const error = await call(c, 2000).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toMatch(/no ready pods|NXDOMAIN|not found/i);
  });

  it('validates its options', () => {
    expect(() => registerHeadlessResolver({ scheme: 'dns' })).toThrow(InvalidOptionError);
    expect(() => registerHeadlessResolver({ discovery: { refresh: { minMs: -1 } } })).toThrow(InvalidOptionError);
    expect(() => registerHeadlessResolver({ typo: 1 } as never)).toThrow(InvalidOptionError);
    expect(() => registerHeadlessResolver({ subset: { size: 0 } })).toThrow(/Invalid option subset\.size: 0/);
  });

  it('with a subset, hands grpc-js only the subset members, the same as a balancer with the same id', async () => {
    const svc = await env.cluster.createService({ name: 'resolve-subset', replicas: 10 });
    registerHeadlessResolver({ scheme: `${SCHEME}-subset`, discovery: env.dns, subset: { size: 3, clientId: 'api-2' } });
    const lb = env.balancer({ service: svc.fqdn, port: svc.port, subset: { size: 3, clientId: 'api-2' } });
    await lb.ready();
    await waitFor(() => lb.stats().size === 10, { what: 'the balancer to see 10 pods' });
    const byId = new Map(lb.endpoints().map((e) => [e.id, e.address]));
    const expected = lb.stats().subset!.members.map((id) => byId.get(id)!);
    const c = client(`${SCHEME}-subset:///${svc.fqdn}:${svc.port}`);
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) seen.add((await call(c)).address);
    expect([...seen].sort()).toEqual([...expected].sort());
  });
});
