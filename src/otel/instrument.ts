import { metrics, trace, type MeterProvider, type TracerProvider } from '@opentelemetry/api';
import { setCallTracer } from '../diagnostics.js';
import { BalancerClosedError, InvalidOptionError, type Balancer } from '../index.js';
import { BalancerMetrics } from './metrics.js';
import { CallSpans } from './tracing.js';

/** The instrumentation scope of the meter and the tracer. */
export const SCOPE_NAME = 'headless-lb';

export interface InstrumentBalancerOptions {
  /** Where the metrics go. Default: the global one (`metrics.getMeterProvider()`), a no-op until an SDK registers one. */
  readonly meterProvider?: MeterProvider;
  /** Where the spans go. Default: the global one (`trace.getTracerProvider()`). */
  readonly tracerProvider?: TracerProvider;
  /** Record metrics. Default true. */
  readonly metrics?: boolean;
  /** Record a span per call and per attempt. Default true. */
  readonly traces?: boolean;
}

/** What `instrumentBalancer` attached; `dispose()` detaches it all (also done when the balancer closes). */
export interface BalancerInstrumentation {
  dispose(): void;
  [Symbol.dispose](): void;
}

const OPTION_KEYS = new Set(['meterProvider', 'tracerProvider', 'metrics', 'traces']);
const instrumented = new WeakSet<Balancer>();

/**
 * Records OpenTelemetry metrics and spans for one balancer, from its diagnostics channels and
 * events: nothing in the core depends on OpenTelemetry.
 */
export function instrumentBalancer(lb: Balancer, options: InstrumentBalancerOptions = {}): BalancerInstrumentation {
  if (
    lb === null ||
    typeof lb !== 'object' ||
    typeof lb.stats !== 'function' ||
    typeof lb.on !== 'function' ||
    typeof lb.service !== 'string'
  ) {
    throw new InvalidOptionError('lb', lb, 'a Balancer (createBalancer(), or the `balancer` of an adapter)');
  }
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', options, 'an object');
  for (const key of Object.keys(options))
    if (!OPTION_KEYS.has(key))
      throw new InvalidOptionError(key, (options as Record<string, unknown>)[key], `a known option (${[...OPTION_KEYS].join(', ')})`);
  const meterProvider = checkProvider(options.meterProvider, 'meterProvider', 'getMeter') ?? metrics.getMeterProvider();
  const tracerProvider = checkProvider(options.tracerProvider, 'tracerProvider', 'getTracer') ?? trace.getTracerProvider();
  const withMetrics = checkFlag(options.metrics, 'metrics');
  const withTraces = checkFlag(options.traces, 'traces');
  if (lb.isClosed) throw new BalancerClosedError();
  if (instrumented.has(lb))
    throw new InvalidOptionError('lb', lb.service, 'a balancer not instrumented yet (dispose() its instrumentation first)');
  instrumented.add(lb);

  const recorder = withMetrics ? new BalancerMetrics(lb, meterProvider.getMeter(SCOPE_NAME)) : undefined;
  if (withTraces) setCallTracer(lb, new CallSpans(tracerProvider.getTracer(SCOPE_NAME), lb.service));
  let disposed = false;
  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    recorder?.dispose();
    if (withTraces) setCallTracer(lb, undefined);
    lb.off('close', dispose);
    instrumented.delete(lb);
  };
  lb.on('close', dispose);
  return { dispose, [Symbol.dispose]: dispose };
}

function checkProvider<P>(value: P | undefined, field: string, method: string): P | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || typeof (value as Record<string, unknown>)[method] !== 'function') {
    throw new InvalidOptionError(field, value, `an object with ${method}()`);
  }
  return value;
}

function checkFlag(value: unknown, field: string): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'boolean') throw new InvalidOptionError(field, value, 'a boolean');
  return value;
}
