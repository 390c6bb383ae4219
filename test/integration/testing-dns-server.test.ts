import { promises as dns } from 'node:dns';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { ClusterModel, startDnsServer, type DnsServer } from '../../src/testing/index.js';
import { handlesReleased } from '../../src/testing/handles.js';
import { buildQuery, decode, exchange, exchangeTcp, query } from '../support/dns-query.js';

const SVC = 'web-headless.default.svc.cluster.local';
const SRV = `_http._tcp.${SVC}`;

function model(): ClusterModel {
  const m = new ClusterModel();
  m.setService({
    name: 'web-headless',
    pods: [
      { hostname: 'web-0', ip: '127.0.0.11', ready: true },
      { hostname: 'web-1', ip: '127.0.0.12', ready: true },
      { hostname: 'web-2', ip: '127.0.0.13', ipv6: '::ffff:127.0.0.13', ready: true },
    ],
  });
  m.setService({
    name: 'big',
    pods: Array.from({ length: 150 }, (_, i) => ({
      hostname: `big-${i}`,
      ip: `127.1.${Math.floor(i / 200)}.${(i % 200) + 1}`,
      ready: true,
    })),
  });
  m.setService({ name: 'v4only', pods: [{ hostname: 'v-0', ip: '127.0.0.21', ready: true }] });
  return m;
}

describe('embedded DNS server', () => {
  let server: DnsServer;

  beforeAll(async () => {
    server = await startDnsServer({ model: model() });
  });

  afterAll(async () => {
    await server.close();
  });

  afterEach(() => {
    server.setFault(null);
    server.resetQueries();
  });

  it('listens on 127.0.0.1, UDP and TCP on the same port', async () => {
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await query(server.address, SVC, 'A', { transport: 'udp' })).rcode).toBe('NOERROR');
    expect((await query(server.address, SVC, 'A', { transport: 'tcp' })).rcode).toBe('NOERROR');
  });

  it('answers A authoritatively with one record per ready pod, echoing ID and question', async () => {
    const r = await query(server.address, SVC, 'A', { id: 4321 });
    expect(r).toMatchObject({ id: 4321, rcode: 'NOERROR', aa: true, tc: false, rd: true });
    expect(r.questions).toEqual([{ name: SVC, type: 'A', class: 'IN' }]);
    expect(r.answers.map((a) => [a.name, a.type, a.ttl, a.data])).toEqual([
      [SVC, 'A', 5, '127.0.0.11'],
      [SVC, 'A', 5, '127.0.0.12'],
      [SVC, 'A', 5, '127.0.0.13'],
    ]);
  });

  it('answers NODATA (NOERROR, no answer, SOA in authority) for a type the name lacks', async () => {
    const r = await query(server.address, 'v4only.default.svc.cluster.local', 'AAAA');
    expect(r).toMatchObject({ rcode: 'NOERROR', aa: true });
    expect(r.answers).toEqual([]);
    expect(r.authorities).toEqual([
      expect.objectContaining({
        name: 'cluster.local',
        type: 'SOA',
        ttl: 5,
        data: expect.objectContaining({ mname: 'ns.dns.cluster.local', minimum: 5 }),
      }),
    ]);
  });

  it('answers SRV with the targets’ A and AAAA records in the additional section', async () => {
    const r = await query(server.address, SRV, 'SRV');
    expect(r.answers.map((a) => a.data)).toEqual(
      [0, 1, 2].map((i) => ({ priority: 0, weight: 33, port: 8080, target: `web-${i}.${SVC}` })),
    );
    expect(r.additionals.map((a) => [a.name, a.type, 'data' in a ? a.data : undefined])).toEqual([
      [`web-0.${SVC}`, 'A', '127.0.0.11'],
      [`web-1.${SVC}`, 'A', '127.0.0.12'],
      [`web-2.${SVC}`, 'A', '127.0.0.13'],
      [`web-2.${SVC}`, 'AAAA', '::ffff:7f00:d'],
    ]);
  });

  it('answers NXDOMAIN with the SOA in authority for an unknown name', async () => {
    const r = await query(server.address, 'nope.default.svc.cluster.local', 'A');
    expect(r).toMatchObject({ rcode: 'NXDOMAIN', aa: true });
    expect(r.authorities.map((a) => [a.type, a.ttl])).toEqual([['SOA', 5]]);
  });

  it('answers NOERROR (not NXDOMAIN) for names that exist only because names below them do', async () => {
    for (const name of ['svc.cluster.local', 'default.svc.cluster.local', `_tcp.${SVC}`]) {
      expect((await query(server.address, name, 'A')).rcode, name).toBe('NOERROR');
    }
  });

  it('refuses names outside its zone, without AA', async () => {
    const r = await query(server.address, 'example.com', 'A');
    expect(r).toMatchObject({ rcode: 'REFUSED', aa: false });
  });

  it('matches names case-insensitively and answers in the query’s case', async () => {
    const r = await query(server.address, 'WEB-Headless.Default.SVC.cluster.local', 'A');
    expect(r.answers).toHaveLength(3);
    expect(r.answers[0]?.name).toBe('WEB-Headless.Default.SVC.cluster.local');
  });

  it('sets TC on a 150-pod answer over UDP (empty answer, as Knot) and sends it whole over TCP', async () => {
    const name = 'big.default.svc.cluster.local';
    const udp = await query(server.address, name, 'A');
    expect(udp).toMatchObject({ tc: true, aa: true, rcode: 'NOERROR' });
    expect(udp.answers).toEqual([]);
    const udpEdns = await query(server.address, name, 'A', { edns: { payloadSize: 4096 } });
    expect(udpEdns.tc).toBe(true); // the server never sends more than 1232 bytes over UDP
    const tcp = await query(server.address, name, 'A', { transport: 'tcp' });
    expect(tcp.tc).toBe(false);
    expect(tcp.answers).toHaveLength(150);
    const srv = await query(server.address, `_http._tcp.${name}`, 'SRV', { transport: 'tcp' });
    expect(srv.answers).toHaveLength(150);
    expect(srv.additionals).toHaveLength(150);
  });

  it('answers EDNS queries with an OPT record (payload 1232, DO echoed) and honours the client payload size', async () => {
    const r = await query(server.address, SVC, 'A', { edns: { payloadSize: 4096, dnssecOk: true } });
    const opt = r.additionals.find((a) => a.type === 'OPT');
    expect(opt).toMatchObject({ udpPayloadSize: 1232, ednsVersion: 0, flag_do: true });
    const plain = await query(server.address, SVC, 'A');
    expect(plain.additionals).toEqual([]);
    // 60 A records (~1 KB) fit in 1232 bytes but not in 512.
    const m = model();
    m.setService({ name: 'sixty', pods: Array.from({ length: 60 }, (_, i) => ({ ip: `127.2.0.${i + 1}`, ready: true })) });
    await server.publish(m);
    expect((await query(server.address, 'sixty.default.svc.cluster.local', 'A', { edns: { payloadSize: 1232 } })).answers).toHaveLength(60);
    expect((await query(server.address, 'sixty.default.svc.cluster.local', 'A', { edns: { payloadSize: 512 } })).tc).toBe(true);
    expect((await query(server.address, 'sixty.default.svc.cluster.local', 'A')).tc).toBe(true);
    await server.publish(model());
  });

  it('answers several queries on one TCP connection', async () => {
    const responses = await exchangeTcp(server.address, [
      buildQuery(SVC, 'A', { id: 1 }),
      buildQuery(SRV, 'SRV', { id: 2 }),
      buildQuery('nope.cluster.local', 'A', { id: 3 }),
    ]);
    expect(responses.map((raw) => (raw === undefined ? undefined : [decode(raw).id, decode(raw).rcode]))).toEqual([
      [1, 'NOERROR'],
      [2, 'NOERROR'],
      [3, 'NXDOMAIN'],
    ]);
  });

  it('serves a snapshot of what was published, and the new one right after publish()', async () => {
    const m = model();
    await server.publish(m);
    m.deleteService('web-headless'); // not published yet
    expect((await query(server.address, SVC, 'A')).answers).toHaveLength(3);
    await server.publish(m);
    expect(server.serial).toBe(m.serial);
    expect((await query(server.address, SVC, 'A')).rcode).toBe('NXDOMAIN');
    await server.publish(model());
  });

  it('counts the queries it receives by name, type and transport', async () => {
    await query(server.address, SVC, 'A');
    await query(server.address, SVC.toUpperCase(), 'A', { transport: 'tcp' });
    await query(server.address, SRV, 'SRV');
    expect(server.countQueries()).toBe(3);
    expect(server.countQueries({ name: SVC, type: 'A' })).toBe(2);
    expect(server.countQueries({ name: `${SVC}.`, transport: 'tcp' })).toBe(1);
    expect(server.countQueries({ type: 'SRV' })).toBe(1);
    expect(server.queries[2]).toEqual({ name: SRV, type: 'SRV', transport: 'udp' });
  });

  describe('faults', () => {
    it('servfail and refused answer every query with that rcode', async () => {
      server.setFault('servfail');
      expect(await query(server.address, SVC, 'A')).toMatchObject({ rcode: 'SERVFAIL', aa: false, answers: [] });
      server.setFault('refused');
      expect((await query(server.address, SVC, 'A', { transport: 'tcp' })).rcode).toBe('REFUSED');
      server.setFault(null);
      expect((await query(server.address, SVC, 'A')).rcode).toBe('NOERROR');
    });

    it('silent drops queries over UDP and TCP (but still counts them)', async () => {
      server.setFault('silent');
      expect(await exchange(server.address, buildQuery(SVC, 'A'), 'udp', 300)).toBeUndefined();
      expect(await exchange(server.address, buildQuery(SVC, 'A'), 'tcp', 300)).toBeUndefined();
      expect(server.countQueries({ name: SVC })).toBe(2);
    });

    it('garbage answers with the query ID followed by bytes that do not parse', async () => {
      server.setFault('garbage');
      for (const transport of ['udp', 'tcp'] as const) {
        const raw = await exchange(server.address, buildQuery(SVC, 'A', { id: 999 }), transport);
        expect(raw?.readUInt16BE(0)).toBe(999);
        expect(() => decode(raw!)).toThrow();
      }
    });

    it('delayMs answers correctly, late', async () => {
      server.setFault({ delayMs: 150 });
      const started = performance.now();
      const r = await query(server.address, SVC, 'A');
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
      expect(r.answers).toHaveLength(3);
    });

    it('rejects an unknown fault', () => {
      expect(() => server.setFault('flaky' as never)).toThrow(InvalidOptionError);
      expect(() => server.setFault({ delayMs: -1 })).toThrow(InvalidOptionError);
    });
  });

  describe('with Node’s own resolver (c-ares)', () => {
    const resolver = (): dns.Resolver => {
      const r = new dns.Resolver({ timeout: 300, tries: 2 });
      r.setServers([server.address]);
      return r;
    };

    it('resolves A with TTLs and SRV', async () => {
      expect(await resolver().resolve4(SVC, { ttl: true })).toEqual([
        { address: '127.0.0.11', ttl: 5 },
        { address: '127.0.0.12', ttl: 5 },
        { address: '127.0.0.13', ttl: 5 },
      ]);
      expect((await resolver().resolveSrv(SRV)).map((s) => s.name).sort()).toEqual([0, 1, 2].map((i) => `web-${i}.${SVC}`));
    });

    it('reports NXDOMAIN as ENOTFOUND, NODATA as ENODATA, SERVFAIL as ESERVFAIL', async () => {
      await expect(resolver().resolve4('nope.default.svc.cluster.local')).rejects.toMatchObject({ code: 'ENOTFOUND' });
      await expect(resolver().resolve6('v4only.default.svc.cluster.local')).rejects.toMatchObject({ code: 'ENODATA' });
      server.setFault('servfail');
      await expect(resolver().resolve4(SVC)).rejects.toMatchObject({ code: 'ESERVFAIL' });
    });

    it('falls back to TCP by itself for the truncated 150-pod answer', async () => {
      expect(await resolver().resolve4('big.default.svc.cluster.local')).toHaveLength(150);
      expect(server.countQueries({ name: 'big.default.svc.cluster.local', transport: 'tcp' })).toBeGreaterThanOrEqual(1);
    });
  });
});

describe('embedded DNS server lifecycle', () => {
  it('stop() stops answering, start() answers again on the same port', async () => {
    const server = await startDnsServer({ model: model() });
    try {
      const { port } = server;
      await server.stop();
      expect(server.listening).toBe(false);
      expect(await exchange(server.address, buildQuery(SVC, 'A'), 'udp', 200)).toBeUndefined();
      await server.start();
      expect(server.port).toBe(port);
      expect((await query(server.address, SVC, 'A')).answers).toHaveLength(3);
    } finally {
      await server.close();
    }
  });

  it('serves an empty cluster.local zone when started without a model', async () => {
    const server = await startDnsServer();
    try {
      expect((await query(server.address, 'cluster.local', 'SOA')).answers).toHaveLength(1);
      expect((await query(server.address, SVC, 'A')).rcode).toBe('NXDOMAIN');
    } finally {
      await server.close();
    }
  });

  it('close() releases every socket, timer and connection, even with queries pending', async () => {
    const before = activeHandles();
    const server = await startDnsServer({ model: model() });
    server.setFault({ delayMs: 10_000 });
    const pendingUdp = exchange(server.address, buildQuery(SVC, 'A'), 'udp', 300);
    const pendingTcp = exchange(server.address, buildQuery(SVC, 'A'), 'tcp', 300);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await server.close();
    expect(await pendingTcp).toBeUndefined(); // connection closed by the server
    await pendingUdp;
    await handlesReleased(); // the test client's own sockets
    expect(leakedSince(before)).toEqual([]);
    await expect(server.start()).rejects.toThrow(/closed/);
  });

  it('close() resolves only once its handles are gone', async () => {
    const before = activeHandles();
    const server = await startDnsServer();
    await server.close();
    expect(leakedSince(before)).toEqual([]);
  });

  it('takes a given port, and reports a port in use', async () => {
    const first = await startDnsServer();
    try {
      await expect(startDnsServer({ port: first.port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await expect(startDnsServer({ port: -1 })).rejects.toBeInstanceOf(InvalidOptionError);
    } finally {
      await first.close();
    }
  });
});

function activeHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) if (name !== 'FSReqCallback') counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

/** Handle types of which there are more now than in `before`. */
function leakedSince(before: Record<string, number>): string[] {
  return Object.entries(activeHandles())
    .filter(([name, n]) => n > (before[name] ?? 0))
    .map(([name, n]) => `${name} x${n - (before[name] ?? 0)}`);
}
