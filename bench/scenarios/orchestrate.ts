/**
 * The orchestrator: one Knot DNS server shaped like CoreDNS (TTL 5) behind a counting proxy, one
 * pods process, and for every run × scenario × contender a fresh client process driving a closed
 * loop while the scenario script scales, crashes and restarts pods. Contenders run one at a time
 * (never two loads at once), in an order that rotates from run to run.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ClusterModel, type PodEndpoint } from '../../src/testing/model.js';
import { KNOT_ENV, startKnot, type KnotDns } from '../../test/support/knot.js';
import { installedVersion, machine } from '../support/measure.js';
import { analyze, SERIES_BUCKET_MS, type TrialMetrics } from './analyze.js';
import { CONTENDERS, contenderById } from './contenders.js';
import { DnsProxy } from './dns-proxy.js';
import {
  jsonLines,
  now,
  repoRoot,
  sleep,
  type ClientConfig,
  type ClientMessage,
  type ContenderId,
  type PodCommand,
  type PodPorts,
  type PodReply,
} from './protocol.js';
import { Results } from './report.js';
import { SCENARIOS, scenarioById, type Scenario, type TrialContext } from './scenarios.js';

export interface BenchOptions {
  readonly runs: number;
  readonly scenarios: readonly Scenario[];
  readonly contenders: readonly ContenderId[];
  readonly concurrency: number;
  readonly maxRequests: number;
  readonly outDir: string;
  readonly chartsDir: string | undefined;
  readonly updateDocs: boolean;
  readonly command: string;
}

const TTL_S = 5;
const SERVICE = 'web-headless';
const NAMESPACE = 'default';
const REQUEST_TIMEOUT_MS = 5000;
/** Spawning a client, starting pods, tearing down: measured ~1–1.5 s per trial on 2 shared cores. */
const TRIAL_OVERHEAD_MS = 1500;

type Child = ChildProcessByStdio<Writable, Readable, null>;
type PodCommandBody = PodCommand extends infer C ? (C extends unknown ? Omit<C, 'id'> : never) : never;

// ---------------------------------------------------------------- pods process

class PodsProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: PodReply) => void>();
  private constructor(private readonly child: Child) {
    jsonLines<PodReply>(child.stdout, (reply) => {
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
    child.stdin.on('error', () => {});
  }

  static start(): PodsProcess {
    const child = spawn(process.execPath, [process.argv[1]!, '--role', 'pods'], { stdio: ['pipe', 'pipe', 'inherit'], cwd: repoRoot() });
    return new PodsProcess(child);
  }

  async command(command: PodCommandBody, timeoutMs = 10_000): Promise<Extract<PodReply, { ok: true }>> {
    const id = this.nextId++;
    const reply = await new Promise<PodReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`pods process: no answer to ${command.op} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
    });
    if (!reply.ok) throw new Error(`pods process: ${command.op} failed: ${reply.error}`);
    return reply;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- one trial

interface Env {
  readonly knot: KnotDns;
  readonly proxy: DnsProxy;
  readonly pods: PodsProcess;
  readonly ports: PodPorts;
  readonly options: BenchOptions;
  readonly tmp: string;
  trialCounter: number;
}

class Trial implements TrialContext {
  readonly events: Record<string, number> = {};
  readonly roles: { newIp?: string; deadIp?: string; slowIp?: string } = {};
  oracleIps: readonly string[] = [];
  loadStart = Number.NaN;
  client: Child | undefined;
  private readonly model = new ClusterModel({ ttl: TTL_S });
  private readonly pods: { name: string; ip: string; inDns: boolean }[] = [];
  private nextHost = 11;
  private readonly block: number;

  constructor(private readonly env: Env) {
    // a fresh 127.77.<n>.0/24 per trial: no connection, cache or socket of a previous trial can matter
    this.block = (env.trialCounter++ % 250) + 1;
  }

  async startPod(name: string, options: { inDns?: boolean; delayMs?: number } = {}): Promise<string> {
    const ip = `127.77.${this.block}.${this.nextHost++}`;
    await this.env.pods.command({ op: 'start', name, ip, delayMs: options.delayMs ?? 0 });
    this.pods.push({ name, ip, inDns: options.inDns ?? true });
    return ip;
  }

  setInDns(ip: string, inDns: boolean): void {
    const pod = this.pods.find((p) => p.ip === ip);
    if (pod === undefined) throw new Error(`no pod ${ip}`);
    pod.inDns = inDns;
  }

  async publish(): Promise<number> {
    const { ports } = this.env;
    // StatefulSet pods by name; a restarted pod (same name, new IP) replaces the old one in DNS.
    const endpoints: PodEndpoint[] = this.pods.filter((p) => p.inDns).map((p) => ({ hostname: p.name, ip: p.ip, ready: true }));
    this.model.setService({
      name: SERVICE,
      namespace: NAMESPACE,
      ports: [
        { name: 'http', port: ports.http },
        { name: 'grpc', port: ports.grpc },
        { name: 'grpc-aged', port: ports.grpcAged },
      ],
      pods: endpoints,
    });
    await this.env.knot.publish(this.model.clone());
    return now();
  }

  async crash(ip: string): Promise<number> {
    const at = now();
    await this.env.pods.command({ op: 'crash', ip });
    return at;
  }

  async stop(ip: string, gracePeriodMs: number): Promise<number> {
    const at = now();
    await this.env.pods.command({ op: 'stop', ip, gracePeriodMs });
    return at;
  }

  oracle(ips: readonly string[]): void {
    this.oracleIps = [...ips];
    if (this.client !== undefined && this.client.exitCode === null) this.client.stdin.write(`${JSON.stringify({ type: 'oracle', ips })}\n`);
  }

  async at(ms: number): Promise<void> {
    const wait = this.loadStart + ms - now();
    if (wait > 0) await sleep(wait);
  }
}

async function runTrial(env: Env, scenario: Scenario, contender: ContenderId, run: number): Promise<TrialMetrics> {
  const trial = new Trial(env);
  await scenario.setup(trial);
  const recordsFile = join(env.tmp, `records-${env.trialCounter}.bin`);
  const config: ClientConfig = {
    contender,
    dnsServer: env.proxy.address,
    service: `${SERVICE}.${NAMESPACE}.svc.cluster.local`,
    ports: env.ports,
    oracleIps: trial.oracleIps,
    concurrency: env.options.concurrency,
    durationMs: scenario.durationMs,
    maxRequests: env.options.maxRequests,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    bucketMs: SERIES_BUCKET_MS,
    recordsFile,
  };
  env.proxy.reset();
  const spawnedAt = now();
  // HLB_BENCH_CLIENT_NODE_ARGS='--cpu-prof --cpu-prof-dir=.tmp/prof' profiles the clients.
  const nodeArgs = (process.env.HLB_BENCH_CLIENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child: Child = spawn(process.execPath, [...nodeArgs, process.argv[1]!, '--role', 'client', JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: repoRoot(),
    env: { ...process.env, GRPC_NODE_USE_ALTERNATIVE_RESOLVER: 'true' },
  });
  child.stdin.on('error', () => {});
  trial.client = child;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  type Summary = Extract<ClientMessage, { type: 'done' }>['summary'];
  let done: (summary: Summary) => void = () => {};
  const finished = new Promise<Summary>((resolve, reject) => {
    done = resolve;
    void exited.then((code) => reject(new Error(`${contender}: the client exited (${code}) without results`)));
  });
  finished.catch(() => {}); // awaited below, unless the start fails
  try {
    const started = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${contender}: the client did not start within 20 s`)), 20_000);
      jsonLines<ClientMessage>(child.stdout, (message) => {
        if (message.type === 'started') {
          clearTimeout(timer);
          resolve(message.loadStart);
        } else if (message.type === 'fatal') {
          clearTimeout(timer);
          reject(new Error(`${contender}: ${message.error}`));
        } else if (message.type === 'done') {
          done(message.summary);
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${contender}: the client exited (${code}) before starting`));
      });
    });
    trial.loadStart = await started;
    await scenario.script(trial);
    const summary = await withTimeout(finished, scenario.durationMs + 30_000, `${contender}: no results`);
    const bytes = readFileSync(recordsFile);
    const records = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
    rmSync(recordsFile, { force: true });
    return analyze({
      scenario: scenario.id,
      contender,
      run,
      summary,
      records: Float64Array.from(records),
      events: trial.events,
      roles: trial.roles,
      dns: [...env.proxy.queries],
      spawnedAt,
    });
  } finally {
    if (child.exitCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await env.pods.command({ op: 'reset' });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}

// ---------------------------------------------------------------- the whole run

export function expectedDurationMs(options: Pick<BenchOptions, 'runs' | 'scenarios' | 'contenders'>): number {
  const perRun = options.scenarios.reduce((sum, s) => sum + (s.durationMs + TRIAL_OVERHEAD_MS) * options.contenders.length, 0);
  return perRun * options.runs + 3000;
}

function versions(): Record<string, string> {
  let knot = 'unknown';
  try {
    knot = execFileSync('knotd', ['-V'], { env: KNOT_ENV, encoding: 'utf8' }).trim().split('\n')[0] ?? 'unknown';
  } catch {
    // reported as unknown
  }
  return {
    node: process.version,
    undici: installedVersion('undici', repoRoot()),
    'grpc-js': installedVersion('@grpc/grpc-js', repoRoot()),
    'headless-lb': installedVersion('.', repoRoot()),
    knot,
  };
}

export async function runBench(options: BenchOptions): Promise<void> {
  const expected = expectedDurationMs(options);
  console.log(
    `# Scenario benchmark\n\n${options.runs} run(s) × ${options.scenarios.length} scenario(s) × ${options.contenders.length} contender(s), ${options.concurrency} requests in flight; expected duration ≈ ${Math.ceil(expected / 60_000)} min (${Math.round(expected / 1000)} s)\n`,
  );
  const tmp = join(repoRoot(), '.tmp', 'bench', 'scenarios-records');
  mkdirSync(tmp, { recursive: true });
  mkdirSync(options.outDir, { recursive: true });

  const knot = await startKnot({ model: new ClusterModel({ ttl: TTL_S }) });
  const cleanup: (() => Promise<void>)[] = [() => knot.close()];
  const onSignal = (): void => {
    void Promise.allSettled(cleanup.map((c) => c())).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const proxy = await DnsProxy.start(knot.port);
    cleanup.unshift(() => proxy.close());
    const pods = PodsProcess.start();
    cleanup.unshift(() => pods.close());
    const ports = (await pods.command({ op: 'ports' })).ports!;
    const env: Env = { knot, proxy, pods, ports, options, tmp, trialCounter: 0 };
    const trials: TrialMetrics[] = [];
    const startedAt = new Date();
    const t0 = now();
    for (let run = 1; run <= options.runs; run++) {
      const runTrials: TrialMetrics[] = [];
      for (const [si, scenario] of options.scenarios.entries()) {
        const order = rotate(options.contenders, run - 1 + si);
        for (const contender of order) {
          const label = `run ${run}/${options.runs} ${scenario.id} ${contender}`;
          try {
            const metrics = await runTrial(env, scenario, contender, run);
            runTrials.push(metrics);
            console.log(`${label.padEnd(32)} ${brief(metrics)}  [${Math.round((now() - t0) / 1000)} s]`);
          } catch (error) {
            console.log(`${label.padEnd(32)} ERROR ${(error as Error).message}`);
            await pods.command({ op: 'reset' }).catch(() => {});
          }
        }
      }
      trials.push(...runTrials);
      const file = join(options.outDir, `run-${run}.json`);
      writeFileSync(
        file,
        `${JSON.stringify({ run, startedAt: startedAt.toISOString(), machine: machine(), versions: versions(), trials: runTrials }, null, 1)}\n`,
      );
    }
    publish(new Results(trials), options, startedAt, (now() - t0) / 1000, undefined);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const c of cleanup) await c().catch(() => {});
  }
}

/** Prints and writes the Markdown, the charts and (with --update-docs) the docs block. */
function publish(results: Results, options: BenchOptions, startedAt: Date, elapsedS: number, meta: Meta | undefined): void {
  const writeJson = meta === undefined;
  const info = meta ?? { machine: machine(), versions: versions() };
  const markdown = renderMarkdown(results, options, startedAt, elapsedS, info);
  console.log(`\n${markdown}`);
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, 'latest.md'), `${markdown}\n`);
  if (writeJson) {
    const json = {
      startedAt: startedAt.toISOString(),
      elapsedS,
      command: options.command,
      machine: info.machine,
      versions: info.versions,
      runs: results.runs,
      trials: results.trials,
    };
    writeFileSync(join(options.outDir, 'latest.json'), `${JSON.stringify(json, null, 1)}\n`);
  }
  if (options.chartsDir !== undefined) {
    mkdirSync(options.chartsDir, { recursive: true });
    for (const [scenario, svg] of results.charts(1)) writeFileSync(join(options.chartsDir, `scenario-${scenario.toLowerCase()}.svg`), svg);
    console.log(`charts: ${options.chartsDir}/scenario-s*.svg`);
  }
  if (options.updateDocs) updateDocs(markdown);
  console.log(`results: ${options.outDir}/${writeJson ? 'run-*.json, latest.json, ' : ''}latest.md`);
}

/** `--render <latest.json>`: the tables, charts and docs again from saved results, without running anything. */
export function renderSaved(file: string, options: BenchOptions): void {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as {
    startedAt: string;
    elapsedS?: number;
    command: string;
    machine: string;
    versions: Record<string, string>;
    trials: TrialMetrics[];
  };
  publish(new Results(saved.trials), { ...options, command: saved.command }, new Date(saved.startedAt), saved.elapsedS ?? 0, {
    machine: saved.machine,
    versions: saved.versions,
  });
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = ((by % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function brief(m: TrialMetrics): string {
  const parts = [`${Math.round(m.throughput)} req/s`, `failed ${m.failed}`];
  if (m.newFirstS !== undefined) parts.push(`new ${m.newFirstS === null ? 'never' : `${m.newFirstS.toFixed(2)} s`}`);
  if (m.deadLastTriedS !== undefined)
    parts.push(`dead tried ${m.deadLastTriedS.toFixed(2)} s${m.deadTriedUntilEnd === true ? ' (end)' : ''}`);
  if (m.slowSharePct !== undefined) parts.push(`slow ${m.slowSharePct.toFixed(1)}%`);
  parts.push(`p50/p99/p99.9 ${m.p50.toFixed(1)}/${m.p99.toFixed(1)}/${m.p999.toFixed(1)} ms`);
  parts.push(`dns ${m.dns.queries}q/${m.dns.refreshes}r`);
  return parts.join(', ');
}

interface Meta {
  readonly machine: string;
  readonly versions: Record<string, string>;
}

export function renderMarkdown(
  results: Results,
  options: Pick<BenchOptions, 'command'>,
  startedAt: Date,
  elapsedS: number,
  meta: Meta,
): string {
  const v = meta.versions;
  const runs = results.runs;
  const targets = results.targets();
  const lines = [
    `Measured ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${options.command}\` (${runs} run${runs === 1 ? '' : 's'}${runs > 1 ? '; medians, min–max in brackets' : ''}; ${Math.round(elapsedS / 60)} min).`,
    `Machine: ${meta.machine}. Versions: Node ${v.node}, undici ${v.undici}, @grpc/grpc-js ${v['grpc-js']}, headless-lb ${v['headless-lb']}, ${v.knot}.`,
    '',
    results.summaryTable(),
    '',
    'Targets (headless-lb contenders):',
    '',
    targets.table,
  ];
  for (const scenario of results.scenarios()) {
    const s = scenarioById(scenario);
    lines.push('', `#### ${s.title}`, '', s.description, '', results.detailTable(scenario));
  }
  return lines.join('\n');
}

const BEGIN = '<!-- scenarios:begin -->';
const END = '<!-- scenarios:end -->';

/** Replaces the generated block of docs/scenarios.md (between the markers). */
function updateDocs(markdown: string): void {
  const file = join(repoRoot(), 'docs', 'scenarios.md');
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) {
    console.log(`docs/scenarios.md has no ${BEGIN} … ${END} block: not updated`);
    return;
  }
  writeFileSync(file, `${text.slice(0, begin + BEGIN.length)}\n${markdown}\n${text.slice(end)}`);
  console.log('docs/scenarios.md updated');
}

export function parseArgs(argv: readonly string[]): BenchOptions {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const runs = Number(value('--runs') ?? 1);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error('--runs: an integer from 1 to 20');
  const scenarios = (value('--scenarios') ?? SCENARIOS.map((s) => s.id).join(',')).split(',').map(scenarioById);
  const contenders = (value('--contenders') ?? CONTENDERS.map((c) => c.id).join(',')).split(',').map((id) => contenderById(id).id);
  const concurrency = Number(value('--concurrency') ?? 16);
  const outDir = value('--out') ?? join(repoRoot(), 'bench', 'scenarios', 'results');
  const noCharts = argv.includes('--no-charts');
  const rendering = value('--render') !== undefined;
  return {
    runs,
    scenarios,
    contenders,
    concurrency,
    maxRequests: 2_000_000,
    outDir,
    chartsDir: noCharts ? undefined : (value('--charts') ?? join(repoRoot(), 'docs', 'img')),
    updateDocs: argv.includes('--update-docs'),
    command: rendering ? '' : `npm run bench:scenarios${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
  };
}
