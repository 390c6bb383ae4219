import * as grpc from '@grpc/grpc-js';
import type { EchoClient, EchoReply, EchoRequest } from './grpc-pods.js';

export type UnaryResult = { readonly ok: true; readonly reply: EchoReply } | { readonly ok: false; readonly error: grpc.ServiceError };

/** One unary call; never rejects. */
export function unary(
  client: EchoClient,
  request: EchoRequest,
  options: { metadata?: grpc.Metadata; deadlineMs?: number } = {},
): Promise<UnaryResult> {
  const metadata = options.metadata ?? new grpc.Metadata();
  const callOptions: grpc.CallOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
  return new Promise((resolve) => {
    client.Unary(request, metadata, callOptions, (error, reply) =>
      resolve(error === null ? { ok: true, reply: reply! } : { ok: false, error }),
    );
  });
}

export function keyed(key: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('x-shard-key', key);
  return metadata;
}

/** Reads a server stream to its end. */
export function readAll(
  stream: grpc.ClientReadableStream<EchoReply>,
): Promise<{ replies: EchoReply[]; error: grpc.ServiceError | undefined }> {
  const replies: EchoReply[] = [];
  return new Promise((resolve) => {
    stream.on('data', (reply: EchoReply) => replies.push(reply));
    stream.on('error', (error: grpc.ServiceError) => resolve({ replies, error }));
    stream.on('end', () => resolve({ replies, error: undefined }));
  });
}

export function count<T>(values: readonly T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

export { sleep, waitFor } from './wait.js';
