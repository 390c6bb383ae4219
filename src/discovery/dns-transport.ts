import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket, RecordType } from 'dns-packet';
import { nameKey } from './resolv-conf.js';
import { formatDnsServer, type DnsServerAddress } from './dns-server-address.js';

/** Advertised EDNS0 UDP payload size (the DNS Flag Day 2020 value): fewer TCP fallbacks, no fragmentation. */
const EDNS_UDP_PAYLOAD = 1232;

export type DnsTransportFailure = 'TIMEOUT' | 'NETWORK';

/** The exchange with one server failed below the DNS layer (no genuine answer arrived). */
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

/** Why a message that arrived was not taken as the answer. */
export type DropReason = 'undecodable' | 'not-a-response' | 'wrong-id' | 'no-question' | 'wrong-question';

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
  /** Called for each message dropped as not genuine. */
  readonly onDropped?: ((reason: DropReason) => void) | undefined;
}

/** What a genuine answer must echo: our ID and our question. */
interface Question {
  readonly id: number;
  readonly name: string;
  readonly type: RecordType;
}

/**
 * Sends one question to one server over UDP and, when the answer is truncated, again over TCP
 * (RFC 7766). Takes only a genuine answer (RFC 5452): a random ID from `crypto`, a UDP socket of
 * its own connect()ed to the server (a fresh source port, and the kernel delivers only the
 * server's datagrams), the ID and the question echoed. Anything else that arrives is dropped and
 * the wait goes on, so a stray or forged datagram can neither cut the lookup short nor answer it.
 * Rejects with DnsTransportError on timeout or network error; DNS-level errors (SERVFAIL,
 * REFUSED) are returned in `rcode` for the caller to judge.
 */
export async function exchange(server: DnsServerAddress, name: string, type: RecordType, options: ExchangeOptions): Promise<DnsResponse> {
  const question: Question = { id: randomInt(0, 0x10000), name, type };
  const query = packet.encode({
    type: 'query',
    id: question.id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: [
      { type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] },
    ],
  });
  const udp = await sendUdp(server, query, question, options);
  if (!udp.flag_tc) return toResponse(udp, 1);
  const tcp = await sendTcp(server, query, question, options);
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

/** The decoded message when it is the answer to `question`, else why it is not. */
export function judgeMessage(message: Buffer, question: Question): { readonly answer: DecodedPacket } | { readonly dropped: DropReason } {
  let decoded: DecodedPacket;
  try {
    decoded = packet.decode(message);
  } catch {
    return { dropped: 'undecodable' };
  }
  // dns-packet reads a record cut short past the message's end ('127.0.0.undefined') without throwing.
  if (packet.decode.bytes > message.length) return { dropped: 'undecodable' };
  if (!decoded.flag_qr || (decoded as { opcode?: string }).opcode !== 'QUERY') return { dropped: 'not-a-response' };
  if (decoded.id !== question.id) return { dropped: 'wrong-id' };
  const questions = decoded.questions ?? [];
  if (questions.length === 0) return { dropped: 'no-question' };
  const echoed = questions[0]!;
  if (questions.length > 1 || echoed.type !== question.type || echoed.class !== 'IN' || nameKey(echoed.name) !== nameKey(question.name)) {
    return { dropped: 'wrong-question' };
  }
  return { answer: decoded };
}

function sendUdp(server: DnsServerAddress, query: Buffer, question: Question, options: ExchangeOptions): Promise<DecodedPacket> {
  const label = formatDnsServer(server);
  return withDeadline(label, options, (settle) => {
    const socket = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    const fail = (what: string, error: Error): void =>
      settle.fail(new DnsTransportError('NETWORK', `UDP ${what}: ${error.message}`, label, { cause: error }));
    socket.on('error', (error) => fail('error', error));
    socket.on('message', (message) => {
      const judged = judgeMessage(message, question);
      if ('answer' in judged) settle.ok(judged.answer);
      else settle.drop(judged.dropped);
    });
    // Connected: the kernel delivers only datagrams from the server's address and port.
    socket.connect(server.port, server.host, (error?: Error) => {
      if (error) return fail('connect failed', error);
      try {
        socket.send(query, (sendError) => {
          if (sendError) fail('send failed', sendError);
        });
      } catch (sendError) {
        fail('send failed', sendError as Error); // closed meanwhile (timeout, abort)
      }
    });
    return () => socket.close();
  });
}

function sendTcp(server: DnsServerAddress, query: Buffer, question: Question, options: ExchangeOptions): Promise<DecodedPacket> {
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
        const judged = judgeMessage(message, question);
        if ('answer' in judged) return settle.ok(judged.answer);
        settle.drop(judged.dropped);
      }
    });
    socket.on('end', () => settle.fail(new DnsTransportError('NETWORK', 'TCP connection closed before an answer', label)));
    return () => socket.destroy();
  });
}

interface Settle<T> {
  ok(value: T): void;
  fail(error: Error): void;
  /** A message that is not the answer: counted, and the wait goes on. */
  drop(reason: DropReason): void;
}

/** Runs one socket exchange with a timeout and abort; `start` returns the socket's cleanup. */
function withDeadline<T>(label: string, options: ExchangeOptions, start: (settle: Settle<T>) => () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let cleanup: (() => void) | undefined;
    const dropped = new Map<DropReason, number>();
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
      () =>
        finish(() =>
          reject(new DnsTransportError('TIMEOUT', `no answer within ${options.timeoutMs} ms${describeDropped(dropped)}`, label)),
        ),
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
    cleanup = start({
      ok: (value) => finish(() => resolve(value)),
      fail: (error) => finish(() => reject(error)),
      drop: (reason) => {
        if (done) return;
        dropped.set(reason, (dropped.get(reason) ?? 0) + 1);
        options.onDropped?.(reason);
      },
    });
    if (done) cleanup();
  });
}

function describeDropped(dropped: ReadonlyMap<DropReason, number>): string {
  if (dropped.size === 0) return '';
  return ` (dropped: ${[...dropped].map(([reason, count]) => `${count} ${reason}`).join(', ')})`;
}
