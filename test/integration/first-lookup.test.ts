import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadlineExceededError, InvalidOptionError, createBalancer, type Balancer } from '../../src/index.js';
import { startCluster, type Cluster } from '../../src/testing/index.js';

/**
 * Calls made before the first lookup has answered: the embedded cluster's DNS answers late
 * (`{ delayMs }`), so run() has to wait, and its deadline must cover that wait.
 */
let cluster: Cluster;
const balancers: Balancer[] = [];

beforeAll(async () => {
  cluster = await startCluster({ ttl: 30 });
});

afterAll(async () => {
  await Promise.all(balancers.map((lb) => lb.close()));
  await cluster?.close();
});

function balancerFor(fqdn: string): Balancer {
  const lb = createBalancer({ service: fqdn, port: 8080, dnsServers: [cluster.dnsServer] });
  balancers.push(lb);
  return lb;
}

describe('before the first lookup', () => {
  it("run()'s deadline covers the wait for the first lookup", async () => {
    const svc = await cluster.createService({ name: 'late-dns', replicas: 2 });
    cluster.dns.setFault({ delayMs: 400 });
    try {
      const lb = balancerFor(svc.fqdn);
      // 400 ms of waiting for DNS, then an attempt of 400 ms: past a 600 ms deadline.
      const slow = lb.run(
        async (_endpoint, { signal }) => {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, 400);
            signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
          });
          return 'answered';
        },
        { timeoutMs: 600 },
      );
      await expect(slow).rejects.toBeInstanceOf(DeadlineExceededError);
    } finally {
      cluster.dns.setFault(null);
    }
  });

  it('ready() rejects bad options rather than throwing; pick() names a bad argument', async () => {
    const svc = await cluster.createService({ name: 'bad-args', replicas: 1 });
    const lb = balancerFor(svc.fqdn);
    const pending = lb.ready({ timeoutMs: -1 });
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toBeInstanceOf(InvalidOptionError);
    await lb.ready();
    expect(() => lb.pick(null as never)).toThrow(InvalidOptionError);
    expect(() => lb.pick({ kye: 'x' } as never)).toThrow(InvalidOptionError);
    expect(lb.pick({ key: 'x' }).port).toBe(8080);
  });

  it('refresh() right after ready() asks DNS again', async () => {
    const svc = await cluster.createService({ name: 'fresh-look', replicas: 1 });
    const lb = balancerFor(svc.fqdn);
    await lb.ready();
    cluster.dns.resetQueries();
    await lb.refresh();
    expect(cluster.dns.countQueries({ name: svc.fqdn, type: 'A' })).toBe(1);
  });
});
