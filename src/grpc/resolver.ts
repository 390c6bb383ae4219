import { experimental, Metadata, status as Status, type ChannelOptions } from '@grpc/grpc-js';
import { createBalancer, type Balancer } from '../balancer.js';
import { LOOKUP_KEYS, resolveConfig } from '../config.js';
import { HeadlessLbError, InvalidOptionError } from '../errors.js';
import type { AddressDiscoveryOptions, SubsetOptions } from '../options.js';
import { checkKnownKeys, checkObject } from '../option-checks.js';
import type { Endpoint } from '../pool/endpoint.js';

type GrpcUri = experimental.GrpcUri;
type ResolverListener = experimental.ResolverListener;
type ResolverConstructor = Parameters<typeof experimental.registerResolver>[1];

/** DNS settings of the resolver's lookups: the same as `createBalancer`'s. */
export type HeadlessResolverDiscovery = Pick<
  AddressDiscoveryOptions,
  'dnsServers' | 'dnsTimeoutMs' | 'dnsAttempts' | 'search' | 'ndots' | 'family' | 'refresh' | 'emptyGraceMs' | 'allowedAddresses'
>;

export interface HeadlessResolverOptions {
  /** URI scheme to register. Default `'headless'`: targets `headless:///<service>:<port>`. */
  readonly scheme?: string;
  /** DNS settings (servers, search list, refresh clamp, ...). Default: as `createBalancer`. */
  readonly discovery?: HeadlessResolverDiscovery;
  /**
   * Deterministic subsetting, as `createBalancer`'s: grpc-js gets this client's `size` pods instead
   * of the whole pool (every channel of the scheme in this process the same ones). Default: off.
   */
  readonly subset?: SubsetOptions;
}

const DISCOVERY_KEYS = [...LOOKUP_KEYS, 'allowedAddresses'] as const;
const SCHEME = /^[a-z][a-z0-9+.-]*$/;
/** Re-resolutions asked by grpc-js's balancing policy (a connection left READY) start a lookup at most this often. */
const MIN_REQUESTED_REFRESH_MS = 1000;

/** `web-headless.default.svc.cluster.local:9090` (A/AAAA) or `…:grpc` (SRV, by port name). */
function parseTarget(target: GrpcUri): { service: string; port: number } | { service: string; portName: string } {
  const path = target.path;
  const colon = path.lastIndexOf(':');
  const service = colon > 0 ? path.slice(0, colon) : '';
  const port = colon > 0 ? path.slice(colon + 1) : '';
  if (service === '' || port === '') {
    throw new InvalidOptionError(
      'target',
      path,
      "'<service>:<port>' or '<service>:<port name>', e.g. headless:///web-headless.default.svc.cluster.local:9090",
    );
  }
  return /^\d+$/.test(port) ? { service, port: Number(port) } : { service, portName: port };
}

/**
 * A grpc-js resolver for `headless:///<service>:<port>` that feeds grpc-js's own balancing
 * (`round_robin`, `pick_first`, ...) with the pods of a headless Service and re-resolves when the
 * record TTL runs out (clamped, with jitter), and when the policy asks (a connection left READY).
 * Uses grpc-js's `experimental` resolver API in its 1.14 form (the listener is a function).
 */
function resolverClass(discovery: HeadlessResolverDiscovery, subset: SubsetOptions | undefined): ResolverConstructor {
  return class HeadlessResolver implements experimental.Resolver {
    private lb: Balancer | undefined;
    private lastRequested = Number.NEGATIVE_INFINITY;
    private readonly parsed: ReturnType<typeof parseTarget>;

    constructor(
      target: GrpcUri,
      private readonly listener: ResolverListener,
      _options: ChannelOptions,
    ) {
      this.parsed = parseTarget(target);
    }

    /** `<service>:<port>`, or `<service>` when the target names an SRV port (its number comes from DNS). */
    static getDefaultAuthority(target: GrpcUri): string {
      const parsed = parseTarget(target);
      return 'port' in parsed ? `${parsed.service}:${parsed.port}` : parsed.service;
    }

    updateResolution(): void {
      if (this.lb === undefined) {
        this.start();
        return;
      }
      const now = performance.now();
      if (now - this.lastRequested < MIN_REQUESTED_REFRESH_MS) return;
      this.lastRequested = now;
      this.lb.refresh().catch(() => {});
    }

    destroy(): void {
      const lb = this.lb;
      this.lb = undefined;
      void lb?.close();
    }

    private start(): void {
      const lb = createBalancer({
        ...discovery,
        ...this.parsed,
        subset,
        outlierDetection: false,
        retryBudget: false,
      } as AddressDiscoveryOptions);
      this.lb = lb;
      lb.on('change', ({ endpoints }) => {
        if (this.lb === lb && endpoints.length > 0) this.report(subset === undefined ? endpoints : members(lb));
      });
      lb.on('empty', ({ reason }) => {
        if (this.lb === lb) this.fail(`no ready pods: ${reason}`);
      });
      // A failed lookup keeps the last good list; it matters only while there is none.
      lb.on('resolve-error', (error) => {
        if (this.lb === lb && lb.endpoints().length === 0) this.fail(error.message);
      });
    }

    private report(endpoints: readonly Endpoint[]): void {
      // One grpc-js endpoint per pod, with all its addresses (A and AAAA).
      const list = endpoints.map((endpoint) => ({ addresses: endpoint.addresses.map((host) => ({ host, port: endpoint.port })) }));
      this.listener(experimental.statusOrFromValue(list), {}, null, '');
    }

    private fail(details: string): void {
      this.listener(
        experimental.statusOrFromError({ code: Status.UNAVAILABLE, details: `headless-lb: ${details}`, metadata: new Metadata() }),
        {},
        null,
        details,
      );
    }
  };
}

/** The subset's members now (no outlier detection here: they change only with the pool). */
function members(lb: Balancer): readonly Endpoint[] {
  const ids = new Set(lb.stats().subset?.members);
  return lb.endpoints().filter((endpoint) => ids.has(endpoint.id));
}

/**
 * Registers the `headless:` scheme with grpc-js (process-wide), so that
 * `new Client('headless:///web-headless.default.svc.cluster.local:9090', credentials, options)` uses
 * grpc-js's own balancing policies over the Service's pods, with TTL-driven re-resolution. Needs
 * @grpc/grpc-js >= 1.14 (its resolver API changed in 1.14). Pod choice per call, shard keys and
 * headless-lb's failover are those of grpc-js then: use `createGrpcChannel` for them.
 */
export function registerHeadlessResolver(options: HeadlessResolverOptions = {}): void {
  const input = checkObject(options, 'options');
  checkKnownKeys(input, ['scheme', 'discovery', 'subset'], 'options');
  const scheme = input.scheme === undefined ? 'headless' : input.scheme;
  if (
    typeof scheme !== 'string' ||
    !SCHEME.test(scheme) ||
    scheme === 'dns' ||
    scheme === 'ipv4' ||
    scheme === 'ipv6' ||
    scheme === 'unix'
  ) {
    throw new InvalidOptionError('scheme', scheme, "a URI scheme of your own, such as 'headless'");
  }
  const discovery = input.discovery === undefined ? {} : checkObject(input.discovery, 'discovery');
  checkKnownKeys(discovery, DISCOVERY_KEYS, 'discovery');
  // Validate now (no I/O: discovery starts with a balancer), not when grpc-js first makes a channel.
  const config = resolveConfig({ ...discovery, subset: input.subset, service: 'validate.invalid', port: 1 } as AddressDiscoveryOptions);
  // The client id is settled once (a random default would differ per channel): one process, one subset.
  const subset = config.subset === undefined ? undefined : { size: config.subset.size, clientId: config.subset.clientId };
  if (typeof experimental.statusOrFromValue !== 'function') {
    throw new HeadlessLbError(
      'ERR_HLB_GRPC_VERSION',
      'registerHeadlessResolver needs @grpc/grpc-js >= 1.14 (its resolver API changed in 1.14); createGrpcChannel works from 1.10',
    );
  }
  experimental.registerResolver(scheme, resolverClass(discovery as HeadlessResolverDiscovery, subset));
}
