import dgram from 'node:dgram';
import net from 'node:net';
import { InvalidOptionError } from '../errors.js';
import { MAX_TIMER_MS } from '../timer-delay.js';
import { answerQuery, errorResponse, type Transport } from './authoritative-answer.js';
import type { ClusterDns } from './cluster-dns.js';
import { parseQuery, Rcode, type ParsedQuery } from './dns-wire.js';
import { ClusterModel } from './model.js';
import { handlesReleased } from './handles.js';
import { Zone } from './zone.js';

/**
 * A fault injected into the embedded DNS server:
 * - `'servfail'` / `'refused'`: answer every query with that rcode (a broken or misconfigured server);
 * - `'silent'`: drop every query (a server that is down or unreachable: clients time out);
 * - `'garbage'`: answer with bytes that do not parse as DNS (same ID, so clients read them);
 * - `{ delayMs }`: answer correctly, late.
 * `null` clears the fault.
 */
export type DnsFault = null | 'servfail' | 'refused' | 'silent' | 'garbage' | { readonly delayMs: number };

export interface DnsQueryRecord {
  /** Lower-case, without the trailing dot. */
  readonly name: string;
  /** `'A'`, `'AAAA'`, `'SRV'`, … or `'TYPE<n>'`. */
  readonly type: string;
  readonly transport: Transport;
}

export interface DnsQueryFilter {
  readonly name?: string;
  readonly type?: string;
  readonly transport?: Transport;
}

export interface DnsServerOptions {
  /** Port for both UDP and TCP on 127.0.0.1. Default 0: a port free for both. */
  readonly port?: number;
  /** What to serve at first. Default: an empty `cluster.local` zone (SOA and NS only). */
  readonly model?: ClusterModel;
}

const HOST = '127.0.0.1';
const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  35: 'NAPTR',
  41: 'OPT',
  43: 'DS',
  46: 'RRSIG',
  48: 'DNSKEY',
  64: 'SVCB',
  65: 'HTTPS',
  251: 'IXFR',
  252: 'AXFR',
  255: 'ANY',
  257: 'CAA',
};
/** The query log is for assertions in tests; a runaway load loop must not exhaust memory. */
const MAX_LOGGED_QUERIES = 100_000;

/**
 * An authoritative DNS server in the test process, answering from a ClusterModel the way Knot
 * does for the same zone (see authoritative-answer.ts), on UDP and TCP of one port of 127.0.0.1.
 */
export class DnsServer implements ClusterDns {
  readonly host = HOST;
  #port: number;
  #zone: Zone;
  #fault: DnsFault = null;
  #queries: DnsQueryRecord[] = [];
  #udp: dgram.Socket | undefined;
  #tcp: net.Server | undefined;
  readonly #connections = new Set<net.Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  /** Use `startDnsServer()`. */
  constructor(model: ClusterModel, port: number) {
    this.#zone = new Zone(model);
    this.#port = port;
  }

  get port(): number {
    return this.#port;
  }

  get address(): string {
    return `${HOST}:${this.#port}`;
  }

  /** The SOA serial being served. */
  get serial(): number {
    return this.#zone.serial;
  }

  get listening(): boolean {
    return this.#udp !== undefined;
  }

  /** Serves a snapshot of `model`: later edits to it are not visible until the next publish. */
  publish(model: ClusterModel): Promise<void> {
    this.#zone = new Zone(model);
    return Promise.resolve();
  }

  get fault(): DnsFault {
    return this.#fault;
  }

  setFault(fault: DnsFault): void {
    const valid =
      fault === null ||
      fault === 'servfail' ||
      fault === 'refused' ||
      fault === 'silent' ||
      fault === 'garbage' ||
      (typeof fault === 'object' && Number.isFinite(fault.delayMs) && fault.delayMs >= 0 && fault.delayMs <= MAX_TIMER_MS);
    if (!valid)
      throw new InvalidOptionError('fault', fault, "null, 'servfail', 'refused', 'silent', 'garbage' or { delayMs: 0 to 2147483647 }");
    this.#fault = fault;
  }

  /** Every query received (with a question), oldest first, faults or not. */
  get queries(): readonly DnsQueryRecord[] {
    return this.#queries;
  }

  /** How many queries matched: `countQueries({ name: 'web.default.svc.cluster.local', type: 'A' })`. */
  countQueries(filter: DnsQueryFilter = {}): number {
    const name = filter.name?.toLowerCase().replace(/\.$/, '');
    return this.#queries.filter(
      (q) =>
        (name === undefined || q.name === name) &&
        (filter.type === undefined || q.type === filter.type) &&
        (filter.transport === undefined || q.transport === filter.transport),
    ).length;
  }

  resetQueries(): void {
    this.#queries = [];
  }

  /** Binds UDP and TCP on the server's port. Used by `startDnsServer` and to come back after `stop()`. */
  async start(): Promise<void> {
    if (this.#closed) throw new Error('DnsServer is closed');
    if (this.#udp !== undefined) return;
    const tcp = net.createServer((socket) => this.#onConnection(socket));
    await listenTcp(tcp, this.#port);
    const port = (tcp.address() as net.AddressInfo).port;
    let udp: dgram.Socket;
    try {
      udp = await bindUdp(port);
    } catch (error) {
      await closeServer(tcp);
      throw error;
    }
    udp.on('message', (message, remote) => this.#onDatagram(udp, message, remote));
    this.#port = port;
    this.#tcp = tcp;
    this.#udp = udp;
  }

  /** Stops answering (sockets closed, connections dropped) but keeps the port for `start()`. */
  async stop(): Promise<void> {
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#connections) socket.destroy();
    this.#connections.clear();
    await Promise.all([
      udp === undefined ? undefined : new Promise<void>((resolve) => udp.close(() => resolve())),
      tcp === undefined ? undefined : closeServer(tcp),
    ]);
    await handlesReleased();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.stop();
  }

  #onDatagram(udp: dgram.Socket, message: Buffer, remote: dgram.RemoteInfo): void {
    this.#handle(message, 'udp', (response) => {
      if (this.#udp === udp) udp.send(response, remote.port, remote.address, () => {});
    });
  }

  #onConnection(socket: net.Socket): void {
    this.#connections.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // RFC 1035 §4.2.2: each message is prefixed with its 2-byte length; a connection may carry many.
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const message = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + message.length);
        this.#handle(
          message,
          'tcp',
          (response) => {
            if (socket.destroyed) return;
            const length = Buffer.alloc(2);
            length.writeUInt16BE(response.length);
            socket.write(Buffer.concat([length, response]));
          },
          // Knot closes a TCP connection that sends something it will not answer.
          () => socket.end(),
        );
      }
    });
  }

  #handle(message: Buffer, transport: Transport, reply: (response: Buffer) => void, drop: () => void = () => {}): void {
    const parsed = parseQuery(message);
    if (parsed.kind === 'query' && parsed.query.question !== undefined) {
      const { question } = parsed.query;
      if (this.#queries.length < MAX_LOGGED_QUERIES) {
        this.#queries.push({ name: question.key, type: TYPE_NAMES[question.type] ?? `TYPE${question.type}`, transport });
      }
    }
    const fault = this.#fault;
    if (parsed.kind === 'query' && fault !== null) {
      if (fault === 'silent') return;
      if (fault === 'servfail' || fault === 'refused')
        return reply(errorResponse(parsed.query, fault === 'servfail' ? Rcode.SERVFAIL : Rcode.REFUSED));
      if (fault === 'garbage') return reply(garbageFor(parsed.query));
    }
    const response = answerQuery(this.#zone, message, transport);
    if (response === undefined) return drop();
    if (parsed.kind === 'query' && fault !== null && typeof fault === 'object') {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        reply(response);
      }, fault.delayMs);
      timer.unref();
      this.#timers.add(timer);
      return;
    }
    reply(response);
  }
}

/** A header that claims a question and an answer, then stops: the ID matches, nothing parses. */
function garbageFor(query: ParsedQuery): Buffer {
  const bytes = Buffer.from([0, 0, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 0xfe, 0xc0]);
  bytes.writeUInt16BE(query.id, 0);
  return bytes;
}

/** Starts an embedded DNS server on 127.0.0.1 (UDP + TCP, same port). */
export async function startDnsServer(options: DnsServerOptions = {}): Promise<DnsServer> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError('port', port, 'an integer from 0 to 65535');
  const model = options.model ?? new ClusterModel();
  // Port 0: TCP picks a port; if its UDP twin is taken, try again.
  for (let attempt = 0; ; attempt++) {
    const server = new DnsServer(model, port);
    try {
      await server.start();
      return server;
    } catch (error) {
      if (port !== 0 || attempt >= 50 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
}

function listenTcp(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: HOST, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function bindUdp(port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: 'udp4' });
    socket.once('error', (error) => {
      try {
        socket.close();
      } catch {
        // never bound: nothing to release
      }
      reject(error);
    });
    socket.bind({ address: HOST, port, exclusive: true }, () => {
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
