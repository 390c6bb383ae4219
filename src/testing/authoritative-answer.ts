import {
  bareResponse,
  Flag,
  Opcode,
  optSize,
  parseQuery,
  RRClass,
  Rcode,
  ResponseWriter,
  RRType,
  type OptRecord,
  type ParsedQuery,
  type Question,
  type RRset,
} from './dns-wire.js';
import type { Zone } from './zone.js';

export type Transport = 'udp' | 'tcp';

/** Knot's default `udp-max-payload`: answers over UDP never exceed it, whatever the client offers. */
export const SERVER_UDP_PAYLOAD = 1232;
const CLASSIC_UDP_PAYLOAD = 512;
const QNAME_OFFSET = 12;
/** Extended DNS Error 20, "Not Authoritative" (RFC 8914): what Knot attaches to REFUSED for names outside its zones. */
const EDE_NOT_AUTHORITATIVE = { code: 15, data: Buffer.of(0, 20) };

/**
 * Answers one query from `zone` exactly as Knot DNS 3.2 answers it for the same zone file, down
 * to the flags, the EDNS record, the sizes at which UDP answers truncate, and which additional
 * records fit. Returns undefined when Knot would not answer at all.
 */
export function answerQuery(zone: Zone, message: Buffer, transport: Transport): Buffer | undefined {
  const parsed = parseQuery(message);
  switch (parsed.kind) {
    case 'drop':
      return undefined;
    case 'malformed':
      // Knot answers a message it could not parse without OPT, even if the query had one.
      return bareResponse(parsed.question, { id: parsed.id, flags: responseFlags(parsed, Rcode.FORMERR) });
    case 'query':
      return answerParsed(zone, parsed.query, transport);
  }
}

/** The header flags of a response: QR, the query's opcode and RD. Knot does not copy CD. */
export function responseFlags(query: { opcode: number; recursionDesired: boolean }, rcode: number, extra = 0): number {
  return Flag.QR | (query.opcode << 11) | (query.recursionDesired ? Flag.RD : 0) | (rcode & 0xf) | extra;
}

/** A response to `query` with no records: an error, or a fault a test injected. */
export function errorResponse(query: ParsedQuery, rcode: number, options: { ede?: boolean } = {}): Buffer {
  return bareResponse(query.question, { id: query.id, flags: responseFlags(query, rcode) }, optFor(query, { ede: options.ede === true }));
}

function answerParsed(zone: Zone, query: ParsedQuery, transport: Transport): Buffer {
  const { question, edns } = query;
  if (question === undefined) return errorResponse(query, Rcode.FORMERR);
  if (edns !== undefined && edns.version > 0) {
    return bareResponse(
      question,
      { id: query.id, flags: responseFlags(query, Rcode.BADVERS) },
      optFor(query, { extendedRcode: Rcode.BADVERS >> 4 }),
    );
  }
  if (query.opcode !== Opcode.QUERY) {
    return errorResponse(query, query.opcode === Opcode.NOTIFY || query.opcode === Opcode.UPDATE ? Rcode.NOTAUTH : Rcode.NOTIMP);
  }
  if (question.class !== RRClass.IN && question.class !== RRClass.ANY) return errorResponse(query, Rcode.REFUSED);
  // Zone transfers: Knot's default ACL refuses them (NOTAUTH); AXFR is not even tried over UDP.
  if (question.type === RRType.AXFR) return errorResponse(query, transport === 'udp' ? Rcode.NOTIMP : Rcode.NOTAUTH);
  if (question.type === RRType.IXFR) return errorResponse(query, Rcode.NOTAUTH);

  const found = zone.lookup(question.key);
  if (found.kind === 'outside') return errorResponse(query, Rcode.REFUSED, { ede: true });

  const opt = optFor(query);
  const maxSize =
    transport === 'tcp'
      ? 65535
      : edns === undefined
        ? CLASSIC_UDP_PAYLOAD
        : Math.max(CLASSIC_UDP_PAYLOAD, Math.min(edns.payloadSize, SERVER_UDP_PAYLOAD));
  const writer = new ResponseWriter(question, maxSize, opt === undefined ? 0 : optSize(opt));
  const header = (rcode: number, extra = 0): { id: number; flags: number } => ({
    id: query.id,
    flags: responseFlags(query, rcode, Flag.AA | extra),
  });
  // Knot truncates all or nothing: over UDP, an answer that does not fit becomes an empty answer
  // with TC; over TCP (64 KiB) there is nowhere to retry, and Knot answers SERVFAIL.
  const truncated = (rcode: number): Buffer =>
    transport === 'udp'
      ? bareResponse(question, header(rcode, Flag.TC), opt)
      : bareResponse(question, { id: query.id, flags: responseFlags(query, Rcode.SERVFAIL) }, opt);

  if (found.kind === 'node') {
    const rrset = pickRRset(found.rrsets, question);
    if (rrset !== undefined) {
      const targets = writer.addRRset('answer', rrset, QNAME_OFFSET);
      if (targets === undefined) return truncated(Rcode.NOERROR);
      // Additional A then AAAA per SRV/NS target, in answer order. One that does not fit is
      // skipped (no TC): the next, smaller one may still fit.
      for (const target of targets) {
        const lookup = zone.lookup(target.name.join('.'));
        if (lookup.kind !== 'node') continue;
        for (const type of [RRType.A, RRType.AAAA]) {
          const glue = lookup.rrsets.get(type);
          if (glue !== undefined) writer.addRRset('additional', glue, target.offset);
        }
      }
      return writer.finish(header(Rcode.NOERROR), opt);
    }
  }
  const rcode = found.kind === 'nxdomain' ? Rcode.NXDOMAIN : Rcode.NOERROR;
  if (writer.addRRset('authority', negativeSoa(zone.soa)) === undefined) return truncated(rcode);
  return writer.finish(header(rcode), opt);
}

/** ANY gets one RRset, not all (RFC 8482); Knot picks the one with the lowest type number. */
function pickRRset(rrsets: ReadonlyMap<number, RRset>, question: Question): RRset | undefined {
  if (question.type !== RRType.ANY) return rrsets.get(question.type);
  return rrsets.values().next().value;
}

/** The SOA of a negative answer carries min(SOA TTL, SOA minimum) as its TTL (RFC 2308). */
function negativeSoa(soa: RRset): RRset {
  const rdata = soa.rdatas[0];
  const minimum = rdata?.kind === 'soa' ? rdata.minimum : soa.ttl;
  return { ...soa, ttl: Math.min(soa.ttl, minimum) };
}

function optFor(query: ParsedQuery, options: { ede?: boolean; extendedRcode?: number } = {}): OptRecord | undefined {
  if (query.edns === undefined) return undefined;
  return {
    payloadSize: SERVER_UDP_PAYLOAD,
    extendedRcode: options.extendedRcode ?? 0,
    dnssecOk: query.edns.dnssecOk,
    options: options.ede === true ? [EDE_NOT_AUTHORITATIVE] : [],
  };
}
