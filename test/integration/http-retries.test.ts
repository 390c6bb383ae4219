import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBalancer } from '../../src/index.js';
import { createDispatcher } from '../../src/http/index.js';

/**
 * `retries: N` through the HTTP adapter: exactly N retries after the first request when every
 * pod answers 503, for idempotent methods; none for the others (the 503 response goes back to
 * the caller). Real HTTP servers on 127.0.0.x; one budget token per retry made.
 */
const PODS = ['127.0.0.71', '127.0.0.72', '127.0.0.73'];
const servers: http.Server[] = [];
let port = 0;
let hits = 0;

beforeAll(async () => {
  for (const address of PODS) {
    const server = http.createServer((req, res) => {
      hits++;
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('unavailable');
      });
    });
    // Every pod on the same port: a static endpoint list of three addresses.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    servers.push(server);
  }
});

afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

describe('retries through the HTTP adapter (every pod answers 503)', () => {
  for (const method of ['GET', 'POST'] as const) {
    for (const retries of [0, 1, 2, 3]) {
      it(`${method}, retries ${retries}`, async () => {
        const lb = createBalancer({
          endpoints: PODS.map((address) => ({ address, port })),
          retry: { retries: 2, backoffBaseMs: 1, backoffMaxMs: 2 },
          retryBudget: { percent: 0, minPerSecond: 1, windowMs: 10_000 }, // 10 tokens
          outlierDetection: false,
        });
        const dispatcher = createDispatcher(lb, { retries });
        try {
          const tokens = lb.stats().retryBudgetLeft;
          const before = hits;
          const response = await request(`http://web.default.svc.cluster.local:${port}/`, {
            method,
            body: method === 'POST' ? 'x' : undefined,
            dispatcher,
          });
          await response.body.text();
          expect(response.statusCode).toBe(503); // the last pod's answer, passed through
          const retried = method === 'GET' ? retries : 0;
          expect(hits - before).toBe(1 + retried);
          expect(tokens - lb.stats().retryBudgetLeft).toBe(retried);
        } finally {
          await dispatcher.close();
          await lb.close();
        }
      });
    }
  }
});
