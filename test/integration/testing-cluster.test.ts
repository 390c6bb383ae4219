import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { startCluster, startDnsServer, type Cluster, type DnsServer, type Service } from '../../src/testing/index.js';
import { handlesReleased } from '../../src/testing/handles.js';
import { query } from '../support/dns-query.js';
import { get } from '../support/http-get.js';
import { waitFor } from '../support/wait.js';

async function addresses(cluster: Cluster, name: string, type = 'A'): Promise<string[]> {
  const r = await query(cluster.dnsServer, name, type, { transport: 'tcp' });
  return r.answers.map((a) => String(a.data)).sort();
}

async function srvTargets(cluster: Cluster, service: Service): Promise<string[]> {
  const r = await query(cluster.dnsServer, service.srvName, 'SRV', { transport: 'tcp' });
  return r.answers.map((a) => (a.type === 'SRV' ? a.data.target : '')).sort();
}

const ips = (service: Service, names: string[]): string[] => names.map((n) => service.pod(n).ip).sort();

describe('startCluster', () => {
  let cluster: Cluster;
  let web: Service;

  beforeAll(async () => {
    cluster = await startCluster({ ttl: 5 });
  });

  afterAll(async () => {
    await cluster.close();
  });

  afterEach(async () => {
    await web?.delete().catch(() => {});
  });

  it('creates a headless Service whose pods are in DNS and answer HTTP', async () => {
    web = await cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });
    expect(cluster.dnsServer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(web.fqdn).toBe('web-headless.default.svc.cluster.local');
    expect(web.srvName).toBe('_http._tcp.web-headless.default.svc.cluster.local');
    expect(web.pods.map((p) => [p.name, p.fqdn, p.state, p.ready])).toEqual(
      [0, 1, 2].map((i) => [`web-${i}`, `web-${i}.web-headless.default.svc.cluster.local`, 'running', true]),
    );
    expect(await addresses(cluster, web.fqdn)).toEqual(ips(web, ['web-0', 'web-1', 'web-2']));
    expect(await srvTargets(cluster, web)).toEqual(web.pods.map((p) => p.fqdn));
    for (const pod of web.pods) {
      expect(JSON.parse((await get(`${pod.url}/`)).body)).toEqual({ pod: pod.name, ip: pod.ip });
      expect(pod.requests).toBe(1);
    }
    const prefixes = new Set(web.pods.map((p) => p.ip.split('.').slice(0, 3).join('.')));
    expect(prefixes.size).toBe(1); // one block per cluster
  });

  it('scale(): up adds the next ordinals; down removes the highest from DNS first, then drains them', async () => {
    web = await cluster.createService({ name: 'web', replicas: 2 });
    await web.scale(4);
    expect(web.pods.map((p) => p.name)).toEqual(['web-0', 'web-1', 'web-2', 'web-3']);
    expect(await addresses(cluster, web.fqdn)).toEqual(ips(web, ['web-0', 'web-1', 'web-2', 'web-3']));

    const web3 = web.pod('web-3');
    web.setBehaviour('web-3', { delayMs: 200 });
    const inFlight = get(web3.url);
    await waitFor(async () => web3.inFlight === 1);
    const scaledDown = web.scale(2);
    // While web-3 drains, DNS no longer has it.
    await waitFor(async () => (await addresses(cluster, web.fqdn)).length === 2);
    expect((await inFlight).status).toBe(200);
    await scaledDown;
    expect(web.pods.map((p) => p.name)).toEqual(['web-0', 'web-1']);
    expect(web3.state).toBe('stopped');
    await expect(get(web3.url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('crashPod(): the server dies but the pod stays in DNS; removeFromDns() then takes it out', async () => {
    web = await cluster.createService({ name: 'web', replicas: 3 });
    await web.crashPod('web-1');
    const web1 = web.pod('web-1');
    expect(web1.state).toBe('crashed');
    expect(await addresses(cluster, web.fqdn)).toContain(web1.ip);
    await expect(get(web1.url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await web.removeFromDns('web-1');
    expect(await addresses(cluster, web.fqdn)).toEqual(ips(web, ['web-0', 'web-2']));
    expect(web.readyPods.map((p) => p.name)).toEqual(['web-0', 'web-2']);
  });

  it('removeFromDns() / addToDns(): readiness flaps while the server keeps serving', async () => {
    web = await cluster.createService({ name: 'web', replicas: 2 });
    await web.removeFromDns('web-0');
    expect(await addresses(cluster, web.fqdn)).toEqual(ips(web, ['web-1']));
    expect((await get(web.pod('web-0').url)).status).toBe(200);
    await web.addToDns('web-0');
    expect(await addresses(cluster, web.fqdn)).toEqual(ips(web, ['web-0', 'web-1']));
  });

  it('restartPod(): same name, new IP, back in DNS (from crashed or running)', async () => {
    web = await cluster.createService({ name: 'web', replicas: 2 });
    const before = web.pod('web-1').ip;
    await web.crashPod('web-1');
    await web.restartPod('web-1');
    const web1 = web.pod('web-1');
    expect(web1.ip).not.toBe(before);
    expect(web1.state).toBe('running');
    expect(web1.requests).toBe(0);
    expect(await addresses(cluster, web1.fqdn)).toEqual([web1.ip]);
    expect(await srvTargets(cluster, web)).toContain('web-1.web.default.svc.cluster.local');
    expect(JSON.parse((await get(web1.url)).body)).toEqual({ pod: 'web-1', ip: web1.ip });
    const again = web1.ip;
    web.setBehaviour('web-1', { status: 503 });
    await web.restartPod('web-1');
    expect(web1.ip).not.toBe(again);
    expect((await get(web1.url)).status).toBe(200); // a new container is healthy
    await expect(get(`http://${again}:8080`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('stopPod(): out of DNS first, then in-flight requests finish and the server closes', async () => {
    web = await cluster.createService({ name: 'web', replicas: 2 });
    const web1 = web.pod('web-1');
    web.setBehaviour('web-1', { delayMs: 200 });
    const inFlight = get(web1.url);
    await waitFor(async () => web1.inFlight === 1);
    const stopping = web.stopPod('web-1');
    await waitFor(async () => (await addresses(cluster, web.fqdn)).length === 1);
    expect((await inFlight).status).toBe(200);
    await stopping;
    expect(web1.state).toBe('stopped');
    expect(web1.ready).toBe(false);
    await expect(get(web1.url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('delete(): the service answers NXDOMAIN and its pods stop', async () => {
    const svc = await cluster.createService({ name: 'gone', replicas: 1 });
    const pod = svc.pod('gone-0');
    await svc.delete();
    expect((await query(cluster.dnsServer, svc.fqdn, 'A')).rcode).toBe('NXDOMAIN');
    expect(pod.state).toBe('stopped');
    expect(() => cluster.service('gone')).toThrow(InvalidOptionError);
    await expect(svc.scale(1)).rejects.toThrow(/deleted/);
  });

  it('scale(0) leaves the service without records (NXDOMAIN), like CoreDNS', async () => {
    web = await cluster.createService({ name: 'web', replicas: 1 });
    await web.scale(0);
    expect((await query(cluster.dnsServer, web.fqdn, 'A')).rcode).toBe('NXDOMAIN');
    await web.scale(1);
    expect(await addresses(cluster, web.fqdn)).toHaveLength(1);
  });

  it('Deployment-style pods (no hostnames) are named by dashed IP; ipv6 adds reachable ::ffff: AAAA records', async () => {
    web = await cluster.createService({
      name: 'api',
      namespace: 'shop',
      replicas: 2,
      hostnames: false,
      ipv6: true,
      portName: 'grpc',
      port: 9090,
    });
    const [first] = web.pods;
    expect(first!.fqdn).toBe(`${first!.ip.replaceAll('.', '-')}.api.shop.svc.cluster.local`);
    expect(web.srvName).toBe('_grpc._tcp.api.shop.svc.cluster.local');
    const aaaa = await query(cluster.dnsServer, web.fqdn, 'AAAA');
    expect(aaaa.answers).toHaveLength(2);
    expect((await get(`http://[::ffff:${first!.ip}]:9090/`)).status).toBe(200);
  });

  it('counts DNS queries and injects DNS faults through cluster.dns', async () => {
    web = await cluster.createService({ name: 'web', replicas: 1 });
    cluster.dns.resetQueries();
    await query(cluster.dnsServer, web.fqdn, 'A');
    expect(cluster.dns.countQueries({ name: web.fqdn, type: 'A' })).toBe(1);
    cluster.dns.setFault('servfail');
    expect((await query(cluster.dnsServer, web.fqdn, 'A')).rcode).toBe('SERVFAIL');
    cluster.dns.setFault(null);
  });

  it('rejects unknown pods, duplicate services and bad options with typed errors', async () => {
    web = await cluster.createService({ name: 'web', replicas: 1 });
    await expect(web.crashPod('web-7')).rejects.toMatchObject({ field: 'pod', value: 'web-7' });
    expect(() => web.setBehaviour('nope', {})).toThrow(InvalidOptionError);
    await expect(cluster.createService({ name: 'web' })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cluster.createService({ name: 'Bad_Name' })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cluster.createService({ name: 'ok', podPrefix: 'UPPER' })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(web.scale(-1)).rejects.toBeInstanceOf(InvalidOptionError);
    expect(cluster.services.map((s) => s.name)).toEqual(['web']);
  });
});

describe('clusters side by side', () => {
  it('use different address blocks, with pods on the same port', async () => {
    const [a, b] = await Promise.all([startCluster(), startCluster()]);
    try {
      const [sa, sb] = await Promise.all([a.createService({ name: 'web', replicas: 2 }), b.createService({ name: 'web', replicas: 2 })]);
      const blockOf = (ip: string): string => ip.split('.').slice(0, 3).join('.');
      expect(blockOf(sa.pods[0]!.ip)).not.toBe(blockOf(sb.pods[0]!.ip));
      expect(JSON.parse((await get(sb.pods[1]!.url)).body)).toMatchObject({ pod: 'web-1' });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('publishes to a DNS server it was given, and leaves it open on close', async () => {
    const dns: DnsServer = await startDnsServer();
    try {
      const cluster = await startCluster({ dns, domain: 'cluster.local' });
      const web = await cluster.createService({ name: 'web', replicas: 2 });
      expect((await query(dns.address, web.fqdn, 'A')).answers).toHaveLength(2);
      await cluster.close();
      expect(dns.listening).toBe(true);
      expect((await query(dns.address, web.fqdn, 'A')).answers).toHaveLength(2); // the last publication stays
    } finally {
      await dns.close();
    }
  });

  it('uses the given domain and TTL', async () => {
    const cluster = await startCluster({ domain: 'corp.internal', ttl: 30 });
    try {
      const web = await cluster.createService({ name: 'web' });
      expect(web.fqdn).toBe('web.default.svc.corp.internal');
      expect((await query(cluster.dnsServer, web.fqdn, 'A')).answers[0]?.ttl).toBe(30);
    } finally {
      await cluster.close();
    }
  });

  it('close() releases every pod, connection and DNS socket', async () => {
    await handlesReleased();
    const before = process.getActiveResourcesInfo().filter((r) => r !== 'FSReqCallback');
    const cluster = await startCluster();
    const web = await cluster.createService({ name: 'web', replicas: 3 });
    web.setBehaviour('web-0', { hang: true });
    web.setBehaviour('web-1', { delayMs: 5000 });
    const pending = [get(web.pod('web-0').url, { timeoutMs: 5000 }), get(web.pod('web-1').url, { timeoutMs: 5000 })].map((p) =>
      p.catch(() => 'failed'),
    );
    await waitFor(async () => web.pod('web-0').inFlight === 1 && web.pod('web-1').inFlight === 1);
    await cluster.close();
    expect(await Promise.all(pending)).toEqual(['failed', 'failed']);
    expect(web.pods.map((p) => p.state)).toEqual(['crashed', 'crashed', 'crashed']);
    await handlesReleased(); // the test's own client sockets
    const after = process.getActiveResourcesInfo().filter((r) => r !== 'FSReqCallback');
    // Nothing new may stay open (handles of the runner itself may come and go meanwhile).
    const count = (list: string[], type: string) => list.filter((r) => r === type).length;
    const grown = [...new Set(after)].filter((type) => count(after, type) > count(before, type));
    expect(grown).toEqual([]);
    await expect(cluster.createService({ name: 'late' })).rejects.toThrow(/closed/);
  });
});
