/**
 * The HTTP dispatcher in fresh processes, as an application meets it: a process starts, makes one
 * client, sends 2,000 warm-up requests, then 40,000 more, 16 in flight, and the throughput of
 * those 40,000 is what counts (`bench/http.ts` runs long-lived clients for 25 rounds instead).
 * Contenders, each in a new process per run, interleaved in a rotating order:
 *
 *   - `createDispatcher` over 3 pods (round-robin, and least-latency);
 *   - a plain undici `Agent` over the same 3 pods (the client takes the pods in turn);
 *   - a plain undici `Pool` to one pod.
 *
 * The pods (3 node:http servers on 127.0.84.11–13) run in a child process pinned to CPU 1, the
 * clients to CPU 0 (`--no-pin` to let the scheduler decide). Reported per contender: the median,
 * lowest and highest throughput over the runs, the median of the per-run ratios to the Agent
 * (runs next to each other), the client's CPU time per request and its time in garbage
 * collection. Bounded: about 2 min with 7 runs (`--runs N`, `--quick`: 3 runs of 20,000).
 * `--node-flags "<flags>"` passes V8 flags to the clients (`--trace-deopt`, `--cpu-prof`, ...), whose
 * output is then kept in .tmp/bench/http-fresh/ (also with `--timeline`: progress every 100 ms);
 * `--only headless-rr,agent` runs only those; `--warmup N` changes the warm-up.
 *
 *   node bench/support/run.mjs http-fresh            (npm run bench -- http-fresh)
 *   node bench/support/run.mjs http-fresh --runs 9
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { Agent, Pool, request, type Dispatcher } from 'undici';
import { createBalancer, type PickerSpec } from '../src/index.js';
import { createDispatcher } from '../src/http/index.js';
import { closedLoop, pinClient, serveHttpPods, startPods } from './support/adapter-bench.js';
import { fixed, installedVersion, machine, median, table } from './support/measure.js';

const ADDRESSES = ['127.0.84.11', '127.0.84.12', '127.0.84.13'];
const CONCURRENCY = 16;

function argument(flag: string): string | undefined {
  const at = process.argv.indexOf(flag);
  return at < 0 ? undefined : process.argv[at + 1];
}

const quick = process.argv.includes('--quick');
const RUNS = Number(argument('--runs') ?? (quick ? 3 : 7));
const REQUESTS = quick ? 20_000 : 40_000;
const WARMUP = Number(argument('--warmup') ?? 2_000);
const TIMELINE = process.argv.includes('--timeline');

// ---------------------------------------------------------------- pods (child process)

function servePods(): Promise<void> {
  return serveHttpPods(ADDRESSES);
}

// ---------------------------------------------------------------- one fresh client (child process)

interface Client {
  readonly dispatcher: Dispatcher;
  /** The URL of the n-th request. */
  url(n: number): string;
  close(): Promise<void>;
}

function headless(picker: PickerSpec, port: number): Client {
  const lb = createBalancer({ endpoints: ADDRESSES.map((address, i) => ({ address, port, name: `web-${i}` })), picker, service: 'bench' });
  const dispatcher = createDispatcher(lb);
  const url = `http://web-headless.default.svc.cluster.local:${port}/`;
  return {
    dispatcher,
    url: () => url,
    close: async () => {
      await dispatcher.close();
      await lb.close();
    },
  };
}

const CONTENDERS: Readonly<Record<string, { label: string; make(port: number): Client }>> = {
  'headless-rr': { label: 'createDispatcher, 3 pods, round-robin', make: (port) => headless('round-robin', port) },
  'headless-ll': { label: 'createDispatcher, 3 pods, least-latency', make: (port) => headless('least-latency', port) },
  agent: {
    label: 'undici Agent, 3 pods in turn',
    make: (port) => {
      const agent = new Agent();
      const urls = ADDRESSES.map((a) => `http://${a}:${port}/`);
      return { dispatcher: agent, url: (n) => urls[n % urls.length]!, close: () => agent.close() };
    },
  },
  pool: {
    label: 'undici Pool, 1 pod',
    make: (port) => {
      const pool = new Pool(`http://${ADDRESSES[0]}:${port}`);
      const url = `http://${ADDRESSES[0]}:${port}/`;
      return { dispatcher: pool, url: () => url, close: () => pool.close() };
    },
  },
};
const IDS = Object.keys(CONTENDERS);

interface FreshResult {
  readonly rps: number;
  readonly cpuUs: number;
  readonly gcMs: number;
  readonly gcCount: number;
  readonly errors: number;
}

async function freshClient(id: string, port: number, requests: number): Promise<void> {
  const client = CONTENDERS[id]!.make(port);
  let n = 0;
  const get = async (): Promise<boolean> => {
    const res = await request(client.url(n++), { dispatcher: client.dispatcher });
    await res.body.dump();
    return res.statusCode === 200;
  };
  await closedLoop(get, CONCURRENCY, 600_000, WARMUP);
  let gcMs = 0;
  let gcCount = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration;
      gcCount++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  // --timeline: requests and CPU time every 100 ms, to tell a slow phase from a slow run.
  const timeline = process.argv.includes('--timeline')
    ? setInterval(
        () =>
          process.stdout.write(
            `# ${performance.now().toFixed(0)} ms: ${n} requests, CPU ${(process.cpuUsage().user / 1000).toFixed(0)} ms, GC ${gcMs.toFixed(0)} ms\n`,
          ),
        100,
      )
    : undefined;
  const round = await closedLoop(get, CONCURRENCY, 600_000, requests);
  clearInterval(timeline);
  await new Promise((resolve) => setImmediate(resolve)); // the last GC entries
  observer.disconnect();
  const result: FreshResult = { rps: round.rps, cpuUs: round.cpuUs, gcMs, gcCount, errors: round.errors };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await client.close();
}

/** With `--node-flags`, each client's stdout (V8's traces) is kept in .tmp/bench/http-fresh/<id>-<run>.log. */
const LOG_DIR = '.tmp/bench/http-fresh';

function runFresh(id: string, run: number, port: number, nodeFlags: readonly string[]): Promise<FreshResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        ...nodeFlags,
        '--enable-source-maps',
        process.argv[1]!,
        '--fresh',
        id,
        '--port',
        String(port),
        '--requests',
        String(REQUESTS),
        '--warmup',
        String(WARMUP),
        ...(TIMELINE ? ['--timeline'] : []),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (nodeFlags.length > 0 || TIMELINE) {
        mkdirSync(LOG_DIR, { recursive: true });
        writeFileSync(`${LOG_DIR}/${id}-${run + 1}.log`, out);
      }
      const line = out
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{"rps"'))
        .pop();
      if (code !== 0 || line === undefined) reject(new Error(`fresh client ${id} exited ${code}: ${out.slice(-500)}`));
      else resolve(JSON.parse(line) as FreshResult);
    });
  });
}

// ---------------------------------------------------------------- parent

/** A client that failed (a pod connection refused under load, say) is said and run once more. */
function retryOnce<T>(error: unknown, again: () => Promise<T>): Promise<T> {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}; running it once more\n`);
  return again();
}

async function main(): Promise<void> {
  if (process.argv.includes('--serve-pods')) return servePods();
  const fresh = argument('--fresh');
  if (fresh !== undefined) return freshClient(fresh, Number(argument('--port')), Number(argument('--requests')));

  const nodeFlags = (argument('--node-flags') ?? '').split(' ').filter((f) => f !== '');
  const only = argument('--only')?.split(',') ?? IDS;
  const ids = IDS.filter((id) => only.includes(id));
  const { info, child, pinning } = await startPods<{ port: number }>(pinClient());
  const undici = installedVersion('undici');
  const loadBefore = loadavg();
  try {
    const results = new Map<string, FreshResult[]>(ids.map((id) => [id, []]));
    for (let run = 0; run < RUNS; run++) {
      // Rotated, so that no contender always runs first (or right after the same neighbour).
      const order = ids.map((_, i) => ids[(i + run) % ids.length]!);
      for (const id of order)
        results
          .get(id)!
          .push(
            await runFresh(id, run, info.port, nodeFlags).catch((error: unknown) =>
              retryOnce(error, () => runFresh(id, run, info.port, nodeFlags)),
            ),
          );
      process.stderr.write(
        `run ${run + 1}/${RUNS} (load ${loadavg()[0]!.toFixed(2)}): ${order.map((id) => `${id} ${fixed(results.get(id)!.at(-1)!.rps, 0)}`).join(', ')}\n`,
      );
    }
    const loadAfter = loadavg();
    const agent = results.get('agent');
    const rows = ids.map((id) => {
      const runs = results.get(id)!;
      const rps = runs.map((r) => r.rps);
      const vsAgent = agent === undefined ? Number.NaN : median(runs.map((r, i) => r.rps / agent[i]!.rps));
      return {
        id,
        label: CONTENDERS[id]!.label,
        median: median(rps),
        min: Math.min(...rps),
        max: Math.max(...rps),
        vsAgent,
        cpuUs: median(runs.map((r) => r.cpuUs)),
        gcMs: median(runs.map((r) => r.gcMs)),
        errors: runs.reduce((n, r) => n + r.errors, 0),
        runs: runs.map((r) => ({ rps: Math.round(r.rps), cpuUs: Number(r.cpuUs.toFixed(1)), gcMs: Math.round(r.gcMs) })),
      };
    });
    const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
    console.log(
      `# HTTP dispatcher in fresh processes\n\n${machine()}; undici ${undici}; ${pinning}; ${RUNS} runs, each contender in a new process per run (${fixed(WARMUP, 0)} warm-up requests, then ${fixed(REQUESTS, 0)}, ${CONCURRENCY} in flight)${nodeFlags.length > 0 ? `; client flags ${nodeFlags.join(' ')}` : ''}; load average before: ${load(loadBefore)}, after: ${load(loadAfter)}\n`,
    );
    console.log(
      table(
        ['client', 'median req/s', 'lowest', 'highest', 'vs Agent (median of runs)', 'client CPU µs/req', 'GC ms (median)', 'errors'],
        rows.map((r) => [
          r.label,
          fixed(r.median, 0),
          fixed(r.min, 0),
          fixed(r.max, 0),
          agent === undefined ? '—' : `${fixed(r.vsAgent * 100, 1)}%`,
          fixed(r.cpuUs, 1),
          fixed(r.gcMs, 0),
          String(r.errors),
        ]),
      ),
    );
    console.log(
      `\nRuns in run order (req/s, CPU µs/req, GC ms):\n${rows.map((r) => `- ${r.id}: ${r.runs.map((x) => `${x.rps} ${x.cpuUs} ${x.gcMs}`).join(' | ')}`).join('\n')}\n`,
    );
    if (agent !== undefined) {
      // The per-run ratio, as bench/http.ts compares within a pass: the VM's speed drifts between runs.
      for (const r of rows.filter((row) => row.id.startsWith('headless'))) {
        console.log(
          `Target, ${r.label}: within 5% of the Agent (median of per-run ratios): ${fixed(r.vsAgent * 100, 1)}% ${r.vsAgent >= 0.95 ? 'PASS' : 'FAIL'}`,
        );
      }
    }
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/http-fresh.json',
      `${JSON.stringify({ machine: machine(), pinning, undici, runs: RUNS, requests: REQUESTS, warmup: WARMUP, loadBefore, loadAfter, rows }, null, 2)}\n`,
    );
  } finally {
    child.stdin?.end();
    child.kill();
  }
}

await main();
