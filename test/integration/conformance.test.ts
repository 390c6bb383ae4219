import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterModel, startCluster, startDnsServer, toZoneFile, type DnsServer, type PodEndpoint } from '../../src/testing/index.js';
import { KNOT_ENV, KNOT_GUARD_SCRIPT, knotConfig, soaSerial, startKnot, type KnotDns } from '../support/knot.js';
import { findFreeDualPort } from '../support/ports.js';
import { buildQuery, decode, exchange, exchangeTcp, type QueryOptions, type Transport } from '../support/dns-query.js';
import { waitFor } from '../support/wait.js';

/**
 * The embedded DNS server must answer exactly like Knot DNS for the same model: same rcode and
 * flags, same records with the same TTLs in every section, same EDNS record, and (because names
 * are compressed the same way) the same message size, so UDP answers truncate at the same point.
 */

function pods(
  count: number,
  block: number,
  options: { hostnames?: boolean; ipv6?: (i: number) => boolean; ready?: (i: number) => boolean; prefix?: string } = {},
): PodEndpoint[] {
  return Array.from({ length: count }, (_, i) => {
    const ip = `127.${block}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    return {
      ip,
      ready: options.ready?.(i) ?? true,
      ...(options.hostnames === false ? {} : { hostname: `${options.prefix ?? 'pod'}-${i}` }),
      ...(options.ipv6?.(i) === true ? { ipv6: `::ffff:${ip}` } : {}),
    };
  });
}

function buildModel(): ClusterModel {
  const model = new ClusterModel();
  model.setService({ name: 'web-headless', pods: pods(3, 101, { prefix: 'web', ipv6: (i) => i === 2 }) });
  model.setService({ name: 'big', pods: pods(150, 102) });
  model.setService({ name: 'huge', pods: pods(300, 103) });
  // Over TCP too big for one message (64 KiB): the SRV answer fits, its additional records do not all fit.
  model.setService({ name: 'giant', pods: pods(1100, 120) });
  model.setService({ name: 'giant2', pods: pods(1300, 121) });
  // 7 targets, 6 with AAAA: the SRV answer fits in 512 bytes, its additional records only in part.
  model.setService({ name: 'mixed', pods: pods(7, 104, { ipv6: (i) => i < 6 }) });
  for (const count of [72, 73, 74]) model.setService({ name: `a${count}`, pods: pods(count, 110 + count - 72) });
  model.setService({ name: 'deploy', pods: pods(2, 105, { hostnames: false }) });
  model.setService({ name: 'scaled-to-zero', pods: pods(2, 106, { ready: () => false }) });
  model.setService({ name: 'half-ready', pods: pods(4, 107, { ready: (i) => i % 2 === 0 }) });
  model.setService({
    name: 'multi',
    namespace: 'payments',
    ports: [{ name: 'http', port: 8080 }, { name: 'grpc', port: 9090 }, { port: 9100 }],
    pods: pods(3, 108, { ipv6: () => true }),
  });
  return model;
}

const NAMES = [
  'cluster.local',
  'web-headless.default.svc.cluster.local',
  'web-2.web-headless.default.svc.cluster.local',
  '_http._tcp.web-headless.default.svc.cluster.local',
  '_https._tcp.web-headless.default.svc.cluster.local',
  '_tcp.web-headless.default.svc.cluster.local',
  'default.svc.cluster.local',
  'svc.cluster.local',
  'ns.dns.cluster.local',
  'nope.default.svc.cluster.local',
  'x.web-0.web-headless.default.svc.cluster.local',
  'big.default.svc.cluster.local',
  '_http._tcp.big.default.svc.cluster.local',
  '_http._tcp.huge.default.svc.cluster.local',
  '_http._tcp.giant.default.svc.cluster.local',
  'giant2.default.svc.cluster.local',
  '_http._tcp.giant2.default.svc.cluster.local',
  '_http._tcp.mixed.default.svc.cluster.local',
  'deploy.default.svc.cluster.local',
  '127-105-0-1.deploy.default.svc.cluster.local',
  '_http._tcp.deploy.default.svc.cluster.local',
  'scaled-to-zero.default.svc.cluster.local',
  '_http._tcp.half-ready.default.svc.cluster.local',
  'pod-1.half-ready.default.svc.cluster.local',
  'multi.payments.svc.cluster.local',
  '_grpc._tcp.multi.payments.svc.cluster.local',
  'WEB-Headless.Default.SVC.cluster.LOCAL',
  '_HTTP._tcp.web-headless.default.svc.Cluster.Local',
  'Nope.default.svc.CLUSTER.local',
  'example.com',
  'local',
  '.',
  '11.0.0.127.in-addr.arpa',
];
const TYPES = ['A', 'AAAA', 'SRV', 'SOA', 'NS', 'ANY', 'TXT'];
const EDNS: readonly (QueryOptions['edns'] | undefined)[] = [
  undefined,
  { payloadSize: 512 },
  { payloadSize: 1232, dnssecOk: true },
  { payloadSize: 4096 },
];
const TRANSPORTS: readonly Transport[] = ['udp', 'tcp'];

/** The parts of a response that must match; records are compared as sets per section. */
function normalize(raw: Buffer | undefined): unknown {
  if (raw === undefined) return 'no response';
  const r = decode(raw);
  const records = (section: readonly packet.Answer[]): string[] => section.map((record) => JSON.stringify(record)).sort();
  return {
    size: raw.length,
    id: r.id,
    rcode: r.rcode,
    opcode: r.opcode,
    flags: { aa: r.aa, tc: r.tc, rd: r.rd, cd: r.cd, ad: r.ad },
    questions: r.questions,
    answers: records(r.answers),
    authorities: records(r.authorities),
    additionals: records(r.additionals),
  };
}

describe('embedded DNS server vs Knot DNS', () => {
  let knot: KnotDns;
  let embedded: DnsServer;
  const model = buildModel();

  beforeAll(async () => {
    [knot, embedded] = await Promise.all([startKnot({ model }), startDnsServer({ model })]);
  });

  afterAll(async () => {
    await Promise.all([knot?.close(), embedded?.close()]);
  });

  /** Sends the same bytes to both servers; returns the differences (empty when they agree). */
  async function compare(
    label: string,
    message: Buffer,
    transport: Transport,
    timeoutMs = 1500,
  ): Promise<{ differences: string[]; sameBytes: boolean }> {
    const [fromKnot, fromEmbedded] = await Promise.all([
      exchange(knot.address, message, transport, timeoutMs),
      exchange(embedded.address, message, transport, timeoutMs),
    ]);
    const expected = normalize(fromKnot);
    const actual = normalize(fromEmbedded);
    const same = JSON.stringify(expected) === JSON.stringify(actual);
    return {
      differences: same ? [] : [`${label}: ${describeDifference(expected, actual)}`],
      sameBytes: fromKnot === undefined ? fromEmbedded === undefined : fromEmbedded !== undefined && fromKnot.equals(fromEmbedded),
    };
  }

  it.each(NAMES)('%s: every type, UDP and TCP, with and without EDNS', async (name) => {
    const differences: string[] = [];
    const byteDifferences: string[] = [];
    for (const type of TYPES) {
      for (const transport of TRANSPORTS) {
        for (const edns of EDNS) {
          const label = `${name} ${type} ${transport} edns=${edns === undefined ? 'none' : JSON.stringify(edns)}`;
          const result = await compare(label, buildQuery(name, type, { id: 4242, ...(edns === undefined ? {} : { edns }) }), transport);
          differences.push(...result.differences);
          if (!result.sameBytes) byteDifferences.push(label);
        }
      }
    }
    expect(differences).toEqual([]);
    // Not required by any client, but it shows the name compression is Knot's too.
    expect(byteDifferences).toEqual([]);
  });

  it('truncates a 150-pod answer over UDP (TC, empty answer) and serves it whole over TCP, like Knot', async () => {
    const name = 'big.default.svc.cluster.local';
    for (const edns of [undefined, { payloadSize: 4096 }] as const) {
      const udp = decode((await exchange(embedded.address, buildQuery(name, 'A', edns === undefined ? {} : { edns }), 'udp'))!);
      expect(udp.tc).toBe(true);
      expect(udp.answers).toEqual([]);
    }
    const tcp = decode((await exchange(embedded.address, buildQuery(name, 'A'), 'tcp'))!);
    expect(tcp.tc).toBe(false);
    expect(tcp.answers).toHaveLength(150);
  });

  it('agrees on which additional records fit, for every EDNS payload size from 512 to 1232', async () => {
    const differences: string[] = [];
    for (let size = 512; size <= 1232; size += 1) {
      const message = buildQuery('_http._tcp.mixed.default.svc.cluster.local', 'SRV', { id: size, edns: { payloadSize: size } });
      differences.push(...(await compare(`mixed SRV edns=${size}`, message, 'udp')).differences);
    }
    // A answers around Knot's 1232-byte UDP limit: 72 and 73 addresses fit, 74 do not.
    for (const count of [72, 73, 74]) {
      for (const size of [1231, 1232, 1233, 4096, 65535]) {
        const message = buildQuery(`a${count}.default.svc.cluster.local`, 'A', { id: size, edns: { payloadSize: size } });
        differences.push(...(await compare(`a${count} A edns=${size}`, message, 'udp')).differences);
      }
    }
    expect(differences).toEqual([]);
  });

  it('agrees on unusual and malformed queries', async () => {
    const soa = (options: QueryOptions = {}): Buffer => buildQuery('cluster.local', 'SOA', { id: 7, ...options });
    const withFlags = (message: Buffer, flags: number): Buffer => {
      const copy = Buffer.from(message);
      copy.writeUInt16BE(flags, 2);
      return copy;
    };
    const withCount = (message: Buffer, index: number, count: number): Buffer => {
      const copy = Buffer.from(message);
      copy.writeUInt16BE(count, index);
      return copy;
    };
    const edns = { payloadSize: 1232 };
    const plain = soa();
    const cases: [string, Buffer][] = [
      ['class CH', buildQuery('cluster.local', 'SOA', { id: 7, class: 'CH' })],
      ['class CH + EDNS', buildQuery('cluster.local', 'SOA', { id: 7, class: 'CH', edns })],
      ['class ANY', buildQuery('web-headless.default.svc.cluster.local', 'A', { id: 7, class: 'ANY' })],
      ['opcode NOTIFY', withFlags(plain, 0x0100 | (4 << 11))],
      ['opcode UPDATE + EDNS', withFlags(soa({ edns }), 0x0100 | (5 << 11))],
      ['opcode STATUS', withFlags(plain, 0x0100 | (2 << 11))],
      ['opcode IQUERY', withFlags(plain, 0x0100 | (1 << 11))],
      ['QR set (a response)', withFlags(plain, 0x8100)],
      ['CD and AD set', withFlags(plain, 0x0100 | 0x0030)],
      ['RD clear', withFlags(plain, 0)],
      ['TC and Z set in the query', withFlags(plain, 0x0100 | 0x0200 | 0x0040)],
      ['EDNS version 1', soa({ edns: { payloadSize: 1232, version: 1 } })],
      ['EDNS tiny payload', soa({ edns: { payloadSize: 1 } })],
      ['no question', withCount(plain.subarray(0, 12), 4, 0)],
      [
        'no question + EDNS',
        packet.encode({
          type: 'query',
          id: 7,
          flags: 0x100,
          questions: [],
          additionals: [
            { type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] },
          ],
        }),
      ],
      ['two questions', withCount(Buffer.concat([plain, plain.subarray(12)]), 4, 2)],
      ['trailing bytes', Buffer.concat([plain, Buffer.from('abcd', 'hex')])],
      ['an answer record claimed but missing', withCount(plain, 6, 1)],
      ['two OPT records', withCount(Buffer.concat([soa({ edns }), soa({ edns }).subarray(plain.length)]), 10, 2)],
      ['truncated question name', plain.subarray(0, 20)],
      ['question without type and class', plain.subarray(0, plain.length - 4)],
      [
        'compression pointer in the question',
        Buffer.concat([plain.subarray(0, 12), Buffer.from([0xc0, 0x0c]), plain.subarray(plain.length - 4)]),
      ],
      ['3 bytes', Buffer.from([1, 2, 3])],
      ['text', Buffer.from('hello world, not dns')],
      ['AXFR', buildQuery('cluster.local', 'AXFR', { id: 7 })],
      ['AXFR + EDNS', buildQuery('cluster.local', 'AXFR', { id: 7, edns })],
      ['IXFR', buildQuery('cluster.local', 'IXFR', { id: 7 })],
      ['AXFR outside the zone', buildQuery('example.com', 'AXFR', { id: 7 })],
      ['DS at the apex', buildQuery('cluster.local', 'DS', { id: 7 })],
      ['RRSIG', buildQuery('web-headless.default.svc.cluster.local', 'RRSIG', { id: 7 })],
      ['OPT as a question type', buildQuery('cluster.local', 'OPT', { id: 7 })],
      ['outside the zone + EDNS + DO', buildQuery('example.com', 'A', { id: 7, edns: { payloadSize: 1232, dnssecOk: true } })],
    ];
    const differences: string[] = [];
    for (const [label, message] of cases) {
      // Several of these get no answer at all: wait less for it.
      for (const transport of TRANSPORTS)
        differences.push(...(await compare(`${label} (${transport})`, message, transport, 400)).differences);
    }
    expect(differences).toEqual([]);
  });

  it('still agrees after the model changes (new serial, a pod replaced)', async () => {
    const changed = model.clone();
    changed.setService({
      name: 'web-headless',
      pods: [...pods(2, 101, { prefix: 'web' }), { hostname: 'web-2', ip: '127.101.9.9', ready: true }],
    });
    await Promise.all([knot.publish(changed), embedded.publish(changed)]);
    expect(await soaSerial(knot.port, 500)).toBe(changed.serial);
    const differences: string[] = [];
    for (const name of NAMES.slice(0, 5)) {
      for (const type of ['A', 'SRV', 'SOA'])
        differences.push(...(await compare(`${name} ${type}`, buildQuery(name, type, { id: 1 }), 'udp')).differences);
    }
    expect(differences).toEqual([]);
    await Promise.all([knot.publish(model), embedded.publish(model)]);
  });

  it('answers several queries on one TCP connection, like Knot', async () => {
    const messages = ['A', 'AAAA', 'SRV'].map((type, i) => buildQuery('web-headless.default.svc.cluster.local', type, { id: 100 + i }));
    const [fromKnot, fromEmbedded] = await Promise.all([exchangeTcp(knot.address, messages), exchangeTcp(embedded.address, messages)]);
    expect(fromEmbedded.map(normalize)).toEqual(fromKnot.map(normalize));
    expect(fromEmbedded.every((response) => response !== undefined)).toBe(true);
  });
});

/** The first field that differs, short enough to read in a failure message. */
function describeDifference(knot: unknown, embedded: unknown): string {
  if (typeof knot !== 'object' || typeof embedded !== 'object' || knot === null || embedded === null) {
    return `knot ${JSON.stringify(knot)?.slice(0, 300)} / embedded ${JSON.stringify(embedded)?.slice(0, 300)}`;
  }
  const k = knot as Record<string, unknown>;
  const e = embedded as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(k)) {
    if (JSON.stringify(k[key]) === JSON.stringify(e[key])) continue;
    if (Array.isArray(k[key]) && Array.isArray(e[key])) {
      const ka = k[key] as unknown[];
      const ea = e[key] as unknown[];
      const onlyKnot = ka.filter((x) => !ea.some((y) => JSON.stringify(y) === JSON.stringify(x)));
      const onlyEmbedded = ea.filter((x) => !ka.some((y) => JSON.stringify(y) === JSON.stringify(x)));
      parts.push(
        `${key}: ${ka.length} vs ${ea.length}; only knot ${JSON.stringify(onlyKnot.slice(0, 2))}; only embedded ${JSON.stringify(onlyEmbedded.slice(0, 2))}`,
      );
    } else {
      parts.push(`${key}: knot ${JSON.stringify(k[key])} / embedded ${JSON.stringify(e[key])}`);
    }
  }
  return parts.join('; ');
}

describe('Knot harness', () => {
  it('publishes a cluster to Knot and serves each change', async () => {
    const knot = await startKnot();
    const cluster = await startCluster({ dns: knot });
    try {
      const web = await cluster.createService({ name: 'web-headless', replicas: 2, podPrefix: 'web' });
      const answer = async (): Promise<string[]> =>
        decode((await exchange(knot.address, buildQuery(web.fqdn, 'A'), 'udp'))!)
          .answers.map((a) => String(a.data))
          .sort();
      expect(await answer()).toEqual(web.pods.map((p) => p.ip).sort());
      await web.scale(3);
      expect(await answer()).toEqual(web.pods.map((p) => p.ip).sort());
      await web.removeFromDns('web-0');
      expect(await answer()).toEqual([web.pod('web-1').ip, web.pod('web-2').ip].sort());
    } finally {
      await cluster.close();
      await knot.close();
    }
  });

  it('stop() silences Knot, start() brings it back on the same port with the last zone', async () => {
    const knot = await startKnot();
    try {
      const model = new ClusterModel();
      model.setService({ name: 'web', pods: pods(2, 109) });
      await knot.publish(model);
      const port = knot.port;
      await knot.stop();
      expect(knot.running).toBe(false);
      expect(await exchange(knot.address, buildQuery('web.default.svc.cluster.local', 'A'), 'udp', 300)).toBeUndefined();
      model.setService({ name: 'web', pods: pods(3, 109) });
      await knot.publish(model); // while stopped: written, served on start
      await knot.start();
      expect(knot.port).toBe(port);
      const response = decode((await exchange(knot.address, buildQuery('web.default.svc.cluster.local', 'A'), 'udp'))!);
      expect(response.answers).toHaveLength(3);
    } finally {
      await knot.close();
    }
  });

  it('knotd dies when the process that started it is SIGKILLed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'headless-lb-knot-guard-'));
    try {
      await Promise.all(['run', 'db', 'zones'].map((sub) => mkdir(join(dir, sub))));
      const port = await findFreeDualPort();
      await writeFile(join(dir, 'knot.conf'), knotConfig(dir, port, 'cluster.local'));
      await writeFile(join(dir, 'zones', 'cluster.local.zone'), toZoneFile(new ClusterModel()));
      // A parent that starts knotd through the guard, exactly as KnotDns does, then waits forever.
      const parentCode = `
        const { spawn } = require('node:child_process');
        const child = spawn('sh', ['-c', process.env.GUARD, 'knot-guard', process.env.CONF], { stdio: ['pipe', 'pipe', 'ignore'] });
        child.stdout.on('data', (d) => process.stdout.write(d));
        setInterval(() => {}, 1000);
      `;
      const parent = spawn(process.execPath, ['-e', parentCode], {
        env: { ...KNOT_ENV, GUARD: KNOT_GUARD_SCRIPT, CONF: join(dir, 'knot.conf') },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const parentExited = new Promise((resolve) => parent.once('close', resolve));
      const knotdPid = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no knotd-pid line')), 5000);
        parent.stdout.on('data', (chunk: Buffer) => {
          const match = /knotd-pid (\d+)/.exec(chunk.toString());
          if (match !== null) {
            clearTimeout(timer);
            resolve(Number(match[1]));
          }
        });
      });
      await waitFor(async () => (await soaSerial(port, 200)) === 1, { timeoutMs: 5000 });
      expect(isAlive(knotdPid)).toBe(true);
      parent.kill('SIGKILL');
      await parentExited;
      await waitFor(async () => !isAlive(knotdPid), { timeoutMs: 5000 });
      expect(isAlive(knotdPid)).toBe(false);
      expect(await soaSerial(port, 200)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}
