import { context, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/**
 * The real OpenTelemetry SDK, kept in memory: a meter provider whose reader exports on demand,
 * a tracer provider with a span exporter, and the AsyncLocalStorage context manager (what the
 * Node SDK installs), so context follows awaits and callbacks.
 */
export class OtelSdk {
  readonly metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  readonly reader = new PeriodicExportingMetricReader({ exporter: this.metricExporter, exportIntervalMillis: 3_600_000 });
  readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  readonly spanExporter = new InMemorySpanExporter();
  readonly tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.spanExporter)] });
  private readonly contextManager = new AsyncLocalStorageContextManager().enable();

  constructor() {
    context.setGlobalContextManager(this.contextManager);
  }

  /** The metrics as of now: name → data points. */
  async metrics(): Promise<Map<string, DataPoint<number | Histogram>[]>> {
    this.metricExporter.reset();
    await this.reader.forceFlush();
    const byName = new Map<string, DataPoint<number | Histogram>[]>();
    for (const resource of this.metricExporter.getMetrics()) {
      for (const scope of resource.scopeMetrics) {
        for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric.dataPoints as DataPoint<number | Histogram>[]);
      }
    }
    return byName;
  }

  spans(): ReadableSpan[] {
    return this.spanExporter.getFinishedSpans();
  }

  async shutdown(): Promise<void> {
    await this.meterProvider.shutdown();
    await this.tracerProvider.shutdown();
    context.disable();
  }
}

/** The sum of a counter's points whose attributes include `match`. */
export function sumWhere(points: readonly DataPoint<number | Histogram>[] | undefined, match: Attributes = {}): number {
  let total = 0;
  for (const point of points ?? []) {
    if (!Object.entries(match).every(([key, value]) => point.attributes[key] === value)) continue;
    total += typeof point.value === 'number' ? point.value : point.value.count;
  }
  return total;
}

export const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
