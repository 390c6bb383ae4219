import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { isIP } from 'node:net';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket, RecordType } from 'dns-packet';
import { formatDnsServer, type DnsServerAddress } from './dns-server-address.js';

/** Advertised EDNS0 UDP payload size (the DNS Flag Day 2020 value): fewer TCP fallbacks, no fragmentation. */
const EDNS_UDP_PAYLOAD = 1232;

export type DnsTransportFailure = 'TIMEOUT' | 'NETWORK' | 'MALFORMED';

/** The exchange with one server failed below the DNS layer (no usable answer arrived). */
export class DnsTransportError extends Error {
  constructor(
    readonly reason: DnsTransportFailure,
    message: string,
    readonly server: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DnsTransportError';
  }
}

/** A decoded DNS response with the parts resolution needs. */
export interface DnsResponse {
  /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ... */
  readonly rcode: string;
  readonly answers: readonly Answer[];
  readonly authorities: readonly Answer[];
  readonly additionals: readonly Answer[];
  /** Messages sent to get it: 1 over UDP, 2 after a truncated UDP answer and a TCP retry. */
  readonly messages: number;
}

export interface ExchangeOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Sends one question to one server over UDP and, when the answer is truncated, again over TCP
 * (RFC 7766). Rejects with DnsTransportError on timeout, network error or an undecodable answer;
 * DNS-level errors (SERVFAIL, REFUSED) are returned in `rcode` for the caller to judge.
 */
export async function exchange(server: DnsServerAddress, name: string, type: RecordType, options: ExchangeOptions): Promise<DnsResponse> {
  const id = randomId();
  const query = packet.encode({
    type: 'query',
    id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
  const udp = await sendUdp(server, query, id, name, type, options);
  if (!udp.flag_tc) return toResponse(udp, 1);
  const tcp = await sendTcp(server, query, id, name, type, options);
  return toResponse(tcp, 2);
}

function toResponse(decoded: DecodedPacket, messages: number): DnsResponse {
  return {
    rcode: (decoded as DecodedPacket & { rcode?: string }).rcode ?? 'NOERROR',
    answers: decoded.answers ?? [],
    authorities: decoded.authorities ?? [],
    additionals: decoded.additionals ?? [],
    messages,
  };
}

function randomId(): number {
  return Math.floor(Math.random() * 0x10000);
}

/** Decodes a response and checks that it answers our question; undefined when it belongs to someone else. */
function matchResponse(buffer: Buffer, id: number, name: string, type: RecordType, server: string): DecodedPacket | undefined {
  let decoded: DecodedPacket;
  try {
    decoded = packet.decode(buffer);
  } catch (error) {
    throw new DnsTransportError('MALFORMED', `undecodable DNS answer (${buffer.length} bytes)`, server, { cause: error });
  }
  if (decoded.id !== id || !decoded.flag_qr) return undefined;
  const question = decoded.questions?.[0];
  if (question !== undefined && (question.type !== type || question.name.toLowerCase() !== name.toLowerCase())) return undefined;
  return decoded;
}

function sendUdp(server: DnsServerAddress, query: Buffer, id: number, name: string, type: RecordType, options: ExchangeOptions): Promise<DecodedPacket> {
  const label = formatDnsServer(server);
  return withDeadline(label, options, (settle) => {
    const socket = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    socket.on('error', (error) => settle.fail(new DnsTransportError('NETWORK', `UDP error: ${error.message}`, label, { cause: error })));
    socket.on('message', (message) => {
      try {
        const decoded = matchResponse(message, id, name, type, label);
        if (decoded !== undefined) settle.ok(decoded);
      } catch (error) {
        settle.fail(error as Error);
      }
    });
    socket.send(query, server.port, server.host, (error) => {
      if (error) settle.fail(new DnsTransportError('NETWORK', `UDP send failed: ${error.message}`, label, { cause: error }));
    });
    return () => socket.close();
  });
}

function sendTcp(server: DnsServerAddress, query: Buffer, id: number, name: string, type: RecordType, options: ExchangeOptions): Promise<DecodedPacket> {
  const label = formatDnsServer(server);
  return withDeadline(label, options, (settle) => {
    const socket = connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    socket.on('error', (error) => settle.fail(new DnsTransportError('NETWORK', `TCP error: ${error.message}`, label, { cause: error })));
    socket.on('connect', () => {
      const framed = Buffer.alloc(query.length + 2);
      framed.writeUInt16BE(query.length, 0);
      query.copy(framed, 2);
      socket.write(framed);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 2) {
        const length = received.readUInt16BE(0);
        if (received.length < length + 2) return;
        const message = received.subarray(2, length + 2);
        received = received.subarray(length + 2);
        try {
          const decoded = matchResponse(message, id, name, type, label);
          if (decoded !== undefined) return settle.ok(decoded);
        } catch (error) {
          return settle.fail(error as Error);
        }
      }
    });
    socket.on('end', () => settle.fail(new DnsTransportError('NETWORK', 'TCP connection closed before an answer', label)));
    return () => socket.destroy();
  });
}

interface Settle<T> {
  ok(value: T): void;
  fail(error: Error): void;
}

/** Runs one socket exchange with a timeout and abort; `start` returns the socket's cleanup. */
function withDeadline<T>(label: string, options: ExchangeOptions, start: (settle: Settle<T>) => () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let cleanup: (() => void) | undefined;
    const finish = (action: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      try {
        cleanup?.();
      } catch {
        // The socket is already closed.
      }
      action();
    };
    const timer = setTimeout(
      () => finish(() => reject(new DnsTransportError('TIMEOUT', `no answer within ${options.timeoutMs} ms`, label))),
      options.timeoutMs,
    );
    timer.unref();
    const onAbort = (): void => finish(() => reject(options.signal?.reason));
    if (options.signal?.aborted) {
      clearTimeout(timer);
      reject(options.signal.reason);
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    cleanup = start({ ok: (value) => finish(() => resolve(value)), fail: (error) => finish(() => reject(error)) });
    if (done) cleanup();
  });
}
