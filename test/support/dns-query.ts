import dgram from 'node:dgram';
import net from 'node:net';
import packet from 'dns-packet';

/**
 * A minimal DNS client for the testing kit's own tests: raw bytes over UDP or TCP to a
 * '127.0.0.1:<port>' server. Deliberately independent of src/discovery.
 */

export type Transport = 'udp' | 'tcp';

export interface QueryOptions {
  readonly id?: number;
  /** Header flags word without QR (dns-packet style); opcode goes in bits 11-14. Default RD. */
  readonly flags?: number;
  readonly class?: 'IN' | 'CH' | 'ANY';
  /** EDNS0 OPT record; omitted (no EDNS) by default. */
  readonly edns?: { readonly payloadSize: number; readonly dnssecOk?: boolean; readonly version?: number };
}

export function buildQuery(name: string, type: string, options: QueryOptions = {}): Buffer {
  const additionals: packet.Answer[] = [];
  if (options.edns !== undefined) {
    additionals.push({
      type: 'OPT',
      name: '.',
      udpPayloadSize: options.edns.payloadSize,
      extendedRcode: 0,
      ednsVersion: options.edns.version ?? 0,
      flags: options.edns.dnssecOk === true ? packet.DNSSEC_OK : 0,
      flag_do: options.edns.dnssecOk === true,
      options: [],
    });
  }
  return packet.encode({
    type: 'query',
    id: options.id ?? Math.floor(Math.random() * 65536),
    flags: options.flags ?? packet.RECURSION_DESIRED,
    questions: [{ name, type: type as packet.RecordType, class: options.class ?? 'IN' }],
    additionals,
  });
}

/** Sends one message; resolves with the response, or undefined if none came within `timeoutMs` (or TCP closed). */
export function exchange(server: string, message: Buffer, transport: Transport, timeoutMs = 1000): Promise<Buffer | undefined> {
  return transport === 'udp' ? exchangeUdp(server, message, timeoutMs) : exchangeTcp(server, [message], timeoutMs).then((all) => all[0]);
}

function split(server: string): { host: string; port: number } {
  const i = server.lastIndexOf(':');
  return { host: server.slice(0, i), port: Number(server.slice(i + 1)) };
}

function exchangeUdp(server: string, message: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  const { host, port } = split(server);
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const done = (response: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(response);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('message', (response) => done(response));
    // ICMP port unreachable (server stopped) shows up as an error on connected sockets only; ignore it.
    socket.on('error', () => {});
    socket.send(message, port, host);
  });
}

/** Sends every message on one TCP connection; resolves with the responses received in order. */
export function exchangeTcp(server: string, messages: readonly Buffer[], timeoutMs = 1000): Promise<(Buffer | undefined)[]> {
  const { host, port } = split(server);
  return new Promise((resolve) => {
    const responses: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const socket = net.connect({ host, port });
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(messages.map((_, i) => responses[i]));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        responses.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + responses.at(-1)!.length);
      }
      if (responses.length >= messages.length) done();
    });
    socket.write(Buffer.concat(messages.map((message) => Buffer.concat([u16(message.length), message]))));
  });
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** A record of the answer or authority section: never OPT, so it always has a TTL and data. */
export type ResourceRecord = Exclude<packet.Answer, packet.OptAnswer>;

export interface DecodedResponse {
  readonly raw: Buffer;
  readonly id: number;
  readonly rcode: string;
  readonly opcode: string;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly cd: boolean;
  readonly ad: boolean;
  readonly questions: readonly packet.Question[];
  readonly answers: readonly ResourceRecord[];
  readonly authorities: readonly ResourceRecord[];
  readonly additionals: readonly packet.Answer[];
}

export function decode(raw: Buffer): DecodedResponse {
  const decoded = packet.decode(raw) as packet.DecodedPacket & { rcode: string; opcode: string };
  return {
    raw,
    id: decoded.id ?? 0,
    rcode: decoded.rcode,
    opcode: decoded.opcode,
    aa: decoded.flag_aa,
    tc: decoded.flag_tc,
    rd: decoded.flag_rd,
    cd: decoded.flag_cd,
    ad: decoded.flag_ad,
    questions: decoded.questions ?? [],
    answers: (decoded.answers ?? []).filter(isResourceRecord),
    authorities: (decoded.authorities ?? []).filter(isResourceRecord),
    additionals: decoded.additionals ?? [],
  };
}

/** Query and decode; throws if no answer came. */
export async function query(
  server: string,
  name: string,
  type: string,
  options: QueryOptions & { transport?: Transport; timeoutMs?: number } = {},
): Promise<DecodedResponse> {
  const raw = await exchange(server, buildQuery(name, type, options), options.transport ?? 'udp', options.timeoutMs);
  if (raw === undefined) throw new Error(`no answer from ${server} to ${name} ${type}`);
  return decode(raw);
}

function isResourceRecord(answer: packet.Answer): answer is ResourceRecord {
  return answer.type !== 'OPT';
}
