import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/errors.js';
import { ClusterModel, podFqdn, records, serviceFqdn, srvFqdn, toZoneFile, type DnsRecord } from '../../../src/testing/index.js';

function webModel(): ClusterModel {
  const model = new ClusterModel();
  model.setService({
    name: 'web-headless',
    pods: [
      { hostname: 'web-0', ip: '127.0.0.11', ready: true },
      { hostname: 'web-1', ip: '127.0.0.12', ready: true },
      { hostname: 'web-2', ip: '127.0.0.13', ready: true },
    ],
  });
  return model;
}

const byName = (all: DnsRecord[], name: string, type?: string): DnsRecord[] =>
  all.filter((r) => r.name === name && (type === undefined || r.type === type));

describe('ClusterModel', () => {
  it('defaults to cluster.local, TTL 5 and serial 1', () => {
    const model = new ClusterModel();
    expect(model.domain).toBe('cluster.local');
    expect(model.ttl).toBe(5);
    expect(model.serial).toBe(1);
    expect(model.services).toEqual([]);
  });

  it('increases the serial on every change, and only on changes', () => {
    const model = new ClusterModel({ serial: 10 });
    model.setService({ name: 'a', pods: [] });
    expect(model.serial).toBe(11);
    model.setService({ name: 'a', pods: [{ ip: '127.0.0.11', ready: true }] });
    expect(model.serial).toBe(12);
    expect(model.deleteService('a')).toBe(true);
    expect(model.serial).toBe(13);
    expect(model.deleteService('a')).toBe(false);
    expect(model.serial).toBe(13);
  });

  it('applies service defaults: namespace default, port http/8080/tcp', () => {
    const model = new ClusterModel();
    const service = model.setService({ name: 'web', pods: [] });
    expect(service).toEqual({ name: 'web', namespace: 'default', ports: [{ name: 'http', port: 8080, protocol: 'tcp' }], pods: [] });
    expect(model.getService('web')).toBe(service);
    expect(model.getService('web', 'other')).toBeUndefined();
  });

  it('clone() is a snapshot: later edits do not leak into it', () => {
    const model = webModel();
    const copy = model.clone();
    model.deleteService('web-headless');
    expect(copy.getService('web-headless')).toBeDefined();
    expect(copy.serial).toBe(model.serial - 1);
  });

  it('rejects invalid input with errors that name the field and the value', () => {
    const model = new ClusterModel();
    const attempt = (fn: () => unknown): InvalidOptionError => {
      try {
        fn();
      } catch (error) {
        return error as InvalidOptionError;
      }
      throw new Error('did not throw');
    };
    expect(attempt(() => model.setService({ name: 'Web_1', pods: [] }))).toMatchObject({ field: 'service.name', value: 'Web_1' });
    expect(attempt(() => model.setService({ name: 'web', pods: [{ ip: '10.0.0.1.5', ready: true }] }))).toMatchObject({
      field: 'service.pods[0].ip',
    });
    expect(attempt(() => model.setService({ name: 'web', ports: [{ name: 'http', port: 0 }], pods: [] }))).toMatchObject({
      field: 'service.ports[0].port',
      value: 0,
    });
    expect(attempt(() => new ClusterModel({ ttl: -1 }))).toMatchObject({ field: 'ttl', value: -1 });
    expect(attempt(() => new ClusterModel({ domain: 'Cluster.Local' }))).toBeInstanceOf(InvalidOptionError);
    expect(model.serial).toBe(1);
  });
});

describe('records()', () => {
  it('serves what CoreDNS serves for a 3-pod StatefulSet behind a headless Service', () => {
    const all = records(webModel());
    const svc = 'web-headless.default.svc.cluster.local';
    expect(byName(all, svc, 'A').map((r) => r.data)).toEqual(['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    expect(byName(all, `web-1.${svc}`)).toEqual([{ name: `web-1.${svc}`, type: 'A', ttl: 5, data: '127.0.0.12' }]);
    expect(byName(all, `_http._tcp.${svc}`)).toEqual(
      [0, 1, 2].map((i) => ({
        name: `_http._tcp.${svc}`,
        type: 'SRV',
        ttl: 5,
        data: { priority: 0, weight: 33, port: 8080, target: `web-${i}.${svc}` },
      })),
    );
  });

  it('has the zone SOA, NS and the NS address', () => {
    const all = records(webModel());
    expect(all.slice(0, 3)).toEqual([
      {
        name: 'cluster.local',
        type: 'SOA',
        ttl: 5,
        data: {
          mname: 'ns.dns.cluster.local',
          rname: 'hostmaster.cluster.local',
          serial: 2,
          refresh: 7200,
          retry: 1800,
          expire: 86400,
          minimum: 5,
        },
      },
      { name: 'cluster.local', type: 'NS', ttl: 5, data: 'ns.dns.cluster.local' },
      { name: 'ns.dns.cluster.local', type: 'A', ttl: 5, data: '127.0.0.1' },
    ]);
  });

  it.each([
    [1, 100],
    [2, 50],
    [3, 33],
    [7, 14],
    [100, 1],
    [150, 1],
  ])('SRV weight with %i targets is %i: max(1, floor(100 / targets))', (count, weight) => {
    const model = new ClusterModel();
    model.setService({
      name: 's',
      pods: Array.from({ length: count }, (_, i) => ({
        hostname: `s-${i}`,
        ip: `127.1.${Math.floor(i / 200)}.${(i % 200) + 1}`,
        ready: true,
      })),
    });
    const srv = records(model).filter((r) => r.type === 'SRV');
    expect(srv).toHaveLength(count);
    expect(new Set(srv.map((r) => (r.type === 'SRV' ? r.data.weight : -1)))).toEqual(new Set([weight]));
  });

  it('names pods without a hostname by their dashed IP', () => {
    const model = new ClusterModel();
    model.setService({ name: 'api', namespace: 'shop', pods: [{ ip: '127.0.0.21', ready: true }] });
    const all = records(model);
    expect(byName(all, '127-0-0-21.api.shop.svc.cluster.local', 'A')).toHaveLength(1);
    expect(byName(all, '_http._tcp.api.shop.svc.cluster.local')[0]?.data).toMatchObject({
      target: '127-0-0-21.api.shop.svc.cluster.local',
    });
  });

  it('leaves out pods that are not ready, and the whole service when none is (NXDOMAIN)', () => {
    const model = new ClusterModel();
    model.setService({
      name: 'half',
      pods: [
        { hostname: 'h-0', ip: '127.0.0.11', ready: true },
        { hostname: 'h-1', ip: '127.0.0.12', ready: false },
      ],
    });
    model.setService({ name: 'zero', pods: [{ hostname: 'z-0', ip: '127.0.0.13', ready: false }] });
    model.setService({ name: 'empty', pods: [] });
    const all = records(model);
    expect(byName(all, 'half.default.svc.cluster.local', 'A').map((r) => r.data)).toEqual(['127.0.0.11']);
    expect(byName(all, 'h-1.half.default.svc.cluster.local')).toEqual([]);
    expect(byName(all, '_http._tcp.half.default.svc.cluster.local')[0]?.data).toMatchObject({ weight: 100 });
    expect(all.filter((r) => r.name.includes('zero') || r.name.includes('empty'))).toEqual([]);
  });

  it('adds AAAA records for pods with an IPv6 address, under the service and the pod name', () => {
    const model = new ClusterModel();
    model.setService({
      name: 'dual',
      pods: [
        { hostname: 'd-0', ip: '127.0.0.11', ipv6: '::ffff:127.0.0.11', ready: true },
        { hostname: 'd-1', ip: '127.0.0.12', ready: true },
      ],
    });
    const all = records(model);
    expect(byName(all, 'dual.default.svc.cluster.local', 'AAAA').map((r) => r.data)).toEqual(['::ffff:127.0.0.11']);
    expect(byName(all, 'd-0.dual.default.svc.cluster.local', 'AAAA')).toHaveLength(1);
    expect(byName(all, 'd-1.dual.default.svc.cluster.local', 'AAAA')).toHaveLength(0);
  });

  it('gives every named port its SRV RRset, and unnamed ports none', () => {
    const model = new ClusterModel();
    model.setService({
      name: 'm',
      ports: [{ name: 'http', port: 8080 }, { name: 'dns', port: 53, protocol: 'udp' }, { port: 9100 }],
      pods: [{ hostname: 'm-0', ip: '127.0.0.11', ready: true }],
    });
    const srvNames = [
      ...new Set(
        records(model)
          .filter((r) => r.type === 'SRV')
          .map((r) => r.name),
      ),
    ];
    expect(srvNames).toEqual(['_http._tcp.m.default.svc.cluster.local', '_dns._udp.m.default.svc.cluster.local']);
  });

  it('uses the model TTL and domain everywhere', () => {
    const model = new ClusterModel({ domain: 'corp.internal', ttl: 30 });
    model.setService({ name: 'web', pods: [{ hostname: 'web-0', ip: '127.0.0.11', ready: true }] });
    const all = records(model);
    expect(new Set(all.map((r) => r.ttl))).toEqual(new Set([30]));
    expect(all.every((r) => r.name.endsWith('corp.internal'))).toBe(true);
    expect(all[0]?.data).toMatchObject({ minimum: 30 });
  });

  it('name helpers build the same names', () => {
    const model = new ClusterModel();
    expect(serviceFqdn(model, 'web', 'shop')).toBe('web.shop.svc.cluster.local');
    expect(srvFqdn(model, { name: 'web', namespace: 'shop' }, { name: 'grpc' })).toBe('_grpc._tcp.web.shop.svc.cluster.local');
    expect(podFqdn(model, { name: 'web', namespace: 'shop' }, { ip: '127.0.0.9' })).toBe('127-0-0-9.web.shop.svc.cluster.local');
  });
});

describe('toZoneFile()', () => {
  it('writes the zone Knot loads, as in test-infra.md', () => {
    expect(toZoneFile(webModel())).toBe(
      [
        '; generated by headless-lb/testing (serial 2)',
        '$ORIGIN cluster.local.',
        '$TTL 5',
        '@\t5\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 2 7200 1800 86400 5',
        '@\t5\tIN\tNS\tns.dns.cluster.local.',
        'ns.dns\t5\tIN\tA\t127.0.0.1',
        'web-headless.default.svc\t5\tIN\tA\t127.0.0.11',
        'web-headless.default.svc\t5\tIN\tA\t127.0.0.12',
        'web-headless.default.svc\t5\tIN\tA\t127.0.0.13',
        'web-0.web-headless.default.svc\t5\tIN\tA\t127.0.0.11',
        'web-1.web-headless.default.svc\t5\tIN\tA\t127.0.0.12',
        'web-2.web-headless.default.svc\t5\tIN\tA\t127.0.0.13',
        '_http._tcp.web-headless.default.svc\t5\tIN\tSRV\t0 33 8080 web-0.web-headless.default.svc.cluster.local.',
        '_http._tcp.web-headless.default.svc\t5\tIN\tSRV\t0 33 8080 web-1.web-headless.default.svc.cluster.local.',
        '_http._tcp.web-headless.default.svc\t5\tIN\tSRV\t0 33 8080 web-2.web-headless.default.svc.cluster.local.',
        '',
      ].join('\n'),
    );
  });
});
