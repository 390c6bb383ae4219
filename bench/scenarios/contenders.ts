import type { ContenderId } from './protocol.js';

export interface ContenderInfo {
  readonly id: ContenderId;
  /** Column header. */
  readonly label: string;
  readonly transport: 'HTTP/1.1' | 'gRPC';
  readonly headlessLb: boolean;
  /** A reference, not a contender: routes by what the benchmark knows (never in "best other contender"). */
  readonly oracle?: true;
  /** How it is set up, and what it needed to work here at all (for the docs). */
  readonly setup: string;
}

/** Every contender, in table order. */
export const CONTENDERS: readonly ContenderInfo[] = [
  {
    id: 'hlb-http-rr',
    label: 'headless-lb HTTP rr',
    transport: 'HTTP/1.1',
    headlessLb: true,
    setup:
      "`createBalancer({ service, portName: 'http', dnsServers, picker: 'round-robin' })` + `createDispatcher(lb)`, `undici.request` to `http://<service>:<port>/`; all other options at their defaults (GET is idempotent: retried on another pod)",
  },
  {
    id: 'hlb-http-ll',
    label: 'headless-lb HTTP ll',
    transport: 'HTTP/1.1',
    headlessLb: true,
    setup: "the same with `picker: 'least-latency'` (P2C on mean latency × (1 + in-flight / 2), the default estimator)",
  },
  {
    id: 'hlb-grpc-ll',
    label: 'headless-lb gRPC ll',
    transport: 'gRPC',
    headlessLb: true,
    setup:
      "`createBalancer({ service, portName: 'grpc', dnsServers, picker: 'least-latency' })` + `createGrpcChannel(lb, { credentials, idempotent: true })`, `channel.client(Echo)`",
  },
  {
    id: 'grpc',
    label: 'grpc-js round_robin',
    transport: 'gRPC',
    headlessLb: false,
    setup:
      "`new Echo('dns://127.0.0.1:<port>/<service>:<port>', insecure, { 'grpc.service_config': '{\"loadBalancingConfig\":[{\"round_robin\":{}}]}' })` with `GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true` in the environment (without it grpc-js uses `dns.lookup` and ignores the DNS server in the target)",
  },
  {
    id: 'grpc-tuned',
    label: 'grpc-js tuned',
    transport: 'gRPC',
    headlessLb: false,
    setup:
      "the same plus the maintainers' workaround: the pods' gRPC server (a second port) sets `grpc.max_connection_age_ms` = 10 s, the client `grpc.dns_min_time_between_resolutions_ms` = 5 s",
  },
  {
    id: 'undici-dns',
    label: 'undici-dns',
    transport: 'HTTP/1.1',
    headlessLb: false,
    setup:
      '`new Agent().compose(interceptors.dns({ lookup }))` with our own `lookup`: the default one is `dns.lookup` (no TTL, no choice of DNS server), so it calls `resolve4(name, { ttl: true })` on the test DNS server; undici calls it with a URL and wants the TTL in ms (both undocumented)',
  },
  {
    id: 'balanced',
    label: 'BalancedPool',
    transport: 'HTTP/1.1',
    headlessLb: false,
    setup: '`resolve4` once at start, then `new BalancedPool(ips.map(ip => `http://${ip}:<port>`))`',
  },
  {
    id: 'oracle',
    label: 'oracle (plain Agent)',
    transport: 'HTTP/1.1',
    headlessLb: false,
    oracle: true,
    setup:
      'a plain undici `Agent`, round-robin over the pods the benchmark itself knows to be alive and fast (told at the moment it changes a pod); the HTTP reference (S4 p99, throughput)',
  },
  {
    id: 'grpc-oracle',
    label: 'gRPC oracle',
    transport: 'gRPC',
    headlessLb: false,
    oracle: true,
    setup:
      "one plain grpc-js client per pod, `new Echo('<pod ip>:<port>', insecure)` (no DNS, grpc-js's default pick_first over one address), round-robin per call over the pods the benchmark knows to be alive and fast; clients of removed pods closed 2 s after the switch. The gRPC reference for S4 p99",
  },
];

/** The references (HTTP and gRPC oracle), left out of "the best other contender". */
export function isOracle(id: ContenderId): boolean {
  return CONTENDERS.some((c) => c.id === id && c.oracle === true);
}

/** The oracle a contender's routing metrics are held against: the one of its own protocol. */
export function oracleFor(id: ContenderId): ContenderId {
  return contenderById(id).transport === 'gRPC' ? 'grpc-oracle' : 'oracle';
}

export function contenderById(id: string): ContenderInfo {
  const found = CONTENDERS.find((c) => c.id === id);
  if (found === undefined) throw new Error(`unknown contender ${id} (have ${CONTENDERS.map((c) => c.id).join(', ')})`);
  return found;
}
