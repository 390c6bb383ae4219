import http from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { interceptors, request, type Dispatcher } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DeadlineExceededError, InvalidOptionError, type Balancer } from '../../src/index.js';
import { createDispatcher, type HeadlessDispatcher } from '../../src/http/index.js';
import type { PodBehaviour, Service } from '../../src/testing/index.js';
import { root, runExample } from '../support/examples.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';

/**
 * Per-request options (`headlessLb` dispatch option, `x-headless-lb` header) through the three
 * ways a caller sends a request — `undici.request`, `dispatcher.request` and global `fetch` —
 * against the test kit's pods behind Knot DNS: each override is honoured, counted at the pods.
 * Then real `node:http` pods that record what they receive: the header never reaches a pod.
 */
describe('per-request options on test-kit pods behind Knot DNS', () => {
  let env: HttpKnotCluster;
  let web: Service;
  let lb: Balancer;
  let dispatcher: HeadlessDispatcher;
  let url: string;

  beforeAll(async () => {
    env = await startKnotCluster({ ttl: 5 });
    web = await env.cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });
    lb = env.balancer({
      service: web.fqdn,
      portName: 'http',
      retry: { retries: 2, backoffBaseMs: 1, backoffMaxMs: 2 },
      retryBudget: false,
      hedgeBudget: { percent: 1, minPerSecond: 100 },
      outlierDetection: false,
    });
    await lb.ready({ timeoutMs: 5000 });
    dispatcher = createDispatcher(lb, { retries: 2, perRequestHeader: true });
    url = `http://${web.fqdn}:8080/`;
  });

  afterAll(async () => {
    await dispatcher?.close();
    await env?.close();
  });

  beforeEach(() => every({}));

  function every(behaviour: PodBehaviour): void {
    for (const pod of web.pods) web.setBehaviour(pod.name, behaviour);
  }

  function hits(): number {
    return web.pods.reduce((sum, pod) => sum + pod.requests, 0);
  }

  /** Requests the pods received while `send` ran. */
  async function counted(send: () => Promise<unknown>): Promise<number> {
    const before = hits();
    await send();
    return hits() - before;
  }

  const viaRequest = (init: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: Dispatcher.HttpMethod }) =>
    request(url, { ...init, dispatcher }).then(async (res) => {
      await res.body.text();
      return res.statusCode;
    });
  const viaDispatcher = (init: Partial<Dispatcher.RequestOptions>) =>
    dispatcher.request({ origin: url, path: '/', method: 'GET', ...init }).then(async (res) => {
      await res.body.text();
      return res.statusCode;
    });
  const viaFetch = (init: RequestInit) =>
    fetch(url, { ...init, dispatcher } as unknown as RequestInit).then(async (res) => {
      await res.text();
      return res.status;
    });

  it('retries: as many as the request says, whatever the dispatcher says', async () => {
    every({ status: 503 });
    expect(await counted(() => viaRequest({}))).toBe(3); // the dispatcher's 2 retries
    expect(await counted(() => viaRequest({ headlessLb: { retries: 0 } }))).toBe(1);
    expect(await counted(() => viaDispatcher({ headlessLb: { retries: 1 } }))).toBe(2);
    expect(await counted(() => viaFetch({ headers: { 'x-headless-lb': 'retries=0' } }))).toBe(1);
    expect(await counted(() => viaFetch({ headers: { 'x-headless-lb': 'retries=1' } }))).toBe(2);
    // undici's interceptors pass the option on (they copy the dispatch options with a spread)
    const composed = dispatcher.compose(interceptors.redirect({ maxRedirections: 1 }), interceptors.dump());
    expect(await counted(() => request(url, { dispatcher: composed, headlessLb: { retries: 0 } }))).toBe(1);
  });

  it('idempotent: a POST marked idempotent is retried, one not marked is not', async () => {
    every({ status: 503 });
    expect(await counted(() => viaRequest({ method: 'POST', body: 'order' }))).toBe(1);
    expect(await counted(() => viaRequest({ method: 'POST', body: 'order', headlessLb: { idempotent: true } }))).toBe(3);
    expect(await counted(() => viaDispatcher({ method: 'POST', body: 'order', headlessLb: { idempotent: true, retries: 1 } }))).toBe(2);
    // fetch turns a body into a stream, which is never re-sent: a POST without a body here
    expect(await counted(() => viaFetch({ method: 'POST' }))).toBe(1);
    expect(await counted(() => viaFetch({ method: 'POST', headers: { 'x-headless-lb': 'idempotent' } }))).toBe(3);
    // and the other way: a GET marked not idempotent is not retried after a failure status
    expect(await counted(() => viaFetch({ headers: { 'x-headless-lb': 'idempotent=?0' } }))).toBe(1);
  });

  it('timeoutMs and attemptTimeoutMs: the request fails at its own deadline', async () => {
    every({ delayMs: 2000 });
    const deadline = async (send: () => Promise<unknown>, maxMs: number): Promise<unknown> => {
      const started = performance.now();
      const error = await send().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(performance.now() - started).toBeLessThan(maxMs);
      return error;
    };
    expect(await deadline(() => viaRequest({ headlessLb: { timeoutMs: 100 } }), 1000)).toBeInstanceOf(DeadlineExceededError);
    expect(await deadline(() => viaDispatcher({ headlessLb: { timeoutMs: 100 } }), 1000)).toBeInstanceOf(DeadlineExceededError);
    const fetched = await deadline(() => viaFetch({ headers: { 'x-headless-lb': 'timeout-ms=100' } }), 1000);
    expect((fetched as Error).cause).toBeInstanceOf(DeadlineExceededError);
    // attempt-timeout-ms: each attempt cut off, then retried (GET), then the last error
    const before = hits();
    const attempts = await deadline(() => viaFetch({ headers: { 'x-headless-lb': 'attempt-timeout-ms=100, retries=1' } }), 1500);
    expect((attempts as Error).cause).toMatchObject({ code: 'ERR_HLB_ATTEMPT_TIMEOUT' });
    expect(hits() - before).toBe(2);
    // AbortSignal: fetch's own way to a deadline, no header needed
    const aborted = await deadline(() => viaFetch({ signal: AbortSignal.timeout(100) }), 1000);
    expect((aborted as Error).name).toBe('TimeoutError');
  });

  it('hedge: a slow request is sent to a second pod when the request asks, and not when it says no', async () => {
    every({ delayMs: 150 });
    expect(await counted(() => viaRequest({}))).toBe(1);
    expect(await counted(() => viaRequest({ headlessLb: { hedge: { delayMs: 20 } } }))).toBe(2);
    expect(await counted(() => viaDispatcher({ headlessLb: { hedge: { delayMs: 20 } } }))).toBe(2);
    expect(await counted(() => viaFetch({ headers: { 'x-headless-lb': 'hedge-delay-ms=20' } }))).toBe(2);
    const hedging = createDispatcher(lb, { hedge: { delayMs: 20 }, perRequestHeader: ['hedge'] });
    try {
      const noHedge = () =>
        fetch(url, { dispatcher: hedging, headers: { 'x-headless-lb': 'hedge=?0' } } as unknown as RequestInit).then((r) => r.text());
      expect(await counted(() => request(url, { dispatcher: hedging }).then((r) => r.body.text()))).toBe(2);
      expect(await counted(() => request(url, { dispatcher: hedging, headlessLb: { hedge: false } }).then((r) => r.body.text()))).toBe(1);
      expect(await counted(noHedge)).toBe(1);
    } finally {
      await hedging.close();
    }
  });

  it("backoff: a long one outlasts the deadline, the dispatcher's short one does not", async () => {
    every({ status: 503 });
    // random() near 1: full jitter then sleeps almost the whole ceiling (it has no floor otherwise)
    const late = env.balancer({ service: web.fqdn, portName: 'http', retryBudget: false, outlierDetection: false, random: () => 0.999 });
    await late.ready({ timeoutMs: 5000 });
    const d = createDispatcher(late, { retries: 1, timeoutMs: 300, backoff: { initialMs: 1, maxMs: 2 }, perRequestHeader: ['backoff'] });
    const long = { initialMs: 5000, maxMs: 5000 };
    const send = (init: Partial<Dispatcher.RequestOptions> & { headers?: Record<string, string> }) =>
      d.request({ origin: url, path: '/', method: 'GET', ...init }).then(
        async (res) => (await res.body.text(), res.statusCode),
        (error: unknown) => error,
      );
    try {
      // the dispatcher's backoff: the retry goes out at once, and its 503 is the answer
      expect(await counted(async () => expect(await send({})).toBe(503))).toBe(2);
      // the request's backoff: the retry would wait ~5 s, so the 300 ms deadline ends the call first
      const started = performance.now();
      expect(await counted(async () => expect(await send({ headlessLb: { backoff: long } })).toBeInstanceOf(DeadlineExceededError))).toBe(
        1,
      );
      expect(performance.now() - started).toBeLessThan(2000);
      const viaHeader = () => send({ headers: { 'x-headless-lb': 'backoff-ms=5000, backoff-max-ms=5000' } });
      expect(await counted(async () => expect(await viaHeader()).toBeInstanceOf(DeadlineExceededError))).toBe(1);
      // a dispatcher whose own backoff is long: a request takes it back down, field by field
      const slow = createDispatcher(late, { retries: 1, timeoutMs: 300, backoff: long });
      try {
        const get = (headlessLb?: Dispatcher.DispatchOptions['headlessLb']) =>
          slow.request({ origin: url, path: '/', method: 'GET', headlessLb }).then(
            async (res) => (await res.body.text(), res.statusCode),
            (error: unknown) => error,
          );
        expect(await get()).toBeInstanceOf(DeadlineExceededError);
        expect(await counted(async () => expect(await get({ backoff: { maxMs: 2 } })).toBe(503))).toBe(2);
      } finally {
        await slow.close();
      }
    } finally {
      await d.close();
    }
  });

  it('bad values fail the request with an InvalidOptionError naming the field; nothing is sent', async () => {
    const before = hits();
    await expect(viaRequest({ headlessLb: { retries: 1000 } })).rejects.toMatchObject({ field: 'headlessLb.retries', value: 1000 });
    await expect(viaDispatcher({ headlessLb: { timeoutMs: Infinity } })).rejects.toBeInstanceOf(InvalidOptionError);
    const fetched = await viaFetch({ headers: { 'x-headless-lb': 'retries=1, retries=2' } }).catch((e: unknown) => e);
    expect((fetched as Error).cause).toMatchObject({ field: 'x-headless-lb: retries' });
    expect(hits()).toBe(before);
  });
});

describe('the x-headless-lb header never reaches a pod', () => {
  const PODS = ['127.0.0.81', '127.0.0.82'];
  const servers: http.Server[] = [];
  const received: http.IncomingHttpHeaders[] = [];
  let port = 0;
  let lb: Balancer;

  beforeAll(async () => {
    for (const address of PODS) {
      const server = http.createServer((req, res) => {
        received.push(req.headers);
        req.resume();
        req.on('end', () => res.end('ok'));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, address, () => resolve());
      });
      port = (server.address() as AddressInfo).port;
      servers.push(server);
    }
    const { createBalancer } = await import('../../src/index.js');
    lb = createBalancer({ endpoints: PODS.map((address) => ({ address, port })) });
  });

  afterAll(async () => {
    await lb?.close();
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  });

  it('is removed whichever way it is sent, and passed on untouched when the dispatcher does not read it', async () => {
    const on = createDispatcher(lb, { perRequestHeader: ['retries'] });
    const off = createDispatcher(lb);
    const url = `http://web.default.svc.cluster.local:${port}/`;
    try {
      received.length = 0;
      await fetch(url, { dispatcher: on, headers: { 'x-headless-lb': 'retries=1', 'x-other': 'a' } } as unknown as RequestInit).then((r) =>
        r.text(),
      );
      await request(url, { dispatcher: on, headers: { 'X-Headless-LB': 'retries=1', 'x-other': 'b' } }).then((r) => r.body.text());
      await on
        .request({ origin: url, path: '/', method: 'POST', body: 'x', headers: ['x-headless-lb', 'retries=0', 'x-other', 'c'] })
        .then((r) => r.body.text());
      await request(url, { dispatcher: on, headers: new Map([['x-headless-lb', 'retries=0']]) as never }).then((r) => r.body.text());
      expect(received).toHaveLength(4);
      for (const headers of received) expect(headers['x-headless-lb']).toBeUndefined();
      expect(received.slice(0, 3).map((h) => h['x-other'])).toEqual(['a', 'b', 'c']);
      expect(received.every((h) => h.host === `web.default.svc.cluster.local:${port}`)).toBe(true);

      received.length = 0;
      await fetch(url, { dispatcher: off, headers: { 'x-headless-lb': 'anything' } } as unknown as RequestInit).then((r) => r.text());
      expect(received[0]?.['x-headless-lb']).toBe('anything');
    } finally {
      await on.close();
      await off.close();
    }
  });
});

describe('examples/http-per-request.mjs', () => {
  it('exits 0 by itself: every check in it holds (undici 7; undici 8 in http-undici8.test.ts)', async () => {
    const { code, output } = await runExample('http-per-request.mjs', join(root, '.tmp', 'examples', 'http-per-request'));
    expect(code, output).toBe(0);
    expect(output).toMatch(/per-request options: all honoured/);
  }, 30_000);
});
