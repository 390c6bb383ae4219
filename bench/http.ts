/**
 * HTTP throughput and latency of `createDispatcher` (headless-lb/http) against undici's own
 * dispatchers over the same pods:
 *
 *   - `Pool` to one pod            — the floor: no balancing at all;
 *   - `BalancedPool` over the pods  — undici's round-robin over upstreams;
 *   - `createDispatcher` over the pods (round-robin, and least-latency).
 *
 * The pods (3 node:http servers on 127.0.84.11–13, one port) run in a child process pinned to
 * CPU 1; each client runs in a process of its own (its own heap and garbage collection, as in an
 * application), all pinned to CPU 0 (`--no-pin` to let the scheduler decide), so that a client's
 * throughput is set by its own CPU cost per request, which is what an adapter adds. Every client
 * runs `undici.request` + `body.dump()` in a closed loop: 16 requests in flight for the
 * throughput table, 1 for the latency table. Each contender runs 25 short rounds in shuffled
 * order (each pass runs every client once, one at a time); the table shows the median round, the client's CPU
 * time per request, and the median of the throughput ratios to `Pool` within each pass (the VM's
 * speed drifts over seconds).
 * Bounded: about 90 s in all (`--quick`: about 25 s).
 *
 *   node bench/support/run.mjs http            (npm run bench -- http)
 *   node bench/support/run.mjs http --quick
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { BalancedPool, Pool, request, type Dispatcher } from 'undici';
import { createBalancer, type Balancer, type PickerSpec } from '../src/index.js';
import { createDispatcher } from '../src/http/index.js';
import {
  closedLoop,
  isolatedRounds,
  medianRound,
  pinClient,
  playedChildRole,
  startPods,
  versus,
  type ContenderRunner,
  type RoundResult,
  type RoundTiming,
  serveHttpPods,
} from './support/adapter-bench.js';
import { fixed, installedVersion, machine, table } from './support/measure.js';

const ADDRESSES = ['127.0.84.11', '127.0.84.12', '127.0.84.13'];
const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 25;
const ROUND_MS = quick ? 300 : 400;
const WARMUP_MS = 1000; // each client warms up in its own process: its JIT starts cold
const TIMING: RoundTiming = { rounds: ROUNDS, warmupMs: WARMUP_MS, roundMs: ROUND_MS };
const MAX_REQUESTS_PER_ROUND = 400_000;

// ---------------------------------------------------------------- pods (child process)

function servePods(): Promise<void> {
  return serveHttpPods(ADDRESSES);
}

// ---------------------------------------------------------------- contenders

interface Contender {
  readonly id: string;
  readonly label: string;
  make(port: number): { dispatcher: Dispatcher; url: string; close(): Promise<void> };
}

function headless(picker: PickerSpec): Contender['make'] {
  return (port) => {
    const lb: Balancer = createBalancer({
      endpoints: ADDRESSES.map((address, i) => ({ address, port, name: `web-${i}` })),
      picker,
      service: 'bench',
    });
    const dispatcher = createDispatcher(lb);
    return {
      dispatcher,
      url: `http://web-headless.default.svc.cluster.local:${port}/`,
      close: async () => {
        await dispatcher.close();
        await lb.close();
      },
    };
  };
}

const CONTENDERS: readonly Contender[] = [
  {
    id: 'pool',
    label: 'undici Pool, 1 pod',
    make: (port) => {
      const pool = new Pool(`http://${ADDRESSES[0]}:${port}`);
      return { dispatcher: pool, url: `http://${ADDRESSES[0]}:${port}/`, close: () => pool.close() };
    },
  },
  {
    id: 'balanced',
    label: 'undici BalancedPool, 3 pods',
    make: (port) => {
      const pool = new BalancedPool(ADDRESSES.map((a) => `http://${a}:${port}`));
      return { dispatcher: pool, url: `http://${ADDRESSES[0]}:${port}/`, close: () => pool.close() };
    },
  },
  { id: 'headless-rr', label: 'createDispatcher, 3 pods, round-robin', make: headless('round-robin') },
  { id: 'headless-ll', label: 'createDispatcher, 3 pods, least-latency', make: headless('least-latency') },
];

async function get(dispatcher: Dispatcher, url: string): Promise<boolean> {
  const res = await request(url, { dispatcher });
  await res.body.dump();
  return res.statusCode === 200;
}

/** A contender's process: one dispatcher, running the rounds the parent asks for. */
function runner(id: string, port: number): ContenderRunner<RoundResult> {
  const contender = CONTENDERS.find((c) => c.id === id);
  if (contender === undefined) throw new Error(`no contender ${id}`);
  const { dispatcher, url, close } = contender.make(port);
  return { round: (ms, concurrency) => closedLoop(() => get(dispatcher, url), concurrency, ms, MAX_REQUESTS_PER_ROUND), close };
}

async function main(): Promise<void> {
  if (await playedChildRole(servePods, runner)) return;
  const { info, child, pinning } = await startPods<{ port: number }>(pinClient());
  const undici = installedVersion('undici');
  try {
    console.log(
      `# HTTP dispatcher benchmark\n\n${machine()}; undici ${undici}; pods in a child process, each client in its own, ${pinning}; ${ROUNDS} rounds × ${ROUND_MS} ms per contender (median round shown); load average before: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
    );
    const sections: { concurrency: number; rows: (RoundResult & { id: string; label: string; vsPool: number; addedP50: number })[] }[] = [];
    for (const concurrency of [16, 1]) {
      const results = await isolatedRounds<RoundResult>(
        CONTENDERS.map((c) => c.id),
        info.port,
        TIMING,
        concurrency,
      );
      const rows = CONTENDERS.map((c) => {
        const { ratio, addedP50 } = versus(results, c.id, 'pool');
        return { id: c.id, label: c.label, ...medianRound(results.get(c.id)!), vsPool: ratio, addedP50 };
      });
      sections.push({ concurrency, rows });
      console.log(`## ${concurrency} request${concurrency === 1 ? '' : 's'} in flight\n`);
      console.log(
        table(
          ['dispatcher', 'req/s', 'vs Pool (same pass)', 'client CPU µs/req', 'p50 µs', 'p50 added µs (same pass)', 'p99 µs', 'errors'],
          rows.map((r) => [
            r.label,
            fixed(r.rps, 0),
            `${fixed(r.vsPool * 100, 1)}%`,
            fixed(r.cpuUs, 1),
            fixed(r.p50, 0),
            r.id === 'pool' ? '—' : fixed(r.addedP50, 0),
            fixed(r.p99, 0),
            String(r.errors),
          ]),
        ),
      );
      console.log('');
    }
    const row = (concurrency: number, id: string) => sections.find((s) => s.concurrency === concurrency)!.rows.find((r) => r.id === id)!;
    const ratio = (id: string): number => row(16, id).vsPool;
    const added = (id: string): number => row(1, id).addedP50;
    const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
    for (const id of ['headless-rr', 'headless-ll']) {
      console.log(
        `Targets, ${row(16, id).label}: throughput ≥ 90% of Pool at 16 in flight: ${fixed(ratio(id) * 100, 1)}% ${verdict(ratio(id) >= 0.9)}; added p50 ≤ 50 µs at 1 in flight: ${fixed(added(id), 1)} µs ${verdict(added(id) <= 50)}`,
      );
    }
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/http.json',
      `${JSON.stringify({ machine: machine(), pinning, undici, rounds: ROUNDS, roundMs: ROUND_MS, sections }, null, 2)}\n`,
    );
  } finally {
    child.stdin?.end();
    child.kill();
  }
}

await main();
