import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { SpanKind } from '@opentelemetry/api';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcChannel } from '../../src/grpc/index.js';
import { ATTEMPT_SPAN, CALL_SPAN, instrumentBalancer } from '../../src/otel/index.js';
import { root } from '../support/examples.js';
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

  it('traced hedged calls: one attempt span per attempt, the loser cancelled; a client stream past the buffer is not hedged', async () => {
    const svc = await env.cluster.createService({ name: 'otel-grpc-hedge', replicas: 2 });
    const lb = env.balancer({
      service: svc.fqdn,
      portName: 'grpc',
      outlierDetection: false,
      hedgeBudget: { percent: 1, minPerSecond: 100 },
    });
    const otel = instrumentBalancer(lb, { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider });
    const channel = createGrpcChannel(lb, {
      credentials: grpc.credentials.createInsecure(),
      idempotent: true,
      hedge: { delayMs: 10 },
      retryBufferBytes: 100,
    });
    const client = channel.client(Echo);
    env.onClose(async () => {
      client.close();
      await channel.close();
    });
    await lb.ready();
    for (const pod of svc.pods) pod.setBehaviour({ delayMs: 200 }); // any first attempt is due a hedge
    sdk.spanExporter.reset();
    await unary(client);
    expect(lb.stats().hedges).toBe(1);
    await waitFor(() => sdk.spans().some((span) => span.name === CALL_SPAN), { what: 'the call span' });
    const outcomes = sdk
      .spans()
      .filter((span) => span.name === ATTEMPT_SPAN)
      .map((span) => span.attributes['headless_lb.attempt.outcome'])
      .sort();
    expect(outcomes).toEqual(['cancelled', 'success']);
    // Past the retry buffer: the channel refuses the hedge through the tracer's wrapper too.
    const reply = await new Promise<{ seq: number }>((resolve, reject) => {
      const call = client.ClientStream(new grpc.Metadata(), { deadline: Date.now() + 5000 }, (error, value) =>
        error ? reject(error) : resolve(value!),
      );
      for (let i = 0; i < 10; i++) call.write({ text: `message ${i}`.padEnd(40, '.') });
      call.end();
    });
    expect(reply.seq).toBe(10);
    expect(lb.stats().hedges).toBe(1);
    otel.dispose();
  });
});

interface SpanLine {
  readonly name: string;
  readonly kind: SpanKind;
  readonly id: string;
  readonly traceId: string;
  readonly parent: string | undefined;
  readonly attributes: Record<string, unknown>;
}

describe('with @opentelemetry/instrumentation-grpc active', () => {
  it('its CLIENT span per call is the parent of the call span; attempts under that; nothing duplicated or orphaned', async () => {
    const svc = await env.cluster.createService({ name: 'otel-grpc-instr', replicas: 2 });
    await svc.crashPod(svc.pods[0]!.name);
    // The client runs in a process of its own, CommonJS, instrumented before grpc-js is required
    // (instrumentation-grpc patches the module as it loads); the pods stay in this process.
    const outfile = join(root, '.tmp', 'otel-grpc', 'client.cjs');
    await build({
      entryPoints: [join(root, 'test', 'fixtures', 'otel-grpc-client.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      // grpc-js stays a require() for the instrumentation to patch; p-retry (ESM only) is bundled.
      external: ['@grpc/*', '@opentelemetry/*'],
      logLevel: 'warning',
    });
    const child = spawn(
      process.execPath,
      [
        '--import',
        pathToFileURL(join(root, 'test', 'fixtures', 'otel-grpc-preload.mjs')).href,
        outfile,
        JSON.stringify({ service: svc.fqdn, dnsServers: env.dns.dnsServers, proto: join(root, 'proto', 'echo.proto') }),
      ],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((done) => child.once('close', done));
    clearTimeout(timer);
    expect(errors).toBe('');
    expect(code).toBe(0);
    const spans = output
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as SpanLine);
    if (process.env.HLB_PRINT_SPANS) console.log(output);
    const byId = new Map(spans.map((span) => [span.id, span]));
    const handler = spans.find((span) => span.name === 'handler')!;
    const grpcSpans = spans.filter((span) => span.kind === SpanKind.CLIENT);
    const calls = spans.filter((span) => span.name === CALL_SPAN);
    const attempts = spans.filter((span) => span.name === ATTEMPT_SPAN);
    // Only these: the handler, one grpc-js CLIENT span per call, our call and attempt spans.
    expect(spans).toHaveLength(1 + grpcSpans.length + calls.length + attempts.length);
    expect(grpcSpans).toHaveLength(2);
    expect(calls).toHaveLength(2);
    for (const span of grpcSpans) expect(span.parent).toBe(handler.id);
    for (const call of calls) expect(byId.get(call.parent!)?.kind).toBe(SpanKind.CLIENT);
    expect(new Set(calls.map((call) => call.parent)).size).toBe(2);
    for (const attempt of attempts) expect(byId.get(attempt.parent!)?.name).toBe(CALL_SPAN);
    expect(attempts).toHaveLength(calls.reduce((total, call) => total + Number(call.attributes['headless_lb.call.attempts']), 0));
    expect(attempts.some((attempt) => attempt.attributes['headless_lb.attempt.outcome'] === 'failure')).toBe(true);
    for (const span of spans) expect(span.traceId).toBe(handler.traceId);
  });
});
