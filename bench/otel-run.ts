/**
 * headless-lb/otel's own cost per call, without sockets: `lb.run()` over a static pool of 3 with a
 * callback that resolves at once, µs per call, each setting in a process of its own (the context
 * manager is global), in interleaved repetitions; the median is shown. Settings: not
 * instrumented; instrumented without an SDK (the API's no-ops); metrics (SDK); spans only and
 * metrics + spans (SDK, AsyncLocalStorage context manager, every call under a sampled upstream
 * span); and that context alone, not instrumented.
 *
 *   node bench/support/run.mjs otel-run      (npm run bench -- otel-run; about 40 s)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { context, ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createBalancer } from '../src/index.js';
import { instrumentBalancer } from '../src/otel/index.js';
import { fixed, machine, median, table } from './support/measure.js';

const SETTINGS = [
  { id: 'none', label: 'not instrumented' },
  { id: 'context', label: 'not instrumented, in a traced request' },
  { id: 'noop', label: 'instrumented, no SDK (API no-ops)' },
  { id: 'metrics', label: 'metrics (SDK)' },
  { id: 'spans', label: 'spans (SDK), in a traced request' },
  { id: 'full', label: 'metrics + spans (SDK), in a traced request' },
] as const;
const REPEATS = 5;
const WARMUP = 50_000;
const CALLS = 200_000;

const TRACED_REQUEST = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
});

async function measure(id: string): Promise<number> {
  const lb = createBalancer({ service: 'bench', endpoints: [1, 2, 3].map((i) => ({ address: `127.0.0.${i}`, port: 80 })) });
  const traced = id === 'context' || id === 'spans' || id === 'full';
  if (traced) context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
        exportIntervalMillis: 3_600_000,
      }),
    ],
  });
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor({ export: (_spans, done) => done({ code: 0 }), shutdown: () => Promise.resolve() })],
  });
  if (id === 'noop') instrumentBalancer(lb);
  if (id === 'metrics') instrumentBalancer(lb, { meterProvider, traces: false });
  if (id === 'spans') instrumentBalancer(lb, { tracerProvider, metrics: false });
  if (id === 'full') instrumentBalancer(lb, { meterProvider, tracerProvider });
  const fn = (): Promise<number> => Promise.resolve(1);
  const loop = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await lb.run(fn);
  };
  const run = (n: number): Promise<void> => (traced ? context.with(TRACED_REQUEST, loop, undefined, n) : loop(n));
  await lb.ready();
  await run(WARMUP);
  const started = performance.now();
  await run(CALLS);
  return ((performance.now() - started) * 1000) / CALLS;
}

const role = process.argv[2];
if (role !== undefined && SETTINGS.some((s) => s.id === role)) {
  process.stdout.write(`${await measure(role)}\n`);
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
const samples = new Map<string, number[]>(SETTINGS.map((s) => [s.id, []]));
for (let r = 0; r < REPEATS; r++) {
  for (const setting of SETTINGS) {
    const out = spawnSync(process.execPath, [self, setting.id], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`${setting.id}: ${out.stderr}`);
    samples.get(setting.id)!.push(Number(out.stdout.trim()));
  }
}
const base = median(samples.get('none')!);
console.log(
  `# headless-lb/otel: cost per lb.run() call, no sockets\n\n${machine()}; ${REPEATS} interleaved repetitions of ${CALLS} calls per setting, median shown\n`,
);
console.log(
  table(
    ['setting', 'µs/call', 'added µs/call'],
    SETTINGS.map((s) => {
      const value = median(samples.get(s.id)!);
      return [s.label, fixed(value, 2), s.id === 'none' ? '—' : fixed(value - base, 2)];
    }),
  ),
);
