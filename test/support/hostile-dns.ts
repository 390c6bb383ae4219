import dgram from 'node:dgram';
import net from 'node:net';
import packet, { type Answer, type DecodedPacket, type Packet } from 'dns-packet';
import { findFreeDualPort } from './ports.js';

/**
 * A DNS responder that answers whatever a test tells it to, on real UDP and TCP sockets of a
 * 127/8 address: genuine replies, forged ones (wrong owner, no question, another question), bytes
 * that are no DNS at all, and replies sent from another port or address than the one queried.
 * It decodes queries with dns-packet and never judges them.
 */

export const HOSTILE_DNS_HOST = '127.0.0.53';

export interface ReceivedQuery {
  readonly id: number;
  /** The question's name as sent (no trailing dot). */
  readonly name: string;
  readonly type: string;
  readonly transport: 'udp' | 'tcp';
  /** The client's socket the query came from. */
  readonly client: { readonly address: string; readonly port: number };
  readonly decoded: DecodedPacket;
}

/** What a responder can send back for one query. */
export interface Reply {
  /** From the server's own socket (over UDP) or connection (over TCP): bytes, or a packet to encode. */
  send(message: Buffer | Packet): Promise<void>;
  /** UDP only: from another socket, bound to `address` (default the server's) and `port` (default any other). */
  sendFrom(source: { readonly address?: string; readonly port?: number }, message: Buffer | Packet): Promise<void>;
}

export type Responder = (query: ReceivedQuery, reply: Reply) => void | Promise<void>;

export class HostileDns {
  /** Every query received, in order. */
  readonly queries: ReceivedQuery[] = [];
  #responder: Responder = () => {};
  readonly #connections = new Set<net.Socket>();
  /** Errors thrown by responders: a test asserts there are none. */
  readonly errors: unknown[] = [];

  constructor(
    readonly port: number,
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
  ) {
    udp.on('message', (message, remote) => this.#onQuery(message, 'udp', remote, (reply) => this.#sendUdp(udp, reply, remote)));
    tcp.on('connection', (socket) => this.#serveTcp(socket));
  }

  /** `host:port`, as `dnsServers` takes it. */
  get address(): string {
    return `${HOSTILE_DNS_HOST}:${this.port}`;
  }

  /** What to do with each query from now on. */
  respond(responder: Responder): void {
    this.#responder = responder;
  }

  async close(): Promise<void> {
    for (const socket of this.#connections) socket.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
      new Promise<void>((resolve) => this.tcp.close(() => resolve())),
    ]);
  }

  #onQuery(
    message: Buffer,
    transport: 'udp' | 'tcp',
    remote: { address: string; port: number },
    send: (reply: Buffer) => Promise<void>,
  ): void {
    let decoded: DecodedPacket;
    try {
      decoded = packet.decode(message);
    } catch {
      return;
    }
    const question = decoded.questions?.[0];
    const query: ReceivedQuery = {
      id: decoded.id ?? 0,
      name: question?.name ?? '',
      type: question?.type ?? '',
      transport,
      client: { address: remote.address, port: remote.port },
      decoded,
    };
    this.queries.push(query);
    const reply: Reply = {
      send: (reply) => send(toBuffer(reply)),
      sendFrom: (source, reply) => {
        if (transport !== 'udp') return Promise.reject(new Error('sendFrom is for UDP only'));
        return sendFromOtherSocket(source, toBuffer(reply), remote);
      },
    };
    Promise.resolve()
      .then(() => this.#responder(query, reply))
      .catch((error: unknown) => this.errors.push(error));
  }

  #sendUdp(socket: dgram.Socket, message: Buffer, remote: { address: string; port: number }): Promise<void> {
    return new Promise((resolve, reject) =>
      socket.send(message, remote.port, remote.address, (error) => (error ? reject(error) : resolve())),
    );
  }

  #serveTcp(socket: net.Socket): void {
    let received = Buffer.alloc(0);
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    this.#connections.add(socket);
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 2 && received.length >= received.readUInt16BE(0) + 2) {
        const length = received.readUInt16BE(0);
        const message = received.subarray(2, length + 2);
        received = received.subarray(length + 2);
        this.#onQuery(message, 'tcp', remote, (reply) => writeFramed(socket, reply));
      }
    });
  }
}

export async function startHostileDns(): Promise<HostileDns> {
  for (let attempt = 0; ; attempt++) {
    const port = await findFreeDualPort(HOSTILE_DNS_HOST);
    try {
      const udp = await bindUdp(HOSTILE_DNS_HOST, port);
      const tcp = await listenTcp(HOSTILE_DNS_HOST, port).catch(async (error: unknown) => {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        throw error;
      });
      return new HostileDns(port, udp, tcp);
    } catch (error) {
      if (attempt >= 4) throw error; // taken between the check and the bind: another port
    }
  }
}

export interface GenuineSections {
  readonly answers?: Answer[];
  readonly additionals?: Answer[];
  readonly authorities?: Answer[];
  /** DNS rcode number (0 NOERROR, 3 NXDOMAIN, ...). Default 0. */
  readonly rcode?: number;
  /** Extra header flags, such as packet.TRUNCATED_RESPONSE. */
  readonly flags?: number;
}

/** A reply that passes every check a careful client makes: our ID, QR, the question echoed. */
export function genuineReply(query: ReceivedQuery, sections: GenuineSections = {}): Packet {
  return {
    type: 'response',
    id: query.id,
    flags: packet.AUTHORITATIVE_ANSWER | packet.RECURSION_DESIRED | (sections.flags ?? 0) | (sections.rcode ?? 0),
    questions: [{ name: query.name, type: query.type as never, class: 'IN' }],
    answers: sections.answers ?? [],
    additionals: sections.additionals ?? [],
    authorities: sections.authorities ?? [],
  };
}

/** Record builders, TTL 300 unless given. */
export const a = (name: string, address: string, ttl = 300): Answer => ({ type: 'A', name, ttl, data: address });
export const aaaa = (name: string, address: string, ttl = 300): Answer => ({ type: 'AAAA', name, ttl, data: address });
export const cname = (name: string, target: string, ttl = 300): Answer => ({ type: 'CNAME', name, ttl, data: target });
export const srv = (name: string, target: string, port: number, ttl = 300): Answer => ({
  type: 'SRV',
  name,
  ttl,
  data: { priority: 0, weight: 50, port, target },
});

function toBuffer(message: Buffer | Packet): Buffer {
  return Buffer.isBuffer(message) ? message : packet.encode(message);
}

function writeFramed(socket: net.Socket, message: Buffer): Promise<void> {
  const framed = Buffer.alloc(message.length + 2);
  framed.writeUInt16BE(message.length, 0);
  message.copy(framed, 2);
  return new Promise((resolve) => socket.write(framed, () => resolve()));
}

async function sendFromOtherSocket(
  source: { readonly address?: string; readonly port?: number },
  message: Buffer,
  to: { address: string; port: number },
): Promise<void> {
  const socket = await bindUdp(source.address ?? HOSTILE_DNS_HOST, source.port ?? 0);
  try {
    await new Promise<void>((resolve, reject) => socket.send(message, to.port, to.address, (error) => (error ? reject(error) : resolve())));
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

function bindUdp(host: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

function listenTcp(host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
