import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LookupEvent } from '../../src/index.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';

/**
 * The facts the CLI shows, from the public API against real Knot: the 'lookup' event (names
 * asked, the one that answered, server, TTL, next lookup) and stats()'s ejection time left and
 * slow-start weight.
 */

const TTL = 2;
let env: HttpKnotCluster;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: TTL });
});

afterAll(async () => {
  await env?.close();
});

const nextLookup = (lb: { once(event: 'lookup', listener: (event: LookupEvent) => void): unknown }) =>
  new Promise<LookupEvent>((resolve) => lb.once('lookup', resolve));

describe("the 'lookup' event", () => {
  it('reports the search expansion, the name that answered, the server, the TTL and the next lookup', async () => {
    const svc = await env.cluster.createService({ name: 'looked-up', namespace: 'shop', replicas: 2 });
    const lb = env.balancer({
      service: 'looked-up',
      portName: 'http',
      search: ['default.svc.cluster.local', 'shop.svc.cluster.local'],
      ndots: 5,
    });
    const event = await nextLookup(lb);
    expect(event).toMatchObject({
      outcome: 'endpoints',
      endpoints: 2,
      asked: ['_http._tcp.looked-up.default.svc.cluster.local', svc.srvName],
      answeredName: svc.srvName,
      server: env.knot.address,
      rcode: undefined,
      ttlMs: TTL * 1000,
      error: undefined,
    });
    expect(event.nextLookupInMs).toBeGreaterThan(0);
    expect(event.nextLookupInMs).toBeLessThanOrEqual(TTL * 1000);
    expect(lb.endpoints()).toHaveLength(2); // emitted after the pool was updated
    // The next lookup asks the name that answered first.
    expect((await nextLookup(lb)).asked).toEqual([svc.srvName]);
  });

  it('reports an empty answer with its rcode and negative TTL', async () => {
    const lb = env.balancer({ service: 'absent.default.svc.cluster.local', port: 8080 });
    expect(await nextLookup(lb)).toMatchObject({
      outcome: 'empty',
      endpoints: 0,
      rcode: 'NXDOMAIN',
      ttlMs: TTL * 1000,
      server: env.knot.address,
    });
  });

  it('reports a failure with the server, the error and the backoff', async () => {
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    env.onClose(() => silent.close());
    const server = `127.0.0.1:${silent.address().port}`;
    const lb = env.balancer({
      service: 'web.default.svc.cluster.local',
      port: 8080,
      dnsServers: [server],
      dnsTimeoutMs: 100,
      dnsAttempts: 1,
    });
    const event = await nextLookup(lb);
    expect(event).toMatchObject({ outcome: 'error', server, ttlMs: undefined, asked: ['web.default.svc.cluster.local'] });
    expect(event.error?.reason).toBe('TIMEOUT');
    expect(event.nextLookupInMs).toBeGreaterThan(0);
  });
});

describe('stats() for a live view', () => {
  it('says how long an ejection has left, and how far slow start has ramped', async () => {
    const svc = await env.cluster.createService({ name: 'ramped', replicas: 2 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'http', slowStart: { windowMs: 60_000 } });
    await lb.ready({ timeoutMs: 5000 });
    expect(lb.stats().endpoints.map((e) => [e.ejectedForMs, e.slowStartWeight])).toEqual([
      [0, 1],
      [0, 1],
    ]); // present at the first lookup: not ramped
    await svc.scale(3);
    await lb.refresh();
    const added = lb.stats().endpoints.find((e) => e.name === svc.pod('ramped-2').fqdn)!;
    expect(added.slowStartWeight).toBeGreaterThanOrEqual(0.1); // the minimum weight
    expect(added.slowStartWeight).toBeLessThan(0.2);

    await svc.crashPod('ramped-0');
    const crashed = lb.endpoints().find((e) => e.name === svc.pod('ramped-0').fqdn)!;
    // Round-robin reaches the crashed pod within a few calls; its refused connection ejects it.
    for (let i = 0; i < 6 && crashed.state !== 'ejected'; i++) {
      await lb.run((endpoint) => fetch(`http://${endpoint.host}/`), { idempotent: true }).catch(() => {});
    }
    const ejected = lb.stats().endpoints.find((e) => e.id === crashed.id)!;
    expect(ejected.state).toBe('ejected');
    expect(ejected.ejectedForMs).toBeGreaterThan(20_000);
    expect(ejected.ejectedForMs).toBeLessThanOrEqual(33_000);
  });
});
