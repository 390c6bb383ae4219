/**
 * The client process of the scenario benchmark: one contender, one closed loop of
 * `concurrency` requests in flight, bounded by `durationMs` and `maxRequests`. Every request's
 * start, end, answering pod IP and outcome go to a records file; attempts per pod IP are counted
 * below the contender where it offers a hook (undici's `undici:request:create` for every HTTP
 * contender, headless-lb's `headless-lb:attempt:start` for its gRPC channel), or by the contender
 * itself where it picks the pod (the gRPC oracle).
 *
 * A process per contender and trial: grpc-js reads GRPC_NODE_USE_ALTERNATIVE_RESOLVER when it
 * loads, and no contender inherits another's connections, caches or JIT state.
 */
import { subscribe } from 'node:diagnostics_channel';
import dns from 'node:dns';
import { writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Agent, BalancedPool, interceptors, request, type Dispatcher } from 'undici';
import { createBalancer, type AttemptStartMessage, type Balancer } from '../../src/index.js';
import { createDispatcher } from '../../src/http/index.js';
import { createGrpcChannel } from '../../src/grpc/index.js';
import {
  jsonLines,
  now,
  protoPath,
  RECORD_FIELDS,
  send,
  type AttemptStats,
  type ClientConfig,
  type ClientSummary,
  type OracleUpdate,
} from './protocol.js';

interface Answer {
  readonly ip: string;
}

/** One contender as the loop sees it: `call()` sends one request and resolves with the answering pod. */
interface Contender {
  call(): Promise<Answer>;
  /** Where attempts are observed below the contender, if anywhere ('self': it reports each call's pod through `attempt`). */
  readonly attemptHook: 'undici' | 'headless-lb' | 'self' | null;
  onOracle?(ips: readonly string[]): void;
  close(): Promise<void>;
}

interface Pong {
  pod: string;
  ip: string;
}

type Callback = (error: grpc.ServiceError | null, value?: Pong) => void;
interface EchoClient extends grpc.Client {
  Unary(request: object, options: grpc.CallOptions, callback: Callback): grpc.ClientUnaryCall;
}
type EchoConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => EchoClient;

function loadEcho(): EchoConstructor {
  const definition = protoLoader.loadSync(protoPath(), { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { hlb: { bench: { Echo: EchoConstructor } } };
  return pkg.hlb.bench.Echo;
}

function unary(client: EchoClient, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    client.Unary({}, { deadline: Date.now() + timeoutMs }, (error, value) => {
      if (error !== null || value === undefined) reject(error ?? new Error('no reply'));
      else resolve({ ip: value.ip });
    });
  });
}

async function httpGet(url: string, dispatcher: Dispatcher, timeoutMs: number): Promise<Answer> {
  const response = await request(url, { dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const body = (await response.body.json()) as { ip: string };
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
  return { ip: body.ip };
}

function dnsServer(config: ClientConfig): dns.promises.Resolver {
  const resolver = new dns.promises.Resolver({ timeout: 1000, tries: 2 });
  resolver.setServers([config.dnsServer]);
  return resolver;
}

function balancerOptions(config: ClientConfig, portName: 'http' | 'grpc', picker: 'round-robin' | 'least-latency') {
  // SRV discovery, as the README recommends; everything else at its default.
  return { service: config.service, portName, dnsServers: [config.dnsServer], search: [], ndots: 1, picker } as const;
}

/** Closing a grpc-js client lets started calls finish but fails those still waiting for a connection: close removed pods' clients a little later. */
const GRPC_ORACLE_CLOSE_DELAY_MS = 2000;

/** `attempt(ip)`: for contenders that know which pod each call goes to (attemptHook 'self'). */
async function makeContender(config: ClientConfig, attempt: (ip: string) => void): Promise<Contender> {
  const timeout = config.requestTimeoutMs;
  const serviceUrl = `http://${config.service}:${config.ports.http}/`;
  switch (config.contender) {
    case 'hlb-http-rr':
    case 'hlb-http-ll': {
      const lb: Balancer = createBalancer(
        balancerOptions(config, 'http', config.contender === 'hlb-http-rr' ? 'round-robin' : 'least-latency'),
      );
      await lb.ready({ timeoutMs: 5000 });
      const dispatcher = createDispatcher(lb);
      return {
        attemptHook: 'undici',
        call: () => httpGet(serviceUrl, dispatcher, timeout),
        close: async () => {
          await dispatcher.destroy();
          await lb.close();
        },
      };
    }
    case 'hlb-grpc-ll': {
      const lb: Balancer = createBalancer(balancerOptions(config, 'grpc', 'least-latency'));
      await lb.ready({ timeoutMs: 5000 });
      const channel = createGrpcChannel(lb, { credentials: grpc.credentials.createInsecure(), idempotent: true });
      const client = channel.client(loadEcho());
      return {
        attemptHook: 'headless-lb',
        call: () => unary(client, timeout),
        close: async () => {
          client.close();
          await Promise.race([channel.close(), new Promise((resolve) => setTimeout(resolve, 1000))]);
          await lb.close();
        },
      };
    }
    case 'grpc':
    case 'grpc-tuned': {
      // GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true (set by the orchestrator) makes grpc-js use
      // c-ares with the DNS server named in the target; round_robin only via loadBalancingConfig.
      const tuned = config.contender === 'grpc-tuned';
      const port = tuned ? config.ports.grpcAged : config.ports.grpc;
      const Echo = loadEcho();
      const client = new Echo(`dns://${config.dnsServer}/${config.service}:${port}`, grpc.credentials.createInsecure(), {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
        ...(tuned ? { 'grpc.dns_min_time_between_resolutions_ms': 5000 } : {}),
      });
      return {
        attemptHook: null,
        call: () => unary(client, timeout),
        close: async () => client.close(),
      };
    }
    case 'undici-dns': {
      // The interceptor's default lookup is dns.lookup (no TTL, no DNS server choice): give it a
      // TTL-aware one on our server. It is called with a URL and wants TTLs in ms.
      const resolver = dnsServer(config);
      const lookup = (
        origin: URL,
        _options: unknown,
        callback: (error: Error | null, addresses?: { address: string; family: number; ttl: number }[]) => void,
      ): void => {
        resolver.resolve4(origin.hostname, { ttl: true }).then(
          (records) =>
            callback(
              null,
              records.map((r) => ({ address: r.address, family: 4, ttl: r.ttl * 1000 })),
            ),
          (error: Error) => callback(error),
        );
      };
      const agent = new Agent().compose(interceptors.dns({ lookup: lookup as never }));
      return {
        attemptHook: 'undici',
        call: () => httpGet(serviceUrl, agent, timeout),
        close: () => agent.close(),
      };
    }
    case 'balanced': {
      const records = await dnsServer(config).resolve4(config.service);
      const urls = records.map((ip) => `http://${ip}:${config.ports.http}`);
      const pool = new BalancedPool(urls);
      const url = `${urls[0]}/`;
      return {
        attemptHook: 'undici',
        call: () => httpGet(url, pool, timeout),
        close: () => pool.close(),
      };
    }
    case 'oracle': {
      // A plain undici Agent, round-robin over the pods the orchestrator says are alive and fast.
      const agent = new Agent();
      let urls = config.oracleIps.map((ip) => `http://${ip}:${config.ports.http}/`);
      let next = 0;
      return {
        attemptHook: 'undici',
        call: () => {
          if (urls.length === 0) return Promise.reject(new Error('oracle: no pod alive'));
          next = (next + 1) % urls.length;
          return httpGet(urls[next]!, agent, timeout);
        },
        onOracle: (ips) => {
          urls = ips.map((ip) => `http://${ip}:${config.ports.http}/`);
        },
        close: () => agent.close(),
      };
    }
    case 'grpc-oracle': {
      // The same for gRPC: one plain grpc-js client per pod the orchestrator says is alive and fast
      // (an IP literal: no DNS, pick_first over one address), round-robin per call.
      const Echo = loadEcho();
      const clients = new Map<string, EchoClient>();
      const closing = new Set<{ client: EchoClient; timer: NodeJS.Timeout }>();
      let ring: { ip: string; client: EchoClient }[] = [];
      const route = (ips: readonly string[]): void => {
        for (const ip of ips)
          if (!clients.has(ip)) clients.set(ip, new Echo(`${ip}:${config.ports.grpc}`, grpc.credentials.createInsecure()));
        ring = ips.map((ip) => ({ ip, client: clients.get(ip)! }));
        for (const [ip, client] of clients) {
          if (ips.includes(ip)) continue;
          clients.delete(ip);
          // after the switch: calls already sent on it finish first
          const entry = {
            client,
            timer: setTimeout(() => {
              closing.delete(entry);
              client.close();
            }, GRPC_ORACLE_CLOSE_DELAY_MS).unref(),
          };
          closing.add(entry);
        }
      };
      route(config.oracleIps);
      let next = 0;
      return {
        attemptHook: 'self',
        call: () => {
          if (ring.length === 0) return Promise.reject(new Error('grpc-oracle: no pod alive'));
          next = (next + 1) % ring.length;
          const { ip, client } = ring[next]!;
          attempt(ip);
          return unary(client, timeout);
        },
        onOracle: route,
        close: async () => {
          for (const entry of closing) {
            clearTimeout(entry.timer);
            entry.client.close();
          }
          closing.clear();
          for (const client of clients.values()) client.close();
          clients.clear();
          ring = [];
        },
      };
    }
  }
}

/** Growable Float64Array of fixed-size records. */
class Records {
  private data = new Float64Array(RECORD_FIELDS * 65_536);
  length = 0;

  push(start: number, end: number, ip: number, ok: number): void {
    if ((this.length + 1) * RECORD_FIELDS > this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    const at = this.length++ * RECORD_FIELDS;
    this.data[at] = start;
    this.data[at + 1] = end;
    this.data[at + 2] = ip;
    this.data[at + 3] = ok;
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, 0, this.length * RECORD_FIELDS * 8);
  }
}

class AttemptCounter {
  readonly byIp = new Map<string, { first: number; last: number; count: number; buckets: number[] }>();
  constructor(
    private readonly loadStart: () => number,
    private readonly bucketMs: number,
  ) {}

  add(ip: string): void {
    const at = now() - this.loadStart();
    if (at < 0) return; // set-up traffic
    let entry = this.byIp.get(ip);
    if (entry === undefined) {
      entry = { first: at, last: at, count: 0, buckets: [] };
      this.byIp.set(ip, entry);
    }
    entry.last = at;
    entry.count++;
    const bucket = Math.floor(at / this.bucketMs);
    while (entry.buckets.length <= bucket) entry.buckets.push(0);
    entry.buckets[bucket]!++;
  }

  toJSON(): Record<string, AttemptStats> {
    return Object.fromEntries(this.byIp);
  }
}

const IPV4 = /(127\.\d{1,3}\.\d{1,3}\.\d{1,3})/;

/** The pod IP a failed request was sent to, when the error tells. */
function failedIp(error: unknown): string | undefined {
  const e = error as {
    address?: unknown;
    message?: unknown;
    details?: unknown;
    cause?: unknown;
    socket?: { remoteAddress?: unknown };
  } | null;
  if (e === null || typeof e !== 'object') return undefined;
  if (typeof e.address === 'string' && e.address.startsWith('127.')) return e.address;
  if (typeof e.socket?.remoteAddress === 'string' && e.socket.remoteAddress.startsWith('127.')) return e.socket.remoteAddress;
  for (const text of [e.details, e.message]) {
    if (typeof text === 'string') {
      const match = IPV4.exec(text);
      if (match !== null && match[1] !== '127.0.0.1') return match[1];
    }
  }
  return e.cause === undefined || e.cause === error ? undefined : failedIp(e.cause);
}

/** Entry point of `--role client`. */
export async function runClient(config: ClientConfig): Promise<void> {
  const setupStarted = now();
  let loadStart = Number.POSITIVE_INFINITY;
  const attempts = new AttemptCounter(() => loadStart, config.bucketMs);
  const contender = await makeContender(config, (ip) => attempts.add(ip));
  jsonLines<OracleUpdate>(process.stdin, (message) => {
    if (message.type === 'oracle') contender.onOracle?.(message.ips);
  });
  const originIps = new Map<string, string>();
  if (contender.attemptHook === 'undici') {
    subscribe('undici:request:create', (message) => {
      const origin = (message as { request: { origin: string | URL } }).request.origin;
      const key = typeof origin === 'string' ? origin : origin.origin;
      let ip = originIps.get(key);
      if (ip === undefined) {
        ip = new URL(key).hostname;
        originIps.set(key, ip);
      }
      attempts.add(ip);
    });
  } else if (contender.attemptHook === 'headless-lb') {
    subscribe('headless-lb:attempt:start', (message) => attempts.add((message as AttemptStartMessage).endpoint.address));
  }

  const ipIndex = new Map<string, number>();
  const ips: string[] = [];
  const indexOf = (ip: string | undefined): number => {
    if (ip === undefined) return -1;
    let index = ipIndex.get(ip);
    if (index === undefined) {
      index = ips.length;
      ips.push(ip);
      ipIndex.set(ip, index);
    }
    return index;
  };
  const records = new Records();
  const errors = new Map<string, number>();
  let ok = 0;
  let failed = 0;
  let started = 0;

  loadStart = now();
  send({ type: 'started', loadStart });
  const stopAt = loadStart + config.durationMs;
  const worker = async (): Promise<void> => {
    while (started < config.maxRequests && now() < stopAt) {
      started++;
      const t0 = now();
      try {
        const answer = await contender.call();
        records.push(t0 - loadStart, now() - loadStart, indexOf(answer.ip), 1);
        ok++;
      } catch (error) {
        const t1 = now();
        records.push(t0 - loadStart, t1 - loadStart, indexOf(failedIp(error)), 0);
        failed++;
        const text = String((error as Error)?.message ?? error)
          .replace(/127\.\d+\.\d+\.\d+(:\d+)?/g, '<pod>')
          .slice(0, 160);
        if (errors.size < 50 || errors.has(text)) errors.set(text, (errors.get(text) ?? 0) + 1);
        // A contender that fails at once (nothing to call) must not spin.
        if (t1 - t0 < 1) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, worker));
  const loadEnd = now();
  writeFileSync(config.recordsFile, records.bytes());
  const summary: ClientSummary = {
    loadStart,
    loadEnd,
    requests: started,
    ok,
    failed,
    ips,
    attempts: contender.attemptHook === null ? null : attempts.toJSON(),
    errors: [...errors.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([message, count]) => ({ message, count })),
    setupMs: loadStart - setupStarted,
  };
  send({ type: 'done', summary });
  await Promise.race([contender.close(), new Promise((resolve) => setTimeout(resolve, 2000))]);
  process.exit(0);
}
