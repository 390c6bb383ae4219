import packet, { type Answer, type DecodedPacket, type Packet } from 'dns-packet';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AddressPolicy } from '../../src/discovery/address-policy.js';
import { createBalancer, type Balancer, type BalancerOptions } from '../../src/index.js';
import { a, aaaa, cname, genuineReply, srv, startHostileDns, type HostileDns, type ReceivedQuery } from '../support/hostile-dns.js';

/**
 * Property tests over real sockets: the hostile responder answers each query with a random
 * mutation of the genuine reply (flipped bytes, truncation, another ID, other owners, unsafe
 * addresses, extra records, compression pointer loops, no question), usually followed by the
 * genuine reply. Whatever
 * arrives: no exception escapes, no promise is left rejected, the pool is never emptied, and every
 * endpoint is a safe address that the server's genuine answer or a message passing every check
 * (our ID, our question) gave for the queried name.
 */

const SERVICE = 'web.default.svc.cluster.local';
const SRV_NAME = `_http._tcp.${SERVICE}`;
const PODS = ['web-0', 'web-1', 'web-2'].map((pod, i) => ({ name: `${pod}.${SERVICE}`, ip: `127.0.0.${11 + i}` }));
const RUNS = 120;

/** Owners and data of the records a mutation adds: the name itself, others, unsafe addresses. */
const OWNERS = [SERVICE, SERVICE.toUpperCase(), SRV_NAME, PODS[0]!.name, 'evil.example', `${SERVICE}.evil.example`, '.'];
const ADDRESSES = ['127.0.66.6', '0.0.0.0', '169.254.169.254', '224.0.0.1', '255.255.255.255', '10.1.2.3'];
const ADDRESSES_6 = ['::', 'fe80::1', '::ffff:169.254.169.254', 'ff02::1', '::1'];

const safety = new AddressPolicy();
let dns: HostileDns;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  dns = await startHostileDns();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await dns?.close();
});

/** What is done to the genuine reply: first to its structure, then to its bytes. */
interface Mutation {
  readonly structural: readonly StructuralMutation[];
  readonly bytes: readonly ByteMutation[];
  /** Send the genuine reply after the mutant (else the mutant alone). */
  readonly thenGenuine: boolean;
}

type StructuralMutation =
  | { readonly kind: 'wrong-id'; readonly delta: number }
  | { readonly kind: 'no-question' }
  | { readonly kind: 'owner'; readonly owner: string }
  | { readonly kind: 'address'; readonly ip: string }
  | { readonly kind: 'extra'; readonly section: 'answers' | 'additionals'; readonly records: readonly Answer[] };

type ByteMutation =
  | { readonly kind: 'flip'; readonly at: number; readonly xor: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | {
      readonly kind: 'pointer';
      readonly where: 'question' | 'answer' | 'random';
      readonly at: number;
      readonly to: 'self' | 'forward' | 'other-name' | 'random';
      readonly random: number;
    };

const record: fc.Arbitrary<Answer> = fc.oneof(
  fc.tuple(fc.constantFrom(...OWNERS), fc.constantFrom(...ADDRESSES)).map(([owner, ip]) => a(owner, ip, 5)),
  fc.tuple(fc.constantFrom(...OWNERS), fc.constantFrom(...ADDRESSES_6)).map(([owner, ip]) => aaaa(owner, ip, 5)),
  fc.tuple(fc.constantFrom(...OWNERS), fc.constantFrom(...OWNERS)).map(([owner, target]) => cname(owner, target, 5)),
  fc
    .tuple(fc.constantFrom(...OWNERS), fc.constantFrom(...OWNERS), fc.constantFrom(0, 8080))
    .map(([owner, target, port]) => srv(owner, target, port, 5)),
);

const structural: fc.Arbitrary<StructuralMutation> = fc.oneof(
  fc.integer({ min: 1, max: 0xffff }).map((delta) => ({ kind: 'wrong-id' as const, delta })),
  fc.constant({ kind: 'no-question' as const }),
  fc.constantFrom(...OWNERS).map((owner) => ({ kind: 'owner' as const, owner })),
  fc.constantFrom(...ADDRESSES).map((ip) => ({ kind: 'address' as const, ip })),
  fc.record({
    kind: fc.constant('extra' as const),
    section: fc.constantFrom('answers' as const, 'additionals' as const),
    records: fc.array(record, { minLength: 1, maxLength: 4 }),
  }),
);

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('pointer' as const),
    where: fc.constantFrom('question' as const, 'answer' as const, 'random' as const),
    at: fc.nat(),
    to: fc.constantFrom('self' as const, 'forward' as const, 'other-name' as const, 'random' as const),
    random: fc.nat(0x3fff),
  }),
);

const mutation: fc.Arbitrary<Mutation> = fc.record({
  structural: fc.array(structural, { maxLength: 2 }),
  bytes: fc.array(byteMutation, { maxLength: 3 }),
  thenGenuine: fc.boolean().chain((b) => (b ? fc.constant(true) : fc.boolean())), // three in four
});

function mutate(genuine: Packet, query: ReceivedQuery, m: Mutation): Buffer {
  let reply: Packet = { ...genuine };
  for (const step of m.structural) {
    switch (step.kind) {
      case 'wrong-id':
        reply = { ...reply, id: (query.id + step.delta) % 0x10000 };
        break;
      case 'no-question':
        reply = { ...reply, questions: [] };
        break;
      case 'owner':
        reply = { ...reply, answers: (reply.answers ?? []).map((r) => ({ ...r, name: step.owner })) };
        break;
      case 'address': {
        const readdress = (records: Answer[] | undefined): Answer[] =>
          (records ?? []).map((r) => (r.type === 'A' ? { ...r, data: step.ip } : r));
        reply = { ...reply, answers: readdress(reply.answers), additionals: readdress(reply.additionals) };
        break;
      }
      case 'extra':
        reply = { ...reply, [step.section]: [...(reply[step.section] ?? []), ...step.records] };
        break;
    }
  }
  let bytes = packet.encode(reply);
  const questionEnd = 12 + query.name.length + 2 + 4;
  for (const step of m.bytes) {
    if (bytes.length === 0) break;
    if (step.kind === 'flip') {
      const at = step.at % bytes.length;
      bytes[at] = bytes[at]! ^ step.xor;
    } else if (step.kind === 'truncate') {
      bytes = bytes.subarray(0, step.at % bytes.length);
    } else {
      // A compression pointer where a name starts (or anywhere), at itself, ahead, at the other name.
      const at = step.where === 'question' ? 12 : step.where === 'answer' ? questionEnd : step.at % bytes.length;
      if (at + 2 > bytes.length) continue;
      const to =
        step.to === 'self' ? at : step.to === 'forward' ? at + 2 : step.to === 'other-name' ? (at === 12 ? questionEnd : 12) : step.random;
      bytes = Buffer.from(bytes);
      bytes.writeUInt16BE(0xc000 | (to & 0x3fff), at);
    }
  }
  return bytes;
}

/** Decodes what the client was sent, if it could pass for the answer (our ID, QR, our question). */
function couldPassAsAnswer(message: Buffer, query: ReceivedQuery): DecodedPacket | undefined {
  try {
    const decoded = packet.decode(message);
    const question = decoded.questions?.[0];
    if (decoded.id !== query.id || !decoded.flag_qr || question === undefined) return undefined;
    return question.name.toLowerCase() === query.name.toLowerCase() ? decoded : undefined;
  } catch {
    return undefined;
  }
}

const key = (name: string): string => name.replace(/\.$/, '').toLowerCase();
const dataOf = (record: Answer): unknown => (record as { data?: unknown }).data;

/** Names that a record of `message` owned by `name`, or by a name its CNAMEs there reach, may give. */
function reachable(message: DecodedPacket, name: string): Set<string> {
  const names = new Set([key(name)]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of message.answers ?? []) {
      if (r.type === 'CNAME' && names.has(key(r.name)) && !names.has(key(String(dataOf(r))))) {
        names.add(key(String(dataOf(r))));
        grew = true;
      }
    }
  }
  return names;
}

/** Runs lookups under mutations, checking the pool after each against what the replies could justify. */
async function checkMutations(
  options: Partial<BalancerOptions>,
  genuineFor: (query: ReceivedQuery) => Packet,
  justified: (sent: DecodedPacket[], query: ReceivedQuery) => Set<string>,
  identity: (lb: Balancer) => string[],
): Promise<void> {
  let current: Mutation = { structural: [], bytes: [], thenGenuine: true };
  let sent: { query: ReceivedQuery; message: Buffer }[] = [];
  dns.respond(async (query, reply) => {
    const genuine = genuineFor(query);
    const mutant = mutate(genuine, query, current);
    sent.push({ query, message: mutant });
    await reply.send(mutant);
    if (current.thenGenuine) {
      const message = packet.encode(genuine);
      sent.push({ query, message });
      await reply.send(message);
    }
  });
  const lb = createBalancer({
    service: SERVICE,
    dnsServers: [dns.address],
    search: [],
    ndots: 1,
    dnsTimeoutMs: 100,
    dnsAttempts: 1,
    // No background lookups during the test; and a flipped rcode bit can make a reply a genuine-looking
    // NXDOMAIN, which is the server's word, not a bad answer: the grace keeps it from emptying the pool.
    refresh: { minMs: 60_000, maxMs: 60_000 },
    emptyGraceMs: 3_600_000,
    ...options,
  } as BalancerOptions);
  const events: string[] = [];
  lb.on('error', () => events.push('error'));
  lb.on('records-skipped', () => events.push('records-skipped'));
  try {
    // A loaded machine may miss the short timeout: try the genuine lookup a few times.
    for (let attempt = 0; attempt < 20 && lb.endpoints().length === 0; attempt++) await lb.refresh();
    const good = identity(lb);
    expect(good.length).toBeGreaterThan(0);
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        current = m;
        sent = [];
        const before = new Set(identity(lb));
        await lb.refresh(); // never rejects: a bad answer is a failure event at most
        const after = identity(lb);
        expect(after.length).toBeGreaterThan(0);
        for (const endpoint of lb.endpoints()) expect(safety.refusal(endpoint.address), endpoint.address).toBeUndefined();
        const allowed = new Set(before);
        for (const { query, message } of sent) {
          const decoded = couldPassAsAnswer(message, query);
          if (decoded !== undefined) for (const value of justified([decoded], query)) allowed.add(value);
        }
        for (const value of after) expect(allowed, `${value} came from nowhere`).toContain(value);
      }),
      { numRuns: RUNS },
    );
  } finally {
    await lb.close();
  }
  expect(dns.errors).toEqual([]);
  expect(unhandled).toEqual([]);
}

describe('mutated replies never empty the pool or put garbage in it', () => {
  it('A/AAAA discovery', async () => {
    await checkMutations(
      { port: 8080 },
      (query) => genuineReply(query, { answers: query.type === 'A' ? PODS.map((p) => a(SERVICE, p.ip)) : [] }),
      ([message], query) => {
        const names = reachable(message!, query.name);
        return new Set(
          (message!.answers ?? [])
            .filter((r) => (r.type === 'A' || r.type === 'AAAA') && names.has(key(r.name)))
            .map((r) => String(dataOf(r))),
        );
      },
      (lb) => lb.endpoints().map((e) => e.address),
    );
  });

  it('SRV discovery (targets, ports, glue)', async () => {
    await checkMutations(
      { portName: 'http', family: 4 },
      (query) =>
        query.type === 'SRV'
          ? genuineReply(query, { answers: PODS.map((p) => srv(SRV_NAME, p.name, 8080)), additionals: PODS.map((p) => a(p.name, p.ip)) })
          : genuineReply(query, { answers: PODS.filter((p) => p.name === query.name.toLowerCase()).map((p) => a(p.name, p.ip)) }),
      ([message], query) => {
        // An endpoint is `target@address`: the target from an SRV record of the name, its address from any message that passed.
        const names = reachable(message!, query.name);
        if (query.type !== 'SRV') {
          return new Set(
            (message!.answers ?? [])
              .filter((r) => r.type === 'A' && names.has(key(r.name)))
              .map((r) => `${key(query.name)}@${String(dataOf(r))}`),
          );
        }
        const targets = (message!.answers ?? [])
          .filter((r) => r.type === 'SRV' && names.has(key(r.name)))
          .map((r) => key((dataOf(r) as { target: string }).target));
        const glue = (message!.additionals ?? []).filter((r) => r.type === 'A' && targets.includes(key(r.name)));
        return new Set(glue.map((r) => `${key(r.name)}@${String(dataOf(r))}`));
      },
      (lb) => lb.endpoints().map((e) => `${e.name}@${e.address}`),
    );
  });
});
