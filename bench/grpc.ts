/**
 * gRPC throughput and latency of `createGrpcChannel` (headless-lb/grpc) against grpc-js's own
 * balancing over the same pods, in the same run:
 *
 *   - grpc-js, 1 pod (`ipv4:` one address, pick_first)   — the floor: no balancing at all;
 *   - grpc-js `round_robin` over `ipv4:` the 3 addresses  — the target to match;
 *   - `createGrpcChannel` over the 3 pods (round-robin, least-request and least-latency);
 *   - `createGrpcChannel`, round-robin, with a service config (`serviceConfig`): a retry policy
 *     and retry throttling for the method called (what matching and its policy cost), and the
 *     same with a 10 s timeout (which gives every call a deadline, as a caller's own would).
 *
 * Every client is the same generated client (proto/echo.proto, @grpc/proto-loader) making
 * unary calls in a closed loop: 16 in flight for the throughput table, 1 for the latency table.
 * The pods (3 grpc-js servers on 127.0.85.11–13, one port) run in a child process pinned to CPU 1;
 * each client runs in a process of its own (its own heap and garbage collection, as in an
 * application), all pinned to CPU 0 (`--no-pin` to let the scheduler decide). Each client runs
 * 25 short rounds in shuffled order (each pass runs every client once, one at a time); the table
 * shows the median round, the client's CPU time per call, and the median of the throughput
 * ratios to round_robin within each pass.
 *
 * Hedging: three more pods (127.0.85.21–23) of which the first stalls 50 ms on every call;
 * `createGrpcChannel` (round-robin, idempotent) without hedging, and hedging after 10 ms with the
 * default hedge budget (5% + 1/s) and with a budget of 50%, and the first three pods (none stalls)
 * for reference: p50/p99 and hedges per call, 4 calls in flight.
 * Bounded: about 2.5 min in all (`--quick`: about 40 s; `--hedging`: the hedging table only).
 *
 *   node bench/support/run.mjs grpc            (npm run bench -- grpc)
 *   node bench/support/run.mjs grpc --quick
 *   node bench/support/run.mjs grpc --only headless-rr,headless-rr-config   (and round_robin, always)
 *   node bench/support/run.mjs grpc --hedging
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createBalancer, type Balancer, type PickerSpec } from '../src/index.js';
import { createGrpcChannel } from '../src/grpc/index.js';
import {
  closedLoop,
  exitWithParent,
  isolatedRounds,
  medianRound,
  pinClient,
  playedChildRole,
  startPods,
  versus,
  type ContenderRunner,
  type RoundResult,
  type RoundTiming,
} from './support/adapter-bench.js';
import { fixed, installedVersion, machine, median, table } from './support/measure.js';

const ADDRESSES = ['127.0.85.11', '127.0.85.12', '127.0.85.13'];
/** The hedging table's pods: the first one stalls `STALL_MS` on every call. */
const STALL_ADDRESSES = ['127.0.85.21', '127.0.85.22', '127.0.85.23'];
const STALL_MS = 50;
const HEDGE_DELAY_MS = 10;
const HEDGE_CONCURRENCY = 4;
const quick = process.argv.includes('--quick');
const hedgingOnly = process.argv.includes('--hedging');
const ROUNDS = quick ? 5 : 25;
const ROUND_MS = quick ? 300 : 400;
const WARMUP_MS = 1000; // each client warms up in its own process: its JIT starts cold
const TIMING: RoundTiming = { rounds: ROUNDS, warmupMs: WARMUP_MS, roundMs: ROUND_MS };
const MAX_CALLS_PER_ROUND = 400_000;
const onlyFlag = process.argv.indexOf('--only');
/** `--only a,b`: these contenders and the baseline, for a closer look at a few. */
const ONLY: ReadonlySet<string> | undefined =
  onlyFlag < 0 ? undefined : new Set(['round-robin', ...(process.argv[onlyFlag + 1] ?? '').split(',')]);

interface EchoReply {
  pod: string;
}
interface EchoClient extends grpc.Client {
  Unary(request: { text: string }, callback: (error: grpc.ServiceError | null, reply?: EchoReply) => void): grpc.ClientUnaryCall;
}
type EchoConstructor = (new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => EchoClient) & {
  service: grpc.ServiceDefinition;
};

function loadEcho(): EchoConstructor {
  // Relative to the repository root (the runner's working directory): this file runs bundled from .tmp/.
  const definition = protoLoader.loadSync(resolve('proto/echo.proto'), { defaults: true });
  return (grpc.loadPackageDefinition(definition) as unknown as { hlb: { test: { Echo: EchoConstructor } } }).hlb.test.Echo;
}

// ---------------------------------------------------------------- pods (child process)

async function servePods(): Promise<void> {
  const Echo = loadEcho();
  let port = 0;
  const servers: grpc.Server[] = [];
  for (const [i, address] of [...ADDRESSES, ...STALL_ADDRESSES].entries()) {
    const server = new grpc.Server();
    const reply = { pod: `pod-${i}`, address, text: 'ok', seq: 0 };
    const stalls = address === STALL_ADDRESSES[0];
    server.addService(Echo.service, {
      Unary: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (stalls) setTimeout(callback, STALL_MS, null, reply);
        else callback(null, reply);
      },
    });
    port = await new Promise<number>((done, fail) =>
      server.bindAsync(`${address}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? fail(error) : done(bound),
      ),
    );
    servers.push(server);
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  exitWithParent(() => {
    for (const server of servers) server.forceShutdown();
  });
}

// ---------------------------------------------------------------- contenders

interface Contender {
  readonly id: string;
  readonly label: string;
  make(Echo: EchoConstructor, port: number): { client: EchoClient; close(): Promise<void>; hedges?: () => number };
}

const insecure = grpc.credentials.createInsecure();

/** Service configs as users write them: the called method retried on UNAVAILABLE; throttling; with or without a timeout. */
function serviceConfig(timeout: boolean): string {
  const retryPolicy = {
    maxAttempts: 3,
    initialBackoff: '0.01s',
    maxBackoff: '0.1s',
    backoffMultiplier: 2,
    retryableStatusCodes: ['UNAVAILABLE'],
  };
  return JSON.stringify({
    methodConfig: [
      { name: [{ service: 'hlb.test.Echo', method: 'Unary' }], retryPolicy, ...(timeout ? { timeout: '10s' } : {}) },
      { name: [{}], ...(timeout ? { timeout: '30s' } : {}) },
    ],
    retryThrottling: { maxTokens: 100, tokenRatio: 0.1 },
  });
}

function headless(picker: PickerSpec, serviceConfig?: string): Contender['make'] {
  return (Echo, port) => {
    const lb: Balancer = createBalancer({
      endpoints: ADDRESSES.map((address, i) => ({ address, port, name: `pod-${i}` })),
      picker,
      service: 'echo',
    });
    const channel = createGrpcChannel(lb, { credentials: insecure, ...(serviceConfig === undefined ? {} : { serviceConfig }) });
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

/** createGrpcChannel over the stalling pods: round-robin, idempotent, hedged after 10 ms when `budgetPercent` is given. */
function stalling(budgetPercent: number | undefined): Contender['make'] {
  return (Echo, port) => {
    const lb: Balancer = createBalancer({
      endpoints: STALL_ADDRESSES.map((address, i) => ({ address, port, name: `stall-${i}` })),
      service: 'echo',
      outlierDetection: false, // the stalling pod answers: it must stay in the pool
      ...(budgetPercent === undefined ? {} : { hedgeBudget: { percent: budgetPercent, minPerSecond: 1, windowMs: 10_000 } }),
    });
    const hedge = budgetPercent === undefined ? {} : { hedge: { delayMs: HEDGE_DELAY_MS } };
    const channel = createGrpcChannel(lb, { credentials: insecure, idempotent: true, ...hedge });
    const client = channel.client(Echo);
    return {
      client,
      hedges: () => lb.stats().hedges,
      close: async () => {
        client.close();
        await channel.close();
        await lb.close();
      },
    };
  };
}

const HEDGING: readonly Contender[] = [
  { id: 'fast-rr', label: 'createGrpcChannel, 3 pods, none stalls (reference)', make: headless('round-robin') },
  { id: 'stall-plain', label: `createGrpcChannel, one pod of 3 stalls ${STALL_MS} ms, no hedging`, make: stalling(undefined) },
  { id: 'stall-hedge-5', label: `same, hedge after ${HEDGE_DELAY_MS} ms, hedge budget 5% + 1/s (default)`, make: stalling(0.05) },
  { id: 'stall-hedge-50', label: `same, hedge after ${HEDGE_DELAY_MS} ms, hedge budget 50% + 1/s`, make: stalling(0.5) },
];

const CONTENDERS: readonly Contender[] = [
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
  { id: 'headless-ll', label: 'createGrpcChannel, 3 pods, least-latency', make: headless('least-latency') },
  {
    id: 'headless-rr-config',
    label: 'createGrpcChannel, 3 pods, round-robin, service config',
    make: headless('round-robin', serviceConfig(false)),
  },
  {
    id: 'headless-rr-timeout',
    label: 'createGrpcChannel, 3 pods, round-robin, service config with timeouts',
    make: headless('round-robin', serviceConfig(true)),
  },
];

interface GrpcRound extends RoundResult {
  /** Share of the calls that the busiest pod answered (1/3 is an even spread). */
  readonly maxShare: number;
  /** Hedges sent per call. */
  readonly hedgesPerCall: number;
}

/** A contender's process: one client, running the rounds the parent asks for. */
function runner(id: string, port: number): ContenderRunner<GrpcRound> {
  const contender = [...CONTENDERS, ...HEDGING].find((c) => c.id === id);
  if (contender === undefined) throw new Error(`no contender ${id}`);
  const { client, close, hedges } = contender.make(loadEcho(), port);
  return {
    async round(ms, concurrency) {
      const byPod = new Map<string, number>();
      let calls = 0;
      const once = (): Promise<boolean> =>
        new Promise((done) => {
          calls++;
          client.Unary({ text: 'x' }, (error, reply) => {
            if (error === null) byPod.set(reply!.pod, (byPod.get(reply!.pod) ?? 0) + 1);
            done(error === null);
          });
        });
      const hedgesBefore = hedges?.() ?? 0;
      const result = await closedLoop(once, concurrency, ms, MAX_CALLS_PER_ROUND);
      let answered = 0;
      for (const n of byPod.values()) answered += n;
      return {
        ...result,
        maxShare: Math.max(0, ...byPod.values()) / Math.max(1, answered),
        hedgesPerCall: ((hedges?.() ?? 0) - hedgesBefore) / Math.max(1, calls),
      };
    },
    close,
  };
}

async function main(): Promise<void> {
  if (await playedChildRole(servePods, runner)) return;
  const { info, child, pinning } = await startPods<{ port: number }>(pinClient());
  const running = ONLY === undefined ? CONTENDERS : CONTENDERS.filter((c) => ONLY.has(c.id));
  const grpcJs = installedVersion('@grpc/grpc-js');
  try {
    console.log(
      `# gRPC channel benchmark\n\n${machine()}; @grpc/grpc-js ${grpcJs}; unary calls; pods in a child process, each client in its own, ${pinning}; ${ROUNDS} rounds × ${ROUND_MS} ms per client (median round shown); load average before: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
    );
    const sections: {
      concurrency: number;
      rows: (RoundResult & { id: string; label: string; maxShare: number; vsRoundRobin: number; addedP50: number })[];
      results: ReadonlyMap<string, readonly GrpcRound[]>;
    }[] = [];
    for (const concurrency of hedgingOnly ? [] : [16, 1]) {
      const results = await isolatedRounds<GrpcRound>(
        running.map((c) => c.id),
        info.port,
        TIMING,
        concurrency,
      );
      const rows = running.map((c) => {
        const rounds = results.get(c.id)!;
        const { ratio, addedP50 } = versus(results, c.id, 'round-robin');
        return {
          id: c.id,
          label: c.label,
          ...medianRound(rounds),
          maxShare: median(rounds.map((r) => r.maxShare)),
          vsRoundRobin: ratio,
          addedP50,
        };
      });
      sections.push({ concurrency, rows, results });
      console.log(`## ${concurrency} call${concurrency === 1 ? '' : 's'} in flight\n`);
      console.log(
        table(
          [
            'client',
            'calls/s',
            'vs round_robin (same pass)',
            'client CPU µs/call',
            'p50 µs',
            'p50 added µs (same pass)',
            'p99 µs',
            'busiest pod',
            'errors',
          ],
          rows.map((r) => [
            r.label,
            fixed(r.rps, 0),
            `${fixed(r.vsRoundRobin * 100, 1)}%`,
            fixed(r.cpuUs, 1),
            fixed(r.p50, 0),
            r.id === 'round-robin' ? '—' : fixed(r.addedP50, 0),
            fixed(r.p99, 0),
            `${fixed(r.maxShare * 100, 0)}%`,
            String(r.errors),
          ]),
        ),
      );
      console.log('');
    }
    const hedging = ONLY === undefined ? await hedgingTable(info.port) : undefined;
    const row = (concurrency: number, id: string) => sections.find((s) => s.concurrency === concurrency)!.rows.find((r) => r.id === id)!;
    const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
    const ran = (id: string): boolean => !hedgingOnly && running.some((c) => c.id === id);
    for (const id of ['headless-rr', 'headless-lr', 'headless-ll'].filter(ran)) {
      const ratio = row(16, id).vsRoundRobin;
      const added = row(1, id).addedP50;
      // "No worse than round_robin" within 3%: one run's spread of the per-pass ratio on this machine.
      console.log(
        `Targets, ${row(16, id).label}: throughput ≥ 97% of grpc-js round_robin at 16 in flight: ${fixed(ratio * 100, 1)}% ${verdict(ratio >= 0.97)}; added p50 ≤ 50 µs at 1 in flight: ${fixed(added, 1)} µs ${verdict(added <= 50)}`,
      );
    }
    for (const concurrency of [16, 1]) {
      const section = sections.find((s) => s.concurrency === concurrency)!;
      for (const [id, what] of [
        ['headless-rr-config', 'Service config'],
        ['headless-rr-timeout', 'Service config with timeouts'],
      ] as const) {
        if (!ran(id) || !ran('headless-rr')) continue;
        const ratio = versus(section.results, id, 'headless-rr');
        console.log(
          `${what} vs none (round-robin, ${concurrency} in flight, same pass): ${fixed(ratio.ratio * 100, 1)}% of the calls/s, p50 ${ratio.addedP50 >= 0 ? '+' : ''}${fixed(ratio.addedP50, 1)} µs`,
        );
      }
    }
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/grpc.json',
      `${JSON.stringify({ machine: machine(), pinning, grpcJs, rounds: ROUNDS, roundMs: ROUND_MS, sections: sections.map(({ concurrency, rows }) => ({ concurrency, rows })), hedging }, null, 2)}\n`,
    );
  } finally {
    child.stdin?.end();
    child.kill();
  }
}

/** The hedging table: p50/p99 against a stalling pod, with and without hedging. */
async function hedgingTable(port: number): Promise<(RoundResult & { id: string; label: string; hedgesPerCall: number })[]> {
  const results = await isolatedRounds<GrpcRound>(
    HEDGING.map((c) => c.id),
    port,
    TIMING,
    HEDGE_CONCURRENCY,
  );
  const rows = HEDGING.map((c) => {
    const rounds = results.get(c.id)!;
    return { id: c.id, label: c.label, ...medianRound(rounds), hedgesPerCall: median(rounds.map((r) => r.hedgesPerCall)) };
  });
  console.log(`## Hedging: one pod of 3 stalls ${STALL_MS} ms, ${HEDGE_CONCURRENCY} calls in flight\n`);
  console.log(
    table(
      ['client', 'calls/s', 'p50 µs', 'p99 µs', 'hedges per call', 'errors'],
      rows.map((r) => [r.label, fixed(r.rps, 0), fixed(r.p50, 0), fixed(r.p99, 0), fixed(r.hedgesPerCall, 3), String(r.errors)]),
    ),
  );
  console.log('');
  return rows;
}

await main();
