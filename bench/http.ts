/**
 * HTTP throughput and latency of `createDispatcher` (headless-lb/http) against undici's own
 * dispatchers over the same pods:
 *
 *   - `Pool` to one pod            — the floor: no balancing at all;
 *   - `BalancedPool` over the pods  — undici's round-robin over upstreams;
 *   - `createDispatcher` over the pods (round-robin, and least-latency).
 *
 * The pods (3 node:http servers on 127.0.84.11–13, one port) run in a child process so that
 * their CPU does not share the client's core. Every client runs `undici.request` + `body.dump()`
 * in a closed loop: 16 requests in flight for the throughput table, 1 for the latency table.
 * Each scenario runs several rounds in rotating order; the table shows the median round.
 * Bounded: about 70 s in all (`--quick`: about 20 s).
 *
 *   node bench/support/run.mjs http            (npm run bench -- http)
 *   node bench/support/run.mjs http --quick
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { BalancedPool, Pool, request, type Dispatcher } from 'undici';
import { createBalancer, type Balancer, type PickerOption } from '../src/index.js';
import { createDispatcher } from '../src/http/index.js';
import { fixed, machine, median, table } from './support/measure.js';

const ADDRESSES = ['127.0.84.11', '127.0.84.12', '127.0.84.13'];
const BODY = Buffer.from(JSON.stringify({ ok: true, pod: 'web-0', padding: 'x'.repeat(64) }));
const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 2 : 5;
const ROUND_MS = quick ? 800 : 1500;
const WARMUP_MS = quick ? 300 : 1000;
const MAX_REQUESTS_PER_ROUND = 400_000;

// ---------------------------------------------------------------- pods (child process)

async function servePods(): Promise<void> {
  let port = 0;
  for (const address of ADDRESSES) {
    const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
        res.end(BODY);
      });
    });
    server.listen(port, address);
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  // Exit with the parent: stdin closes when it goes away.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
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
}

async function round(dispatcher: Dispatcher, url: string, concurrency: number, ms: number): Promise<RoundResult> {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const stopAt = started + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt && latencies.length < MAX_REQUESTS_PER_ROUND) {
      const t0 = performance.now();
      try {
        const res = await request(url, { dispatcher });
        await res.body.dump();
        if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 1000;
  return { rps: (latencies.length / elapsed) * 1000, p50: at(0.5), p99: at(0.99), errors };
}

interface Scenario {
  readonly id: string;
  readonly label: string;
  make(port: number): { dispatcher: Dispatcher; close(): Promise<void> };
}

function headless(picker: PickerOption): Scenario['make'] {
  return (port) => {
    const lb: Balancer = createBalancer({ endpoints: ADDRESSES.map((address, i) => ({ address, port, name: `web-${i}` })), picker, service: 'bench' });
    const dispatcher = createDispatcher(lb);
    return {
      dispatcher,
      close: async () => {
        await dispatcher.close();
        await lb.close();
      },
    };
  };
}

const SCENARIOS: readonly Scenario[] = [
  {
    id: 'pool',
    label: 'undici Pool, 1 pod',
    make: (port) => {
      const pool = new Pool(`http://${ADDRESSES[0]}:${port}`);
      return { dispatcher: pool, close: () => pool.close() };
    },
  },
  {
    id: 'balanced',
    label: 'undici BalancedPool, 3 pods',
    make: (port) => {
      const pool = new BalancedPool(ADDRESSES.map((a) => `http://${a}:${port}`));
      return { dispatcher: pool, close: () => pool.close() };
    },
  },
  { id: 'headless-rr', label: 'createDispatcher, 3 pods, round-robin', make: headless('round-robin') },
  { id: 'headless-ll', label: 'createDispatcher, 3 pods, least-latency', make: headless('least-latency') },
];

async function measure(port: number, concurrency: number): Promise<Map<string, RoundResult[]>> {
  const url = `http://web-headless.default.svc.cluster.local:${port}/`;
  const results = new Map<string, RoundResult[]>(SCENARIOS.map((s) => [s.id, []]));
  const live = SCENARIOS.map((s) => ({ scenario: s, ...s.make(port) }));
  const direct = (s: Scenario): string => (s.id === 'pool' || s.id === 'balanced' ? `http://${ADDRESSES[0]}:${port}/` : url);
  for (const { scenario, dispatcher } of live) await round(dispatcher, direct(scenario), concurrency, WARMUP_MS);
  for (let r = 0; r < ROUNDS; r++) {
    // rotate the order so that no scenario always runs first (or after the same neighbour)
    for (let i = 0; i < live.length; i++) {
      const { scenario, dispatcher } = live[(i + r) % live.length]!;
      results.get(scenario.id)!.push(await round(dispatcher, direct(scenario), concurrency, ROUND_MS));
    }
  }
  await Promise.all(live.map((l) => l.close()));
  return results;
}

function summarize(results: Map<string, RoundResult[]>): { id: string; label: string; rps: number; p50: number; p99: number; errors: number }[] {
  return SCENARIOS.map((s) => {
    const rounds = results.get(s.id)!;
    return {
      id: s.id,
      label: s.label,
      rps: median(rounds.map((r) => r.rps)),
      p50: median(rounds.map((r) => r.p50)),
      p99: median(rounds.map((r) => r.p99)),
      errors: rounds.reduce((n, r) => n + r.errors, 0),
    };
  });
}

function undiciVersion(): string {
  try {
    return (JSON.parse(readFileSync('node_modules/undici/package.json', 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--serve-pods')) return servePods();
  const { port, child } = await startPods();
  try {
    console.log(`# HTTP dispatcher benchmark\n\n${machine()}; undici ${undiciVersion()}; pods in a child process; ${ROUNDS} rounds × ${ROUND_MS} ms per scenario (median round shown); load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
    const sections: { concurrency: number; rows: ReturnType<typeof summarize> }[] = [];
    for (const concurrency of [16, 1]) {
      const rows = summarize(await measure(port, concurrency));
      sections.push({ concurrency, rows });
      const base = rows.find((r) => r.id === 'pool')!;
      console.log(`## ${concurrency} request${concurrency === 1 ? '' : 's'} in flight\n`);
      console.log(
        table(
          ['dispatcher', 'req/s', 'vs Pool', 'p50 µs', 'p50 added µs', 'p99 µs', 'errors'],
          rows.map((r) => [r.label, fixed(r.rps, 0), `${fixed((r.rps / base.rps) * 100, 1)}%`, fixed(r.p50, 0), r.id === 'pool' ? '—' : fixed(r.p50 - base.p50, 0), fixed(r.p99, 0), String(r.errors)]),
        ),
      );
      console.log('');
    }
    const c16 = sections[0]!.rows;
    const c1 = sections[1]!.rows;
    const rr16 = c16.find((r) => r.id === 'headless-rr')!;
    const rr1 = c1.find((r) => r.id === 'headless-rr')!;
    const pool16 = c16.find((r) => r.id === 'pool')!;
    const pool1 = c1.find((r) => r.id === 'pool')!;
    const throughputOk = rr16.rps >= 0.9 * pool16.rps;
    const latencyOk = rr1.p50 - pool1.p50 <= 50;
    console.log(`Targets: throughput ≥ 90% of Pool at 16 in flight: ${fixed((rr16.rps / pool16.rps) * 100, 1)}% ${throughputOk ? 'PASS' : 'FAIL'}; added p50 ≤ 50 µs at 1 in flight: ${fixed(rr1.p50 - pool1.p50, 1)} µs ${latencyOk ? 'PASS' : 'FAIL'}`);
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/http.json', `${JSON.stringify({ machine: machine(), rounds: ROUNDS, roundMs: ROUND_MS, sections }, null, 2)}\n`);
  } finally {
    child.stdin?.end();
    child.kill();
  }
}

await main();
