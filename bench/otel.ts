/**
 * What headless-lb/otel costs per request: the HTTP dispatcher (headless-lb/http, round-robin
 * over 3 pods) with no instrumentation (also inside a traced request: the AsyncLocalStorage context
 * manager carrying an upstream span, the part of tracing's cost that is not this library's),
 * instrumented without an SDK (the API's no-ops), with metrics only, and with metrics and spans
 * inside a traced request (the real SDK: a MeterProvider with a reader, a
 * BasicTracerProvider sampling every trace into a BatchSpanProcessor whose exporter drops the
 * spans, and the AsyncLocalStorage context manager, as the Node SDK sets up).
 *
 * Same method as bench/http.ts: pods in a child process pinned to CPU 1, each client in a process
 * of its own pinned to CPU 0, closed loops of `undici.request` + `body.dump()`, rounds in shuffled
 * order, median round shown, ratios to the uninstrumented dispatcher taken within each pass.
 *
 *   node bench/support/run.mjs otel            (npm run bench -- otel)
 *   node bench/support/run.mjs otel --quick
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  context,
  ROOT_CONTEXT,
  TraceFlags,
  trace,
  type Context,
  type MeterProvider as ApiMeterProvider,
  type TracerProvider as ApiTracerProvider,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { request, type Dispatcher } from 'undici';
import { createBalancer, type Balancer } from '../src/index.js';
import { createDispatcher } from '../src/http/index.js';
import { instrumentBalancer } from '../src/otel/index.js';
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

const ADDRESSES = ['127.0.84.21', '127.0.84.22', '127.0.84.23'];
const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 21;
const ROUND_MS = quick ? 300 : 400;
const TIMING: RoundTiming = { rounds: ROUNDS, warmupMs: 1000, roundMs: ROUND_MS };
const MAX_REQUESTS_PER_ROUND = 400_000;

function servePods(): Promise<void> {
  return serveHttpPods(ADDRESSES);
}

/** Drops what it is given: the cost measured is the SDK's, not an exporter's network. */
const dropSpans: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: () => Promise.resolve(),
};

interface Sdk {
  meterProvider?: ApiMeterProvider;
  tracerProvider?: ApiTracerProvider;
  close(): Promise<void>;
}

function sdk(spans: boolean): Sdk {
  if (spans) context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 10_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const tracerProvider = spans ? new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropSpans)] }) : undefined;
  return {
    meterProvider,
    tracerProvider,
    close: async () => void (await Promise.all([meterProvider.shutdown(), tracerProvider?.shutdown()])),
  };
}

interface Contender {
  readonly id: string;
  readonly label: string;
  /** undefined: not instrumented; 'context': not instrumented, each request in a traced context. */
  readonly otel: 'context' | 'noop' | 'metrics' | 'full' | undefined;
}

const CONTENDERS: readonly Contender[] = [
  { id: 'plain', label: 'no instrumentation', otel: undefined },
  { id: 'context', label: 'no instrumentation, in a traced request', otel: 'context' },
  { id: 'noop', label: 'instrumented, no SDK (API no-ops)', otel: 'noop' },
  { id: 'metrics', label: 'metrics (SDK)', otel: 'metrics' },
  { id: 'full', label: 'metrics + spans (SDK), in a traced request', otel: 'full' },
];

function make(contender: Contender, port: number): { dispatcher: Dispatcher; url: string; close(): Promise<void> } {
  const lb: Balancer = createBalancer({
    endpoints: ADDRESSES.map((address, i) => ({ address, port, name: `web-${i}` })),
    picker: 'round-robin',
    service: 'bench',
  });
  const telemetry = contender.otel === 'metrics' || contender.otel === 'full' ? sdk(contender.otel === 'full') : undefined;
  // What any traced Node application pays, whatever it instruments: context follows every await.
  if (contender.otel === 'context') context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  if (contender.otel !== undefined && contender.otel !== 'context') {
    instrumentBalancer(lb, {
      meterProvider: telemetry?.meterProvider,
      tracerProvider: telemetry?.tracerProvider,
      traces: contender.otel !== 'metrics',
    });
  }
  const dispatcher = createDispatcher(lb);
  return {
    dispatcher,
    url: `http://web-headless.default.svc.cluster.local:${port}/`,
    close: async () => {
      await dispatcher.close();
      await lb.close();
      await telemetry?.close();
    },
  };
}

async function get(dispatcher: Dispatcher, url: string): Promise<boolean> {
  const res = await request(url, { dispatcher });
  await res.body.dump();
  return res.statusCode === 200;
}

/**
 * The context of a request a traced server handles: a sampled span from upstream is current, so
 * the context manager carries a store through every await (with none current, AsyncLocalStorage
 * is not even enabled, and costs nothing).
 */
const TRACED_REQUEST: Context = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
});

function runner(id: string, port: number): ContenderRunner<RoundResult> {
  const contender = CONTENDERS.find((c) => c.id === id);
  if (contender === undefined) throw new Error(`no contender ${id}`);
  const { dispatcher, url, close } = make(contender, port);
  const traced = contender.otel === 'context' || contender.otel === 'full';
  const one = traced ? () => context.with(TRACED_REQUEST, get, undefined, dispatcher, url) : () => get(dispatcher, url);
  return { round: (ms, concurrency) => closedLoop(one, concurrency, ms, MAX_REQUESTS_PER_ROUND), close };
}

async function main(): Promise<void> {
  if (await playedChildRole(servePods, runner)) return;
  const { info, child, pinning } = await startPods<{ port: number }>(pinClient());
  const versions = `undici ${installedVersion('undici')}, @opentelemetry/api ${installedVersion('@opentelemetry/api')}, sdk-metrics ${installedVersion('@opentelemetry/sdk-metrics')}, sdk-trace-base ${installedVersion('@opentelemetry/sdk-trace-base')}`;
  try {
    console.log(
      `# OpenTelemetry overhead (headless-lb/otel)\n\n${machine()}; ${versions}; pods in a child process, each client in its own, ${pinning}; ${ROUNDS} rounds × ${ROUND_MS} ms per contender (median round shown); load average before: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
    );
    const sections: {
      concurrency: number;
      rows: (RoundResult & { id: string; label: string; vsPlain: number; addedP50: number; addedCpuUs: number })[];
    }[] = [];
    for (const concurrency of [16, 1]) {
      const results = await isolatedRounds<RoundResult>(
        CONTENDERS.map((c) => c.id),
        info.port,
        TIMING,
        concurrency,
      );
      const plainCpu = medianRound(results.get('plain')!).cpuUs;
      const rows = CONTENDERS.map((c) => {
        const { ratio, addedP50 } = versus(results, c.id, 'plain');
        const median = medianRound(results.get(c.id)!);
        return { id: c.id, label: c.label, ...median, vsPlain: ratio, addedP50, addedCpuUs: median.cpuUs - plainCpu };
      });
      sections.push({ concurrency, rows });
      console.log(`## ${concurrency} request${concurrency === 1 ? '' : 's'} in flight\n`);
      console.log(
        table(
          [
            'createDispatcher, 3 pods',
            'req/s',
            'vs none (same pass)',
            'client CPU µs/req',
            'added CPU µs/req',
            'p50 µs',
            'p50 added µs (same pass)',
            'p99 µs',
            'errors',
          ],
          rows.map((r) => [
            r.label,
            fixed(r.rps, 0),
            `${fixed(r.vsPlain * 100, 1)}%`,
            fixed(r.cpuUs, 1),
            r.id === 'plain' ? '—' : fixed(r.addedCpuUs, 1),
            fixed(r.p50, 0),
            r.id === 'plain' ? '—' : fixed(r.addedP50, 0),
            fixed(r.p99, 0),
            String(r.errors),
          ]),
        ),
      );
      console.log('');
    }
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/otel.json',
      `${JSON.stringify({ machine: machine(), pinning, versions, rounds: ROUNDS, roundMs: ROUND_MS, sections }, null, 2)}\n`,
    );
  } finally {
    child.stdin?.end();
    child.kill();
  }
}

await main();
