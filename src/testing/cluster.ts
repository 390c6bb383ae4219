import { InvalidOptionError } from '../errors.js';
import type { ClusterDns } from './cluster-dns.js';
import { startDnsServer, type DnsServer } from './dns-server.js';
import { LoopbackBlock } from './loopback.js';
import { ClusterModel, podFqdn, serviceFqdn, srvFqdn, type PodEndpoint, type PortProtocol } from './model.js';
import { startGrpcPod, type GrpcPod, type GrpcPodBehaviour } from './grpc-pods.js';
import { Pod, startPod, type PodBehaviour, type PodCloseOptions, type PodState } from './pods.js';

/** What a service's pods serve: `'http'` (JSON over HTTP/1.1) or `'grpc'` (the echo and health services). */
export type AppProtocol = 'http' | 'grpc';

/** The behaviours of a service's pods: `PodBehaviour` for HTTP, `GrpcPodBehaviour` for gRPC. */
export type BehaviourOf<P extends AppProtocol> = P extends 'grpc' ? GrpcPodBehaviour : PodBehaviour;

type ContainerOf<P extends AppProtocol> = P extends 'grpc' ? GrpcPod : Pod;

const DEFAULT_PORTS: Readonly<Record<AppProtocol, number>> = { http: 8080, grpc: 50051 };

export interface ClusterOptions<D extends ClusterDns = DnsServer> {
  /** Record TTL in seconds. Default 5 (CoreDNS's default). */
  readonly ttl?: number;
  /** Default `'cluster.local'`. */
  readonly domain?: string;
  /** Where to publish DNS. Default: an embedded DNS server, closed with the cluster. A server passed here is not closed by the cluster. */
  readonly dns?: D;
}

export interface CreateServiceOptions<P extends AppProtocol = 'http'> {
  readonly name: string;
  /**
   * `'grpc'`: the pods are grpc-js servers (`hlb.test.Echo` and `grpc.health.v1.Health`; needs
   * @grpc/grpc-js and @grpc/proto-loader). Default `'http'`.
   */
  readonly appProtocol?: P;
  /** Default `'default'`. */
  readonly namespace?: string;
  /** Default 1. */
  readonly replicas?: number;
  /** Default 8080 (HTTP), 50051 (gRPC). */
  readonly port?: number;
  /** Default `'http'` (SRV records at `_http._tcp.<service>…`), `'grpc'` for gRPC. */
  readonly portName?: string;
  /** Default `'tcp'`. */
  readonly protocol?: PortProtocol;
  /** Pods are `<podPrefix>-0`, `<podPrefix>-1`, … Default: the service name. */
  readonly podPrefix?: string;
  /**
   * StatefulSet style (default `true`): each pod has a hostname, so its DNS name is
   * `web-0.<service>…`. `false` is Deployment style: pods are named by dashed IP (`127-100-3-11.<service>…`).
   */
  readonly hostnames?: boolean;
  /**
   * Also publish an AAAA record per pod: its IPv4-mapped address (`::ffff:127.x.y.z`), which
   * reaches the same loopback server, so a dual-stack client can be tested without leaving 127/8.
   */
  readonly ipv6?: boolean;
  /** The behaviour every new pod starts with. Default healthy. */
  readonly behaviour?: BehaviourOf<P>;
}

/** A pod of a service, as a test sees it. The object stays valid across restarts (it follows the new IP). */
export interface ClusterPod<P extends AppProtocol = 'http'> {
  readonly name: string;
  readonly ordinal: number;
  readonly ip: string;
  /** The DNS name it has under the service (the SRV target). */
  readonly fqdn: string;
  readonly state: PodState;
  /** Whether the pod is in DNS (its endpoint is ready). */
  readonly ready: boolean;
  /** Requests received by the current container (a restart starts from 0). */
  readonly requests: number;
  readonly inFlight: number;
  /** Client connections open now, and accepted since the current container started. */
  readonly connections: number;
  readonly connectionsAccepted: number;
  readonly behaviour: BehaviourOf<P>;
  /** `http://<ip>:<port>` */
  readonly url: string;
  /** `<ip>:<port>`: a gRPC target for this pod alone. */
  readonly target: string;
}

interface PodTemplate {
  readonly model: ClusterModel;
  readonly service: { readonly name: string; readonly namespace: string };
  readonly hostnames: boolean;
  readonly ipv6: boolean;
}

/** One pod slot of a service: a stable name and ordinal, and the container currently behind it. */
class ServicePod<P extends AppProtocol> implements ClusterPod<P> {
  readonly name: string;
  readonly ordinal: number;
  container: ContainerOf<P>;
  ready = true;
  readonly #template: PodTemplate;

  constructor(template: PodTemplate, name: string, ordinal: number, container: ContainerOf<P>) {
    this.#template = template;
    this.name = name;
    this.ordinal = ordinal;
    this.container = container;
  }

  get ip(): string {
    return this.container.address;
  }

  get fqdn(): string {
    return podFqdn(this.#template.model, this.#template.service, this.endpoint());
  }

  get state(): PodState {
    return this.container.state;
  }

  get requests(): number {
    return this.container.requests;
  }

  get inFlight(): number {
    return this.container.inFlight;
  }

  get connections(): number {
    return this.container.connections;
  }

  get connectionsAccepted(): number {
    return this.container.connectionsAccepted;
  }

  get behaviour(): BehaviourOf<P> {
    return this.container.behaviour as BehaviourOf<P>;
  }

  get url(): string {
    return this.container.url;
  }

  get target(): string {
    return `${this.container.address}:${this.container.port}`;
  }

  /** What the endpoints controller would publish for this pod. */
  endpoint(): PodEndpoint {
    const ip = this.container.address;
    return {
      ip,
      ready: this.ready,
      ...(this.#template.hostnames ? { hostname: this.name } : {}),
      ...(this.#template.ipv6 ? { ipv6: `::ffff:${ip}` } : {}),
    };
  }
}

/**
 * A headless Service with its pods. Every change is published to the cluster's DNS and resolves
 * once DNS serves it; changes are applied one at a time, in call order.
 */
export class Service<P extends AppProtocol = 'http'> {
  readonly name: string;
  readonly namespace: string;
  /** `<name>.<namespace>.svc.<domain>` */
  readonly fqdn: string;
  /** `_<portName>._<protocol>.<fqdn>` */
  readonly srvName: string;
  readonly port: number;
  readonly portName: string;
  readonly protocol: PortProtocol;
  readonly appProtocol: P;
  readonly #cluster: Cluster<ClusterDns>;
  readonly #podPrefix: string;
  readonly #behaviour: BehaviourOf<P> | undefined;
  readonly #template: PodTemplate;
  readonly #pods = new Map<string, ServicePod<P>>();
  #deleted = false;

  /** Use `cluster.createService()`. */
  constructor(cluster: Cluster<ClusterDns>, options: CreateServiceOptions<P>) {
    this.#cluster = cluster;
    this.name = options.name;
    this.namespace = options.namespace ?? 'default';
    this.appProtocol = options.appProtocol ?? ('http' as P);
    this.port = options.port ?? DEFAULT_PORTS[this.appProtocol];
    this.portName = options.portName ?? this.appProtocol;
    this.protocol = options.protocol ?? 'tcp';
    this.#podPrefix = options.podPrefix ?? this.name;
    this.#behaviour = options.behaviour;
    this.fqdn = serviceFqdn(cluster.model, this.name, this.namespace);
    this.srvName = srvFqdn(cluster.model, this, { name: this.portName, protocol: this.protocol });
    this.#template = {
      model: cluster.model,
      service: { name: this.name, namespace: this.namespace },
      hostnames: options.hostnames !== false,
      ipv6: options.ipv6 === true,
    };
  }

  /** Every pod, by ordinal, in any state. */
  get pods(): readonly ClusterPod<P>[] {
    return this.#sortedPods();
  }

  pod(name: string): ClusterPod<P> {
    return this.#pod(name);
  }

  /** Pods that are running and in DNS. */
  get readyPods(): readonly ClusterPod<P>[] {
    return this.#sortedPods().filter((pod) => pod.ready && pod.state === 'running');
  }

  /**
   * StatefulSet scaling: up adds the missing ordinals below `replicas` (serving before they enter
   * DNS); down removes the highest ordinals from DNS first, then shuts them down gracefully.
   */
  scale(replicas: number): Promise<void> {
    return this.#change(async () => {
      if (!Number.isInteger(replicas) || replicas < 0 || replicas > 1000)
        throw new InvalidOptionError('replicas', replicas, 'an integer from 0 to 1000');
      const missing: number[] = [];
      for (let ordinal = 0; ordinal < replicas; ordinal++) if (!this.#pods.has(this.#podName(ordinal))) missing.push(ordinal);
      const started = await Promise.allSettled(
        missing.map(
          async (ordinal) =>
            new ServicePod(this.#template, this.#podName(ordinal), ordinal, await this.#startContainer(this.#podName(ordinal))),
        ),
      );
      const failure = started.find((result) => result.status === 'rejected');
      if (failure !== undefined) {
        await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.container.crash() : undefined)));
        throw failure.reason;
      }
      for (const result of started) if (result.status === 'fulfilled') this.#pods.set(result.value.name, result.value);
      const removing = [...this.#pods.values()].filter((pod) => pod.ordinal >= replicas);
      for (const pod of removing) this.#pods.delete(pod.name);
      await this.#publish();
      await Promise.all(removing.map((pod) => pod.container.close()));
    });
  }

  /** The pod dies at once and stays in DNS: a crash the endpoints controller has not noticed yet. */
  crashPod(name: string): Promise<void> {
    return this.#change(() => this.#pod(name).container.crash());
  }

  /** The pod leaves DNS (not ready) but keeps running, or stays crashed. */
  removeFromDns(name: string): Promise<void> {
    return this.#change(async () => {
      this.#pod(name).ready = false;
      await this.#publish();
    });
  }

  /** The pod is ready again and back in DNS, whatever its state (a crashed or stopped pod then refuses connections). */
  addToDns(name: string): Promise<void> {
    return this.#change(async () => {
      this.#pod(name).ready = true;
      await this.#publish();
    });
  }

  /**
   * Same name, new container: a new IP, request count 0, healthy behaviour, back in DNS. A running
   * pod is first stopped gracefully (out of DNS, then shut down).
   */
  restartPod(name: string, options: PodCloseOptions = {}): Promise<void> {
    return this.#change(async () => {
      const pod = this.#pod(name);
      if (pod.state === 'running') {
        pod.ready = false;
        await this.#publish();
        await pod.container.close(options);
      }
      pod.container = await this.#startContainer(name);
      pod.ready = true;
      await this.#publish();
    });
  }

  /** Graceful stop: out of DNS first, then the server closes once in-flight requests are done. */
  stopPod(name: string, options: PodCloseOptions = {}): Promise<void> {
    return this.#change(async () => {
      const pod = this.#pod(name);
      pod.ready = false;
      await this.#publish();
      await pod.container.close(options);
    });
  }

  /** Takes effect at once, for requests that arrive from now on (and, for gRPC, on health Watch calls). */
  setBehaviour(name: string, behaviour: BehaviourOf<P>): void {
    const container: Pod | GrpcPod = this.#pod(name).container;
    if (container instanceof Pod) container.setBehaviour(behaviour as PodBehaviour);
    else container.setBehaviour(behaviour as GrpcPodBehaviour);
  }

  /** Removes the service: its names answer NXDOMAIN, then its pods stop gracefully. */
  delete(): Promise<void> {
    return this.#change(async () => {
      this.#deleted = true;
      this.#cluster.forget(this);
      this.#cluster.model.deleteService(this.name, this.namespace);
      await this.#cluster.dns.publish(this.#cluster.model);
      await Promise.all([...this.#pods.values()].map((pod) => pod.container.close()));
    });
  }

  /** @internal Immediate teardown for `cluster.close()`. */
  async destroy(): Promise<void> {
    this.#deleted = true;
    await Promise.all([...this.#pods.values()].map((pod) => pod.container.crash()));
  }

  #change(operation: () => Promise<void>): Promise<void> {
    return this.#cluster.serialize(async () => {
      if (this.#deleted) throw new Error(`Service ${this.fqdn} was deleted`);
      await operation();
    });
  }

  #podName(ordinal: number): string {
    return `${this.#podPrefix}-${ordinal}`;
  }

  #sortedPods(): ServicePod<P>[] {
    return [...this.#pods.values()].sort((a, b) => a.ordinal - b.ordinal);
  }

  #pod(name: string): ServicePod<P> {
    const pod = this.#pods.get(name);
    if (pod === undefined) {
      throw new InvalidOptionError(
        'pod',
        name,
        this.#pods.size === 0 ? 'a pod of the service (it has none)' : `one of ${[...this.#pods.keys()].join(', ')}`,
      );
    }
    return pod;
  }

  async #startContainer(name: string): Promise<ContainerOf<P>> {
    const options = {
      name,
      port: this.port,
      address: () => this.#cluster.addresses.next(),
      ...(this.#behaviour === undefined ? {} : { behaviour: this.#behaviour }),
    };
    const container =
      this.appProtocol === 'grpc'
        ? await startGrpcPod(options as { behaviour?: GrpcPodBehaviour } & typeof options)
        : await startPod(options as { behaviour?: PodBehaviour } & typeof options);
    return container as ContainerOf<P>;
  }

  async #publish(): Promise<void> {
    this.#cluster.model.setService({
      name: this.name,
      namespace: this.namespace,
      ports: [{ name: this.portName, port: this.port, protocol: this.protocol }],
      pods: this.#sortedPods().map((pod) => pod.endpoint()),
    });
    await this.#cluster.dns.publish(this.#cluster.model);
  }
}

/**
 * A pretend Kubernetes cluster in the test process: cluster DNS (embedded, or any ClusterDns such
 * as a real Knot) and headless Services whose pods are real HTTP servers on 127.0.0.0/8.
 */
export class Cluster<D extends ClusterDns = DnsServer> {
  readonly dns: D;
  readonly model: ClusterModel;
  /** @internal */
  readonly addresses = new LoopbackBlock();
  readonly #ownsDns: boolean;
  readonly #services = new Map<string, Service<AppProtocol>>();
  #queue: Promise<void> = Promise.resolve();
  #closed: Promise<void> | undefined;

  /** Use `startCluster()`. */
  constructor(dns: D, model: ClusterModel, ownsDns: boolean) {
    this.dns = dns;
    this.model = model;
    this.#ownsDns = ownsDns;
  }

  /** `'127.0.0.1:<port>'`: pass it as `createBalancer({ dnsServers: [cluster.dnsServer] })`. */
  get dnsServer(): string {
    return this.dns.address;
  }

  get domain(): string {
    return this.model.domain;
  }

  get services(): readonly Service<AppProtocol>[] {
    return [...this.#services.values()];
  }

  service(name: string, namespace = 'default'): Service<AppProtocol> {
    const service = this.#services.get(`${namespace}/${name}`);
    if (service === undefined)
      throw new InvalidOptionError('service', `${namespace}/${name}`, `one of ${[...this.#services.keys()].join(', ') || '(none yet)'}`);
    return service;
  }

  /** Starts the pods, then publishes the service; resolves when DNS serves it. */
  async createService<P extends AppProtocol = 'http'>(options: CreateServiceOptions<P>): Promise<Service<P>> {
    if (this.#closed !== undefined) throw new Error('The cluster is closed');
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', options, 'an object');
    const namespace = options.namespace ?? 'default';
    const appProtocol: AppProtocol = options.appProtocol ?? 'http';
    if (appProtocol !== 'http' && appProtocol !== 'grpc') throw new InvalidOptionError('appProtocol', appProtocol, "'http' or 'grpc'");
    const key = `${namespace}/${options.name}`;
    if (this.#services.has(key))
      throw new InvalidOptionError('name', options.name, `a service name not yet used in namespace ${namespace}`);
    // Validate names and ports through the model before starting anything.
    new ClusterModel({ domain: this.model.domain }).setService({
      name: options.name,
      namespace,
      ports: [
        { name: options.portName ?? appProtocol, port: options.port ?? DEFAULT_PORTS[appProtocol], protocol: options.protocol ?? 'tcp' },
      ],
      pods: [{ hostname: `${options.podPrefix ?? options.name}-0`, ip: '127.0.0.1', ready: true }],
    });
    const service = new Service<P>(this as Cluster<ClusterDns>, options);
    this.#services.set(key, service as Service<AppProtocol>);
    try {
      await service.scale(options.replicas ?? 1);
    } catch (error) {
      this.#services.delete(key);
      await service.destroy();
      throw error;
    }
    return service;
  }

  /** Releases every pod and, if the cluster created it, the DNS server. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#queue;
      await Promise.all([...this.#services.values()].map((service) => service.destroy()));
      this.#services.clear();
      if (this.#ownsDns) await this.dns.close();
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal Runs model changes one at a time so publications reach DNS in order. */
  serialize(operation: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(operation);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** @internal */
  forget(service: Service<AppProtocol>): void {
    this.#services.delete(`${service.namespace}/${service.name}`);
  }
}

/** Starts a cluster: an embedded DNS server (unless `dns` is given) serving an empty `cluster.local`. */
export function startCluster(options?: ClusterOptions<DnsServer> & { readonly dns?: undefined }): Promise<Cluster<DnsServer>>;
export function startCluster<D extends ClusterDns>(options: ClusterOptions<D> & { readonly dns: D }): Promise<Cluster<D>>;
export async function startCluster(options: ClusterOptions<ClusterDns> = {}): Promise<Cluster<ClusterDns>> {
  const model = new ClusterModel({
    ...(options.domain === undefined ? {} : { domain: options.domain }),
    ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
  });
  if (options.dns !== undefined) {
    await options.dns.publish(model);
    return new Cluster(options.dns, model, false);
  }
  const dns = await startDnsServer({ model });
  return new Cluster(dns, model, true);
}
