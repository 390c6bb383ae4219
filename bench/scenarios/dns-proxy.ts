/**
 * A counting DNS proxy in front of Knot (UDP and TCP on one port of 127.0.0.1): every contender
 * gets this address as its DNS server, so the benchmark sees each query a client sends (Knot 3.2
 * logs no queries without dnstap). It forwards bytes unchanged; it adds ~0.1 ms per query.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import packet from 'dns-packet';
import { findFreeDualPort } from '../../test/support/ports.js';
import { now } from './protocol.js';

export interface DnsQueryLog {
  /** Epoch ms. */
  readonly at: number;
  readonly transport: 'udp' | 'tcp';
  readonly name: string;
  readonly type: string;
}

export class DnsProxy {
  readonly queries: DnsQueryLog[] = [];
  private readonly udp: dgram.Socket;
  private readonly tcp: net.Server;
  private readonly pending = new Set<dgram.Socket>();
  private readonly connections = new Set<net.Socket>();

  private constructor(
    readonly port: number,
    private readonly upstreamPort: number,
    udp: dgram.Socket,
    tcp: net.Server,
  ) {
    this.udp = udp;
    this.tcp = tcp;
    udp.on('message', (message, rinfo) => this.onUdp(message, rinfo));
    tcp.on('connection', (socket) => this.onTcp(socket));
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Forgets the queries seen so far. */
  reset(): void {
    this.queries.length = 0;
  }

  private log(message: Buffer, transport: 'udp' | 'tcp'): void {
    let name = '?';
    let type = '?';
    try {
      const question = packet.decode(message).questions?.[0];
      if (question !== undefined) {
        name = question.name;
        type = question.type;
      }
    } catch {
      // forward it anyway
    }
    if (this.queries.length < 1_000_000) this.queries.push({ at: now(), transport, name, type });
  }

  private onUdp(message: Buffer, rinfo: dgram.RemoteInfo): void {
    this.log(message, 'udp');
    const upstream = dgram.createSocket('udp4');
    this.pending.add(upstream);
    const done = (): void => {
      clearTimeout(timer);
      this.pending.delete(upstream);
      upstream.close();
    };
    const timer = setTimeout(done, 5000);
    upstream.on('error', done);
    upstream.on('message', (answer) => {
      this.udp.send(answer, rinfo.port, rinfo.address);
      done();
    });
    upstream.send(message, this.upstreamPort, '127.0.0.1');
  }

  private onTcp(client: net.Socket): void {
    const upstream = net.connect({ host: '127.0.0.1', port: this.upstreamPort });
    this.connections.add(client);
    this.connections.add(upstream);
    let buffered = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      // Count the length-prefixed messages as they pass.
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        this.log(buffered.subarray(2, 2 + length), 'tcp');
        buffered = buffered.subarray(2 + length);
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.connections.delete(client);
      this.connections.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  }

  async close(): Promise<void> {
    for (const socket of this.pending) socket.close();
    for (const socket of this.connections) socket.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
      new Promise<void>((resolve) => this.tcp.close(() => resolve())),
    ]);
  }

  static async start(upstreamPort: number): Promise<DnsProxy> {
    for (let attempt = 0; ; attempt++) {
      const port = await findFreeDualPort();
      const udp = dgram.createSocket('udp4');
      const tcp = net.createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind({ address: '127.0.0.1', port, exclusive: true }, () => resolve());
        });
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve());
        });
        return new DnsProxy(port, upstreamPort, udp, tcp);
      } catch (error) {
        udp.close();
        tcp.close();
        if (attempt >= 5) throw error;
      }
    }
  }
}
