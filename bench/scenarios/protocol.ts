/**
 * What the three processes of the scenario benchmark say to each other (JSON lines over
 * stdin/stdout), and the few helpers they share.
 *
 *   orchestrator ──stdin──> pods process     PodCommand  → PodReply
 *   orchestrator ──argv───> client process   ClientConfig
 *   orchestrator ──stdin──> client process   OracleUpdate
 *   client ───────stdout──> orchestrator     ClientMessage
 */
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** Milliseconds since the Unix epoch with sub-millisecond precision, comparable across processes. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** The repository root: the runner starts every process there. */
export function repoRoot(): string {
  return resolve(process.env.HLB_BENCH_ROOT ?? process.cwd());
}

export function protoPath(): string {
  return join(repoRoot(), 'bench', 'scenarios', 'bench.proto');
}

export type ContenderId =
  'hlb-http-rr' | 'hlb-http-ll' | 'hlb-grpc-ll' | 'grpc' | 'grpc-tuned' | 'undici-dns' | 'balanced' | 'oracle' | 'grpc-oracle';

export interface PodPorts {
  readonly http: number;
  readonly grpc: number;
  /** gRPC with the server option `grpc.max_connection_age_ms` (grpc-tuned only). */
  readonly grpcAged: number;
}

// ---------------------------------------------------------------- pods process

export type PodCommand =
  | { readonly id: number; readonly op: 'start'; readonly name: string; readonly ip: string; readonly delayMs?: number }
  | { readonly id: number; readonly op: 'crash'; readonly ip: string }
  | { readonly id: number; readonly op: 'stop'; readonly ip: string; readonly gracePeriodMs: number }
  | { readonly id: number; readonly op: 'delay'; readonly ip: string; readonly delayMs: number }
  | { readonly id: number; readonly op: 'reset' }
  | { readonly id: number; readonly op: 'ports' };

export type PodReply =
  | { readonly id: number; readonly ok: true; readonly ports?: PodPorts }
  | { readonly id: number; readonly ok: false; readonly error: string };

// ---------------------------------------------------------------- client process

export interface ClientConfig {
  readonly contender: ContenderId;
  /** The counting DNS proxy in front of Knot, `127.0.0.1:<port>`. */
  readonly dnsServer: string;
  /** FQDN of the headless Service. */
  readonly service: string;
  readonly ports: PodPorts;
  /** Pods alive and fast at the start (the oracles' routing table until they are told otherwise). */
  readonly oracleIps: readonly string[];
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxRequests: number;
  /** Per request and per attempt deadline, ms. */
  readonly requestTimeoutMs: number;
  readonly bucketMs: number;
  /** Where the client writes its per-request records (Float64Array, RECORD_FIELDS per request). */
  readonly recordsFile: string;
}

/** The oracles' routing table (HTTP and gRPC oracle), sent by the orchestrator as it changes the pods. */
export interface OracleUpdate {
  readonly type: 'oracle';
  readonly ips: readonly string[];
}

/** Per-request record layout in the records file: start and end (ms after loadStart), IP index (-1: unknown), ok (1/0). */
export const RECORD_FIELDS = 4;

export interface AttemptStats {
  /** ms after loadStart */
  readonly first: number;
  readonly last: number;
  readonly count: number;
  /** Attempts per bucket of `bucketMs` since loadStart. */
  readonly buckets: readonly number[];
}

export interface ClientSummary {
  readonly loadStart: number;
  readonly loadEnd: number;
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  /** Index → IP of the records file. */
  readonly ips: readonly string[];
  /** Attempts per IP, observed below the client (undici's `undici:request:create`, headless-lb's `attempt:start`) or reported by the contender that picks the pod itself (the gRPC oracle); null when the contender offers no such hook (grpc-js). */
  readonly attempts: Readonly<Record<string, AttemptStats>> | null;
  /** The most frequent error messages, for the report. */
  readonly errors: readonly { readonly message: string; readonly count: number }[];
  readonly setupMs: number;
}

export type ClientMessage =
  | { readonly type: 'started'; readonly loadStart: number }
  | { readonly type: 'done'; readonly summary: ClientSummary }
  | { readonly type: 'fatal'; readonly error: string };

/** Reads JSON lines from a stream. */
export function jsonLines<T>(stream: Readable, onMessage: (message: T) => void): void {
  const lines = createInterface({ input: stream });
  lines.on('line', (line) => {
    const text = line.trim();
    if (!text.startsWith('{')) return;
    try {
      onMessage(JSON.parse(text) as T);
    } catch {
      // not ours
    }
  });
}

export function send(message: unknown): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
