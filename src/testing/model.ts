import { isIPv4, isIPv6 } from 'node:net';
import { InvalidOptionError } from '../errors.js';

/**
 * A Kubernetes-shaped model of headless Services and of the records CoreDNS's `kubernetes`
 * plugin serves for them. The model is the single source of truth of the testing kit: the
 * embedded DNS server and Knot both serve `records(model)`, so they can be compared.
 */

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

export interface ServicePort {
  /** Named ports get SRV records (`_<name>._<protocol>.<service>…`); unnamed ports do not, as in CoreDNS. */
  readonly name?: string;
  readonly port: number;
  /** Default `'tcp'`. */
  readonly protocol?: PortProtocol;
}

export interface PodEndpoint {
  /** StatefulSet pods have one (`web-0`); without it, the pod's DNS label is its dashed IP (`127-0-0-11`). */
  readonly hostname?: string;
  readonly ip: string;
  readonly ipv6?: string;
  /** Only ready pods are in DNS (the endpoints controller's `addresses`, not `notReadyAddresses`). */
  readonly ready: boolean;
}

export interface ServiceSpec {
  readonly name: string;
  /** Default `'default'`. */
  readonly namespace?: string;
  /** Default `[{ name: 'http', port: 8080, protocol: 'tcp' }]`. */
  readonly ports?: readonly ServicePort[];
  readonly pods: readonly PodEndpoint[];
}

/** A service as the model stores it: defaults applied, validated, frozen. */
export interface HeadlessService {
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly Readonly<{ name: string | undefined; port: number; protocol: PortProtocol }>[];
  readonly pods: readonly PodEndpoint[];
}

export interface ClusterModelOptions {
  /** Cluster domain. Default `'cluster.local'`. */
  readonly domain?: string;
  /** TTL of every record and the SOA minimum (negative-caching TTL). Default 5 s, CoreDNS's default. */
  readonly ttl?: number;
  /** First SOA serial. Default 1; every change adds 1. */
  readonly serial?: number;
}

export interface SrvRecordData {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  /** The pod's FQDN, without the trailing dot (as dns-packet decodes it). */
  readonly target: string;
}

export interface SoaRecordData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  readonly minimum: number;
}

interface RecordBase {
  /** Lower-case FQDN without the trailing dot. */
  readonly name: string;
  readonly ttl: number;
}

/** One resource record, shaped like a dns-packet answer so tests can compare the two directly. */
export type DnsRecord =
  | (RecordBase & { readonly type: 'A' | 'AAAA' | 'NS'; readonly data: string })
  | (RecordBase & { readonly type: 'SRV'; readonly data: SrvRecordData })
  | (RecordBase & { readonly type: 'SOA'; readonly data: SoaRecordData });

const DEFAULT_PORTS: HeadlessService['ports'] = [Object.freeze({ name: 'http', port: 8080, protocol: 'tcp' as const })];
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'sctp'];
const MAX_TTL = 2 ** 31 - 1;

export class ClusterModel {
  readonly domain: string;
  readonly ttl: number;
  #serial: number;
  readonly #services = new Map<string, HeadlessService>();

  constructor(options: ClusterModelOptions = {}) {
    this.domain = validateDomain(options.domain ?? 'cluster.local');
    this.ttl = validateInteger('ttl', options.ttl ?? 5, 0, MAX_TTL);
    this.#serial = validateInteger('serial', options.serial ?? 1, 0, 2 ** 32 - 1);
  }

  /** SOA serial; increases on every change so a secondary (and a test) can tell versions apart. */
  get serial(): number {
    return this.#serial;
  }

  /** Every service, ordered by namespace then name. */
  get services(): readonly HeadlessService[] {
    return [...this.#services.values()].sort((a, b) => compareKeys(a, b));
  }

  getService(name: string, namespace = 'default'): HeadlessService | undefined {
    return this.#services.get(serviceKey(name, namespace));
  }

  /** Adds or replaces a service. */
  setService(spec: ServiceSpec): HeadlessService {
    const service = normalizeService(spec);
    this.#services.set(serviceKey(service.name, service.namespace), service);
    this.#bump();
    return service;
  }

  /** Removes a service; its names answer NXDOMAIN afterwards. Returns false if it did not exist. */
  deleteService(name: string, namespace = 'default'): boolean {
    const existed = this.#services.delete(serviceKey(name, namespace));
    if (existed) this.#bump();
    return existed;
  }

  /** An independent copy: servers publish a snapshot, so later edits are not served half-done. */
  clone(): ClusterModel {
    const copy = new ClusterModel({ domain: this.domain, ttl: this.ttl, serial: this.#serial });
    for (const [key, service] of this.#services) copy.#services.set(key, service);
    return copy;
  }

  #bump(): void {
    this.#serial = (this.#serial + 1) % 2 ** 32;
  }
}

/** `<service>.<namespace>.svc.<domain>` */
export function serviceFqdn(model: ClusterModel, name: string, namespace = 'default'): string {
  return `${name}.${namespace}.svc.${model.domain}`;
}

/** `_<port>._<protocol>.<service>.<namespace>.svc.<domain>` */
export function srvFqdn(
  model: ClusterModel,
  service: Pick<HeadlessService, 'name' | 'namespace'>,
  port: { name: string; protocol?: PortProtocol },
): string {
  return `_${port.name}._${port.protocol ?? 'tcp'}.${serviceFqdn(model, service.name, service.namespace)}`;
}

/** The pod's DNS name under its service: its hostname, or its dashed IPv4 address as CoreDNS does. */
export function podFqdn(
  model: ClusterModel,
  service: Pick<HeadlessService, 'name' | 'namespace'>,
  pod: Pick<PodEndpoint, 'hostname' | 'ip'>,
): string {
  return `${podLabel(pod)}.${serviceFqdn(model, service.name, service.namespace)}`;
}

function podLabel(pod: Pick<PodEndpoint, 'hostname' | 'ip'>): string {
  return pod.hostname ?? (isIPv4(pod.ip) ? pod.ip.replaceAll('.', '-') : pod.ip.replaceAll(':', '-'));
}

/**
 * The exact record set CoreDNS's `kubernetes` plugin serves for the model (plus the zone's SOA,
 * NS and the NS's address, which Knot needs to serve the zone). Services without ready pods
 * have no records at all, so their names answer NXDOMAIN, as CoreDNS does.
 */
export function records(model: ClusterModel): DnsRecord[] {
  const { domain, ttl } = model;
  const nsName = `ns.dns.${domain}`;
  const out: DnsRecord[] = [
    {
      name: domain,
      type: 'SOA',
      ttl,
      data: { mname: nsName, rname: `hostmaster.${domain}`, serial: model.serial, refresh: 7200, retry: 1800, expire: 86400, minimum: ttl },
    },
    { name: domain, type: 'NS', ttl, data: nsName },
    { name: nsName, type: 'A', ttl, data: '127.0.0.1' },
  ];
  for (const service of model.services) {
    const ready = uniquePods(service.pods.filter((pod) => pod.ready));
    if (ready.length === 0) continue;
    const name = serviceFqdn(model, service.name, service.namespace);
    for (const ip of unique(ready.map((pod) => pod.ip))) out.push({ name, type: 'A', ttl, data: ip });
    for (const ip of unique(ready.flatMap((pod) => (pod.ipv6 === undefined ? [] : [pod.ipv6]))))
      out.push({ name, type: 'AAAA', ttl, data: ip });
    for (const pod of ready) {
      const fqdn = podFqdn(model, service, pod);
      out.push({ name: fqdn, type: 'A', ttl, data: pod.ip });
      if (pod.ipv6 !== undefined) out.push({ name: fqdn, type: 'AAAA', ttl, data: pod.ipv6 });
    }
    for (const port of service.ports) {
      if (port.name === undefined) continue;
      const srv = srvFqdn(model, service, { name: port.name, protocol: port.protocol });
      // CoreDNS: weight = 100 / number of targets at that priority, at least 1.
      const weight = Math.max(1, Math.floor(100 / ready.length));
      for (const pod of ready) {
        out.push({ name: srv, type: 'SRV', ttl, data: { priority: 0, weight, port: port.port, target: podFqdn(model, service, pod) } });
      }
    }
  }
  return out;
}

/** Two ready pods with the same DNS name would be one name with two addresses; keep the first. */
function uniquePods(pods: readonly PodEndpoint[]): PodEndpoint[] {
  const seen = new Set<string>();
  return pods.filter((pod) => {
    const label = podLabel(pod);
    if (seen.has(label)) return false;
    seen.add(label);
    return true;
  });
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function serviceKey(name: string, namespace: string): string {
  return `${namespace}/${name}`;
}

function compareKeys(a: HeadlessService, b: HeadlessService): number {
  return a.namespace === b.namespace ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.namespace < b.namespace ? -1 : 1;
}

function normalizeService(spec: ServiceSpec): HeadlessService {
  if (typeof spec !== 'object' || spec === null) throw new InvalidOptionError('service', spec, 'a service spec object');
  const name = validateLabel('service.name', spec.name);
  const namespace = validateLabel('service.namespace', spec.namespace ?? 'default');
  const ports =
    spec.ports === undefined
      ? DEFAULT_PORTS
      : spec.ports.map((port, i) =>
          Object.freeze({
            name: port.name === undefined ? undefined : validateLabel(`service.ports[${i}].name`, port.name),
            port: validateInteger(`service.ports[${i}].port`, port.port, 1, 65535),
            protocol: validateProtocol(`service.ports[${i}].protocol`, port.protocol ?? 'tcp'),
          }),
        );
  if (!Array.isArray(spec.pods)) throw new InvalidOptionError('service.pods', spec.pods, 'an array of pods');
  const pods = spec.pods.map((pod, i) => {
    const field = `service.pods[${i}]`;
    if (!isIPv4(pod.ip)) throw new InvalidOptionError(`${field}.ip`, pod.ip, 'an IPv4 address');
    if (pod.ipv6 !== undefined && !isIPv6(pod.ipv6)) throw new InvalidOptionError(`${field}.ipv6`, pod.ipv6, 'an IPv6 address');
    if (typeof pod.ready !== 'boolean') throw new InvalidOptionError(`${field}.ready`, pod.ready, 'a boolean');
    const normalized: PodEndpoint = {
      ip: pod.ip,
      ready: pod.ready,
      ...(pod.hostname === undefined ? {} : { hostname: validateLabel(`${field}.hostname`, pod.hostname) }),
      ...(pod.ipv6 === undefined ? {} : { ipv6: pod.ipv6 }),
    };
    return Object.freeze(normalized);
  });
  return Object.freeze({ name, namespace, ports: Object.freeze(ports), pods: Object.freeze(pods) });
}

function validateLabel(field: string, value: unknown): string {
  if (typeof value !== 'string' || !LABEL.test(value)) {
    throw new InvalidOptionError(field, value, 'a lower-case DNS label (a-z, 0-9, "-", at most 63 characters)');
  }
  return value;
}

function validateDomain(value: unknown): string {
  if (typeof value !== 'string' || value.length > 200 || !value.split('.').every((label) => LABEL.test(label))) {
    throw new InvalidOptionError('domain', value, 'a lower-case domain such as "cluster.local"');
  }
  return value;
}

function validateProtocol(field: string, value: unknown): PortProtocol {
  if (!PROTOCOLS.includes(value as PortProtocol)) throw new InvalidOptionError(field, value, '"tcp", "udp" or "sctp"');
  return value as PortProtocol;
}

function validateInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(field, value, `an integer from ${min} to ${max}`);
  }
  return value;
}
