import http from 'node:http';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProber } from '../../src/cli/probe.js';
import { classifyFailure, createBalancer, type Endpoint } from '../../src/index.js';

/**
 * The probes of `watch --probe`, against real servers on 127.0.0.1: the hand-written gRPC health
 * check against grpc-js's server, HTTP status handling, and a refused TCP connection classified
 * as not sent (so outlier detection ejects at once).
 */

const SERVING_STATUS = { SERVING: 1, NOT_SERVING: 2 } as const;
let grpcServer: grpc.Server;
let grpcPort: number;
let serving: keyof typeof SERVING_STATUS = 'SERVING';
let httpServer: http.Server;
let httpPort: number;
let status = 200;

beforeAll(async () => {
  grpcServer = new grpc.Server();
  const identity = (value: Buffer) => value;
  grpcServer.addService(
    {
      check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    { check: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from([0x08, SERVING_STATUS[serving]])) },
  );
  grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
  httpServer = http.createServer((_req, res) => res.writeHead(status).end('ok'));
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  httpPort = (httpServer.address() as net.AddressInfo).port;
});

afterAll(async () => {
  grpcServer?.forceShutdown();
  await new Promise((resolve) => httpServer?.close(resolve));
});

/** An endpoint as the balancer hands it to a probe. */
async function endpointAt(port: number): Promise<Endpoint> {
  const lb = createBalancer({ endpoints: [{ address: '127.0.0.1', port }] });
  await lb.ready();
  const endpoint = lb.endpoints()[0]!;
  await lb.close();
  return endpoint;
}

const signal = () => AbortSignal.timeout(2000);

describe('watch probes', () => {
  it('grpc-health: SERVING passes, NOT_SERVING fails (retryable)', async () => {
    const { probe, close } = createProber({ kind: 'grpc-health' });
    const endpoint = await endpointAt(grpcPort);
    serving = 'SERVING';
    await expect(probe(endpoint, signal())).resolves.toBeUndefined();
    serving = 'NOT_SERVING';
    const error = await probe(endpoint, signal()).catch((e: unknown) => e);
    expect(String(error)).toContain('NOT_SERVING');
    expect(classifyFailure(error)).toBe('maybe-sent');
    close();
  });

  it('grpc-health against a server that does not speak HTTP/2 fails', async () => {
    const { probe } = createProber({ kind: 'grpc-health' });
    const error = await probe(await endpointAt(httpPort), signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
  });

  it('http: 2xx-4xx pass, 5xx fails', async () => {
    const { probe, close } = createProber({ kind: 'http', path: '/healthz' });
    const endpoint = await endpointAt(httpPort);
    status = 204;
    await expect(probe(endpoint, signal())).resolves.toBeUndefined();
    status = 503;
    await expect(probe(endpoint, signal())).rejects.toThrow('HTTP 503');
    close();
  });

  it('tcp: a refused connection is "not sent", which ejects at once', async () => {
    const { probe } = createProber({ kind: 'tcp' });
    await expect(probe(await endpointAt(httpPort), signal())).resolves.toBeUndefined();
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await probe(await endpointAt(port), signal()).catch((e: unknown) => e);
    expect(classifyFailure(error)).toBe('not-sent');
  });
});
