import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBalancer, type Balancer } from '../../src/index.js';
import { createGrpcChannel, type HeadlessChannel } from '../../src/grpc/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import {
  loadEchoService,
  loadHealthService,
  protoFiles,
  startCluster,
  startGrpcPod,
  type Cluster,
  type ClusterPod,
  type EchoClient,
  type EchoClientConstructor,
  type EchoReply,
  type HealthClient,
  type HealthClientConstructor,
  type HealthCheckResponse,
  type Service,
} from '../../src/testing/index.js';
import { query } from '../support/dns-query.js';
import { readAll, unary } from '../support/grpc-unary.js';
import { sleep, waitFor } from '../support/wait.js';

/**
 * The test kit's gRPC pods (`appProtocol: 'grpc'`): real grpc-js servers on 127.x serving
 * hlb.test.Echo and grpc.health.v1.Health, seen by plain grpc-js clients on each pod and by
 * headless-lb's gRPC channel over the kit's DNS, through every fault.
 */

const insecure = grpc.credentials.createInsecure();
let Echo: EchoClientConstructor;
let Health: HealthClientConstructor;
let cluster: Cluster;
let svc: Service<'grpc'>;
const closers: (() => unknown)[] = [];

beforeAll(async () => {
  [Echo, Health] = await Promise.all([loadEchoService(), loadHealthService()]);
  cluster = await startCluster({ ttl: 1 });
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await svc?.delete().catch(() => {});
});

afterAll(async () => {
  await cluster?.close();
});

function echoClient(pod: ClusterPod<'grpc'> | string): EchoClient {
  const client = new Echo(typeof pod === 'string' ? pod : pod.target, insecure);
  closers.push(() => client.close());
  return client;
}

function healthClient(pod: ClusterPod<'grpc'>): HealthClient {
  const client = new Health(pod.target, insecure);
  closers.push(() => client.close());
  return client;
}

function check(client: HealthClient, service = ''): Promise<HealthCheckResponse | grpc.ServiceError> {
  return new Promise((resolve) => client.Check({ service }, (error, response) => resolve(error ?? response!)));
}

/** Statuses a Watch call receives, and how it ended. */
function watch(client: HealthClient, service = '') {
  const statuses: string[] = [];
  let ended: 'end' | grpc.ServiceError | undefined;
  const call = client.Watch({ service });
  call.on('data', (response: HealthCheckResponse) => statuses.push(response.status));
  call.on('error', (error: grpc.ServiceError) => (ended = error));
  call.on('end', () => (ended ??= 'end'));
  closers.push(() => call.cancel());
  return {
    statuses,
    ended: () => ended,
  };
}

function channelTo(service: Service<'grpc'>, options: { idempotent?: boolean } = {}): { lb: Balancer; client: EchoClient } {
  const lb = createBalancer({ service: service.fqdn, portName: 'grpc', dnsServers: [cluster.dnsServer], search: [], ndots: 1 });
  const channel: HeadlessChannel = createGrpcChannel(lb, { credentials: insecure, ...options });
  const client = channel.client(Echo);
  closers.push(async () => {
    client.close();
    await channel.close();
    await lb.close();
  });
  return { lb, client };
}

const pods = (replies: readonly EchoReply[]): string[] => [...new Set(replies.map((r) => r.pod))].sort();

describe('gRPC pods of the cluster', () => {
  it('serve every kind of echo call, say which pod answered, and count calls and connections', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 2, appProtocol: 'grpc' });
    expect(svc.srvName).toBe('_grpc._tcp.echo.default.svc.cluster.local');
    expect(svc.port).toBe(50051);
    const srv = await query(cluster.dnsServer, svc.srvName, 'SRV', { transport: 'tcp' });
    expect(srv.answers.map((a) => (a.type === 'SRV' ? `${a.data.target}:${a.data.port}` : '')).sort()).toEqual(
      svc.pods.map((p) => `${p.fqdn}:50051`),
    );

    const pod = svc.pod('echo-1');
    expect(pod.target).toBe(`${pod.ip}:50051`);
    const client = echoClient(pod);
    const reply = await unary(client, { text: 'hi' });
    expect(reply).toEqual({ ok: true, reply: { pod: 'echo-1', address: pod.ip, text: 'hi', seq: 0 } });

    const stream = await readAll(client.ServerStream({ text: 's', count: 3 }));
    expect(stream.error).toBeUndefined();
    expect(stream.replies.map((r) => [r.pod, r.seq])).toEqual([
      ['echo-1', 0],
      ['echo-1', 1],
      ['echo-1', 2],
    ]);

    const collected = await new Promise<EchoReply>((resolve, reject) => {
      const call = client.ClientStream((error, value) => (error ? reject(error) : resolve(value!)));
      for (const text of ['a', 'b', 'c']) call.write({ text });
      call.end();
    });
    expect(collected).toMatchObject({ pod: 'echo-1', text: 'a,b,c', seq: 3 });

    const bidi = client.Bidi();
    const echoed = readAll(bidi);
    bidi.write({ text: 'x' });
    bidi.write({ text: 'y' });
    bidi.end();
    expect((await echoed).replies.map((r) => `${r.pod}:${r.text}:${r.seq}`)).toEqual(['echo-1:x:0', 'echo-1:y:1']);

    expect(pod.requests).toBe(4);
    expect(pod.inFlight).toBe(0);
    expect(pod.connections).toBe(1);
    expect(pod.connectionsAccepted).toBe(1);
    expect(svc.pod('echo-0').requests).toBe(0);
  });

  it('counts a call in flight until it is answered', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const pending = unary(echoClient(pod), { delayMs: 200 });
    await waitFor(() => pod.inFlight === 1);
    expect((await pending).ok).toBe(true);
    expect(pod.inFlight).toBe(0);
  });

  it('slow: delayMs answers late; a shorter deadline gives DEADLINE_EXCEEDED', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const client = echoClient(pod);
    await unary(client, {}); // connected
    svc.setBehaviour(pod.name, { delayMs: 150 });
    const started = performance.now();
    expect((await unary(client, {})).ok).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    const late = await unary(client, {}, { deadlineMs: 50 });
    expect(late.ok || late.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await waitFor(() => pod.inFlight === 0);
  });

  it('hang: calls are accepted and never answered; cancelling them ends them on the pod', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc', behaviour: { hang: true } });
    const pod = svc.pods[0]!;
    const client = echoClient(pod);
    const hung = unary(client, {}, { deadlineMs: 300 });
    await waitFor(() => pod.inFlight === 1);
    const result = await hung;
    expect(result.ok || result.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await waitFor(() => pod.inFlight === 0);
    expect(pod.requests).toBe(1);
  });

  it('status: UNAVAILABLE for a while, then back', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const client = echoClient(pod);
    svc.setBehaviour(pod.name, { status: grpc.status.UNAVAILABLE });
    const failed = await unary(client, {});
    expect(failed.ok ? 'ok' : [failed.error.code, failed.error.details]).toEqual([14, 'pod echo-0 answers UNAVAILABLE']);
    svc.setBehaviour(pod.name, { status: grpc.status.RESOURCE_EXHAUSTED, details: 'quota' });
    const exhausted = await unary(client, {});
    expect(exhausted.ok ? 'ok' : [exhausted.error.code, exhausted.error.details]).toEqual([8, 'quota']);
    const stream = await readAll(client.ServerStream({ count: 2 }));
    expect([stream.replies.length, stream.error?.code]).toEqual([0, grpc.status.RESOURCE_EXHAUSTED]);
    svc.setBehaviour(pod.name, {});
    expect((await unary(client, {})).ok).toBe(true);
    expect(pod.requests).toBe(4);
  });

  it('reset: the response metadata arrives, then the connection is reset; the pod keeps listening', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const client = echoClient(pod);
    svc.setBehaviour(pod.name, { reset: true });
    const metadataSeen = new Promise<boolean>((resolve) => {
      const call = client.Unary({}, () => resolve(false));
      call.on('metadata', () => resolve(true));
    });
    expect(await metadataSeen).toBe(true);
    await waitFor(() => pod.connections === 0);
    const failed = await unary(client, {});
    expect(failed.ok || failed.error.code).toBe(grpc.status.UNAVAILABLE);
    svc.setBehaviour(pod.name, {});
    expect((await unary(client, {})).ok).toBe(true);
    expect(pod.connectionsAccepted).toBe(3);
  });

  it('crash: calls in flight fail, new connections are refused, the pod stays in DNS', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 2, appProtocol: 'grpc' });
    const pod = svc.pod('echo-0');
    const client = echoClient(pod);
    const inFlight = [unary(client, { delayMs: 5000 }), readAll(client.ServerStream({ count: 5, delayMs: 1000 }))] as const;
    await waitFor(() => pod.inFlight === 2);
    await svc.crashPod(pod.name);
    expect(pod.state).toBe('crashed');
    const [call, stream] = await Promise.all(inFlight);
    expect(call.ok || call.error.code).toBe(grpc.status.UNAVAILABLE);
    expect(stream.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect([pod.inFlight, pod.connections]).toEqual([0, 0]);
    const refused = await unary(echoClient(pod), {}, { deadlineMs: 2000 });
    expect(refused.ok ? 'ok' : [refused.error.code, refused.error.details]).toEqual([
      grpc.status.UNAVAILABLE,
      expect.stringContaining('ECONNREFUSED'),
    ]);
    const a = await query(cluster.dnsServer, svc.fqdn, 'A', { transport: 'tcp' });
    expect(a.answers.map((r) => r.data)).toContain(pod.ip);
  });

  it('restart: same name, new IP, counters from 0; the old address refuses connections', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const oldIp = pod.ip;
    expect((await unary(echoClient(pod), {})).ok).toBe(true);
    await svc.restartPod(pod.name);
    expect(pod.ip).not.toBe(oldIp);
    expect([pod.state, pod.requests, pod.ready]).toEqual(['running', 0, true]);
    const a = await query(cluster.dnsServer, svc.fqdn, 'A', { transport: 'tcp' });
    expect(a.answers.map((r) => r.data)).toEqual([pod.ip]);
    expect(await unary(echoClient(pod), {})).toMatchObject({ ok: true, reply: { pod: 'echo-0', address: pod.ip } });
    const old = await unary(echoClient(`${oldIp}:50051`), {}, { deadlineMs: 2000 });
    expect(old.ok || old.error.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('graceful stop: out of DNS, GOAWAY, calls in flight finish, then connections are refused', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 2, appProtocol: 'grpc' });
    const pod = svc.pod('echo-1');
    const client = echoClient(pod);
    const inFlight = [unary(client, { delayMs: 300 }), readAll(client.ServerStream({ count: 3, delayMs: 100 }))] as const;
    await waitFor(() => pod.inFlight === 2);
    await svc.stopPod(pod.name);
    const [call, stream] = await Promise.all(inFlight);
    expect(call.ok).toBe(true);
    expect([stream.replies.length, stream.error]).toEqual([3, undefined]);
    expect([pod.state, pod.ready, pod.connections]).toEqual(['stopped', false, 0]);
    const a = await query(cluster.dnsServer, svc.fqdn, 'A', { transport: 'tcp' });
    expect(a.answers.map((r) => r.data)).toEqual([svc.pod('echo-0').ip]);
    const refused = await unary(echoClient(pod), {}, { deadlineMs: 2000 });
    expect(refused.ok || refused.error.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('graceful stop: calls still running after the grace period are cut off', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const pending = unary(echoClient(pod), { delayMs: 10_000 });
    await waitFor(() => pod.inFlight === 1);
    const started = performance.now();
    await svc.stopPod(pod.name, { gracePeriodMs: 200 });
    expect(performance.now() - started).toBeLessThan(2000);
    const result = await pending;
    // After a GOAWAY, grpc-js reports a stream cut by the connection's end as INTERNAL
    // ("RST_STREAM with code 0"); without one (a crash), as UNAVAILABLE.
    expect(result.ok ? 'ok' : result.error.code).toBeOneOf([grpc.status.INTERNAL, grpc.status.UNAVAILABLE]);
  });

  it('scale: up starts pods that serve before they enter DNS; down drains the highest ordinals', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc', podPrefix: 'grpc' });
    await svc.scale(3);
    expect(svc.pods.map((p) => p.name)).toEqual(['grpc-0', 'grpc-1', 'grpc-2']);
    for (const pod of svc.pods) expect(await unary(echoClient(pod), {})).toMatchObject({ ok: true, reply: { pod: pod.name } });
    const leaving = svc.pod('grpc-2');
    const inFlight = unary(echoClient(leaving), { delayMs: 300 });
    await waitFor(() => leaving.inFlight === 1);
    await svc.scale(2);
    expect((await inFlight).ok).toBe(true);
    expect(leaving.state).toBe('stopped');
    expect(svc.pods.map((p) => p.name)).toEqual(['grpc-0', 'grpc-1']);
  });

  it('rejects bad behaviours and options, naming the field', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    expect(() => svc.setBehaviour('echo-0', { status: 0 })).toThrow(InvalidOptionError);
    expect(() => svc.setBehaviour('echo-0', { status: 503 })).toThrow(/behaviour\.status/);
    expect(() => svc.setBehaviour('echo-0', { health: 'DOWN' as 'SERVING' })).toThrow(/behaviour\.health/);
    expect(() => svc.setBehaviour('echo-0', { delayMs: -1 })).toThrow(/behaviour\.delayMs/);
    await expect(cluster.createService({ name: 'x', appProtocol: 'soap' as 'grpc' })).rejects.toThrow(/appProtocol/);
    await expect(startGrpcPod({ name: 'p', address: '10.0.0.1' })).rejects.toThrow(InvalidOptionError);
  });
});

describe('grpc.health.v1.Health', () => {
  it('Check follows the pod: SERVING, NOT_SERVING as a fault, NOT_FOUND for an unknown service', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const health = healthClient(pod);
    expect(await check(health)).toEqual({ status: 'SERVING' });
    expect(await check(health, 'hlb.test.Echo')).toEqual({ status: 'SERVING' });
    expect(await check(health, 'nope.Nope')).toMatchObject({ code: grpc.status.NOT_FOUND });
    svc.setBehaviour(pod.name, { health: 'NOT_SERVING' });
    expect(await check(health)).toEqual({ status: 'NOT_SERVING' });
    // Echo calls still answer: only the health says no.
    expect((await unary(echoClient(pod), {})).ok).toBe(true);
    svc.setBehaviour(pod.name, {});
    expect(await check(health)).toEqual({ status: 'SERVING' });
    // Health calls are not echo calls.
    expect(pod.requests).toBe(1);
  });

  it('Watch sees every transition, NOT_SERVING when the pod stops, then the call ends', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const health = healthClient(pod);
    const all = watch(health);
    const echo = watch(health, 'hlb.test.Echo');
    const unknown = watch(health, 'nope.Nope');
    await waitFor(() => all.statuses.length === 1 && echo.statuses.length === 1 && unknown.statuses.length === 1);
    svc.setBehaviour(pod.name, { health: 'NOT_SERVING' });
    await waitFor(() => all.statuses.length === 2);
    svc.setBehaviour(pod.name, { delayMs: 1 }); // health back to the default: SERVING
    await waitFor(() => all.statuses.length === 3);
    svc.setBehaviour(pod.name, { delayMs: 2 }); // no change: nothing sent
    await svc.stopPod(pod.name);
    await waitFor(() => all.ended() !== undefined && echo.ended() !== undefined && unknown.ended() !== undefined);
    expect(all.statuses).toEqual(['SERVING', 'NOT_SERVING', 'SERVING', 'NOT_SERVING']);
    expect(echo.statuses).toEqual(all.statuses);
    expect(unknown.statuses).toEqual(['SERVICE_UNKNOWN']);
    expect(all.ended()).toBe('end');
  });

  it('Watch calls end with UNAVAILABLE when the pod crashes', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const pod = svc.pods[0]!;
    const w = watch(healthClient(pod));
    await waitFor(() => w.statuses.length === 1);
    await svc.crashPod(pod.name);
    await waitFor(() => w.ended() !== undefined);
    expect((w.ended() as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe("headless-lb's gRPC channel over the kit's DNS", () => {
  it('spreads calls over the pods and follows scale, restart and crash', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 3, appProtocol: 'grpc' });
    const { lb, client } = channelTo(svc, { idempotent: true });
    await lb.ready();
    const replies = async (n: number): Promise<EchoReply[]> => {
      const results = await Promise.all(Array.from({ length: n }, () => unary(client, {})));
      expect(results.filter((r) => !r.ok)).toEqual([]);
      return results.map((r) => (r.ok ? r.reply : ({} as EchoReply)));
    };
    expect(pods(await replies(30))).toEqual(['echo-0', 'echo-1', 'echo-2']);

    await svc.scale(4);
    await lb.refresh();
    expect(pods(await replies(40))).toEqual(['echo-0', 'echo-1', 'echo-2', 'echo-3']);

    const restarted = svc.pod('echo-1');
    await svc.restartPod('echo-1');
    await lb.refresh();
    const afterRestart = await replies(40);
    expect(afterRestart.filter((r) => r.pod === 'echo-1').every((r) => r.address === restarted.ip)).toBe(true);

    // A crash still in DNS: idempotent calls are retried on another pod.
    await svc.crashPod('echo-2');
    expect(pods(await replies(40))).toEqual(['echo-0', 'echo-1', 'echo-3']);
  });

  it('UNAVAILABLE from one pod: idempotent calls go to the others; NOT_SERVING alone changes nothing', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 2, appProtocol: 'grpc' });
    const { lb, client } = channelTo(svc, { idempotent: true });
    await lb.ready();
    svc.setBehaviour('echo-0', { status: grpc.status.UNAVAILABLE });
    const results = await Promise.all(Array.from({ length: 20 }, () => unary(client, {})));
    expect(results.every((r) => r.ok && r.reply.pod === 'echo-1')).toBe(true);
    expect(svc.pod('echo-0').requests).toBeGreaterThan(0);
    svc.setBehaviour('echo-0', { health: 'NOT_SERVING' });
    const after = await Promise.all(Array.from({ length: 20 }, () => unary(client, {})));
    expect(after.every((r) => r.ok)).toBe(true);
  });

  it('a crash fails the calls in flight on that pod (not idempotent), others keep working', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 2, appProtocol: 'grpc' });
    const { lb, client } = channelTo(svc);
    await lb.ready();
    const inFlight = Array.from({ length: 6 }, () => unary(client, { delayMs: 800 }));
    const victim = svc.pod('echo-0');
    await waitFor(() => victim.inFlight > 0 && svc.pod('echo-1').inFlight > 0);
    const onVictim = victim.inFlight;
    await svc.crashPod('echo-0');
    await svc.removeFromDns('echo-0');
    const results = await Promise.all(inFlight);
    expect(results.filter((r) => !r.ok).map((r) => (r.ok ? 0 : r.error.code))).toEqual(Array(onVictim).fill(grpc.status.UNAVAILABLE));
    await lb.refresh();
    const after = await Promise.all(Array.from({ length: 5 }, () => unary(client, {})));
    expect(after.every((r) => r.ok && r.reply.pod === 'echo-1')).toBe(true);
  });

  it('slow and hung pods: the caller’s deadline ends the call', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 1, appProtocol: 'grpc' });
    const { lb, client } = channelTo(svc);
    await lb.ready();
    svc.setBehaviour('echo-0', { delayMs: 100 });
    expect((await unary(client, {}, { deadlineMs: 2000 })).ok).toBe(true);
    svc.setBehaviour('echo-0', { hang: true });
    const hung = await unary(client, {}, { deadlineMs: 200 });
    expect(hung.ok || hung.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await waitFor(() => svc.pod('echo-0').inFlight === 0);
  });

  it('a graceful scale-down loses no call in flight', async () => {
    svc = await cluster.createService({ name: 'echo', replicas: 3, appProtocol: 'grpc' });
    const { lb, client } = channelTo(svc);
    await lb.ready();
    const inFlight = Array.from({ length: 9 }, () => unary(client, { delayMs: 300 }));
    await waitFor(() => svc.pod('echo-2').inFlight > 0);
    await svc.scale(1);
    expect((await Promise.all(inFlight)).filter((r) => !r.ok)).toEqual([]);
    await lb.refresh();
    await sleep(10);
    expect(
      pods((await Promise.all(Array.from({ length: 6 }, () => unary(client, {})))).map((r) => (r.ok ? r.reply : ({} as EchoReply)))),
    ).toEqual(['echo-0']);
  });
});

describe('startGrpcPod and the .proto files', () => {
  it('a pod on its own (port 0: any free port), and the proto files users load themselves', async () => {
    const pod = await startGrpcPod({ name: 'solo', port: 0, behaviour: { health: 'NOT_SERVING' } });
    closers.push(() => pod.crash());
    expect(pod.port).toBeGreaterThan(0);
    expect(pod.target).toBe(`${pod.address}:${pod.port}`);
    const health = new Health(pod.target, insecure);
    closers.push(() => health.close());
    expect(await check(health)).toEqual({ status: 'NOT_SERVING' });
    const files = protoFiles();
    expect(files.echo.endsWith('proto/echo.proto')).toBe(true);
    expect(files.health.endsWith('proto/grpc/health/v1/health.proto')).toBe(true);
    const protoLoader = await import('@grpc/proto-loader');
    const definition = protoLoader.loadSync(files.echo, { defaults: true });
    const OwnEcho = (grpc.loadPackageDefinition(definition) as any).hlb.test.Echo as EchoClientConstructor;
    const own = new OwnEcho(pod.target, insecure);
    closers.push(() => own.close());
    expect(await unary(own, { text: 'mine' })).toMatchObject({ ok: true, reply: { pod: 'solo', text: 'mine' } });
    await pod.close();
    expect(pod.state).toBe('stopped');
  });
});
