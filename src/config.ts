import { isIP } from 'node:net';
import { monotonicClock, type Clock } from './clock.js';
import { AddressPolicy, parseAllowedAddresses } from './discovery/address-policy.js';
import { DnsResolver, type AddressFamily, type DiscoveryMode } from './discovery/dns-resolver.js';
import { parseDnsServer, type DnsServerAddress } from './discovery/dns-server-address.js';
import { DnsDiscovery } from './discovery/dns.js';
import { readResolvConf, stripDot } from './discovery/resolv-conf.js';
import type { DiscoverySource } from './discovery/source.js';
import { StaticDiscovery } from './discovery/static.js';
import { InvalidOptionError } from './errors.js';
import { createPicker, type PickerSpec } from './pickers/index.js';
import type { Picker } from './pickers/picker.js';
import type { SlowStartConfig } from './pickers/slow-start.js';
import { Subset, type SubsetOptions } from './pickers/subset.js';
import { InflightTotal, type EndpointMetricsOptions } from './pool/endpoint.js';
import type { OutlierDetectionConfig } from './pool/outlier-detector.js';
import type { BudgetOptions as BudgetConfig } from './retry/budget.js';
import { classifyFailure } from './failure-kind.js';
import type { Target } from './target.js';
import {
  checkBoolean,
  checkDnsName,
  checkFunction,
  checkKnownKeys,
  checkNumber,
  checkObject,
  checkPort,
  optionalMilliseconds,
  optionalNumber,
} from './option-checks.js';
import { DEFAULTS, type BalancerOptions } from './options.js';

/** Everything a balancer needs, validated and with defaults applied. */
export interface BalancerConfig {
  readonly service: string;
  readonly discovery: DiscoverySource;
  readonly picker: Picker;
  readonly metrics: EndpointMetricsOptions;
  readonly retry: { readonly retries: number; readonly backoffBaseMs: number; readonly backoffMaxMs: number };
  readonly outlierDetection: OutlierDetectionConfig | undefined;
  readonly panicThreshold: number;
  readonly slowStart: SlowStartConfig;
  readonly subset: Subset | undefined;
  readonly retryBudget: BudgetConfig | undefined;
  readonly hedgeBudget: BudgetConfig;
  readonly isFailure: (error: unknown) => boolean;
  readonly clock: Clock;
  readonly random: () => number;
}

const COMMON_KEYS = [
  'picker',
  'latency',
  'retry',
  'outlierDetection',
  'panicThreshold',
  'slowStart',
  'subset',
  'retryBudget',
  'hedgeBudget',
  'isFailure',
  'allowedAddresses',
  'clock',
  'random',
] as const;
/** The options of how a name is looked up (also what the `headless:` gRPC resolver takes). */
export const LOOKUP_KEYS = ['dnsServers', 'dnsTimeoutMs', 'dnsAttempts', 'search', 'ndots', 'family', 'refresh', 'emptyGraceMs'] as const;
const DNS_KEYS = [...COMMON_KEYS, 'service', 'port', 'portName', 'protocol', ...LOOKUP_KEYS] as const;
const STATIC_KEYS = [...COMMON_KEYS, 'endpoints', 'service'] as const;

/** Validates options (each error names the field and the value) and builds the parts. */
export function resolveConfig(input: BalancerOptions): BalancerConfig {
  const options = checkObject(input, 'options');
  const clock = options.clock === undefined ? monotonicClock : checkFunction<Clock>(options.clock, 'clock');
  const random = options.random === undefined ? Math.random : checkFunction<() => number>(options.random, 'random');

  const latency = options.latency === undefined ? {} : checkObject(options.latency, 'latency');
  checkKnownKeys(latency, ['decayMs', 'defaultRttMs', 'averageMs'], 'latency');
  const metrics: EndpointMetricsOptions = {
    decayMs: optionalMilliseconds(latency.decayMs, 'latency.decayMs', DEFAULTS.latency.decayMs, { min: 1 }),
    defaultRttMs: optionalMilliseconds(latency.defaultRttMs, 'latency.defaultRttMs', DEFAULTS.latency.defaultRttMs),
    averageMs: optionalMilliseconds(latency.averageMs, 'latency.averageMs', DEFAULTS.latency.averageMs, { min: 1 }),
    // One running total per balancer, so bounded-load pickers read the pool's load in O(1).
    inflightTotal: new InflightTotal(),
  };

  const retryInput = options.retry === undefined ? {} : checkObject(options.retry, 'retry');
  checkKnownKeys(retryInput, ['retries', 'backoffBaseMs', 'backoffMaxMs'], 'retry');
  const retry = {
    retries: optionalNumber(retryInput.retries, 'retry.retries', DEFAULTS.retry.retries, { min: 0, max: 100, integer: true }),
    backoffBaseMs: optionalMilliseconds(retryInput.backoffBaseMs, 'retry.backoffBaseMs', DEFAULTS.retry.backoffBaseMs),
    backoffMaxMs: optionalMilliseconds(retryInput.backoffMaxMs, 'retry.backoffMaxMs', DEFAULTS.retry.backoffMaxMs),
  };

  const resilience = resilienceConfig(options);
  const picker = createPicker((options.picker ?? DEFAULTS.picker) as PickerSpec, { random, clock });
  const addressPolicy = new AddressPolicy(
    options.allowedAddresses === undefined ? undefined : parseAllowedAddresses(options.allowedAddresses),
  );

  if (options.endpoints !== undefined) {
    checkKnownKeys(options, STATIC_KEYS, '');
    const service = options.service === undefined ? 'static' : checkLabel(options.service);
    const discovery = new StaticDiscovery(checkAllowed(staticTargets(options.endpoints), addressPolicy));
    return { service, discovery, picker, metrics, retry, ...resilience, clock, random };
  }

  checkKnownKeys(options, DNS_KEYS, '');
  if (options.service === undefined)
    throw new InvalidOptionError('service', undefined, "the headless Service's DNS name (or an 'endpoints' list)");
  const service = checkDnsName(options.service, 'service');
  const mode = discoveryMode(options);
  const conf =
    options.dnsServers === undefined || options.search === undefined || options.ndots === undefined ? readResolvConf() : undefined;
  const servers = dnsServers(options.dnsServers, conf?.nameservers ?? []);
  const search = options.search === undefined ? (conf?.search ?? []) : checkSearch(options.search);
  const ndots = options.ndots === undefined ? (conf?.ndots ?? 1) : checkNumber(options.ndots, 'ndots', { min: 0, max: 15, integer: true });
  const family = checkFamily(options.family);
  const resolver = new DnsResolver(service, mode, {
    servers,
    search,
    ndots,
    family,
    addressPolicy,
    timeoutMs: optionalMilliseconds(options.dnsTimeoutMs, 'dnsTimeoutMs', DEFAULTS.dnsTimeoutMs, { min: 1 }),
    attempts: optionalNumber(options.dnsAttempts, 'dnsAttempts', DEFAULTS.dnsAttempts, { min: 1, max: 10, integer: true }),
  });
  const refreshInput = options.refresh === undefined ? {} : checkObject(options.refresh, 'refresh');
  checkKnownKeys(refreshInput, ['minMs', 'maxMs', 'jitter'], 'refresh');
  const minMs = optionalMilliseconds(refreshInput.minMs, 'refresh.minMs', DEFAULTS.refresh.minMs, { min: 1 });
  const maxMs = optionalMilliseconds(refreshInput.maxMs, 'refresh.maxMs', Math.max(DEFAULTS.refresh.maxMs, minMs), { min: 1 });
  if (maxMs < minMs) throw new InvalidOptionError('refresh.maxMs', maxMs, `a number >= refresh.minMs (${minMs})`);
  const jitter = optionalNumber(refreshInput.jitter, 'refresh.jitter', DEFAULTS.refresh.jitter, { min: 0, max: 1 });
  const discovery = new DnsDiscovery({
    service,
    resolver,
    refresh: { minMs, maxMs, jitter },
    emptyGraceMs: optionalMilliseconds(options.emptyGraceMs, 'emptyGraceMs', DEFAULTS.emptyGraceMs),
    clock,
    random,
  });
  return { service, discovery, picker, metrics, retry, ...resilience, clock, random };
}

/** Outlier detection, panic mode, slow start, budgets and failure classification. */
function resilienceConfig(options: Record<string, unknown>) {
  const defaults = DEFAULTS.outlierDetection;
  let outlierDetection: OutlierDetectionConfig | undefined;
  if (options.outlierDetection !== false) {
    const od = options.outlierDetection === undefined ? {} : checkObject(options.outlierDetection, 'outlierDetection');
    checkKnownKeys(od, Object.keys(defaults), 'outlierDetection');
    const baseEjectionMs = optionalMilliseconds(od.baseEjectionMs, 'outlierDetection.baseEjectionMs', defaults.baseEjectionMs, { min: 1 });
    outlierDetection = {
      consecutiveFailures: optionalNumber(od.consecutiveFailures, 'outlierDetection.consecutiveFailures', defaults.consecutiveFailures, {
        min: 1,
        integer: true,
      }),
      failureRate: optionalNumber(od.failureRate, 'outlierDetection.failureRate', defaults.failureRate, { min: 0.01, max: 1 }),
      minRequests: optionalNumber(od.minRequests, 'outlierDetection.minRequests', defaults.minRequests, { min: 1, integer: true }),
      windowMs: optionalMilliseconds(od.windowMs, 'outlierDetection.windowMs', defaults.windowMs, { min: 10 }),
      ejectOnConnectFailure:
        od.ejectOnConnectFailure === undefined
          ? defaults.ejectOnConnectFailure
          : checkBoolean(od.ejectOnConnectFailure, 'outlierDetection.ejectOnConnectFailure'),
      baseEjectionMs,
      maxEjectionMs: optionalMilliseconds(
        od.maxEjectionMs,
        'outlierDetection.maxEjectionMs',
        Math.max(defaults.maxEjectionMs, baseEjectionMs),
        { min: baseEjectionMs },
      ),
      maxEjectedPercent: optionalNumber(od.maxEjectedPercent, 'outlierDetection.maxEjectedPercent', defaults.maxEjectedPercent, {
        min: 0,
        max: 100,
      }),
      jitter: optionalNumber(od.jitter, 'outlierDetection.jitter', defaults.jitter, { min: 0, max: 1 }),
    };
  }
  const slow = options.slowStart === undefined ? {} : checkObject(options.slowStart, 'slowStart');
  checkKnownKeys(slow, ['windowMs', 'aggression', 'minWeight'], 'slowStart');
  const slowStart: SlowStartConfig = {
    windowMs: optionalMilliseconds(slow.windowMs, 'slowStart.windowMs', DEFAULTS.slowStart.windowMs),
    aggression: optionalNumber(slow.aggression, 'slowStart.aggression', DEFAULTS.slowStart.aggression, { min: 0.01 }),
    minWeight: optionalNumber(slow.minWeight, 'slowStart.minWeight', DEFAULTS.slowStart.minWeight, { min: 0, max: 1 }),
  };
  return {
    outlierDetection,
    // Validated by Subset (InvalidOptionError naming subset.size or subset.clientId).
    subset: options.subset === undefined ? undefined : new Subset(options.subset as SubsetOptions),
    panicThreshold: optionalNumber(options.panicThreshold, 'panicThreshold', DEFAULTS.panicThreshold, { min: 0, max: 1 }),
    slowStart,
    retryBudget: options.retryBudget === false ? undefined : budgetConfig(options.retryBudget, 'retryBudget', DEFAULTS.retryBudget),
    hedgeBudget: budgetConfig(options.hedgeBudget, 'hedgeBudget', DEFAULTS.hedgeBudget),
    isFailure:
      options.isFailure === undefined ? defaultIsFailure : checkFunction<(error: unknown) => boolean>(options.isFailure, 'isFailure'),
  };
}

function defaultIsFailure(error: unknown): boolean {
  return classifyFailure(error) !== 'fatal';
}

function budgetConfig(value: unknown, field: string, defaults: BudgetConfig): BudgetConfig {
  const input = value === undefined ? {} : checkObject(value, field);
  checkKnownKeys(input, ['percent', 'minPerSecond', 'windowMs'], field);
  return {
    percent: optionalNumber(input.percent, `${field}.percent`, defaults.percent, { min: 0, max: 10 }),
    minPerSecond: optionalNumber(input.minPerSecond, `${field}.minPerSecond`, defaults.minPerSecond, { min: 0 }),
    windowMs: optionalMilliseconds(input.windowMs, `${field}.windowMs`, defaults.windowMs, { min: 100 }),
  };
}

function discoveryMode(options: Record<string, unknown>): DiscoveryMode {
  if (options.port !== undefined && options.portName !== undefined) {
    throw new InvalidOptionError('portName', options.portName, "either 'port' (A/AAAA discovery) or 'portName' (SRV discovery), not both");
  }
  if (options.portName !== undefined) {
    const portName = options.portName;
    if (typeof portName !== 'string' || !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(portName)) {
      throw new InvalidOptionError('portName', portName, "the Service port's name, such as 'http' or 'grpc'");
    }
    const protocol = options.protocol ?? DEFAULTS.protocol;
    if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp')
      throw new InvalidOptionError('protocol', protocol, "'tcp', 'udp' or 'sctp'");
    return { kind: 'srv', portName, protocol };
  }
  if (options.protocol !== undefined)
    throw new InvalidOptionError('protocol', options.protocol, "to be set only with 'portName' (SRV discovery)");
  if (options.port === undefined)
    throw new InvalidOptionError('port', undefined, "a port (A/AAAA discovery) or 'portName' (SRV discovery)");
  return { kind: 'address', port: checkPort(options.port, 'port') };
}

function dnsServers(value: unknown, system: readonly string[]): DnsServerAddress[] {
  if (value === undefined) {
    const servers = system.flatMap((s) => (isIP(s) === 0 ? [] : [parseDnsServer(s, 'nameserver in /etc/resolv.conf')]));
    if (servers.length === 0)
      throw new InvalidOptionError('dnsServers', undefined, 'DNS servers: /etc/resolv.conf lists none, so pass dnsServers');
    return servers;
  }
  if (!Array.isArray(value) || value.length === 0)
    throw new InvalidOptionError('dnsServers', value, "a non-empty array such as ['10.96.0.10']");
  return value.map((s, i) => parseDnsServer(s, `dnsServers[${i}]`));
}

function checkSearch(value: unknown): string[] {
  if (!Array.isArray(value)) throw new InvalidOptionError('search', value, 'an array of domain names');
  return value.map((domain, i) => stripDot(checkDnsName(domain, `search[${i}]`)));
}

function checkFamily(value: unknown): AddressFamily {
  if (value === undefined) return DEFAULTS.family;
  if (value === 4 || value === 6 || value === 'auto') return value;
  throw new InvalidOptionError('family', value, "4, 6 or 'auto'");
}

function checkLabel(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidOptionError('service', value, 'a non-empty string');
  return value;
}

/**
 * A static list is the user's own choice, so the safety ranges do not apply to it (DNS answers
 * get them); `allowedAddresses`, when given, does: an entry outside it is a mistake to report.
 */
function checkAllowed(targets: Target[], policy: AddressPolicy): Target[] {
  targets.forEach((target, i) => {
    if (!policy.allows(target.address)) {
      throw new InvalidOptionError(
        `endpoints[${i}].address`,
        target.address,
        `an address inside allowedAddresses (${policy.describeAllowed()})`,
      );
    }
  });
  return targets;
}

function staticTargets(value: unknown): Target[] {
  if (!Array.isArray(value)) throw new InvalidOptionError('endpoints', value, 'an array of { address, port, name?, weight? }');
  const ids = new Set<string>();
  return value.map((raw, i) => {
    const field = `endpoints[${i}]`;
    const entry = checkObject(raw, field);
    checkKnownKeys(entry, ['address', 'port', 'name', 'weight'], field);
    const address = entry.address;
    const family = typeof address === 'string' ? isIP(address) : 0;
    if (family === 0) throw new InvalidOptionError(`${field}.address`, address, 'an IPv4 or IPv6 address');
    const port = checkPort(entry.port, `${field}.port`);
    if (entry.name !== undefined && (typeof entry.name !== 'string' || entry.name.length === 0)) {
      throw new InvalidOptionError(`${field}.name`, entry.name, 'a non-empty string');
    }
    const name = entry.name as string | undefined;
    const weight = entry.weight === undefined ? 1 : checkNumber(entry.weight, `${field}.weight`, { min: 0 });
    const id = name ?? (family === 6 ? `[${address as string}]:${port}` : `${address as string}:${port}`);
    if (ids.has(id)) throw new InvalidOptionError(`${field}`, raw, `a unique endpoint; '${id}' appears twice`);
    ids.add(id);
    return { id, address: address as string, addresses: [address as string], port, family: family as 4 | 6, name, weight, priority: 0 };
  });
}
