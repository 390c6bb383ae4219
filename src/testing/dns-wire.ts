import { isIPv4 } from 'node:net';

/**
 * DNS wire format for the embedded server: a strict query parser and a response writer that
 * compresses names the way Knot DNS does. dns-packet cannot be used for responses: it never
 * compresses, so its messages are larger than Knot's and would truncate (TC) at different sizes.
 *
 * Knot's compression (checked with kdig and raw dumps against Knot 3.2):
 * - owners in the answer section are a pointer to the QNAME (so they carry the query's case);
 * - other owners and the names inside NS/SOA RDATA reuse the longest common suffix of the QNAME,
 *   nothing else (so `ns.dns.cluster.LOCAL` comes back if the query said `cluster.LOCAL`);
 * - SRV targets are never compressed, but the owners of the additional A/AAAA records for a
 *   target point at the place the target was written.
 */

export const RRType = { A: 1, NS: 2, SOA: 6, AAAA: 28, SRV: 33, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255 } as const;
export const RRClass = { IN: 1, CH: 3, NONE: 254, ANY: 255 } as const;
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, NOTAUTH: 9, BADVERS: 16 } as const;
export const Opcode = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;
export const Flag = { QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100 } as const;

const HEADER_SIZE = 12;
const MAX_POINTER = 0x3fff;
/** An OPT record without options: root owner, type, class, TTL, RDLENGTH. */
export const OPT_SIZE = 11;

export interface Question {
  /** Labels exactly as received (case preserved). */
  readonly labels: readonly Buffer[];
  /** Presentation form as received, without the trailing dot ('' for the root). */
  readonly name: string;
  /** Lower-case lookup key. */
  readonly key: string;
  readonly type: number;
  readonly class: number;
}

export interface Edns {
  readonly payloadSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
}

export interface ParsedQuery {
  readonly id: number;
  readonly opcode: number;
  readonly recursionDesired: boolean;
  /** Absent when QDCOUNT is 0 (answered FORMERR). */
  readonly question: Question | undefined;
  readonly edns: Edns | undefined;
}

export type QueryParseResult =
  /** Knot sends nothing back: not a query, or no usable question. */
  | { readonly kind: 'drop'; readonly reason: string }
  /** The question parsed but the rest did not: FORMERR, without OPT. */
  | {
      readonly kind: 'malformed';
      readonly id: number;
      readonly opcode: number;
      readonly recursionDesired: boolean;
      readonly question: Question;
    }
  | { readonly kind: 'query'; readonly query: ParsedQuery };

export function parseQuery(message: Buffer): QueryParseResult {
  if (message.length < HEADER_SIZE) return { kind: 'drop', reason: 'shorter than a DNS header' };
  const id = message.readUInt16BE(0);
  const flags = message.readUInt16BE(2);
  const opcode = (flags >> 11) & 0xf;
  const recursionDesired = (flags & Flag.RD) !== 0;
  if ((flags & Flag.QR) !== 0) return { kind: 'drop', reason: 'a response, not a query' };
  const qdcount = message.readUInt16BE(4);
  const counts = [message.readUInt16BE(6), message.readUInt16BE(8), message.readUInt16BE(10)] as const;
  if (qdcount > 1) return { kind: 'drop', reason: 'more than one question' };

  let question: Question | undefined;
  let offset = HEADER_SIZE;
  if (qdcount === 1) {
    const name = readQuestionName(message, offset);
    if (name === undefined || name.end + 4 > message.length) return { kind: 'drop', reason: 'malformed question' };
    offset = name.end;
    const labels = name.labels;
    question = {
      labels,
      name: labels.map((label) => presentLabel(label)).join('.'),
      key: lookupKey(labels),
      type: message.readUInt16BE(offset),
      class: message.readUInt16BE(offset + 2),
    };
    offset += 4;
  }

  const malformed = (): QueryParseResult =>
    question === undefined
      ? { kind: 'drop', reason: 'malformed message without a question' }
      : { kind: 'malformed', id, opcode, recursionDesired, question };
  let edns: Edns | undefined;
  for (let section = 0; section < 3; section++) {
    for (let i = 0; i < counts[section]!; i++) {
      const end = skipName(message, offset);
      if (end === undefined || end + 10 > message.length) return malformed();
      const type = message.readUInt16BE(end);
      const rdlength = message.readUInt16BE(end + 8);
      if (end + 10 + rdlength > message.length) return malformed();
      if (type === RRType.OPT) {
        // OPT is only valid once, in the additional section, and offering less than 512 bytes is an error.
        if (section !== 2 || edns !== undefined || message.readUInt16BE(end + 2) < 512) return malformed();
        const ttl = message.readUInt32BE(end + 4);
        edns = { payloadSize: message.readUInt16BE(end + 2), version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0 };
      }
      offset = end + 10 + rdlength;
    }
  }
  if (offset !== message.length) return malformed();
  return { kind: 'query', query: { id, opcode, recursionDesired, question, edns } };
}

/** Question names must be uncompressed and well-formed; Knot drops the query otherwise. */
function readQuestionName(message: Buffer, start: number): { labels: Buffer[]; end: number } | undefined {
  const labels: Buffer[] = [];
  let offset = start;
  let wireLength = 1;
  for (;;) {
    if (offset >= message.length) return undefined;
    const length = message[offset]!;
    if (length === 0) return { labels, end: offset + 1 };
    if (length > 63) return undefined;
    wireLength += length + 1;
    if (wireLength > 255 || offset + 1 + length > message.length) return undefined;
    labels.push(message.subarray(offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
}

function skipName(message: Buffer, start: number): number | undefined {
  let offset = start;
  for (;;) {
    if (offset >= message.length) return undefined;
    const length = message[offset]!;
    if (length === 0) return offset + 1;
    if ((length & 0xc0) === 0xc0) return offset + 2 <= message.length ? offset + 2 : undefined;
    if (length > 63) return undefined;
    offset += 1 + length;
  }
}

function asciiLower(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte;
}

function presentLabel(label: Buffer): string {
  let out = '';
  for (const byte of label) {
    if (byte === 0x2e || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`;
    else if (byte <= 0x20 || byte >= 0x7f) out += `\\${byte.toString().padStart(3, '0')}`;
    else out += String.fromCharCode(byte);
  }
  return out;
}

/** Lower-case presentation form: equal for names that DNS considers equal. */
export function lookupKey(labels: readonly Buffer[]): string {
  return labels.map((label) => presentLabel(Buffer.from(label.map(asciiLower)))).join('.');
}

// ---------------------------------------------------------------------------------------------

export type Rdata =
  | { readonly kind: 'address'; readonly bytes: Buffer }
  | { readonly kind: 'ns'; readonly target: readonly string[] }
  | { readonly kind: 'srv'; readonly priority: number; readonly weight: number; readonly port: number; readonly target: readonly string[] }
  | {
      readonly kind: 'soa';
      readonly mname: readonly string[];
      readonly rname: readonly string[];
      readonly serial: number;
      readonly refresh: number;
      readonly retry: number;
      readonly expire: number;
      readonly minimum: number;
    };

export interface RRset {
  /** Lower-case labels. */
  readonly owner: readonly string[];
  readonly type: number;
  readonly ttl: number;
  /** In canonical order (RFC 4034 §6.3), as Knot stores and sends them. */
  readonly rdatas: readonly Rdata[];
}

/**
 * A name inside RDATA (an SRV or NS target) and where it was written, for the owners of the
 * additional records to point at. Knot remembers that place for the first 15 records of an
 * RRset only (KNOT_COMPR_HINT_COUNT is 16, one of which is the owner); later targets get
 * `offset: undefined` and their additional records are compressed against the QNAME instead.
 */
export interface WrittenTarget {
  readonly name: readonly string[];
  readonly offset: number | undefined;
}

const RDATA_HINTS_PER_RRSET = 15;

class NoSpace extends Error {}

export type Section = 'answer' | 'authority' | 'additional';

export interface OptRecord {
  readonly payloadSize: number;
  readonly extendedRcode: number;
  readonly dnssecOk: boolean;
  readonly options: readonly { readonly code: number; readonly data: Buffer }[];
}

export function optSize(opt: OptRecord): number {
  return OPT_SIZE + opt.options.reduce((sum, option) => sum + 4 + option.data.length, 0);
}

export class ResponseWriter {
  readonly #buffer: Buffer;
  readonly #limit: number;
  #offset = HEADER_SIZE;
  readonly #counts = { question: 0, answer: 0, authority: 0, additional: 0 };
  readonly #qnameLower: string[] = [];
  readonly #qnameOffsets: number[] = [];

  /**
   * @param maxSize largest message allowed (UDP payload size, or 65535 over TCP)
   * @param reserve bytes kept free for records added by `finish` (the OPT record)
   */
  constructor(question: Question | undefined, maxSize: number, reserve: number) {
    this.#buffer = Buffer.alloc(maxSize);
    this.#limit = maxSize - reserve;
    if (question !== undefined) {
      for (const label of question.labels) {
        this.#qnameOffsets.push(this.#offset);
        this.#qnameLower.push(Buffer.from(label.map(asciiLower)).toString('latin1'));
        this.#buffer[this.#offset] = label.length;
        label.copy(this.#buffer, this.#offset + 1);
        this.#offset += 1 + label.length;
      }
      this.#buffer[this.#offset++] = 0;
      this.#buffer.writeUInt16BE(question.type, this.#offset);
      this.#buffer.writeUInt16BE(question.class, this.#offset + 2);
      this.#offset += 4;
      this.#counts.question = 1;
    }
  }

  /**
   * Appends a whole RRset or nothing. Returns the written RDATA targets, or undefined when the
   * RRset does not fit (the message is left as it was).
   * @param ownerHint offset of an earlier copy of the owner name (QNAME: 12)
   */
  addRRset(section: Section, rrset: RRset, ownerHint?: number): WrittenTarget[] | undefined {
    const start = this.#offset;
    const targets: WrittenTarget[] = [];
    try {
      let hint = ownerHint !== undefined && ownerHint <= MAX_POINTER ? ownerHint : undefined;
      for (const [index, rdata] of rrset.rdatas.entries()) {
        const ownerOffset = this.#offset;
        if (hint !== undefined) this.#pointer(hint);
        else this.#name(rrset.owner, true);
        // Later records of the RRset point at the first owner.
        hint ??= ownerOffset <= MAX_POINTER ? this.#pointerTarget(ownerOffset) : undefined;
        this.#u16(rrset.type);
        this.#u16(RRClass.IN);
        this.#u32(rrset.ttl);
        const lengthAt = this.#offset;
        this.#u16(0);
        this.#rdata(rdata, targets, index < RDATA_HINTS_PER_RRSET);
        this.#buffer.writeUInt16BE(this.#offset - lengthAt - 2, lengthAt);
      }
    } catch (error) {
      if (!(error instanceof NoSpace)) throw error;
      this.#buffer.fill(0, start, this.#offset);
      this.#offset = start;
      return undefined;
    }
    this.#counts[section] += rrset.rdatas.length;
    return targets;
  }

  /** Writes the header (and the OPT record, for which room was reserved) and returns the message. */
  finish(header: { id: number; flags: number }, opt?: OptRecord): Buffer {
    let additional = this.#counts.additional;
    if (opt !== undefined) {
      const b = this.#buffer;
      let o = this.#offset;
      b[o++] = 0; // root owner
      b.writeUInt16BE(RRType.OPT, o);
      b.writeUInt16BE(opt.payloadSize, o + 2);
      b[o + 4] = opt.extendedRcode;
      b[o + 5] = 0; // version
      b.writeUInt16BE(opt.dnssecOk ? 0x8000 : 0, o + 6);
      const rdlength = opt.options.reduce((sum, option) => sum + 4 + option.data.length, 0);
      b.writeUInt16BE(rdlength, o + 8);
      o += 10;
      for (const option of opt.options) {
        b.writeUInt16BE(option.code, o);
        b.writeUInt16BE(option.data.length, o + 2);
        option.data.copy(b, o + 4);
        o += 4 + option.data.length;
      }
      this.#offset = o;
      additional++;
    }
    const b = this.#buffer;
    b.writeUInt16BE(header.id, 0);
    b.writeUInt16BE(header.flags, 2);
    b.writeUInt16BE(this.#counts.question, 4);
    b.writeUInt16BE(this.#counts.answer, 6);
    b.writeUInt16BE(this.#counts.authority, 8);
    b.writeUInt16BE(additional, 10);
    return Buffer.from(b.subarray(0, this.#offset));
  }

  #rdata(rdata: Rdata, targets: WrittenTarget[], remember: boolean): void {
    const at = (): number | undefined => (remember && this.#offset <= MAX_POINTER ? this.#offset : undefined);
    switch (rdata.kind) {
      case 'address':
        this.#bytes(rdata.bytes);
        return;
      case 'ns':
        targets.push({ name: rdata.target, offset: at() });
        this.#name(rdata.target, true);
        return;
      case 'srv':
        this.#u16(rdata.priority);
        this.#u16(rdata.weight);
        this.#u16(rdata.port);
        targets.push({ name: rdata.target, offset: at() });
        this.#name(rdata.target, false);
        return;
      case 'soa':
        this.#name(rdata.mname, true);
        this.#name(rdata.rname, true);
        this.#u32(rdata.serial);
        this.#u32(rdata.refresh);
        this.#u32(rdata.retry);
        this.#u32(rdata.expire);
        this.#u32(rdata.minimum);
        return;
    }
  }

  /** Writes a name, compressed against the QNAME's longest common suffix when `compress`. */
  #name(labels: readonly string[], compress: boolean): void {
    let common = 0;
    if (compress) {
      const q = this.#qnameLower;
      while (common < labels.length && common < q.length && labels[labels.length - 1 - common] === q[q.length - 1 - common]) common++;
    }
    for (let i = 0; i < labels.length - common; i++) {
      const label = Buffer.from(labels[i]!, 'latin1');
      this.#ensure(1 + label.length);
      this.#buffer[this.#offset] = label.length;
      label.copy(this.#buffer, this.#offset + 1);
      this.#offset += 1 + label.length;
    }
    if (common > 0) this.#pointer(this.#qnameOffsets[this.#qnameOffsets.length - common]!);
    else this.#bytes(Buffer.of(0));
  }

  /** If a pointer was written at `offset`, where it points; otherwise `offset` itself. */
  #pointerTarget(offset: number): number {
    const first = this.#buffer[offset]!;
    return (first & 0xc0) === 0xc0 ? this.#buffer.readUInt16BE(offset) & MAX_POINTER : offset;
  }

  #pointer(target: number): void {
    this.#u16(0xc000 | target);
  }

  #ensure(n: number): void {
    if (this.#offset + n > this.#limit) throw new NoSpace();
  }

  #bytes(bytes: Buffer): void {
    this.#ensure(bytes.length);
    bytes.copy(this.#buffer, this.#offset);
    this.#offset += bytes.length;
  }

  #u16(value: number): void {
    this.#ensure(2);
    this.#buffer.writeUInt16BE(value, this.#offset);
    this.#offset += 2;
  }

  #u32(value: number): void {
    this.#ensure(4);
    this.#buffer.writeUInt32BE(value >>> 0, this.#offset);
    this.#offset += 4;
  }
}

/** A response that is only a header plus the question (and OPT): errors and truncated answers. */
export function bareResponse(question: Question | undefined, header: { id: number; flags: number }, opt?: OptRecord): Buffer {
  return new ResponseWriter(question, 65535, 0).finish(header, opt);
}

export function addressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  return ipv6Bytes(address);
}

function ipv6Bytes(address: string): Buffer {
  // An embedded IPv4 tail (::ffff:127.0.0.11) becomes two hex groups first.
  const lastColon = address.lastIndexOf(':');
  const tail = address.slice(lastColon + 1);
  let text = address;
  if (isIPv4(tail)) {
    const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
    text = `${address.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)));
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const headGroups = parse(head);
  const restGroups = rest === undefined ? [] : parse(rest);
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...new Array<number>(zeros).fill(0), ...restGroups];
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(group, i * 2));
  return out;
}
