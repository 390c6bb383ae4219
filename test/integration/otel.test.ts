import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel';
import { metrics, SpanKind, trace } from '@opentelemetry/api';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callTracerOf } from '../../src/diagnostics.js';
import type { Balancer, BalancerEvents, BalancerOptions, Endpoint } from '../../src/index.js';
import { createDispatcher } from '../../src/http/index.js';
import { ATTEMPT_SPAN, CALL_SPAN, instrumentBalancer } from '../../src/otel/index.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { OtelSdk, parentOf, sumWhere } from '../support/otel-sdk.js';
import { waitFor } from '../support/wait.js';

/**
 * headless-lb/otel against the real OpenTelemetry SDK (in-memory reader and exporter), real
 * Knot DNS and real HTTP pods: the metrics count what the pods counted, a failover and a hedge
 * show as attempt spans under one call span, and dispose() leaves nothing attached.
 */
let env: HttpKnotCluster;
let sdk: OtelSdk;
const agent = new Agent({ keepAliveTimeout: 10_000 });

beforeAll(async () => {
  env = await startKnotCluster({ ttl: 2 });
  sdk = new OtelSdk();
});

afterAll(async () => {
  await env?.close();
  await sdk?.shutdown();
  await agent.close();
});

function balancer(service: string, options: Partial<BalancerOptions> = {}): Balancer {
  return env.balancer({ service, portName: 'http', picker: 'round-robin', ...options });
}

async function get(endpoint: Endpoint, { signal }: { signal: AbortSignal }): Promise<string> {
  const response = await request(`http://${endpoint.host}/`, { dispatcher: agent, signal });
  const body = (await response.body.json()) as { pod: string };
  return body.pod;
}

const spansNamed = (name: string, spans: readonly ReadableSpan[]): ReadableSpan[] => spans.filter((span) => span.name === name);
const childrenOf = (parent: ReadableSpan, spans: readonly ReadableSpan[]): ReadableSpan[] =>
  spans
    .filter((span) => parentOf(span) === parent.spanContext().spanId)
    .sort((a, b) => Number(a.attributes['headless_lb.attempt']) - Number(b.attributes['headless_lb.attempt']));

describe('metrics', () => {
  it('count the attempts each pod served, the pool, the lookups and the calls', async () => {
    const svc = await env.cluster.createService({ name: 'otel-metrics', replicas: 3 });
    const lb = balancer(svc.fqdn);
    const otel = instrumentBalancer(lb, { meterProvider: sdk.meterProvider, traces: false });
    await lb.ready();
    for (let i = 0; i < 30; i++) await lb.run(get, { idempotent: true });
    const m = await sdk.metrics();
    const mine = { 'server.address': svc.fqdn };
    for (const pod of svc.pods) {
      expect(
        sumWhere(m.get('headless_lb.attempt.duration'), {
          ...mine,
          'network.peer.address': pod.ip,
          'headless_lb.attempt.outcome': 'success',
        }),
      ).toBe(pod.requests);
    }
    expect(sumWhere(m.get('headless_lb.attempt.duration'), mine)).toBe(30);
    expect(sumWhere(m.get('headless_lb.calls'), mine)).toBe(30);
    expect(sumWhere(m.get('headless_lb.retries'), mine)).toBe(0);
    expect(sumWhere(m.get('headless_lb.pool.size'), mine)).toBe(3);
    expect(sumWhere(m.get('headless_lb.pool.healthy'), mine)).toBe(3);
    expect(sumWhere(m.get('headless_lb.pool.ejected'), mine)).toBe(0);
    expect(sumWhere(m.get('headless_lb.dns.lookups'), { ...mine, 'headless_lb.dns.outcome': 'success' })).toBeGreaterThanOrEqual(1);
    expect(sumWhere(m.get('dns.lookup.duration'), { 'dns.question.name': svc.fqdn })).toBeGreaterThanOrEqual(1);
    expect(sumWhere(m.get('headless_lb.subset.size'), mine)).toBe(0); // subsetting off: not observed
    const attempt = m.get('headless_lb.attempt.duration')!.find((point) => point.attributes['server.address'] === svc.fqdn)!;
    expect(attempt.attributes['network.peer.port']).toBe(svc.port);
    expect(String(attempt.attributes['headless_lb.endpoint.name'])).toMatch(new RegExp(`^${svc.name}-\\d`));
    otel.dispose();
    await lb.close();
  });

  it('carry the subset size and its members now', async () => {
    const svc = await env.cluster.createService({ name: 'otel-subset', replicas: 5 });
    const lb = balancer(svc.fqdn, { subset: { size: 3, clientId: 'api-0' } });
    const otel = instrumentBalancer(lb, { meterProvider: sdk.meterProvider, traces: false });
    await lb.ready();
    await waitFor(() => lb.stats().size === 5, { what: 'the balancer to see 5 pods' });
    const m = await sdk.metrics();
    const mine = { 'server.address': svc.fqdn };
    expect(sumWhere(m.get('headless_lb.subset.size'), mine)).toBe(3);
    expect(sumWhere(m.get('headless_lb.subset.members'), mine)).toBe(3);
    otel.dispose();
    await lb.close();
  });

  it('count a crashed pod’s refused attempts as not-sent failures, its ejection and the retries', async () => {
    const svc = await env.cluster.createService({ name: 'otel-eject', replicas: 3 });
    const lb = balancer(svc.fqdn);
    const otel = instrumentBalancer(lb, { meterProvider: sdk.meterProvider, traces: false });
    await lb.ready();
    const dead = svc.pods[1]!;
    await svc.crashPod(dead.name);
    for (let i = 0; i < 30; i++) await lb.run(get);
    const m = await sdk.metrics();
    const mine = { 'server.address': svc.fqdn };
    const refused = sumWhere(m.get('headless_lb.attempt.duration'), {
      ...mine,
      'network.peer.address': dead.ip,
      'headless_lb.attempt.outcome': 'failure',
    });
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(
      sumWhere(m.get('headless_lb.attempt.duration'), { ...mine, 'headless_lb.failure.kind': 'not-sent', 'error.type': 'ECONNREFUSED' }),
    ).toBe(refused);
    expect(sumWhere(m.get('headless_lb.attempt.duration'), { ...mine, 'headless_lb.attempt.outcome': 'success' })).toBe(30);
    expect(sumWhere(m.get('headless_lb.retries'), mine)).toBe(refused);
    expect(sumWhere(m.get('headless_lb.endpoint.ejections'), { ...mine, 'network.peer.address': dead.ip })).toBe(1);
    expect(
      m.get('headless_lb.endpoint.ejections')!.find((p) => p.attributes['server.address'] === svc.fqdn)!.attributes[
        'headless_lb.ejection.reason'
      ],
    ).toBe('connect-failure');
    expect(sumWhere(m.get('headless_lb.pool.ejected'), mine)).toBe(1);
    otel.dispose();
    await lb.close();
  });
  it('count the hedges a spent hedge budget refused', async () => {
    const svc = await env.cluster.createService({ name: 'otel-hedge-budget', replicas: 2 });
    // No reserve and no share of the calls: every due hedge is refused.
    const lb = balancer(svc.fqdn, { outlierDetection: false, hedgeBudget: { percent: 0, minPerSecond: 0 } });
    const otel = instrumentBalancer(lb, { meterProvider: sdk.meterProvider, traces: false });
    await lb.ready();
    for (const pod of svc.pods) svc.setBehaviour(pod.name, { delayMs: 150 });
    let refusedEvents = 0;
    lb.on('hedge-budget-exhausted', () => refusedEvents++);
    for (let i = 0; i < 3; i++) await lb.run(get, { idempotent: true, hedge: { delayMs: 20 } });
    const m = await sdk.metrics();
    const mine = { 'server.address': svc.fqdn };
    expect(refusedEvents).toBe(3);
    expect(sumWhere(m.get('headless_lb.hedge_budget.exhausted'), mine)).toBe(3);
    expect(sumWhere(m.get('headless_lb.hedges'), mine)).toBe(0);
    expect(sumWhere(m.get('headless_lb.attempt.duration'), mine)).toBe(3);
    otel.dispose();
    await lb.close();
  });
});

describe('spans', () => {
  it('a failover: two attempt spans under one call span, under the caller’s span; user spans nest under the attempt', async () => {
    const svc = await env.cluster.createService({ name: 'otel-failover', replicas: 2 });
    const lb = balancer(svc.fqdn, { outlierDetection: false });
    const otel = instrumentBalancer(lb, { tracerProvider: sdk.tracerProvider, metrics: false });
    await lb.ready();
    const dead = svc.pods[0]!;
    await svc.crashPod(dead.name);
    sdk.spanExporter.reset();
    const tracer = sdk.tracerProvider.getTracer('test');
    await tracer.startActiveSpan('parent', async (parent) => {
      // Round-robin over two pods: one of two calls starts on the dead pod.
      for (let i = 0; i < 2; i++) {
        await lb.run(async (endpoint, attempt) => {
          const inner = tracer.startSpan('user-work');
          inner.end();
          return get(endpoint, attempt);
        });
      }
      parent.end();
    });
    const spans = sdk.spans();
    const parent = spans.find((span) => span.name === 'parent')!;
    const calls = spansNamed(CALL_SPAN, spans);
    expect(calls).toHaveLength(2);
    for (const call of calls) expect(parentOf(call)).toBe(parent.spanContext().spanId);
    const failover = calls.find((call) => call.attributes['headless_lb.call.attempts'] === 2)!;
    expect(failover).toBeDefined();
    expect(failover.status.code).toBe(0); // UNSET: the call succeeded
    const [first, second] = childrenOf(failover, spans);
    expect(first!.name).toBe(ATTEMPT_SPAN);
    expect(first!.attributes).toMatchObject({
      'server.address': svc.fqdn,
      'network.peer.address': dead.ip,
      'network.peer.port': svc.port,
      'headless_lb.attempt': 1,
      'headless_lb.attempt.hedged': false,
      'headless_lb.attempt.outcome': 'failure',
      'headless_lb.failure.kind': 'not-sent',
      'error.type': 'ECONNREFUSED',
    });
    expect(first!.status.code).toBe(2); // ERROR
    expect(first!.attributes['http.request.resend_count']).toBeUndefined();
    expect(second!.attributes).toMatchObject({
      'network.peer.address': svc.pods[1]!.ip,
      'headless_lb.attempt': 2,
      'http.request.resend_count': 1,
      'headless_lb.attempt.outcome': 'success',
    });
    // The user's spans made inside each attempt are children of that attempt's span.
    for (const attempt of [first!, second!]) expect(childrenOf(attempt, spans).map((span) => span.name)).toEqual(['user-work']);
    otel.dispose();
    await lb.close();
  });

  it('a hedge: the slow primary is cancelled, the hedged twin wins, both under the call span', async () => {
    const svc = await env.cluster.createService({ name: 'otel-hedge', replicas: 2 });
    const lb = balancer(svc.fqdn, { outlierDetection: false });
    const otel = instrumentBalancer(lb, { tracerProvider: sdk.tracerProvider, metrics: false });
    await lb.ready();
    const slow = svc.pods[0]!;
    svc.setBehaviour(slow.name, { delayMs: 1000 });
    sdk.spanExporter.reset();
    for (let i = 0; i < 2; i++) await lb.run(get, { idempotent: true, hedge: { delayMs: 50 } });
    const spans = sdk.spans();
    const hedgedCall = spansNamed(CALL_SPAN, spans).find((call) => call.attributes['headless_lb.call.attempts'] === 2)!;
    expect(hedgedCall).toBeDefined();
    const attempts = childrenOf(hedgedCall, spans);
    const primary = attempts.find((span) => span.attributes['headless_lb.attempt.hedged'] === false)!;
    const twin = attempts.find((span) => span.attributes['headless_lb.attempt.hedged'] === true)!;
    expect(primary.attributes).toMatchObject({
      'network.peer.address': slow.ip,
      'headless_lb.attempt': 1,
      'headless_lb.attempt.outcome': 'cancelled',
    });
    expect(twin.attributes).toMatchObject({
      'network.peer.address': svc.pods[1]!.ip,
      'headless_lb.attempt': 1,
      'http.request.resend_count': 1,
      'headless_lb.attempt.outcome': 'success',
    });
    expect(primary.status.code).toBe(0);
    otel.dispose();
    await lb.close();
  });

  it('through the HTTP adapter (dispatch): the attempt span is current when undici creates the pod request', async () => {
    const svc = await env.cluster.createService({ name: 'otel-dispatch', replicas: 2 });
    const lb = balancer(svc.fqdn, { outlierDetection: false });
    const otel = instrumentBalancer(lb, { tracerProvider: sdk.tracerProvider, metrics: false });
    const dispatcher = createDispatcher(lb);
    await lb.ready();
    await svc.crashPod(svc.pods[0]!.name);
    sdk.spanExporter.reset();
    // What @opentelemetry/instrumentation-undici reads to parent its HTTP client span.
    const activeAtCreate: (string | undefined)[] = [];
    const onCreate = (): void => {
      activeAtCreate.push(trace.getActiveSpan()?.spanContext().spanId);
    };
    subscribe('undici:request:create', onCreate);
    try {
      for (let i = 0; i < 2; i++) {
        const response = await request(`http://${svc.fqdn}/`, { dispatcher });
        await response.body.dump();
      }
    } finally {
      unsubscribe('undici:request:create', onCreate);
    }
    await waitFor(() => spansNamed(CALL_SPAN, sdk.spans()).length === 2, { what: 'both call spans ended' });
    const spans = sdk.spans();
    const attempts = spansNamed(ATTEMPT_SPAN, spans);
    const calls = spansNamed(CALL_SPAN, spans);
    expect(calls).toHaveLength(2);
    // Round-robin: a call that starts on the dead pod fails over to the other one.
    const failedOver = calls.filter((call) => call.attributes['headless_lb.call.attempts'] === 2);
    expect(failedOver.length).toBeGreaterThanOrEqual(1);
    for (const call of failedOver) {
      const [first, second] = childrenOf(call, spans);
      expect(first!.attributes).toMatchObject({
        'network.peer.address': svc.pods[0]!.ip,
        'headless_lb.attempt.outcome': 'failure',
        'error.type': 'ECONNREFUSED',
      });
      expect(second!.attributes).toMatchObject({ 'network.peer.address': svc.pods[1]!.ip, 'headless_lb.attempt.outcome': 'success' });
    }
    expect(attempts).toHaveLength(calls.reduce((total, call) => total + Number(call.attributes['headless_lb.call.attempts']), 0));
    // Each pod request was created with its attempt's span current: an HTTP client span nests there.
    expect(activeAtCreate.sort()).toEqual(attempts.map((span) => span.spanContext().spanId).sort());
    await dispatcher.close();
    otel.dispose();
    await lb.close();
  });
});

describe('with @opentelemetry/instrumentation-undici active', () => {
  it('each attempt has one HTTP client span, its child; no other span, none orphaned', async () => {
    const undici = new UndiciInstrumentation(); // subscribes to undici's channels at once
    undici.setTracerProvider(sdk.tracerProvider);
    const svc = await env.cluster.createService({ name: 'otel-undici', replicas: 2 });
    const lb = balancer(svc.fqdn, { outlierDetection: false });
    const otel = instrumentBalancer(lb, { tracerProvider: sdk.tracerProvider, metrics: false });
    const dispatcher = createDispatcher(lb);
    try {
      await lb.ready();
      await svc.crashPod(svc.pods[0]!.name);
      sdk.spanExporter.reset();
      const tracer = sdk.tracerProvider.getTracer('test');
      await tracer.startActiveSpan('handler', async (handler) => {
        for (let i = 0; i < 2; i++) {
          const response = await request(`http://${svc.fqdn}/`, { dispatcher });
          await response.body.dump();
        }
        handler.end();
      });
      // A call span ends when the balancer settles the call, a microtask after the caller had its answer.
      await waitFor(() => spansNamed(CALL_SPAN, sdk.spans()).length === 2, { what: 'both call spans ended' });
      const spans = sdk.spans();
      const handler = spans.find((span) => span.name === 'handler')!;
      const calls = spansNamed(CALL_SPAN, spans);
      const attempts = spansNamed(ATTEMPT_SPAN, spans);
      const http = spans.filter((span) => span.kind === SpanKind.CLIENT);
      // Only these spans: the handler, 2 calls, their attempts and one HTTP span per attempt.
      expect(spans).toHaveLength(1 + calls.length + attempts.length + http.length);
      expect(calls).toHaveLength(2);
      // Round-robin: one call at least starts on the dead pod and fails over.
      expect(attempts.length).toBeGreaterThanOrEqual(3);
      expect(attempts).toHaveLength(calls.reduce((total, call) => total + Number(call.attributes['headless_lb.call.attempts']), 0));
      expect(http).toHaveLength(attempts.length);
      const ids = new Set(spans.map((span) => span.spanContext().spanId));
      for (const span of spans) if (span !== handler) expect(ids.has(parentOf(span)!)).toBe(true);
      for (const call of calls) expect(parentOf(call)).toBe(handler.spanContext().spanId);
      for (const attempt of attempts) {
        const [client, ...more] = childrenOf(attempt, spans);
        expect(more).toHaveLength(0);
        expect(client!.kind).toBe(SpanKind.CLIENT);
        // The HTTP span went to the attempt's pod, by IP, with the Service in the Host header.
        expect(client!.attributes['server.address']).toBe(attempt.attributes['network.peer.address']);
      }
      for (const span of spans) expect(span.spanContext().traceId).toBe(handler.spanContext().traceId);
    } finally {
      undici.disable();
      await dispatcher.close();
      otel.dispose();
      await lb.close();
    }
  });
});

describe('lifecycle', () => {
  const EVENTS: (keyof BalancerEvents)[] = [
    'change',
    'resolve',
    'empty',
    'resolve-error',
    'records-skipped',
    'eject',
    'return',
    'recover',
    'panic',
    'budget-exhausted',
    'error',
    'close',
  ];

  it('dispose() detaches every listener, subscription, callback and the tracer; closing the balancer does too', async () => {
    const svc = await env.cluster.createService({ name: 'otel-dispose', replicas: 2 });
    const lb = balancer(svc.fqdn);
    const before = EVENTS.map((event) => lb.listenerCount(event));
    const attemptEnd = channel('headless-lb:attempt:end');
    const subscribedBefore = attemptEnd.hasSubscribers;
    const otel = instrumentBalancer(lb, { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider });
    await lb.ready();
    expect(callTracerOf(lb)).toBeDefined();
    expect(attemptEnd.hasSubscribers).toBe(true);
    otel.dispose();
    otel.dispose(); // twice is harmless
    expect(EVENTS.map((event) => lb.listenerCount(event))).toEqual(before);
    expect(attemptEnd.hasSubscribers).toBe(subscribedBefore);
    expect(callTracerOf(lb)).toBeUndefined();
    // Nothing is recorded any more.
    sdk.spanExporter.reset();
    const m0 = sumWhere((await sdk.metrics()).get('headless_lb.attempt.duration'), { 'server.address': svc.fqdn });
    await lb.run(get);
    expect(sdk.spans()).toHaveLength(0);
    const after = await sdk.metrics();
    expect(sumWhere(after.get('headless_lb.attempt.duration'), { 'server.address': svc.fqdn })).toBe(m0);
    expect(sumWhere(after.get('headless_lb.calls'), { 'server.address': svc.fqdn })).toBe(0); // its callback is gone
    // Instrumenting again works; closing the balancer disposes it.
    instrumentBalancer(lb, { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider });
    expect(() => instrumentBalancer(lb)).toThrow(/not instrumented yet/);
    await lb.close();
    expect(callTracerOf(lb)).toBeUndefined();
    expect(attemptEnd.hasSubscribers).toBe(subscribedBefore);
  });

  it('without providers, uses the global ones', async () => {
    const svc = await env.cluster.createService({ name: 'otel-global', replicas: 1 });
    const lb = balancer(svc.fqdn);
    metrics.setGlobalMeterProvider(sdk.meterProvider);
    trace.setGlobalTracerProvider(sdk.tracerProvider);
    try {
      const otel = instrumentBalancer(lb);
      await lb.ready();
      sdk.spanExporter.reset();
      await lb.run(get);
      expect(spansNamed(ATTEMPT_SPAN, sdk.spans())).toHaveLength(1);
      expect(sumWhere((await sdk.metrics()).get('headless_lb.attempt.duration'), { 'server.address': svc.fqdn })).toBe(1);
      otel.dispose();
    } finally {
      metrics.disable();
      trace.disable();
      await lb.close();
    }
  });

  it('rejects bad arguments, naming the field and the value', () => {
    expect(() => instrumentBalancer({} as Balancer)).toThrow(/Invalid option lb/);
    const lb = balancer('unused.default.svc.cluster.local');
    expect(() => instrumentBalancer(lb, { traces: 'yes' as unknown as boolean })).toThrow(
      /Invalid option traces: 'yes'|Invalid option traces: "yes"/,
    );
    expect(() => instrumentBalancer(lb, { meterProvider: {} as never })).toThrow(/Invalid option meterProvider/);
    expect(() => instrumentBalancer(lb, { tracer: 1 } as never)).toThrow(/Invalid option tracer: 1/);
  });
});
