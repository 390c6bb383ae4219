import { once } from 'node:events';
import http from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import * as undici from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBalancer, type Balancer } from '../../src/index.js';
import { createDispatcher, type HeadlessDispatcher } from '../../src/http/index.js';

/**
 * The dispatcher with each of the three clients users have: `undici.request` and `undici.fetch`
 * from the undici the library peers with (7.x), and Node's global `fetch`, which bundles its own
 * undici (6.x on Node 20, 7.x on Node 22/24). A dispatcher from one undici major handed to
 * another major's fetch is a known hazard (undici 8 dispatchers reject the legacy handlers of
 * older fetch: "invalid onRequestStart method"); these tests pin what works.
 */

const SVC = 'web-headless.default.svc.cluster.local';

interface MiniPod {
  readonly name: string;
  readonly address: string;
  hits: number;
  status: number | undefined;
  readonly hosts: Set<string>;
  kill(): Promise<void>;
}

async function startPod(name: string, address: string, port: number): Promise<{ pod: MiniPod; port: number }> {
  const sockets = new Set<Socket>();
  const pod: MiniPod = {
    name,
    address,
    hits: 0,
    status: undefined,
    hosts: new Set(),
    kill: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      return closed;
    },
  };
  const server = http.createServer((req, res) => {
    pod.hits++;
    pod.hosts.add(String(req.headers.host));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/redirect') {
        res.writeHead(302, { location: '/echo?redirected=1' });
        res.end();
        return;
      }
      if (url.pathname === '/big') {
        // 4 MiB in 64 KiB chunks, written with back-pressure
        const chunk = Buffer.alloc(64 * 1024, 'x');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-pod': name });
        let left = 64;
        const write = (): void => {
          while (left > 0) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', write);
          }
          res.end();
        };
        write();
        return;
      }
      const status = pod.status ?? 200;
      const answer = (): void => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-pod': name });
        res.end(
          JSON.stringify({ pod: name, method: req.method, url: req.url, host: req.headers.host, body: Buffer.concat(chunks).toString() }),
        );
      };
      if (url.pathname === '/slow') setTimeout(answer, 300);
      else answer();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(port, address);
  await once(server, 'listening');
  return { pod, port: (server.address() as { port: number }).port };
}

type Client = (
  url: string,
  init: { method?: string; body?: string | ReadableStream<Uint8Array>; signal?: AbortSignal; headers?: Record<string, string> },
) => Promise<{ status: number; pod: string | null; text: () => Promise<string> }>;

/** The three clients, each with the dispatcher. */
function clients(dispatcher: HeadlessDispatcher): Record<string, Client> {
  const viaFetch =
    (f: typeof globalThis.fetch): Client =>
    async (url, init) => {
      const res = await f(url, {
        ...init,
        ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
        dispatcher,
      } as unknown as RequestInit);
      return { status: res.status, pod: res.headers.get('x-pod'), text: () => res.text() };
    };
  return {
    'undici.request': async (url, init) => {
      const res = await undici.request(url, {
        method: (init.method ?? 'GET') as 'GET',
        body: init.body as string | undefined,
        signal: init.signal,
        headers: init.headers,
        dispatcher,
      });
      const pod = res.headers['x-pod'];
      return { status: res.statusCode, pod: typeof pod === 'string' ? pod : null, text: () => res.body.text() };
    },
    'undici.fetch': viaFetch(undici.fetch as unknown as typeof globalThis.fetch),
    'global fetch': viaFetch(globalThis.fetch),
  };
}

describe(`the dispatcher with undici 7 and Node ${process.versions.node}'s global fetch (bundled undici ${process.versions.undici})`, () => {
  let pods: MiniPod[];
  let port: number;
  let lb: Balancer;
  let dispatcher: HeadlessDispatcher;
  let origin: string;

  beforeAll(async () => {
    const first = await startPod('web-0', '127.0.83.11', 0);
    port = first.port;
    pods = [first.pod, (await startPod('web-1', '127.0.83.12', port)).pod, (await startPod('web-2', '127.0.83.13', port)).pod];
    lb = createBalancer({
      endpoints: pods.map((p) => ({ address: p.address, port, name: p.name })),
      outlierDetection: false,
      service: 'web-headless',
    });
    dispatcher = createDispatcher(lb);
    origin = `http://${SVC}:${port}`;
  });

  afterAll(async () => {
    await dispatcher.close();
    await lb.close();
    await Promise.all(pods.map((p) => p.kill()));
  });

  const names = ['undici.request', 'undici.fetch', 'global fetch'] as const;

  it.each(names)('%s: spreads GETs over the pods with the Service Host header', async (name) => {
    const client = clients(dispatcher)[name]!;
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await client(`${origin}/echo?i=${i}`, {});
      expect(res.status).toBe(200);
      const json = JSON.parse(await res.text()) as { pod: string; host: string; url: string };
      expect(json).toMatchObject({ host: `${SVC}:${port}`, url: `/echo?i=${i}` });
      seen.add(json.pod);
    }
    expect(seen.size).toBe(3);
  });

  it.each(names)('%s: sends string and streamed bodies', async (name) => {
    const client = clients(dispatcher)[name]!;
    const res = await client(`${origin}/echo`, { method: 'POST', body: 'hello' });
    expect(JSON.parse(await res.text())).toMatchObject({ method: 'POST', body: 'hello' });
    if (name === 'undici.request') return; // a web ReadableStream is a fetch body
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed '));
        controller.enqueue(new TextEncoder().encode('body'));
        controller.close();
      },
    });
    const streamed = await client(`${origin}/echo`, { method: 'PUT', body: stream });
    expect(JSON.parse(await streamed.text())).toMatchObject({ method: 'PUT', body: 'streamed body' });
  });

  it.each(names)('%s: reads a large response with back-pressure', async (name) => {
    const client = clients(dispatcher)[name]!;
    const res = await client(`${origin}/big`, {});
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBe(4 * 1024 * 1024);
  });

  it.each(names)('%s: retries a GET answered 503 on another pod', async (name) => {
    const client = clients(dispatcher)[name]!;
    pods[0]!.status = 503;
    try {
      for (let i = 0; i < 6; i++) {
        const res = await client(`${origin}/echo`, {});
        expect(res.status).toBe(200);
        expect(res.pod).not.toBe('web-0');
        await res.text();
      }
    } finally {
      pods[0]!.status = undefined;
    }
  });

  it.each(names)('%s: aborts a request in flight', async (name) => {
    const client = clients(dispatcher)[name]!;
    const ac = new AbortController();
    const pending = client(`${origin}/slow`, { signal: ac.signal });
    await delay(50);
    ac.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    for (let i = 0; i < 50 && dispatcher.stats().active > 0; i++) await delay(10);
    expect(dispatcher.stats().active).toBe(0);
  });

  it("global fetch hands this Node's handler API to the dispatcher, which takes either", async () => {
    const seen: string[] = [];
    const spy = Object.create(dispatcher) as HeadlessDispatcher;
    spy.dispatch = (opts, handler) => {
      seen.push(typeof handler.onRequestStart === 'function' ? 'controller' : 'legacy');
      return dispatcher.dispatch(opts, handler);
    };
    const res = await globalThis.fetch(`${origin}/echo`, { dispatcher: spy } as unknown as RequestInit);
    expect(res.status).toBe(200);
    await res.text();
    // undici 6 and 7 (Node 20, 22, 24) call onConnect/onHeaders/...; undici 8 (Node 26) onRequestStart/...
    const major = Number(process.versions.undici?.split('.')[0]);
    expect(seen).toEqual([major >= 8 ? 'controller' : 'legacy']);
  });

  it('works under compose() interceptors, which pass controller-API handlers (redirect, retry)', async () => {
    const composed = dispatcher.compose(undici.interceptors.redirect({ maxRedirections: 2 }), undici.interceptors.retry({ maxRetries: 0 }));
    for (const name of names) {
      const client = clients(composed as HeadlessDispatcher)[name]!;
      const res = await client(`${origin}/redirect`, {});
      expect(res.status).toBe(200);
      expect(JSON.parse(await res.text())).toMatchObject({ url: '/echo?redirected=1', host: `${SVC}:${port}` });
    }
  });

  it('hands a controller-API handler (what undici 8 passes) responses with pause/resume', async () => {
    const events: string[] = [];
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      let controller: undici.Dispatcher.DispatchController | undefined;
      dispatcher.dispatch(
        { origin, path: '/big', method: 'GET' },
        {
          onRequestStart(c) {
            controller = c;
            events.push('start');
          },
          onResponseStart(c, statusCode, headers) {
            events.push(`headers ${statusCode} ${String(headers['x-pod']).slice(0, 4)}`);
            c.pause();
            setTimeout(() => c.resume(), 20);
          },
          onResponseData(_c, chunk) {
            chunks.push(chunk);
          },
          onResponseEnd() {
            events.push('end');
            resolve();
          },
          onResponseError(_c, error) {
            reject(error);
          },
        },
      );
      expect(controller).toBeDefined();
    });
    expect(events).toEqual(['start', 'headers 200 web-', 'end']);
    expect(Buffer.concat(chunks).length).toBe(4 * 1024 * 1024);
  });

  it('fails over a fetch POST to a dead pod (connection refused): the unread body is sent to another pod', async () => {
    const dead = await startPod('web-9', '127.0.83.19', port);
    const lb2 = createBalancer({
      endpoints: [
        { address: dead.pod.address, port, name: 'web-9' },
        { address: pods[1]!.address, port, name: 'web-1' },
      ],
      outlierDetection: false,
    });
    const d2 = createDispatcher(lb2);
    await dead.pod.kill();
    try {
      for (const name of names) {
        const client = clients(d2)[name]!;
        for (let i = 0; i < 4; i++) {
          const res = await client(`${origin}/echo`, { method: 'POST', body: `${name} #${i}` });
          expect(res.status).toBe(200);
          expect(JSON.parse(await res.text())).toMatchObject({ pod: 'web-1', body: `${name} #${i}` });
        }
      }
      expect(lb2.endpoints().find((e) => e.name === 'web-9')!.failures).toBeGreaterThan(0);
    } finally {
      await d2.close();
      await lb2.close();
    }
  });
});
