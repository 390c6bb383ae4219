import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { startPod, type Pod } from '../../src/testing/index.js';
import { get } from '../support/http-get.js';
import { waitFor } from '../support/wait.js';

describe('pods', () => {
  const started: Pod[] = [];
  const agents: http.Agent[] = [];
  const pod = async (options: Parameters<typeof startPod>[0]): Promise<Pod> => {
    const p = await startPod(options);
    started.push(p);
    return p;
  };
  const keepAliveAgent = (): http.Agent => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    return agent;
  };

  afterEach(async () => {
    for (const agent of agents.splice(0)) agent.destroy();
    await Promise.all(started.splice(0).map((p) => p.crash()));
  });

  it('is an HTTP server on its own 127.A.B.x address answering { pod, ip }', async () => {
    const p = await pod({ name: 'web-0' });
    expect(p.address).toMatch(/^127\.(1\d\d|2[0-4]\d|250)\.\d+\.\d+$/);
    expect(p.port).toBe(8080);
    const res = await get(`${p.url}/anything`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body)).toEqual({ pod: 'web-0', ip: p.address });
    expect(p.requests).toBe(1);
    expect(p.state).toBe('running');
  });

  it('keeps connections alive', async () => {
    const p = await pod({ name: 'ka', port: 8080 });
    const agent = keepAliveAgent();
    expect((await get(p.url, { agent })).reusedSocket).toBe(false);
    expect((await get(p.url, { agent })).reusedSocket).toBe(true);
    expect(p.requests).toBe(2);
  });

  it('can answer late, with another status, and switch behaviour live', async () => {
    const p = await pod({ name: 'b', behaviour: { delayMs: 100 } });
    let t = performance.now();
    expect((await get(p.url)).status).toBe(200);
    expect(performance.now() - t).toBeGreaterThanOrEqual(90);
    p.setBehaviour({ status: 503 });
    t = performance.now();
    expect((await get(p.url)).status).toBe(503);
    expect(performance.now() - t).toBeLessThan(90);
    p.setBehaviour({});
    expect((await get(p.url)).status).toBe(200);
    expect(p.requests).toBe(3);
  });

  it('hang: accepts and never answers', async () => {
    const p = await pod({ name: 'h', behaviour: { hang: true } });
    await expect(get(p.url, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(p.requests).toBe(1);
  });

  it('reset: sends headers and part of the body, then destroys the connection', async () => {
    const p = await pod({ name: 'r', behaviour: { reset: true } });
    await expect(get(p.url)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(p.requests).toBe(1);
  });

  it('crash() fails in-flight requests at once; the address then refuses connections', async () => {
    const p = await pod({ name: 'c', behaviour: { delayMs: 500 } });
    const inFlight = [outcome(get(p.url)), outcome(get(p.url))];
    await waitFor(() => p.inFlight === 2, { timeoutMs: 2000 });
    const t = performance.now();
    await p.crash();
    expect(await Promise.all(inFlight)).toEqual(['ECONNRESET', 'ECONNRESET']);
    expect(performance.now() - t).toBeLessThan(400);
    expect(p.state).toBe('crashed');
    await expect(get(p.url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('close() is graceful: in-flight requests finish (Connection: close), new ones are refused', async () => {
    const p = await pod({ name: 'g', behaviour: { delayMs: 150 } });
    const agent = keepAliveAgent();
    const inFlight = get(p.url, { agent });
    await waitFor(() => p.inFlight === 1, { timeoutMs: 2000 });
    const closed = p.close();
    expect(p.state).toBe('stopped');
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.headers.connection).toBe('close');
    await closed;
    await expect(get(p.url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('close() closes idle keep-alive connections at once', async () => {
    const p = await pod({ name: 'idle' });
    const agent = keepAliveAgent();
    await get(p.url, { agent });
    const t = performance.now();
    await p.close();
    expect(performance.now() - t).toBeLessThan(500);
  });

  it('close() cuts off what is still running after the grace period', async () => {
    const p = await pod({ name: 'gh', behaviour: { hang: true } });
    const hung = outcome(get(p.url, { timeoutMs: 5000 }));
    await waitFor(() => p.inFlight === 1, { timeoutMs: 2000 });
    const t = performance.now();
    await p.close({ gracePeriodMs: 100 });
    expect(performance.now() - t).toBeLessThan(1000);
    expect(await hung).toBe('ECONNRESET');
  });

  it('tries the next address when one is taken (EADDRINUSE)', async () => {
    const first = await pod({ name: 'a' });
    const candidates = [first.address, first.address.replace(/\d+$/, (n) => String(Number(n) === 254 ? 253 : Number(n) + 1))];
    const second = await pod({ name: 'b', address: () => candidates.shift()! });
    expect(second.address).not.toBe(first.address);
    expect(JSON.parse((await get(second.url)).body)).toMatchObject({ pod: 'b' });
    await expect(startPod({ name: 'c', address: first.address })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('refuses any address outside 127.0.0.0/8 and bad options', async () => {
    await expect(startPod({ name: 'x', address: '10.0.0.1' })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(startPod({ name: 'x', address: '0.0.0.0' })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(startPod({ name: 'x', address: '::1' })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(startPod({ name: 'x', behaviour: { status: 42 } })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(startPod({ name: '' })).rejects.toBeInstanceOf(InvalidOptionError);
  });
});

/** Settles at once (no unhandled rejection while the test does something else): 'answered' or the error code. */
function outcome(request: Promise<unknown>): Promise<unknown> {
  return request.then(
    () => 'answered',
    (error: NodeJS.ErrnoException) => error.code,
  );
}
