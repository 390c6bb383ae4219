import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcChannel } from '../../src/grpc/index.js';
import { ATTEMPT_SPAN, CALL_SPAN, instrumentBalancer } from '../../src/otel/index.js';
import { loadEcho, type EchoClient } from '../support/grpc-pods.js';
import { startKnotCluster, type GrpcKnotCluster } from '../support/knot-cluster.js';
import { OtelSdk, parentOf, sumWhere } from '../support/otel-sdk.js';
import { waitFor } from '../support/wait.js';

/**
 * headless-lb/otel over the gRPC adapter (lb.dispatch() from a grpc-js channel): real Knot, real
 * grpc-js pods, the real OpenTelemetry SDK. A call that is refused by a crashed pod fails over,
 * and shows as two attempt spans under its call span, under the caller's span.
 */
const Echo = loadEcho();
let env: GrpcKnotCluster;
let sdk: OtelSdk;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: 2, pods: 'grpc' });
  sdk = new OtelSdk();
});

afterAll(async () => {
  await env?.close();
  await sdk?.shutdown();
});

const unary = (client: EchoClient): Promise<unknown> =>
  new Promise((resolve, reject) =>
    client.Unary({ text: 'hi' }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (error, reply) =>
      error ? reject(error) : resolve(reply),
    ),
  );

describe('gRPC adapter', () => {
  it('a refused call fails over: two attempt spans under its call span; the attempt histogram counts both', async () => {
    const svc = await env.cluster.createService({ name: 'otel-grpc', replicas: 2 });
    const lb = env.balancer({ service: svc.fqdn, portName: 'grpc', picker: 'round-robin', outlierDetection: false });
    const otel = instrumentBalancer(lb, { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider });
    const channel = createGrpcChannel(lb, { credentials: grpc.credentials.createInsecure() });
    const client = channel.client(Echo);
    env.onClose(async () => {
      client.close();
      await channel.close();
    });
    await lb.ready();
    const dead = svc.pods[0]!;
    await svc.crashPod(dead.name); // still in DNS: connections refused, never reached the pod
    sdk.spanExporter.reset();
    const tracer = sdk.tracerProvider.getTracer('test');
    await tracer.startActiveSpan('handler', async (handler) => {
      for (let i = 0; i < 2; i++) await unary(client);
      handler.end();
    });
    // A call span ends when the balancer settles the call, a microtask after the reply reached the caller.
    await waitFor(() => sdk.spans().filter((span) => span.name === CALL_SPAN).length === 2, { what: 'both call spans ended' });
    const spans = sdk.spans();
    const handler = spans.find((span) => span.name === 'handler')!;
    const calls = spans.filter((span) => span.name === CALL_SPAN);
    expect(calls).toHaveLength(2);
    for (const call of calls) expect(parentOf(call)).toBe(handler.spanContext().spanId);
    const failedOver = calls.filter((call) => call.attributes['headless_lb.call.attempts'] === 2);
    expect(failedOver.length).toBeGreaterThanOrEqual(1);
    for (const call of failedOver) {
      const attempts = spans
        .filter((span) => parentOf(span) === call.spanContext().spanId)
        .sort((a, b) => Number(a.attributes['headless_lb.attempt']) - Number(b.attributes['headless_lb.attempt']));
      expect(attempts.map((span) => span.name)).toEqual([ATTEMPT_SPAN, ATTEMPT_SPAN]);
      expect(attempts[0]!.attributes).toMatchObject({
        'network.peer.address': dead.address,
        'headless_lb.attempt.outcome': 'failure',
        'headless_lb.failure.kind': 'not-sent',
      });
      expect(attempts[1]!.attributes).toMatchObject({
        'network.peer.address': svc.pods[1]!.address,
        'headless_lb.attempt.outcome': 'success',
        'http.request.resend_count': 1,
      });
    }
    const attemptSpans = spans.filter((span) => span.name === ATTEMPT_SPAN).length;
    const m = await sdk.metrics();
    expect(sumWhere(m.get('headless_lb.attempt.duration'), { 'server.address': svc.fqdn })).toBe(attemptSpans);
    expect(sumWhere(m.get('headless_lb.calls'), { 'server.address': svc.fqdn })).toBe(2);
    otel.dispose();
  });
});
