/**
 * What the adapter benchmarks (bench/http.ts, http-fresh.ts, otel.ts, grpc.ts) share: pods in a child process, each
 * contender (client) in a process of its own, the clients and the pods pinned to different CPUs,
 * closed-loop rounds in shuffled order with the client's CPU time per request, and medians.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { seededRandom } from '../../test/support/random.js';
import { median, quantile } from './measure.js';

/**
 * Pins this process to CPU 0 and returns the CPU for the pods (1), when there are two CPUs or
 * more and `taskset` exists; otherwise undefined. Pinned, the client's throughput is decided by
 * its own CPU cost per request (what an adapter adds), not by how the scheduler happened to
 * share two cores between client, pods and the kernel's loopback work in that round.
 */
export function pinClient(): number | undefined {
  if (process.platform !== 'linux' || cpus().length < 2 || process.argv.includes('--no-pin')) return undefined;
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  return pinned.status === 0 ? 1 : undefined;
}

/**
 * Starts `node <this script> --serve-pods` and waits for its first stdout line (JSON). The child
 * exits when its stdin closes (with this process). `cpu` (from `pinClient`): pin it there.
 * `pinning` says what was done, for the report: a failed `taskset` is said, not hidden.
 */
export async function startPods<T>(cpu: number | undefined): Promise<{ info: T; child: ChildProcess; pinning: string }> {
  const child = spawn(process.execPath, [process.argv[1]!, '--serve-pods'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill(), 10_000);
  for await (const line of lines) {
    clearTimeout(timer);
    let pinning = 'not pinned';
    if (cpu !== undefined) {
      const pinned =
        child.pid !== undefined &&
        spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(child.pid)], { stdio: 'ignore' }).status === 0;
      pinning = pinned ? `clients pinned to CPU 0, pods to CPU ${cpu}` : 'clients pinned to CPU 0, pods not pinned (taskset failed)';
    }
    return { info: JSON.parse(line) as T, child, pinning };
  }
  throw new Error('the pods process exited before listening');
}

/** One contender's side of the benchmark, in its own process (see `spawnContender`). */
export interface ContenderRunner<R> {
  round(ms: number, concurrency: number): Promise<R>;
  close(): Promise<void>;
}

/** The parent's handle on a contender's process. */
interface RemoteContender<R> {
  readonly id: string;
  round(ms: number, concurrency: number): Promise<R>;
  close(): Promise<void>;
}

type ToContender = { readonly kind: 'round'; readonly ms: number; readonly concurrency: number } | { readonly kind: 'close' };
type FromContender<R> =
  { readonly kind: 'ready' } | { readonly kind: 'result'; readonly result: R } | { readonly kind: 'error'; readonly message: string };

/**
 * Starts `node <this script> --contender <id> <args>` (which calls `serveContender`) and waits
 * until it is ready. Each contender has a heap of its own, as an application with one client
 * has: what its garbage collection costs (how much survives a scavenge, how much is promoted) is
 * its own, not shared with whichever contender ran before it in the same heap. Started after
 * `pinClient`, it inherits the client CPU.
 */
async function spawnContender<R>(id: string, args: readonly string[]): Promise<RemoteContender<R>> {
  const child = spawn(process.execPath, [process.argv[1]!, '--contender', id, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (timeoutMs: number): Promise<FromContender<R>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`contender ${id} did not answer within ${timeoutMs} ms`)), timeoutMs);
      const cleanUp = (): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      const fail = (error: Error): void => {
        cleanUp();
        child.kill();
        reject(error);
      };
      const onMessage = (message: FromContender<R>): void => {
        cleanUp();
        resolve(message);
      };
      const onExit = (code: number | null): void => fail(new Error(`contender ${id} exited (${code})`));
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  const send = (message: ToContender): void => {
    child.send(message);
  };
  const ready = await next(15_000);
  if (ready.kind !== 'ready') throw new Error(`contender ${id}: ${ready.kind === 'error' ? ready.message : 'unexpected message'}`);
  return {
    id,
    async round(ms, concurrency) {
      send({ kind: 'round', ms, concurrency });
      const answer = await next(ms + 30_000);
      if (answer.kind === 'result') return answer.result;
      throw new Error(`contender ${id}: ${answer.kind === 'error' ? answer.message : 'unexpected message'}`);
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const timer = setTimeout(() => child.kill(), 10_000);
      send({ kind: 'close' });
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Call in a contender's process (started by `spawnContender`): runs the rounds asked for, until closed. */
function serveContender<R>(runner: ContenderRunner<R>): void {
  const reply = (message: FromContender<R>): void => {
    process.send!(message);
  };
  let closing = false;
  const close = (): void => {
    if (closing) return;
    closing = true;
    void runner.close().finally(() => process.exit(0));
  };
  process.on('message', (message: ToContender) => {
    if (message.kind === 'close') return close();
    runner.round(message.ms, message.concurrency).then(
      (result) => reply({ kind: 'result', result }),
      (error: unknown) => reply({ kind: 'error', message: error instanceof Error ? error.message : String(error) }),
    );
  });
  process.on('disconnect', close); // the parent went
  reply({ kind: 'ready' });
}

/** The value after `flag` in this process's arguments. */
function argument(flag: string): string | undefined {
  const at = process.argv.indexOf(flag);
  return at < 0 ? undefined : process.argv[at + 1];
}

/**
 * For a benchmark's `main()`: when this process was started as the pods (`--serve-pods`, by
 * `startPods`) or as one contender (`--contender <id> --port <n>`, by `isolatedRounds`), plays
 * that part and returns true; returns false in the parent.
 */
export async function playedChildRole<R>(
  servePods: () => Promise<void>,
  runner: (id: string, port: number) => ContenderRunner<R>,
): Promise<boolean> {
  if (process.argv.includes('--serve-pods')) {
    await servePods();
    return true;
  }
  const contender = argument('--contender');
  if (contender === undefined) return false;
  serveContender(runner(contender, Number(argument('--port'))));
  return true;
}

/**
 * Every contender in a process of its own (see `spawnContender`) against the pods on `port`,
 * run in shuffled passes (`shuffledRounds`) at `concurrency` requests in flight.
 */
export async function isolatedRounds<R>(
  ids: readonly string[],
  port: number,
  timing: RoundTiming,
  concurrency: number,
): Promise<Map<string, R[]>> {
  const remote = await Promise.all(ids.map((id) => spawnContender<R>(id, ['--port', String(port)])));
  return shuffledRounds(remote, timing, (c, ms) => c.round(ms, concurrency));
}

/** What every HTTP pod of the HTTP benches answers: a small JSON body, as an API would. */
const HTTP_POD_BODY = Buffer.from(JSON.stringify({ ok: true, pod: 'web-0', padding: 'x'.repeat(64) }));

/**
 * The pods process of the HTTP benches: one keep-alive HTTP server per address, all on one port,
 * each answering 200 with `HTTP_POD_BODY`; prints `{ port }` and exits with its parent.
 */
export async function serveHttpPods(addresses: readonly string[]): Promise<void> {
  let port = 0;
  for (const address of addresses) {
    const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': HTTP_POD_BODY.length });
        res.end(HTTP_POD_BODY);
      });
    });
    server.listen(port, address);
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  exitWithParent();
}

/** Call from the pods process: exit when the parent goes (its end of stdin closes). */
export function exitWithParent(beforeExit: () => void = () => {}): void {
  const exit = (): void => {
    beforeExit();
    process.exit(0);
  };
  process.stdin.resume();
  process.stdin.on('end', exit);
  process.stdin.on('close', exit);
}

export interface RoundResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** The client process's CPU time (user + system) per request, µs. */
  readonly cpuUs: number;
}

/**
 * One closed-loop round: `concurrency` workers call `once` until `ms` pass or `maxRequests`
 * completed. `once` resolves false for a failed request.
 */
export async function closedLoop(once: () => Promise<boolean>, concurrency: number, ms: number, maxRequests: number): Promise<RoundResult> {
  const latencies: number[] = [];
  let errors = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const stopAt = started + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt && latencies.length < maxRequests) {
      const t0 = performance.now();
      const ok = await once().catch(() => false);
      if (!ok) errors++;
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  return {
    rps: (latencies.length / elapsed) * 1000,
    p50: quantile(latencies, 0.5) * 1000,
    p99: quantile(latencies, 0.99) * 1000,
    errors,
    cpuUs: (used.user + used.system) / latencies.length,
  };
}

/**
 * Runs each contender's round `rounds` times (`roundMs` each) after one warm-up round each
 * (`warmupMs`), in a new shuffled order each time (seeded: the same orders in every run), then
 * closes the contenders. Returns the rounds by id. Contenders that share a process pay part of
 * each other's garbage collection; shuffled, at least none always follows the same neighbour.
 */
export interface RoundTiming {
  readonly rounds: number;
  readonly warmupMs: number;
  readonly roundMs: number;
}

export async function shuffledRounds<C extends { readonly id: string; close(): Promise<unknown> }, R>(
  contenders: readonly C[],
  timing: RoundTiming,
  round: (c: C, ms: number) => Promise<R>,
): Promise<Map<string, R[]>> {
  try {
    const results = new Map<string, R[]>(contenders.map((c) => [c.id, []]));
    for (const contender of contenders) await round(contender, timing.warmupMs);
    const random = seededRandom(0x5eed);
    for (let r = 0; r < timing.rounds; r++) {
      for (const contender of shuffled(contenders, random)) results.get(contender.id)!.push(await round(contender, timing.roundMs));
    }
    return results;
  } finally {
    await Promise.all(contenders.map((c) => c.close()));
  }
}

/** A Fisher–Yates shuffled copy. */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/**
 * `id` against `baseId`, pass by pass (a pass runs every contender's round once): the median of
 * the throughput ratios and of the p50 differences (µs, the latency an adapter adds). The speed
 * of a shared VM drifts over seconds; a pass takes a few seconds, so comparisons within one pass
 * are far steadier than comparisons of two medians taken over the whole run.
 */
export function versus(
  results: ReadonlyMap<string, readonly RoundResult[]>,
  id: string,
  baseId: string,
): { readonly ratio: number; readonly addedP50: number } {
  const rounds = results.get(id)!;
  const base = results.get(baseId)!;
  return { ratio: median(rounds.map((r, i) => r.rps / base[i]!.rps)), addedP50: median(rounds.map((r, i) => r.p50 - base[i]!.p50)) };
}

/** The median of each field over rounds, and the summed errors. */
export function medianRound(rounds: readonly RoundResult[]): RoundResult {
  return {
    rps: median(rounds.map((r) => r.rps)),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    cpuUs: median(rounds.map((r) => r.cpuUs)),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
}
