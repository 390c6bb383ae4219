import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ClusterDns } from '../../src/testing/cluster-dns.js';
import { LoopbackBlock } from '../../src/testing/loopback.js';
import { ClusterModel, serviceFqdn, srvFqdn, type PodEndpoint } from '../../src/testing/model.js';
import {
  protoFiles,
  startGrpcPod as startKitPod,
  type EchoClientConstructor,
  type GrpcPod as KitGrpcPod,
  type GrpcPodBehaviour as KitGrpcPodBehaviour,
} from '../../src/testing/index.js';

/**
 * The gRPC adapter's tests' view of the test kit's gRPC pods (src/testing/grpc-pods.ts): the
 * names these tests have always used (`startGrpcPod(name, address, port)`, `inflight`,
 * `stop()`, `dropAfterMetadata`), and a headless Service of such pods published to any DNS
 * (Knot) whose restarts are crashes.
 */

export const ECHO_PROTO = protoFiles().echo;

export type { EchoClient, EchoClientConstructor, EchoReply, EchoRequest } from '../../src/testing/index.js';

let loaded: EchoClientConstructor | undefined;

/** Loads proto/echo.proto with @grpc/proto-loader, as an application would; synchronous, for module scope. */
export function loadEcho(): EchoClientConstructor {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync(ECHO_PROTO, { keepCase: false, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { hlb: { test: { Echo: EchoClientConstructor } } };
    loaded = pkg.hlb.test.Echo;
  }
  return loaded;
}

export interface GrpcPodBehaviour extends KitGrpcPodBehaviour {
  /** The kit's `reset`: send the response metadata, then reset the call's connection. */
  readonly dropAfterMetadata?: boolean;
}

/** A kit gRPC pod under the names of the adapter's tests. */
export class GrpcPod {
  constructor(readonly pod: KitGrpcPod) {}

  get name(): string {
    return this.pod.name;
  }

  get address(): string {
    return this.pod.address;
  }

  get port(): number {
    return this.pod.port;
  }

  /** Calls received (echo methods). */
  get requests(): number {
    return this.pod.requests;
  }

  /** Calls being handled now. */
  get inflight(): number {
    return this.pod.inFlight;
  }

  /** Open client connections. */
  get connections(): number {
    return this.pod.connections;
  }

  /** Calls the client cancelled before they were answered. */
  get cancelled(): number {
    return this.pod.cancelled;
  }

  get state(): KitGrpcPod['state'] {
    return this.pod.state;
  }

  get behaviour(): GrpcPodBehaviour {
    return this.pod.behaviour;
  }

  setBehaviour(behaviour: GrpcPodBehaviour): void {
    const { dropAfterMetadata, ...rest } = behaviour;
    this.pod.setBehaviour(dropAfterMetadata === true ? { ...rest, reset: true } : rest);
  }

  /** The process dies: every connection is reset and the port closes (connections refused). */
  crash(): Promise<void> {
    return this.pod.crash();
  }

  /** Graceful termination: GOAWAY, calls in flight finish, the rest is reset after `gracePeriodMs`. */
  stop(gracePeriodMs = 2000): Promise<void> {
    return this.pod.close({ gracePeriodMs });
  }
}

/** Starts a gRPC pod on `address:port` (port 0: any free one), with TLS when given a key and certificate. */
export async function startGrpcPod(
  name: string,
  address: string,
  port: number,
  tls?: { readonly key: string; readonly cert: string },
): Promise<GrpcPod> {
  return new GrpcPod(await startKitPod({ name, address, port, ...(tls === undefined ? {} : { tls }) }));
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
