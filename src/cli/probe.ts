import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { RetryableError, type Endpoint } from '../index.js';
import type { ProbeSpec } from './args.js';

/** Sends one probe to an endpoint; rejects when it fails. */
export type ProbeFunction = (endpoint: Endpoint, signal: AbortSignal) => Promise<void>;

export interface Prober {
  readonly probe: ProbeFunction;
  /** Closes kept-alive connections. */
  close(): void;
}

export function createProber(spec: ProbeSpec): Prober {
  switch (spec.kind) {
    case 'tcp':
      return { probe: tcpProbe, close: () => {} };
    case 'http':
      return httpProber(spec.path);
    case 'grpc-health':
      return { probe: grpcHealthProbe, close: () => {} };
  }
}

/** Connects and hangs up: the pod accepts connections. A refused one is a connect failure (ejected at once). */
function tcpProbe(endpoint: Endpoint, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.address, port: endpoint.port });
    const onAbort = (): void => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve();
    });
    socket.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(error);
    });
  });
}

/** GET PATH over a kept-alive connection, as an HTTP client would; a 5xx fails (retryable). */
function httpProber(path: string): Prober {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const probe: ProbeFunction = (endpoint, signal) =>
    new Promise((resolve, reject) => {
      const request = http.get(
        { host: endpoint.address, port: endpoint.port, path, agent, signal, headers: { 'user-agent': 'headless-lb-watch' } },
        (response) => {
          response.resume();
          response.once('end', () => {
            const status = response.statusCode ?? 0;
            if (status >= 500) reject(new RetryableError(`HTTP ${status} from ${endpoint.host}${path}`));
            else resolve();
          });
          response.once('error', reject);
        },
      );
      request.once('error', reject);
    });
  return { probe, close: () => agent.destroy() };
}

/**
 * grpc.health.v1.Health/Check over plaintext HTTP/2, written out by hand (an empty request, a
 * one-field response) so the command needs no gRPC library: SERVING passes, anything else fails.
 */
function grpcHealthProbe(endpoint: Endpoint, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${endpoint.host}`);
    let settled = false;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      session.close();
      session.destroy();
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => finish(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    session.once('error', finish);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('response', (headers) => (grpcStatus = headerValue(headers['grpc-status'])));
    stream.once('trailers', (trailers) => (grpcStatus = headerValue(trailers['grpc-status']) ?? grpcStatus));
    stream.once('error', finish);
    stream.once('end', () => {
      if (grpcStatus !== '0')
        return finish(new RetryableError(`gRPC health check: grpc-status ${grpcStatus ?? 'missing'} from ${endpoint.host}`));
      const status = servingStatus(Buffer.concat(chunks));
      finish(
        status === 1
          ? undefined
          : new RetryableError(`gRPC health check: ${SERVING_STATUS[status] ?? `status ${status}`} from ${endpoint.host}`),
      );
    });
    // A length-prefixed message: not compressed, 0 bytes (HealthCheckRequest with no service).
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** HealthCheckResponse.status (field 1, varint) of the one message in a gRPC response body; 0 when absent. */
function servingStatus(body: Buffer): number {
  if (body.length < 5) return 0;
  const message = body.subarray(5, 5 + body.readUInt32BE(1));
  for (let i = 0; i + 1 < message.length; i += 2) if (message[i] === 0x08) return message[i + 1]!;
  return 0;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
