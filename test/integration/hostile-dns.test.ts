import packet from 'dns-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createBalancer,
  NoEndpointsError,
  type Balancer,
  type BalancerOptions,
  type PoolChange,
  type ResolutionError,
  type SkippedRecord,
} from '../../src/index.js';
import {
  a,
  aaaa,
  cname,
  genuineReply,
  HOSTILE_DNS_HOST,
  srv,
  startHostileDns,
  type HostileDns,
  type ReceivedQuery,
  type Reply,
} from '../support/hostile-dns.js';

/**
 * The DNS client against a hostile responder on real sockets: forged owners, missing or other
 * questions, replies from another port, stray bytes, SRV records that say "no service", unsafe and
 * disallowed addresses. Each case checks the pool, the events and the counters.
 */

const SERVICE = 'web.default.svc.cluster.local';
const SRV_NAME = `_http._tcp.${SERVICE}`;
const WEB_0 = `web-0.${SERVICE}`;
const WEB_1 = `web-1.${SERVICE}`;

let dns: HostileDns;
const balancers: Balancer[] = [];

beforeAll(async () => {
  dns = await startHostileDns();
});

afterEach(async () => {
  await Promise.all(balancers.splice(0).map((lb) => lb.close()));
  expect(dns.errors).toEqual([]);
  dns.queries.length = 0;
});

afterAll(async () => {
  await dns?.close();
});

interface Watched {
  readonly lb: Balancer;
  readonly skipped: SkippedRecord[];
  readonly errors: ResolutionError[];
  readonly changes: PoolChange[];
}

/**
 * A balancer asking only the hostile server. Lookups happen at creation and on `lb.refresh()`:
 * the refresh interval is far longer than any test. (`ready()` resolves within the first lookup,
 * and a `refresh()` then would join it: tests that look up again await `refresh()` first.)
 */
function watch(options: Partial<BalancerOptions> = {}): Watched {
  const lb = createBalancer({
    service: SERVICE,
    port: 8080,
    dnsServers: [dns.address],
    search: [],
    ndots: 1,
    dnsTimeoutMs: 3000,
    dnsAttempts: 1,
    refresh: { minMs: 60_000, maxMs: 60_000 },
    ...options,
  } as BalancerOptions);
  balancers.push(lb);
  const watched: Watched = { lb, skipped: [], errors: [], changes: [] };
  lb.on('records-skipped', ({ records }) => watched.skipped.push(...records));
  lb.on('resolve-error', (error) => watched.errors.push(error));
  lb.on('change', (change) => watched.changes.push(change));
  return watched;
}

const addresses = (lb: Balancer): string[] =>
  lb
    .endpoints()
    .map((e) => e.address)
    .sort();
const reasons = (skipped: readonly SkippedRecord[]): Record<string, string> => Object.fromEntries(skipped.map((s) => [s.data, s.reason]));

/** Answers every query with `answers` (and glue), genuinely. */
function answerWith(
  answers: ReturnType<typeof a>[],
  additionals: ReturnType<typeof a>[] = [],
): (query: ReceivedQuery, reply: Reply) => Promise<void> {
  return (query, reply) => reply.send(genuineReply(query, { answers, additionals }));
}

describe('only genuine answers are taken', () => {
  it('uses only records owned by the queried name (evil.example A 127.0.66.6 is skipped)', async () => {
    dns.respond(answerWith([a(SERVICE, '127.0.0.11'), a('evil.example', '127.0.66.6')]));
    const { lb, skipped } = watch();
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11']);
    expect(skipped).toEqual([{ name: 'evil.example', type: 'A', data: '127.0.66.6', section: 'answer', reason: 'foreign-owner' }]);
    expect(lb.stats().discovery).toMatchObject({ skippedRecords: 1, skippedByReason: { 'foreign-owner': 1 }, droppedMessages: 0 });
  });

  it('compares the owner case-insensitively, as DNS names are', async () => {
    dns.respond(answerWith([a(SERVICE.toUpperCase(), '127.0.0.11'), a(`${SERVICE}.`, '127.0.0.12')]));
    const { lb, skipped } = watch();
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11', '127.0.0.12']);
    expect(skipped).toEqual([]);
  });

  it('follows a CNAME chain inside the answer, and takes nothing off it', async () => {
    dns.respond(
      answerWith([
        cname(SERVICE, 'alias.example', 30),
        cname('alias.example', 'pod.example'),
        a('pod.example', '127.0.0.12'),
        a('other.example', '127.0.0.13'),
      ]),
    );
    const { lb, skipped } = watch();
    const resolved = new Promise<{ ttlMs: number }>((resolve) => lb.once('resolve', resolve));
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.12']);
    expect(skipped.map((s) => [s.name, s.reason])).toEqual([['other.example', 'foreign-owner']]);
    expect((await resolved).ttlMs).toBe(30_000); // the chain's shortest TTL counts
  });

  it('stops at a CNAME loop: an answer with nothing usable is a failure, not an empty pool', async () => {
    dns.respond(answerWith([cname(SERVICE, 'loop.example'), cname('loop.example', SERVICE), a('elsewhere.example', '127.0.0.14')]));
    const { lb, skipped, errors } = watch({ family: 4 });
    await lb.refresh();
    expect(errors.map((e) => e.reason)).toEqual(['UNUSABLE']);
    expect(skipped.map((s) => s.name)).toEqual(['elsewhere.example']);
    expect(lb.endpoints()).toEqual([]);
  });

  it('drops a reply without a question section, and waits for the genuine one', async () => {
    dns.respond(async (query, reply) => {
      await reply.send({ ...genuineReply(query, { answers: [a(SERVICE, '127.0.66.6')] }), questions: [] });
      await reply.send(genuineReply(query, { answers: [a(SERVICE, '127.0.0.11')] }));
    });
    const { lb } = watch();
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11']);
    expect(lb.stats().discovery.droppedMessages).toBe(1);
  });

  it('drops replies to another question (name, type) or with another ID', async () => {
    dns.respond(async (query, reply) => {
      const forged = genuineReply(query, { answers: [a(SERVICE, '127.0.66.6')] });
      await reply.send({ ...forged, questions: [{ name: 'other.example', type: 'A', class: 'IN' }] });
      await reply.send({ ...forged, questions: [{ name: SERVICE, type: 'AAAA', class: 'IN' }] });
      await reply.send({ ...forged, id: (query.id + 1) % 0x10000 });
      await reply.send(genuineReply(query, { answers: [a(SERVICE, '127.0.0.11')] }));
    });
    const { lb } = watch();
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11']);
    expect(lb.stats().discovery.droppedMessages).toBe(3);
  });

  it('takes nothing from a forgery alone: the lookup times out, saying what it dropped', async () => {
    dns.respond((query, reply) => reply.send({ ...genuineReply(query, { answers: [a(SERVICE, '127.0.66.6')] }), questions: [] }));
    const { lb, errors } = watch({ dnsTimeoutMs: 300 });
    await lb.refresh();
    expect(lb.endpoints()).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.reason).toBe('TIMEOUT');
    expect(errors[0]!.message).toContain('1 no-question');
    expect(lb.stats().discovery.droppedMessages).toBe(1);
  });

  it('never hears a reply with the right ID from another port or address (off-path forgery)', async () => {
    dns.respond(async (query, reply) => {
      const forged = genuineReply(query, { answers: [a(SERVICE, '127.0.66.6')] });
      // The client's port is learnt from its query, as an attacker guessing it would have to.
      await reply.sendFrom({ port: 0 }, forged); // same address, another port
      await reply.sendFrom({ address: '127.0.0.54', port: dns.port }, forged); // another address, the same port
      await reply.send(genuineReply(query, { answers: [a(SERVICE, '127.0.0.11')] }));
    });
    const { lb } = watch();
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11']);
    expect(dns.queries).toHaveLength(1);
  });

  it('takes nothing from an off-path forgery alone', async () => {
    dns.respond((query, reply) => reply.sendFrom({ port: 0 }, genuineReply(query, { answers: [a(SERVICE, '127.0.66.6')] })));
    const { lb, errors } = watch({ dnsTimeoutMs: 300 });
    await lb.refresh();
    expect(lb.endpoints()).toEqual([]);
    expect(errors.map((e) => e.reason)).toEqual(['TIMEOUT']);
  });

  it('asks from a fresh source port with a fresh ID each time', async () => {
    dns.respond(answerWith([a(SERVICE, '127.0.0.11')]));
    const { lb } = watch();
    for (let i = 0; i < 8; i++) await lb.refresh();
    expect(dns.queries).toHaveLength(8);
    // A socket per query: the kernel picks each port at random, so (rarely) two may share one.
    expect(new Set(dns.queries.map((q) => q.client.port)).size).toBeGreaterThan(4);
    expect(new Set(dns.queries.map((q) => q.id)).size).toBeGreaterThan(4);
  });

  it('a stray undecodable datagram does not cut the lookup short', async () => {
    dns.respond(async (query, reply) => {
      await reply.send(Buffer.from('not DNS at all'));
      await reply.send(Buffer.of(0xc0));
      await reply.send(genuineReply(query, { answers: [a(SERVICE, '127.0.0.11')] }));
    });
    const { lb, errors } = watch();
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11']);
    expect(errors).toEqual([]);
    expect(lb.stats().discovery.droppedMessages).toBe(2);
  });

  it('over TCP too: after a truncated UDP answer, a stray message on the connection is dropped', async () => {
    dns.respond(async (query, reply) => {
      if (query.transport === 'udp') return reply.send(genuineReply(query, { flags: packet.TRUNCATED_RESPONSE }));
      await reply.send({ ...genuineReply(query, { answers: [a(SERVICE, '127.0.66.6')] }), id: (query.id + 1) % 0x10000 });
      await reply.send(Buffer.from('garbage'));
      await reply.send(genuineReply(query, { answers: [a(SERVICE, '127.0.0.11')] }));
    });
    const { lb } = watch();
    const resolved = new Promise<{ queries: number }>((resolve) => lb.once('resolve', resolve));
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11']);
    expect((await resolved).queries).toBe(2);
    expect(dns.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
    expect(lb.stats().discovery.droppedMessages).toBe(2);
  });
});

describe('SRV records', () => {
  const srvBalancer = (options: Partial<BalancerOptions> = {}) =>
    watch({ portName: 'http', port: undefined, ...options } as Partial<BalancerOptions>);

  it("skips a target '.' next to a valid pod, without looking it up: ready() resolves with the pod", async () => {
    dns.respond(answerWith([srv(SRV_NAME, WEB_0, 8080), srv(SRV_NAME, '.', 8080)], [a(WEB_0, '127.0.0.11')]));
    const { lb, skipped, errors } = srvBalancer();
    await lb.ready({ timeoutMs: 5000 });
    expect(lb.endpoints().map((e) => [e.name, e.address, e.port])).toEqual([[WEB_0, '127.0.0.11', 8080]]);
    expect(skipped).toEqual([{ name: SRV_NAME, type: 'SRV', data: '0 50 8080 .', section: 'answer', reason: 'no-service' }]);
    expect(errors).toEqual([]);
    expect(dns.queries.map((q) => [q.name, q.type])).toEqual([[SRV_NAME, 'SRV']]);
  });

  it('skips a record with port 0', async () => {
    dns.respond(answerWith([srv(SRV_NAME, WEB_0, 8080), srv(SRV_NAME, WEB_1, 0)], [a(WEB_0, '127.0.0.11'), a(WEB_1, '127.0.0.12')]));
    const { lb, skipped } = srvBalancer();
    await lb.ready({ timeoutMs: 5000 });
    expect(lb.endpoints().map((e) => e.name)).toEqual([WEB_0]);
    // The port-0 record, and the glue of a target no record in use points at.
    expect(skipped.map((s) => [s.type, s.data, s.reason])).toEqual([
      ['SRV', `0 50 0 ${WEB_1}`, 'port-zero'],
      ['A', '127.0.0.12', 'foreign-owner'],
    ]);
    expect(lb.stats().discovery.skippedByReason).toEqual({ 'port-zero': 1, 'foreign-owner': 1 });
  });

  it('takes glue only for the SRV targets', async () => {
    dns.respond(
      answerWith([srv(SRV_NAME, WEB_0, 8080)], [a(WEB_0, '127.0.0.11'), a('evil.example', '127.0.66.6'), a(SRV_NAME, '127.0.66.7')]),
    );
    const { lb, skipped } = srvBalancer();
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11']);
    expect(skipped.map((s) => [s.name, s.section, s.reason])).toEqual([
      ['evil.example', 'additional', 'foreign-owner'],
      [SRV_NAME, 'additional', 'foreign-owner'],
    ]);
  });

  it("an answer whose records all say '.' is the service's own word: no pods", async () => {
    let noService = false;
    dns.respond((query, reply) =>
      reply.send(
        genuineReply(
          query,
          noService
            ? { answers: [srv(SRV_NAME, '.', 0)] }
            : { answers: [srv(SRV_NAME, WEB_0, 8080)], additionals: [a(WEB_0, '127.0.0.11')] },
        ),
      ),
    );
    const { lb, skipped } = srvBalancer();
    await lb.refresh();
    expect(lb.endpoints()).toHaveLength(1);
    noService = true;
    const emptied = new Promise<{ reason: string }>((resolve) => lb.once('empty', resolve));
    await lb.refresh();
    expect((await emptied).reason).toContain('decidedly not available');
    expect(lb.endpoints()).toEqual([]);
    expect(skipped.map((s) => s.reason)).toEqual(['no-service']);
  });
});

describe('safe addresses only', () => {
  it('never takes unspecified, link-local, multicast or broadcast IPv4 addresses', async () => {
    dns.respond(answerWith(['0.0.0.0', '169.254.169.254', '224.0.0.1', '255.255.255.255', '127.0.0.11'].map((ip) => a(SERVICE, ip))));
    const { lb, skipped } = watch();
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['127.0.0.11']);
    expect(reasons(skipped)).toEqual({
      '0.0.0.0': 'unspecified-address',
      '169.254.169.254': 'link-local-address',
      '224.0.0.1': 'multicast-address',
      '255.255.255.255': 'broadcast-address',
    });
    expect(lb.stats().discovery).toMatchObject({
      skippedRecords: 4,
      skippedByReason: { 'unspecified-address': 1, 'link-local-address': 1, 'multicast-address': 1, 'broadcast-address': 1 },
    });
  });

  it('nor their IPv6 kin, and judges an IPv4-mapped address as the IPv4 it maps', async () => {
    dns.respond(answerWith(['::', 'fe80::1', '::ffff:169.254.169.254', 'ff02::1', '::ffff:0.0.0.0', '::1'].map((ip) => aaaa(SERVICE, ip))));
    const { lb, skipped } = watch({ family: 6 });
    await lb.ready({ timeoutMs: 5000 });
    expect(addresses(lb)).toEqual(['::1']);
    expect(reasons(skipped)).toEqual({
      '::': 'unspecified-address',
      'fe80::1': 'link-local-address',
      '::ffff:a9fe:a9fe': 'link-local-address',
      'ff02::1': 'multicast-address',
      '::ffff:0:0': 'unspecified-address', // ::ffff:0.0.0.0, as dns-packet writes it
    });
  });

  it('allowedAddresses refuses everything outside it, in A and SRV answers alike', async () => {
    const allowedAddresses = ['127.0.0.8/29', 'fd00::/8'];
    dns.respond(answerWith(['127.0.0.11', '127.0.0.12', '127.0.0.200'].map((ip) => a(SERVICE, ip))));
    const byA = watch({ allowedAddresses });
    await byA.lb.ready({ timeoutMs: 5000 });
    expect(addresses(byA.lb)).toEqual(['127.0.0.11', '127.0.0.12']);
    expect(reasons(byA.skipped)).toEqual({ '127.0.0.200': 'address-not-allowed' });

    dns.respond(answerWith([srv(SRV_NAME, WEB_0, 8080), srv(SRV_NAME, WEB_1, 8080)], [a(WEB_0, '127.0.0.11'), a(WEB_1, '127.0.0.200')]));
    const bySrv = watch({ portName: 'http', port: undefined, allowedAddresses } as Partial<BalancerOptions>);
    await bySrv.lb.ready({ timeoutMs: 5000 });
    expect(bySrv.lb.endpoints().map((e) => e.name)).toEqual([WEB_0]);
    expect(bySrv.skipped.map((s) => [s.type, s.name, s.reason])).toEqual([
      ['A', WEB_1, 'address-not-allowed'],
      ['SRV', SRV_NAME, 'no-usable-address'],
    ]);
    // The target's glue was refused: it is not asked for again.
    expect(dns.queries.filter((q) => q.type !== 'SRV' && q.type !== 'A')).toEqual([]);
    expect(dns.queries.filter((q) => q.name === WEB_1)).toEqual([]);
  });

  it('looks an SRV target up when there is no glue, and applies the same rules to that answer', async () => {
    dns.respond((query, reply) => {
      if (query.type === 'SRV')
        return reply.send(genuineReply(query, { answers: [srv(SRV_NAME, WEB_0, 8080), srv(SRV_NAME, WEB_1, 8080)] }));
      const ip = query.name === WEB_0 ? '127.0.0.11' : '169.254.169.254';
      return reply.send(genuineReply(query, { answers: [a(query.name, ip)] }));
    });
    const { lb, skipped } = watch({ portName: 'http', port: undefined, family: 4 } as Partial<BalancerOptions>);
    await lb.ready({ timeoutMs: 5000 });
    expect(lb.endpoints().map((e) => [e.name, e.address])).toEqual([[WEB_0, '127.0.0.11']]);
    expect(skipped.map((s) => [s.type, s.name, s.reason])).toEqual([
      ['A', WEB_1, 'link-local-address'],
      ['SRV', SRV_NAME, 'no-usable-address'],
    ]);
  });
});

describe('a bad answer never empties or replaces a good pool', () => {
  it('keeps the pool through answers that are entirely refused, forged or missing', async () => {
    let next: 'good' | 'metadata' | 'foreign' | 'forged' = 'good';
    dns.respond((query, reply) => {
      switch (next) {
        case 'good':
          return reply.send(genuineReply(query, { answers: [a(SERVICE, '127.0.0.11'), a(SERVICE, '127.0.0.12')] }));
        case 'metadata':
          return reply.send(genuineReply(query, { answers: [a(SERVICE, '169.254.169.254')] }));
        case 'foreign':
          return reply.send(genuineReply(query, { answers: [a('evil.example', '127.0.66.6')] }));
        case 'forged':
          return reply.send({ ...genuineReply(query, { answers: [a(SERVICE, '127.0.66.6')] }), questions: [] });
      }
    });
    // The forged reply is waited past until this timeout; generous, since it also bounds the genuine lookups.
    const { lb, skipped, errors, changes } = watch({ family: 4, dnsTimeoutMs: 1000 });
    await lb.refresh();
    expect(changes).toHaveLength(1);

    for (const answer of ['metadata', 'foreign', 'forged'] as const) {
      next = answer;
      await lb.refresh();
      expect(addresses(lb)).toEqual(['127.0.0.11', '127.0.0.12']);
    }
    expect(changes).toHaveLength(1); // not one change: the pool never moved
    expect(errors.map((e) => e.reason)).toEqual(['UNUSABLE', 'UNUSABLE', 'TIMEOUT']);
    expect(skipped.map((s) => [s.data, s.reason])).toEqual([
      ['169.254.169.254', 'link-local-address'],
      ['127.0.66.6', 'foreign-owner'],
    ]);
    expect(lb.stats().discovery).toMatchObject({ lookups: 4, failures: 3, skippedRecords: 2, droppedMessages: 1 });
    // Calls still go to the good pool.
    expect(['127.0.0.11', '127.0.0.12']).toContain(lb.pick().address);
  });

  it('a first answer that is entirely refused leaves ready() to time out, with the reason', async () => {
    dns.respond(answerWith([a(SERVICE, '169.254.169.254')]));
    const { lb } = watch({ family: 4 });
    const error = await lb.ready({ timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoEndpointsError);
    expect((error as Error).message).toContain('UNUSABLE');
    expect(lb.endpoints()).toEqual([]);
  });
});

describe('the responder itself', () => {
  it('binds a loopback address only', () => {
    expect(dns.address.startsWith(`${HOSTILE_DNS_HOST}:`)).toBe(true);
  });
});
