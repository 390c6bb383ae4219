/**
 * gRPC throughput and latency of `createGrpcChannel` (headless-lb/grpc) against grpc-js's own
 * balancing over the same pods, in the same run:
 *
 *   - grpc-js, 1 pod (`ipv4:` one address, pick_first)   — the floor: no balancing at all;
 *   - grpc-js `round_robin` over `ipv4:` the 3 addresses  — the target to match;
 *   - `createGrpcChannel` over the 3 pods (round-robin, and least-request).
 *
 * Every client is the same generated client (test/fixtures/echo.proto, @grpc/proto-loader) making
 * unary calls in a closed loop: 16 in flight for the throughput table, 1 for the latency table.
 * The pods (3 grpc-js servers on 127.0.85.11–13, one port) run in a child process so that their
 * CPU does not share the client's core. Each scenario runs several rounds in rotating order; the
 * table shows the median round. Bounded: about 70 s in all (`--quick`: about 15 s).
 *
 *   node bench/support/run.mjs grpc            (npm run bench -- grpc)
 *   node bench/support/run.mjs grpc --quick
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createBalancer, type Balancer, type PickerOption } from '../src/index.js';
import { createGrpcChannel } from '../src/grpc/index.js';
import { fixed, machine, median, table } from './support/measure.js';

const ADDRESSES = ['127.0.85.11', '127.0.85.12', '127.0.85.13'];
const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 2 : 5;
const ROUND_MS = quick ? 800 : 1500;
const WARMUP_MS = quick ? 300 : 750;
const MAX_CALLS_PER_ROUND = 400_000;

interface EchoReply {
  pod: string;
}
interface EchoClient extends grpc.Client {
  Unary(request: { text: string }, callback: (error: grpc.ServiceError | null, reply?: EchoReply) => void): grpc.ClientUnaryCall;
}
type EchoConstructor = (new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => EchoClient) & { service: grpc.ServiceDefinition };

function loadEcho(): EchoConstructor {
  // Relative to the repository root (the runner's working directory): this file runs bundled from .tmp/.
  const definition = protoLoader.loadSync(resolve('test/fixtures/echo.proto'), { defaults: true });
  return (grpc.loadPackageDefinition(definition) as unknown as { hlb: { test: { Echo: EchoConstructor } } }).hlb.test.Echo;
}

// ---------------------------------------------------------------- pods (child process)

async function servePods(): Promise<void> {
  const Echo = loadEcho();
  let port = 0;
  const servers: grpc.Server[] = [];
  for (const [i, address] of ADDRESSES.entries()) {
    const server = new grpc.Server();
    const reply = { pod: `pod-${i}`, address, text: 'ok', seq: 0 };
    server.addService(Echo.service, {
      Unary: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, reply),
    });
    port = await new Promise<number>((done, fail) => server.bindAsync(`${address}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? fail(error) : done(bound))));
    servers.push(server);
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  // Exit with the parent: stdin closes when it goes away.
  const exit = (): void => {
    for (const server of servers) server.forceShutdown();
    process.exit(0);
  };
  process.stdin.resume();
  process.stdin.on('end', exit);
  process.stdin.on('close', exit);
}

async function startPods(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [process.argv[1]!, '--serve-pods'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill(), 10_000);
  for await (const line of lines) {
    clearTimeout(timer);
    return { port: (JSON.parse(line) as { port: number }).port, child };
  }
  throw new Error('the pods process exited before listening');
}

// ---------------------------------------------------------------- client loop

interface RoundResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** Share of the calls that the busiest pod answered (1/3 is an even spread). */
  readonly maxShare: number;
}

async function round(client: EchoClient, concurrency: number, ms: number): Promise<RoundResult> {
  const latencies: number[] = [];
  const byPod = new Map<string, number>();
  let errors = 0;
  const started = performance.now();
  const stopAt = started + ms;
  const once = (): Promise<void> =>
    new Promise((done) => {
      const t0 = performance.now();
      client.Unary({ text: 'x' }, (error, reply) => {
        latencies.push(performance.now() - t0);
        if (error !== null) errors++;
        else byPod.set(reply!.pod, (byPod.get(reply!.pod) ?? 0) + 1);
        done();
      });
    });
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt && latencies.length < MAX_CALLS_PER_ROUND) await once();
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 1000;
  const maxShare = Math.max(...byPod.values()) / Math.max(1, latencies.length - errors);
  return { rps: (latencies.length / elapsed) * 1000, p50: at(0.5), p99: at(0.99), errors, maxShare };
}

interface Scenario {
  readonly id: string;
  readonly label: string;
  make(Echo: EchoConstructor, port: number): { client: EchoClient; close(): Promise<void> };
}

const insecure = grpc.credentials.createInsecure();

function headless(picker: PickerOption): Scenario['make'] {
  return (Echo, port) => {
    const lb: Balancer = createBalancer({ endpoints: ADDRESSES.map((address, i) => ({ address, port, name: `pod-${i}` })), picker, service: 'echo' });
    const channel = createGrpcChannel(lb, { credentials: insecure });
    const client = channel.client(Echo);
    return {
      client,
      close: async () => {
        client.close();
        await channel.close();
        await lb.close();
      },
    };
  };
}

const SCENARIOS: readonly Scenario[] = [
  {
    id: 'single',
    label: 'grpc-js, 1 pod',
    make: (Echo, port) => {
      const client = new Echo(`ipv4:${ADDRESSES[0]}:${port}`, insecure);
      return { client, close: async () => client.close() };
    },
  },
  {
    id: 'round-robin',
    label: 'grpc-js round_robin, 3 pods',
    make: (Echo, port) => {
      const client = new Echo(`ipv4:${ADDRESSES.map((a) => `${a}:${port}`).join(',')}`, insecure, {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      });
      return { client, close: async () => client.close() };
    },
  },
  { id: 'headless-rr', label: 'createGrpcChannel, 3 pods, round-robin', make: headless('round-robin') },
  { id: 'headless-lr', label: 'createGrpcChannel, 3 pods, least-request', make: headless('least-request') },
];

async function measure(Echo: EchoConstructor, port: number, concurrency: number): Promise<Map<string, RoundResult[]>> {
  const results = new Map<string, RoundResult[]>(SCENARIOS.map((s) => [s.id, []]));
  const live = SCENARIOS.map((s) => ({ scenario: s, ...s.make(Echo, port) }));
  for (const { client } of live) await round(client, concurrency, WARMUP_MS);
  for (let r = 0; r < ROUNDS; r++) {
    // rotate the order so that no scenario always runs first (or after the same neighbour)
    for (let i = 0; i < live.length; i++) {
      const { scenario, client } = live[(i + r) % live.length]!;
      results.get(scenario.id)!.push(await round(client, concurrency, ROUND_MS));
    }
  }
  await Promise.all(live.map((l) => l.close()));
  return results;
}

function summarize(results: Map<string, RoundResult[]>) {
  return SCENARIOS.map((s) => {
    const rounds = results.get(s.id)!;
    return {
      id: s.id,
      label: s.label,
      rps: median(rounds.map((r) => r.rps)),
      p50: median(rounds.map((r) => r.p50)),
      p99: median(rounds.map((r) => r.p99)),
      maxShare: median(rounds.map((r) => r.maxShare)),
      errors: rounds.reduce((n, r) => n + r.errors, 0),
    };
  });
}

function grpcVersion(): string {
  try {
    return (JSON.parse(readFileSync('node_modules/@grpc/grpc-js/package.json', 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--serve-pods')) return servePods();
  const Echo = loadEcho();
  const { port, child } = await startPods();
  try {
    console.log(
      `# gRPC channel benchmark\n\n${machine()}; @grpc/grpc-js ${grpcVersion()}; unary calls; pods in a child process; ${ROUNDS} rounds × ${ROUND_MS} ms per scenario (median round shown); load average before: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
    );
    const sections: { concurrency: number; rows: ReturnType<typeof summarize> }[] = [];
    for (const concurrency of [16, 1]) {
      const rows = summarize(await measure(Echo, port, concurrency));
      sections.push({ concurrency, rows });
      const base = rows.find((r) => r.id === 'round-robin')!;
      console.log(`## ${concurrency} call${concurrency === 1 ? '' : 's'} in flight\n`);
      console.log(
        table(
          ['client', 'calls/s', 'vs round_robin', 'p50 µs', 'p99 µs', 'busiest pod', 'errors'],
          rows.map((r) => [r.label, fixed(r.rps, 0), `${fixed((r.rps / base.rps) * 100, 1)}%`, fixed(r.p50, 0), fixed(r.p99, 0), `${fixed(r.maxShare * 100, 0)}%`, String(r.errors)]),
        ),
      );
      console.log('');
    }
    const find = (concurrency: number, id: string) => sections.find((s) => s.concurrency === concurrency)!.rows.find((r) => r.id === id)!;
    const ratio16 = find(16, 'headless-rr').rps / find(16, 'round-robin').rps;
    const added1 = find(1, 'headless-rr').p50 - find(1, 'round-robin').p50;
    // "No worse than round_robin", with 5% for the noise of a shared 2-core machine.
    const throughputOk = ratio16 >= 0.95;
    const latencyOk = added1 <= 50;
    console.log(
      `Targets: throughput ≥ 95% of grpc-js round_robin at 16 in flight: ${fixed(ratio16 * 100, 1)}% ${throughputOk ? 'PASS' : 'FAIL'}; added p50 ≤ 50 µs at 1 in flight: ${fixed(added1, 1)} µs ${latencyOk ? 'PASS' : 'FAIL'}`,
    );
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/grpc.json', `${JSON.stringify({ machine: machine(), grpcJs: grpcVersion(), rounds: ROUNDS, roundMs: ROUND_MS, sections }, null, 2)}\n`);
  } finally {
    child.stdin?.end();
    child.kill();
  }
}

await main();
