import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { Pool, request, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createBalancer,
  DeadlineExceededError,
  type Balancer,
  type Picker,
  type PickerSpec,
  type PoolChange,
  type StaticOptions,
} from '../../src/index.js';
import { createDispatcher, type HeadlessDispatcher, type HttpDispatcherOptions } from '../../src/http/index.js';
import { ClusterModel } from '../../src/testing/index.js';
import { startKnot } from '../support/knot.js';
import { createTestCa, type TestCa } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

// ---------------------------------------------------------------- pods: real HTTP(S) servers on 127.0.x.y

interface PodOptions {
  readonly tls?: { readonly key: string; readonly cert: string };
}

interface Pod {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** Requests received, by path prefix. */
  hits: number;
  readonly keys: string[];
  readonly hostHeaders: Set<string>;
  readonly servernames: Set<string>;
  /** Respond with this status to every request (e.g. 503); undefined for normal answers. */
  status: number | undefined;
  /** Delay every answer by this long, ms. */
  delayMs: number;
  /** Requests whose connection closed before the answer was sent (the client gave up). */
  abandoned: number;
  connections(): Promise<number>;
  /** Graceful: stop accepting, let in-flight requests finish, close idle connections. */
  close(): Promise<void>;
  /** A crash: every connection is destroyed at once, nothing is answered. */
  kill(): Promise<void>;
}

/**
 * Routes: `/echo` answers JSON; `/slow?ms=N` answers after N ms; `/hang` never answers;
 * `/reset-after-body` reads the request body, then destroys the connection.
 */
async function startPod(name: string, address: string, port: number, options: PodOptions = {}): Promise<Pod> {
  const sockets = new Set<Socket>();
  const pod: Pod = {
    name,
    address,
    port,
    hits: 0,
    keys: [],
    hostHeaders: new Set(),
    servernames: new Set(),
    status: undefined,
    delayMs: 0,
    abandoned: 0,
    connections: () => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
    },
    kill: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
  const handler: http.RequestListener = (req, res) => {
    pod.hits++;
    res.on('close', () => {
      if (!res.writableFinished) pod.abandoned++;
    });
    pod.hostHeaders.add(String(req.headers.host));
    const servername = (req.socket as { servername?: string | false }).servername;
    if (typeof servername === 'string') pod.servernames.add(servername);
    const key = req.headers['x-user-id'];
    if (typeof key === 'string') pod.keys.push(key);
    const url = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      if (url.pathname === '/reset-after-body') {
        req.socket.destroy();
        return;
      }
      if (url.pathname === '/hang') return;
      const answer = (): void => {
        const status = pod.status ?? 200;
        res.writeHead(status, { 'content-type': 'application/json', 'x-pod': name });
        res.end(JSON.stringify({ pod: name, status, method: req.method, path: url.pathname, host: req.headers.host, body }));
      };
      const ms = (url.pathname === '/slow' ? Number(url.searchParams.get('ms') ?? 0) : 0) + pod.delayMs;
      if (ms > 0) setTimeout(answer, ms);
      else answer();
    });
  };
  const server: http.Server | https.Server =
    options.tls === undefined ? http.createServer(handler) : https.createServer({ ...options.tls }, handler);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(port, address);
  await once(server, 'listening');
  (pod as { port: number }).port = (server.address() as { port: number }).port;
  return pod;
}

/** Pods on `addresses`, all on one port (as pods of a Service are). */
async function startPods(addresses: readonly string[], options: PodOptions = {}): Promise<Pod[]> {
  for (let tries = 0; tries < 20; tries++) {
    const first = await startPod('web-0', addresses[0]!, 0, options);
    const pods = [first];
    try {
      for (let i = 1; i < addresses.length; i++) pods.push(await startPod(`web-${i}`, addresses[i]!, first.port, options));
      return pods;
    } catch {
      await Promise.all(pods.map((p) => p.kill()));
    }
  }
  throw new Error('no common free port');
}

function staticBalancer(pods: readonly Pod[], picker: PickerSpec = 'round-robin', extra: Partial<StaticOptions> = {}): Balancer {
  return createBalancer({
    endpoints: pods.map((p) => ({ address: p.address, port: p.port, name: p.name })),
    picker,
    service: 'web-headless',
    ...extra,
  });
}

// ---------------------------------------------------------------- real Knot DNS, for change events

const SVC = 'web-headless.default.svc.cluster.local';

interface PodsDns {
  readonly address: string;
  /** Serves these pods as SRV `_http._tcp.<svc>` records with A records (one port for all); resolves once Knot serves them. */
  publish(pods: readonly { name: string; address: string; port: number }[]): Promise<void>;
  close(): Promise<void>;
}

async function startPodsDns(): Promise<PodsDns> {
  const knot = await startKnot();
  const model = new ClusterModel({ ttl: 60 });
  return {
    address: knot.address,
    async publish(pods) {
      const port = pods[0]?.port ?? 8080;
      model.setService({
        name: 'web-headless',
        ports: [{ name: 'http', port, protocol: 'tcp' }],
        pods: pods.map((pod) => ({ hostname: pod.name, ip: pod.address, ready: true })),
      });
      await knot.publish(model);
    },
    close: () => knot.close(),
  };
}

function dnsBalancer(dns: PodsDns): Balancer {
  return createBalancer({
    service: SVC,
    portName: 'http',
    dnsServers: [dns.address],
    search: [],
    ndots: 1,
    refresh: { minMs: 60_000, maxMs: 60_000 },
  });
}

async function body(
  res: Awaited<ReturnType<typeof request>>,
): Promise<{ pod: string; status: number; method: string; path: string; host: string; body: string }> {
  return (await res.body.json()) as { pod: string; status: number; method: string; path: string; host: string; body: string };
}

// ---------------------------------------------------------------- tests

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function track<T extends { close(): Promise<unknown> }>(thing: T): T {
  cleanups.push(() => thing.close());
  return thing;
}

interface PodsBehindDispatcher {
  readonly pods: Pod[];
  readonly lb: Balancer;
  readonly dispatcher: HeadlessDispatcher;
  /** The Service's URL origin, as a caller would write it. */
  readonly origin: string;
}

/**
 * Pods on `addresses` behind a static balancer and a dispatcher, all closed after the test
 * (`kill`: pods are killed instead, for tests that kill one themselves).
 */
async function staticSetup(
  addresses: readonly string[],
  options: {
    picker?: PickerSpec;
    balancer?: Partial<StaticOptions>;
    dispatcher?: HttpDispatcherOptions;
    pod?: PodOptions;
    kill?: boolean;
  } = {},
): Promise<PodsBehindDispatcher> {
  const pods = await startPods(addresses, options.pod);
  for (const pod of pods) {
    if (options.kill === true) cleanups.push(() => pod.kill());
    else track(pod);
  }
  const lb = track(staticBalancer(pods, options.picker, options.balancer));
  const dispatcher = track(createDispatcher(lb, options.dispatcher));
  const scheme = options.pod?.tls === undefined ? 'http' : 'https';
  return { pods, lb, dispatcher, origin: `${scheme}://${SVC}:${pods[0]!.port}` };
}

describe('createDispatcher over plain HTTP pods', () => {
  it('spreads requests over the pods, with the original Host header', async () => {
    const { pods, dispatcher, origin } = await staticSetup(['127.0.80.11', '127.0.80.12', '127.0.80.13']);
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const res = await request(`${origin}/echo`, { dispatcher });
      const { pod } = await body(res);
      seen.set(pod, (seen.get(pod) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['web-0', 'web-1', 'web-2']);
    for (const n of seen.values()) expect(n).toBe(100);
    for (const pod of pods) expect([...pod.hostHeaders]).toEqual([`${SVC}:${pod.port}`]);
    // one keep-alive pool per pod, reused
    expect(dispatcher.stats()).toMatchObject({ pools: 3, draining: 0, active: 0 });
    for (const pod of pods) expect(await pod.connections()).toBe(1);
  });

  it('keeps a shard key on one pod (keyHeader) and hands the key to the picker', async () => {
    const { dispatcher, origin } = await staticSetup(['127.0.80.21', '127.0.80.22', '127.0.80.23'], {
      picker: 'shard-key',
      dispatcher: { keyHeader: 'X-User-Id' },
    });
    const home = new Map<string, string>();
    for (let round = 0; round < 5; round++) {
      for (let user = 0; user < 30; user++) {
        const res = await request(`${origin}/echo`, { dispatcher, headers: { 'x-user-id': `user-${user}` } });
        const { pod } = await body(res);
        const before = home.get(`user-${user}`);
        if (before !== undefined) expect(pod).toBe(before);
        home.set(`user-${user}`, pod);
      }
    }
    // the keys spread over more than one pod
    expect(new Set(home.values()).size).toBeGreaterThan(1);
  });

  it('takes the key from a key function when given (headers in any shape)', async () => {
    const keys: (string | undefined)[] = [];
    const recording: Picker = {
      name: 'recording',
      pick(endpoints, { key, tried }) {
        keys.push(key);
        return endpoints.find((e) => !tried?.has(e)) ?? endpoints[0];
      },
    };
    const { dispatcher, origin } = await staticSetup(['127.0.80.31', '127.0.80.32'], {
      picker: recording,
      dispatcher: { key: (req) => `${req.method} ${req.path} ${req.header('x-tenant') ?? '-'}` },
    });
    await (await request(`${origin}/a?x=1`, { dispatcher, headers: { 'X-Tenant': 'acme' } })).body.dump();
    await (await request(`${origin}/b`, { dispatcher, headers: ['x-tenant', 'globex'] })).body.dump();
    await (
      await request(`${origin}/c`, {
        dispatcher,
        method: 'POST',
        body: 'x',
        headers: new Map([['X-TENANT', 'initech']]) as unknown as Record<string, string>,
      })
    ).body.dump();
    await (await request(`${origin}/d`, { dispatcher })).body.dump();
    expect(keys).toEqual(['GET /a?x=1 acme', 'GET /b globex', 'POST /c initech', 'GET /d -']);
  });

  it('fails over with zero failed requests when a pod dies under load', async () => {
    const { pods, lb, dispatcher, origin } = await staticSetup(['127.0.80.41', '127.0.80.42', '127.0.80.43'], { kill: true });
    const [, victim] = pods;
    const failures: unknown[] = [];
    let done = 0;
    let killed = false;
    const deadline = Date.now() + 10_000;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 60 && Date.now() < deadline; i++) {
        try {
          // GETs in flight when the pod dies are retried (idempotent); POSTs after it died hit
          // a refused connection (never sent) and are retried too.
          const res =
            killed && i % 2 === 0
              ? await request(`${origin}/echo`, { dispatcher, method: 'POST', body: `w${w}-${i}` })
              : await request(`${origin}/slow?ms=5`, { dispatcher });
          if (res.statusCode !== 200) failures.push(res.statusCode);
          await res.body.dump();
          done++;
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    await waitFor(() => done >= 100, { timeoutMs: 10_000, what: '100 requests done' });
    const hitsBefore = victim!.hits;
    await victim!.kill();
    killed = true;
    await load;
    expect(failures).toEqual([]);
    expect(done).toBe(8 * 60);
    expect(victim!.hits).toBe(hitsBefore);
    const victimEndpoint = lb.endpoints().find((e) => e.name === 'web-1')!;
    expect(victimEndpoint.failures).toBeGreaterThan(0);
  });

  it('never re-sends a non-idempotent request that may have reached a pod', async () => {
    const { pods, dispatcher, origin } = await staticSetup(['127.0.80.51', '127.0.80.52']);
    await expect(request(`${origin}/reset-after-body`, { dispatcher, method: 'POST', body: 'pay' })).rejects.toMatchObject({
      code: expect.stringMatching(/UND_ERR_SOCKET|ECONNRESET/),
    });
    expect(pods[0]!.hits + pods[1]!.hits).toBe(1);
    // the same failure on an idempotent request is retried on the other pod (and fails there too)
    await expect(request(`${origin}/reset-after-body`, { dispatcher, method: 'PUT', body: 'pay' })).rejects.toBeDefined();
    expect(pods[0]!.hits + pods[1]!.hits).toBe(1 + 3);
  });

  it('re-sends an unread stream body after a refused connection, never a consumed one', async () => {
    const { pods, dispatcher, origin } = await staticSetup(['127.0.80.61', '127.0.80.62'], { kill: true });
    await pods[0]!.kill();
    for (let i = 0; i < 4; i++) {
      const res = await request(`${origin}/echo`, {
        dispatcher,
        method: 'POST',
        body: Readable.from([Buffer.from(`part-${i}-a `), Buffer.from('b')]),
      });
      expect(res.statusCode).toBe(200);
      expect(await body(res)).toMatchObject({ pod: 'web-1', body: `part-${i}-a b` });
    }
    // a PUT whose stream body the pod read before resetting: not re-sent although PUT is idempotent
    const before = pods[1]!.hits;
    await expect(
      request(`${origin}/reset-after-body`, { dispatcher, method: 'PUT', body: Readable.from([Buffer.from('once')]) }),
    ).rejects.toMatchObject({
      code: expect.stringMatching(/UND_ERR_SOCKET|ECONNRESET/),
    });
    expect(pods[1]!.hits).toBe(before + 1);
  });

  it('retries failure statuses of idempotent requests elsewhere and passes them through otherwise', async () => {
    const { pods, lb, dispatcher, origin } = await staticSetup(['127.0.80.71', '127.0.80.72'], { balancer: { outlierDetection: false } });
    pods[0]!.status = 503;
    const sick = lb.endpoints().find((e) => e.name === 'web-0')!;
    // a POST that meets the 503 gets it, with its body, and is not re-sent; the pod is charged
    let seen503 = 0;
    for (let i = 0; i < 4; i++) {
      const hits = pods[0]!.hits + pods[1]!.hits;
      const res = await request(`${origin}/echo`, { dispatcher, method: 'POST', body: 'x' });
      const json = await body(res);
      expect(pods[0]!.hits + pods[1]!.hits).toBe(hits + 1);
      if (res.statusCode === 503) {
        seen503++;
        expect(json).toMatchObject({ pod: 'web-0', status: 503, body: 'x' });
        expect(res.headers['x-pod']).toBe('web-0');
      }
    }
    expect(seen503).toBe(2);
    expect(sick.failures).toBe(2);
    // GETs that meet it are retried on the other pod
    const sickHits = pods[0]!.hits;
    for (let i = 0; i < 6; i++) {
      const res = await request(`${origin}/echo`, { dispatcher });
      expect(res.statusCode).toBe(200);
      expect((await body(res)).pod).toBe('web-1');
    }
    expect(pods[0]!.hits).toBeGreaterThan(sickHits);
    expect(sick.failures).toBe(2 + (pods[0]!.hits - sickHits));
    // when every pod fails, the last failure response is passed through
    pods[1]!.status = 503;
    const res = await request(`${origin}/echo`, { dispatcher });
    expect(res.statusCode).toBe(503);
    expect((await body(res)).status).toBe(503);
    // the list is configurable: with [500], a 503 is an ordinary response
    pods[1]!.status = undefined;
    const strict = track(createDispatcher(lb, { failureStatusCodes: [500] }));
    const failuresBefore = sick.failures;
    for (let i = 0; i < 2; i++) await (await request(`${origin}/echo`, { dispatcher: strict })).body.dump();
    expect(sick.failures).toBe(failuresBefore);
    expect(sick.successes).toBe(1);
  });

  it('feeds outlier ejection: a pod answering 503 is ejected and gets no more traffic', async () => {
    const { pods, lb, dispatcher, origin } = await staticSetup(['127.0.80.75', '127.0.80.76', '127.0.80.77'], {
      balancer: { outlierDetection: { consecutiveFailures: 3 } },
    });
    pods[0]!.status = 503;
    const ejected: string[] = [];
    lb.on('eject', ({ endpoint }) => ejected.push(endpoint.name ?? ''));
    for (let i = 0; i < 30; i++) expect((await request(`${origin}/echo`, { dispatcher })).statusCode).toBe(200);
    expect(ejected).toEqual(['web-0']);
    expect(pods[0]!.hits).toBe(3);
  });

  it('hedges a slow idempotent request on another pod and cancels the loser; never a POST', async () => {
    const { pods, lb, dispatcher, origin } = await staticSetup(['127.0.80.78', '127.0.80.79'], {
      kill: true,
      balancer: { hedgeBudget: { percent: 1, minPerSecond: 100 } },
      dispatcher: { hedge: { delayMs: 50 } },
    });
    pods[0]!.delayMs = 1000;
    for (let i = 0; i < 4; i++) {
      const started = Date.now();
      const res = await request(`${origin}/echo`, { dispatcher });
      expect((await body(res)).pod).toBe('web-1');
      expect(Date.now() - started).toBeLessThan(500);
    }
    // every call whose first attempt went to the slow pod was hedged, and no other
    const hedges = lb.stats().hedges;
    expect(hedges).toBeGreaterThan(0);
    expect(pods[0]!.hits).toBe(hedges);
    // the losing attempts were cancelled (their connections closed before the slow answer)
    await waitFor(() => pods[0]!.abandoned >= hedges, { timeoutMs: 500, what: 'the losers cancelled' });
    expect(pods[0]!.abandoned).toBe(hedges);
    // a POST is never hedged: one of two POSTs waits for the slow pod
    const durations = await Promise.all(
      [0, 1].map(async () => {
        const started = Date.now();
        await (await request(`${origin}/echo`, { dispatcher, method: 'POST', body: 'once' })).body.dump();
        return Date.now() - started;
      }),
    );
    expect(Math.max(...durations)).toBeGreaterThanOrEqual(900);
    expect(lb.stats().hedges).toBe(hedges);
  });

  it('hedges up to maxAttempts: two pods stall, the third answers every request, the stalled attempts are cancelled', async () => {
    const { pods, lb, dispatcher, origin } = await staticSetup(['127.0.80.93', '127.0.80.94', '127.0.80.95'], {
      kill: true,
      balancer: { hedgeBudget: { percent: 1, minPerSecond: 100 } },
      dispatcher: { hedge: { delayMs: 30, maxAttempts: 3 } },
    });
    pods[0]!.delayMs = 400;
    pods[1]!.delayMs = 400;
    for (let i = 0; i < 6; i++) expect((await body(await request(`${origin}/echo`, { dispatcher }))).pod).toBe('web-2');
    const hedges = lb.stats().hedges;
    // Each request: one attempt, plus a hedge per stalled pod it met before the third.
    expect(pods[0]!.hits + pods[1]!.hits + pods[2]!.hits).toBe(6 + hedges);
    expect(pods[2]!.hits).toBe(6);
    expect(hedges).toBeGreaterThanOrEqual(4); // at least the 4 requests that started on a stalled pod
    await waitFor(() => pods[0]!.abandoned + pods[1]!.abandoned >= pods[0]!.hits + pods[1]!.hits, { what: 'the losers cancelled' });
    await delay(400); // the stalled pods' timers run out
  });

  it('honours the deadline and the caller abort; neither counts against the pod', async () => {
    const { lb, dispatcher, origin } = await staticSetup(['127.0.80.81'], { kill: true, dispatcher: { timeoutMs: 150 } });
    const started = Date.now();
    await expect(request(`${origin}/hang`, { dispatcher })).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(2000);
    const endpoint = lb.endpoints()[0]!;
    const failures = endpoint.failures;
    const ac = new AbortController();
    const pending = request(`${origin}/slow?ms=2000`, { dispatcher: track(createDispatcher(lb)), signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(endpoint.failures).toBe(failures);
    expect(endpoint.inflight).toBe(0);
  });

  it('close() lets in-flight requests finish, refuses new ones, and leaves the balancer open', async () => {
    const { lb, dispatcher, origin } = await staticSetup(['127.0.80.91', '127.0.80.92']);
    const slow = Promise.all([1, 2, 3].map(() => request(`${origin}/slow?ms=200`, { dispatcher }).then((r) => r.body.json())));
    await delay(50);
    const closing = dispatcher.close();
    await expect(request(`${origin}/echo`, { dispatcher })).rejects.toMatchObject({ code: 'UND_ERR_CLOSED' });
    await expect(slow).resolves.toHaveLength(3);
    await closing;
    expect(dispatcher.stats()).toMatchObject({ pools: 0, draining: 0, closed: true });
    expect(lb.isClosed).toBe(false);
    expect(lb.pick().name).toMatch(/web-/);
  });

  it('closes idle pools and re-creates them on demand', async () => {
    const { pods, dispatcher, origin } = await staticSetup(['127.0.80.101'], { dispatcher: { idleTimeoutMs: 100 } });
    await (await request(`${origin}/echo`, { dispatcher })).body.dump();
    expect(dispatcher.stats().pools).toBe(1);
    await delay(300);
    expect(dispatcher.stats()).toMatchObject({ pools: 0, draining: 0 });
    expect(await pods[0]!.connections()).toBe(0);
    await (await request(`${origin}/echo`, { dispatcher })).body.dump();
    expect(dispatcher.stats().pools).toBe(1);
  });
});

describe('createDispatcher over DNS discovery (SRV, real Knot): pods leaving and moving', () => {
  let dns: PodsDns;
  beforeAll(async () => {
    dns = await startPodsDns();
  });
  afterAll(async () => {
    await dns.close();
  });

  /** Pods on `addresses` published in Knot, a balancer that found them, and a dispatcher over it. */
  async function podsBehindDns(addresses: readonly string[]): Promise<PodsBehindDispatcher> {
    const pods = await startPods(addresses);
    pods.forEach(track);
    await dns.publish(pods);
    const lb = track(dnsBalancer(dns));
    await lb.ready({ timeoutMs: 5000 });
    return { pods, lb, dispatcher: track(createDispatcher(lb)), origin: `http://${SVC}:${pods[0]!.port}` };
  }

  it('drains a removed pod: its in-flight requests finish, it gets no new ones, its pool closes', async () => {
    const { pods, lb, dispatcher, origin } = await podsBehindDns(['127.0.81.11', '127.0.81.12', '127.0.81.13']);
    const leaving = pods[2]!;
    // 9 slow requests: 3 on each pod (round-robin)
    const slow = Array.from({ length: 9 }, () => request(`${origin}/slow?ms=600`, { dispatcher }).then(body));
    await delay(100);
    expect(leaving.hits).toBe(3);
    const changes: PoolChange[] = [];
    lb.on('change', (c) => changes.push(c));
    await dns.publish(pods.slice(0, 2));
    await lb.refresh();
    expect(changes.map((c) => c.removed.map((e) => e.name))).toEqual([[`web-2.${SVC}`]]);
    expect(dispatcher.stats()).toMatchObject({ pools: 2, draining: 1 });
    // new traffic avoids the leaving pod
    for (let i = 0; i < 20; i++) expect((await body(await request(`${origin}/echo`, { dispatcher }))).pod).not.toBe('web-2');
    expect(leaving.hits).toBe(3);
    const results = await Promise.all(slow);
    expect(results.filter((r) => r.pod === 'web-2')).toHaveLength(3);
    expect(results.every((r) => r.status === 200)).toBe(true);
    // the drained pool closed its connection to the pod
    await waitFor(() => dispatcher.stats().draining === 0, { timeoutMs: 500, what: 'the drained pool closed' });
    expect(dispatcher.stats().draining).toBe(0);
    await waitFor(async () => (await leaving.connections()) === 0, { timeoutMs: 500, what: 'the connection closed' });
    expect(await leaving.connections()).toBe(0);
  });

  it('swaps the pool of a pod restarted with a new IP (change.updated) and drains the old one', async () => {
    const { pods, lb, dispatcher, origin } = await podsBehindDns(['127.0.81.21', '127.0.81.22', '127.0.81.23']);
    const old = pods[2]!;
    const slow = Array.from({ length: 6 }, () => request(`${origin}/slow?ms=500`, { dispatcher }).then(body));
    await delay(100);
    expect(old.hits).toBe(2);
    // web-2 comes back at another address (same name: same identity)
    const moved = track(await startPod('web-2', '127.0.81.33', old.port));
    const endpointBefore = lb.endpoints().find((e) => e.name === `web-2.${SVC}`);
    const changes: PoolChange[] = [];
    lb.on('change', (c) => changes.push(c));
    await dns.publish([pods[0]!, pods[1]!, { name: 'web-2', address: moved.address, port: moved.port }]);
    await lb.refresh();
    expect(changes).toHaveLength(1);
    expect(changes[0]!.updated.map((e) => [e.name, e.address])).toEqual([[`web-2.${SVC}`, '127.0.81.33']]);
    expect(changes[0]!.updated[0]).toBe(endpointBefore);
    expect(dispatcher.stats()).toMatchObject({ draining: 1 });
    for (let i = 0; i < 30; i++) await (await request(`${origin}/echo`, { dispatcher })).body.dump();
    expect(moved.hits).toBe(10);
    expect(old.hits).toBe(2);
    const results = await Promise.all(slow);
    expect(results.every((r) => r.status === 200)).toBe(true);
    await waitFor(() => dispatcher.stats().draining === 0, { timeoutMs: 500, what: 'the old pool closed' });
    expect(dispatcher.stats()).toMatchObject({ pools: 3, draining: 0 });
    await waitFor(async () => (await old.connections()) === 0, { timeoutMs: 500, what: 'the old connection closed' });
    expect(await old.connections()).toBe(0);
  });
});

describe('createDispatcher over HTTPS pods', () => {
  let ca: TestCa;
  beforeAll(() => {
    ca = createTestCa();
  });
  afterAll(() => {
    ca.dispose();
  });

  it('connects to the pod IPs and verifies the certificate against the Service name', async () => {
    const tls = ca.issue([SVC, `*.${SVC}`]);
    const { pods, dispatcher, origin } = await staticSetup(['127.0.82.11', '127.0.82.12'], {
      pod: { tls },
      dispatcher: { pool: { connect: { ca: ca.ca } } },
    });
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await request(`${origin}/echo`, { dispatcher });
      expect(res.statusCode).toBe(200);
      seen.add((await body(res)).pod);
    }
    expect([...seen].sort()).toEqual(['web-0', 'web-1']);
    for (const pod of pods) {
      expect([...pod.servernames]).toEqual([SVC]);
      expect([...pod.hostHeaders]).toEqual([`${SVC}:${pod.port}`]);
    }
    // the same certificate does not cover the IP: a plain pool to the IP is refused
    const direct = new Pool(`https://${pods[0]!.address}:${pods[0]!.port}`, { connect: { ca: ca.ca } });
    cleanups.push(() => direct.close());
    await expect(direct.request({ path: '/echo', method: 'GET' })).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('refuses a pod whose certificate names another service, without retrying it as not-sent', async () => {
    const tls = ca.issue(['other.default.svc.cluster.local']);
    const { pods, lb, dispatcher } = await staticSetup(['127.0.82.21'], { pod: { tls }, dispatcher: { pool: { connect: { ca: ca.ca } } } });
    await expect(request(`https://${SVC}:${pods[0]!.port}/echo`, { dispatcher })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    // `servername` overrides the name that is checked
    const other = track(createDispatcher(lb, { servername: 'other.default.svc.cluster.local', pool: { connect: { ca: ca.ca } } }));
    const res = await request(`https://${SVC}:${pods[0]!.port}/echo`, { dispatcher: other });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });
});

// Type-level check: the dispatcher is an undici Dispatcher.
const _typecheck = (d: HeadlessDispatcher): Dispatcher => d;
void _typecheck;
