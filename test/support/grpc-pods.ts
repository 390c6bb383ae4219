import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ClusterDns } from '../../src/testing/cluster-dns.js';
import { LoopbackBlock } from '../../src/testing/loopback.js';
import { ClusterModel, serviceFqdn, srvFqdn, type PodEndpoint } from '../../src/testing/model.js';
import { sleep } from './wait.js';

/**
 * Real grpc-js servers as pods on 127.x addresses (one port for all), for the gRPC adapter's
 * tests: each pod owns its listening socket and its connections (through grpc-js's public
 * connection injector), so a crash is a real one (connections reset, port closed) and a graceful
 * stop is grpc-js's own (GOAWAY, in-flight calls finish).
 */

export const ECHO_PROTO = fileURLToPath(new URL('../../proto/echo.proto', import.meta.url));

export interface EchoRequest {
  text?: string;
  delayMs?: number;
  count?: number;
}
export interface EchoReply {
  pod: string;
  address: string;
  text: string;
  seq: number;
}

type Callback<T> = (error: grpc.ServiceError | null, value?: T) => void;

/** The generated-style client of proto/echo.proto. */
export interface EchoClient extends grpc.Client {
  Unary(request: EchoRequest, callback: Callback<EchoReply>): grpc.ClientUnaryCall;
  Unary(request: EchoRequest, metadata: grpc.Metadata, callback: Callback<EchoReply>): grpc.ClientUnaryCall;
  Unary(request: EchoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<EchoReply>): grpc.ClientUnaryCall;
  ServerStream(request: EchoRequest, metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<EchoReply>;
  ClientStream(metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<EchoReply>): grpc.ClientWritableStream<EchoRequest>;
  Bidi(metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<EchoRequest, EchoReply>;
}

export type EchoClientConstructor = (new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => EchoClient) & {
  service: grpc.ServiceDefinition;
};

let loaded: EchoClientConstructor | undefined;

/** Loads echo.proto with @grpc/proto-loader, as an application would. */
export function loadEcho(): EchoClientConstructor {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync(ECHO_PROTO, { keepCase: false, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { hlb: { test: { Echo: EchoClientConstructor } } };
    loaded = pkg.hlb.test.Echo;
  }
  return loaded;
}

export interface GrpcPodBehaviour {
  /** Extra delay before every answer, ms. */
  readonly delayMs?: number;
  /** Answer every call with this status code (before any response metadata). */
  readonly status?: number;
  /** Details of that status. Default `pod <name> answers <CODE>`. */
  readonly details?: string;
  /** Accept calls and never answer them. */
  readonly hang?: boolean;
  /** Unary calls: send the response metadata, then reset every connection (the pod keeps listening). */
  readonly dropAfterMetadata?: boolean;
}

export class GrpcPod {
  /** Calls received (any method). */
  requests = 0;
  /** Calls being handled now. */
  inflight = 0;
  behaviour: GrpcPodBehaviour = {};
  state: 'running' | 'crashed' | 'stopped' = 'running';
  private readonly server = new grpc.Server();
  private readonly injector: grpc.ConnectionInjector;
  private readonly sockets = new Set<net.Socket>();
  private readonly hung = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly address: string,
    private readonly listener: net.Server,
    tls?: { readonly key: string; readonly cert: string },
  ) {
    const Echo = loadEcho();
    this.server.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
        void this.handle(
          async () => {
            if (this.behaviour.dropAfterMetadata) {
              call.sendMetadata(new grpc.Metadata());
              await sleep(20);
              for (const socket of this.sockets) socket.resetAndDestroy();
              return;
            }
            await this.delay(call.request.delayMs);
            callback(null, this.reply(call.request.text, 0));
          },
          (error) => callback(error),
        );
      },
      ServerStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => {
        void this.handle(
          async () => {
            const count = call.request.count || 1;
            for (let seq = 0; seq < count && !call.cancelled; seq++) {
              await this.delay(call.request.delayMs);
              call.write(this.reply(call.request.text, seq));
            }
            call.end();
          },
          (error) => call.destroy(Object.assign(new Error(error.details), error)),
        );
      },
      ClientStream: (call: grpc.ServerReadableStream<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
        void this.handle(
          async () => {
            const texts: string[] = [];
            for await (const request of call as AsyncIterable<EchoRequest>) texts.push(request.text ?? '');
            await this.delay(0);
            callback(null, this.reply(texts.join(','), texts.length));
          },
          (error) => callback(error),
        );
      },
      Bidi: (call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) => {
        void this.handle(
          async () => {
            // Not `for await`: ending the iteration would destroy the duplex, writable side included.
            let seq = 0;
            let chain = Promise.resolve();
            await new Promise<void>((resolve, reject) => {
              call.on('data', (request: EchoRequest) => {
                chain = chain.then(async () => {
                  await this.delay(request.delayMs);
                  call.write(this.reply(request.text, seq++));
                });
              });
              call.on('end', () => void chain.then(resolve, reject));
              call.on('error', reject);
            });
            call.end();
          },
          (error) => call.destroy(Object.assign(new Error(error.details), error)),
        );
      },
    });
    const credentials =
      tls === undefined
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }]);
    this.injector = this.server.createConnectionInjector(credentials);
    listener.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.on('error', () => {}); // a reset by the client, or after our own crash: not news
      this.injector.injectConnection(socket);
    });
  }

  get port(): number {
    return (this.listener.address() as net.AddressInfo).port;
  }

  /** Open client connections. */
  get connections(): number {
    return this.sockets.size;
  }

  setBehaviour(behaviour: GrpcPodBehaviour): void {
    this.behaviour = behaviour;
  }

  /** The process dies: every connection is reset and the port closes (connections refused). */
  async crash(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'crashed';
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.releaseHung();
    this.server.forceShutdown();
    this.injector.destroy();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  /**
   * Graceful termination: the port closes (new connections refused), GOAWAY on every connection,
   * calls in flight finish; after `gracePeriodMs` whatever remains is reset.
   *
   * "Calls finished" is when the pod's connections have closed, not when `tryShutdown` calls back:
   * from Node 24 on, `Http2Server.close()` closes the server's sessions itself (gracefully), and
   * grpc-js's `tryShutdown` then finds them already `closed` and calls back at once, while their
   * streams are still running (grpc-js 1.14.7). Resetting the sockets at that point, as a process
   * exiting in that callback would, kills the calls in flight. A session that was closed
   * gracefully closes its socket after its last stream, on every Node version: wait for that.
   */
  async stop(gracePeriodMs = 2000): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopped';
    const listenerClosed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace-over'>((resolve) => (timer = setTimeout(() => resolve('grace-over'), gracePeriodMs)));
    const shutdown = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    const drained = Promise.all([shutdown, this.connectionsClosed()]);
    const outcome = await Promise.race([drained, graceOver]);
    clearTimeout(timer);
    if (outcome === 'grace-over') {
      this.releaseHung();
      this.server.forceShutdown();
    }
    this.injector.destroy();
    for (const socket of this.sockets) socket.destroy();
    await listenerClosed;
  }

  /** Resolves when every connection open now has closed. */
  private connectionsClosed(): Promise<void> {
    return Promise.all(
      [...this.sockets].map((socket) =>
        socket.closed ? undefined : new Promise<void>((resolve) => socket.once('close', () => resolve())),
      ),
    ).then(() => undefined);
  }

  private reply(text: string | undefined, seq: number): EchoReply {
    return { pod: this.name, address: this.address, text: text ?? '', seq };
  }

  private async delay(requested: number | undefined): Promise<void> {
    const behaviour = this.behaviour;
    if (behaviour.hang) await new Promise<void>((resolve) => this.hung.add(resolve));
    const ms = (requested ?? 0) + (behaviour.delayMs ?? 0);
    if (ms > 0) await sleep(ms);
  }

  private releaseHung(): void {
    for (const release of this.hung) release();
    this.hung.clear();
  }

  private async handle(body: () => Promise<void>, fail: (error: grpc.ServiceError) => void): Promise<void> {
    this.requests++;
    this.inflight++;
    try {
      const code = this.behaviour.status;
      if (code !== undefined) {
        const details = this.behaviour.details ?? `pod ${this.name} answers ${grpc.status[code]}`;
        fail(Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }));
        return;
      }
      await body();
    } catch (error) {
      if (this.state === 'running')
        fail(
          Object.assign(new Error(String(error)), { code: grpc.status.INTERNAL, details: String(error), metadata: new grpc.Metadata() }),
        );
    } finally {
      this.inflight--;
    }
  }
}

/** Starts a gRPC pod on `address:port` (port 0: any free one), with TLS when given a key and certificate. */
export async function startGrpcPod(
  name: string,
  address: string,
  port: number,
  tls?: { readonly key: string; readonly cert: string },
): Promise<GrpcPod> {
  const listener = net.createServer({ noDelay: true });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ host: address, port, exclusive: true }, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  return new GrpcPod(name, address, listener, tls);
}

export interface GrpcServiceOptions {
  readonly name: string;
  readonly replicas: number;
  /** SRV port name. Default 'grpc'. */
  readonly portName?: string;
  readonly namespace?: string;
}

/**
 * A headless Service of gRPC pods, published to a real DNS server (Knot) through a ClusterModel,
 * with StatefulSet semantics: pods `<name>-0…`, scale-down removes the highest ordinals from DNS
 * first and then stops them gracefully.
 */
export class GrpcService {
  readonly pods: GrpcPod[] = [];
  private readonly retired: GrpcPod[] = [];
  private readonly notReady = new Set<string>();
  private nextOrdinal = 0;

  private constructor(
    private readonly cluster: GrpcCluster,
    readonly name: string,
    readonly namespace: string,
    readonly portName: string,
    readonly port: number,
  ) {}

  /** @internal */
  static async create(cluster: GrpcCluster, options: GrpcServiceOptions, port: number): Promise<GrpcService> {
    const service = new GrpcService(cluster, options.name, options.namespace ?? 'default', options.portName ?? 'grpc', port);
    for (let i = 0; i < options.replicas; i++) await service.startNext();
    await service.publish();
    return service;
  }

  get fqdn(): string {
    return serviceFqdn(this.cluster.model, this.name, this.namespace);
  }

  get srvName(): string {
    return srvFqdn(this.cluster.model, this, { name: this.portName });
  }

  pod(name: string): GrpcPod {
    const pod = this.pods.find((p) => p.name === name) ?? this.retired.find((p) => p.name === name);
    if (pod === undefined) throw new Error(`no pod ${name}`);
    return pod;
  }

  /** Scales to `replicas`: new pods start, then enter DNS; removed pods leave DNS, then stop gracefully. */
  async scale(replicas: number, gracePeriodMs = 2000): Promise<void> {
    while (this.pods.length < replicas) await this.startNext();
    const leaving = this.pods.splice(replicas);
    this.nextOrdinal = this.pods.length;
    await this.publish();
    this.retired.push(...leaving);
    await Promise.all(leaving.map((pod) => pod.stop(gracePeriodMs)));
  }

  /** Takes the pod out of DNS (readiness lost), the server keeps running. */
  async removeFromDns(name: string): Promise<void> {
    this.notReady.add(name);
    await this.publish();
  }

  /** Crashes the pod; it stays in DNS. */
  async crashPod(name: string): Promise<void> {
    await this.pod(name).crash();
  }

  /** A new container with the same name and a new IP. */
  async restartPod(name: string): Promise<GrpcPod> {
    const index = this.pods.findIndex((p) => p.name === name);
    if (index < 0) throw new Error(`no pod ${name}`);
    const old = this.pods[index]!;
    const pod = await startGrpcPod(name, this.cluster.addresses.next(), this.port);
    this.pods[index] = pod;
    this.retired.push(old);
    await old.crash();
    await this.publish();
    return pod;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pods, ...this.retired].map((pod) => pod.crash()));
  }

  private async startNext(): Promise<void> {
    const pod = await startGrpcPod(`${this.name}-${this.nextOrdinal++}`, this.cluster.addresses.next(), this.port);
    this.pods.push(pod);
  }

  /** @internal */
  get endpoints(): PodEndpoint[] {
    return this.pods.map((pod) => ({ hostname: pod.name, ip: pod.address, ready: !this.notReady.has(pod.name) }));
  }

  private publish(): Promise<void> {
    this.cluster.model.setService({
      name: this.name,
      namespace: this.namespace,
      ports: [{ name: this.portName, port: this.port }],
      pods: this.endpoints,
    });
    return this.cluster.dns.publish(this.cluster.model.clone());
  }
}

/** gRPC services on one DNS server. All pods of all services share one port. */
export class GrpcCluster {
  readonly model: ClusterModel;
  readonly addresses = new LoopbackBlock();
  private readonly services: GrpcService[] = [];
  private port = 0;

  constructor(
    readonly dns: ClusterDns,
    ttl: number,
  ) {
    this.model = new ClusterModel({ ttl });
  }

  async createService(options: GrpcServiceOptions): Promise<GrpcService> {
    if (this.port === 0) {
      const probe = await startGrpcPod('probe', this.addresses.next(), 0);
      this.port = probe.port;
      await probe.crash();
    }
    const service = await GrpcService.create(this, options, this.port);
    this.services.push(service);
    return service;
  }

  async close(): Promise<void> {
    await Promise.all(this.services.map((service) => service.close()));
  }
}
