// headless-lb/otel: OpenTelemetry metrics and spans for a balancer. The SDK here keeps everything
// in memory and prints it; in an application, the Node SDK exports it (OTLP, Prometheus: see
// docs/observability.md). A pod crashes while requests flow through the HTTP adapter: the trace
// shows the failover as two attempt spans, the metrics the refused attempts and the ejection.
// Run: npm run build && node examples/otel.mjs
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createBalancer } from 'headless-lb';
import { createDispatcher } from 'headless-lb/http';
import { instrumentBalancer } from 'headless-lb/otel';
import { startCluster } from 'headless-lb/testing';

// 1. The SDK (what NodeSDK sets up): context that follows awaits, a meter and a tracer provider.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
const spanExporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
// The HTTP client spans: undici's instrumentation nests them under headless-lb's attempt spans.
const undiciInstrumentation = new UndiciInstrumentation();
undiciInstrumentation.setTracerProvider(tracerProvider);

// 2. A Service of 3 pods, a balancer, its instrumentation, the HTTP adapter.
const cluster = await startCluster({ ttl: 1 });
const web = await cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });
const lb = createBalancer({ service: web.fqdn, portName: 'http', dnsServers: [cluster.dnsServer], picker: 'round-robin' });
const otel = instrumentBalancer(lb, { meterProvider, tracerProvider });
await lb.ready();
const dispatcher = createDispatcher(lb);

// 3. A pod crashes (still in DNS: connections refused); a traced handler makes 6 requests.
await web.crashPod('web-1');
const tracer = tracerProvider.getTracer('example');
await tracer.startActiveSpan('GET /checkout', async (span) => {
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`http://${web.fqdn}:8080/`, { dispatcher });
    await res.json();
  }
  span.end();
});

// 4. The trace, as a tree.
const spans = spanExporter.getFinishedSpans();
const ms = (span) => (span.duration[0] * 1e3 + span.duration[1] / 1e6).toFixed(1);
const SHOWN = [
  'http.request.method',
  'server.address',
  'http.response.status_code',
  'network.peer.address',
  'headless_lb.attempt',
  'headless_lb.attempt.hedged',
  'http.request.resend_count',
  'headless_lb.attempt.outcome',
  'headless_lb.failure.kind',
  'error.type',
  'headless_lb.call.attempts',
];
function print(parentId, depth) {
  for (const span of spans
    .filter((s) => s.parentSpanContext?.spanId === parentId)
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])) {
    const attributes = SHOWN.filter((key) => span.attributes[key] !== undefined && (key !== 'server.address' || span.kind === 2)).map(
      (key) => `${key}=${span.attributes[key]}`,
    );
    console.log(`${'  '.repeat(depth)}${span.name} (${ms(span)} ms${span.status.code === 2 ? ', ERROR' : ''}) ${attributes.join(' ')}`);
    print(span.spanContext().spanId, depth + 1);
  }
}
console.log('Trace:');
print(undefined, 1);

// 5. The metrics.
await reader.forceFlush();
console.log('\nMetrics:');
for (const metric of metricExporter
  .getMetrics()
  .flatMap((r) => r.scopeMetrics)
  .flatMap((s) => s.metrics)) {
  console.log(`  ${metric.descriptor.name} (${metric.descriptor.unit})`);
  for (const point of metric.dataPoints) {
    const value = typeof point.value === 'number' ? point.value : `count=${point.value.count} sum=${point.value.sum.toFixed(4)}`;
    const attributes = Object.entries(point.attributes)
      .filter(([key]) => key !== 'server.address' && key !== 'dns.question.name')
      .map(([key, v]) => `${key}=${v}`);
    console.log(`    ${value}${attributes.length > 0 ? `  {${attributes.join(', ')}}` : ''}`);
  }
}

// The example checks what it shows: CI runs it.
const failover = spans.find((s) => s.name === 'headless_lb.call' && s.attributes['headless_lb.call.attempts'] === 2);
if (failover === undefined) throw new Error('expected a call that failed over');
const attempts = spans.filter((s) => s.parentSpanContext?.spanId === failover.spanContext().spanId);
if (attempts.length !== 2 || !attempts.some((s) => s.attributes['error.type'] === 'ECONNREFUSED'))
  throw new Error('expected a refused attempt, then a good one');

undiciInstrumentation.disable();
otel.dispose();
await dispatcher.close();
await lb.close();
await cluster.close();
await meterProvider.shutdown();
await tracerProvider.shutdown();
