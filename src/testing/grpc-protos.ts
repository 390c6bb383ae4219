import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Grpc from '@grpc/grpc-js';

/**
 * The .proto files of the gRPC pods and their loading. @grpc/grpc-js and @grpc/proto-loader are
 * optional peer dependencies, imported on first use only, so that `headless-lb/testing` works
 * for HTTP-only users without them.
 */

export type GrpcModule = typeof Grpc;

/** `hlb.test.EchoRequest` (proto/echo.proto). */
export interface EchoRequest {
  text?: string;
  /** Server-side delay before answering (each message of a stream), ms. */
  delayMs?: number;
  /** ServerStream: how many replies. */
  count?: number;
}

/** `hlb.test.EchoReply`: which pod answered. */
export interface EchoReply {
  /** The pod's name and IP. */
  pod: string;
  address: string;
  /** The request's text; ClientStream: the texts received, joined with ','. */
  text: string;
  /** The reply's index in its stream; ClientStream: how many messages were received. */
  seq: number;
}

type Callback<T> = (error: Grpc.ServiceError | null, value?: T) => void;

/** The client of `hlb.test.Echo`, as `grpc.loadPackageDefinition` makes it. */
export interface EchoClient extends Grpc.Client {
  Unary(request: EchoRequest, callback: Callback<EchoReply>): Grpc.ClientUnaryCall;
  Unary(request: EchoRequest, metadata: Grpc.Metadata, callback: Callback<EchoReply>): Grpc.ClientUnaryCall;
  Unary(request: EchoRequest, metadata: Grpc.Metadata, options: Grpc.CallOptions, callback: Callback<EchoReply>): Grpc.ClientUnaryCall;
  ServerStream(request: EchoRequest, metadata?: Grpc.Metadata, options?: Grpc.CallOptions): Grpc.ClientReadableStream<EchoReply>;
  ClientStream(callback: Callback<EchoReply>): Grpc.ClientWritableStream<EchoRequest>;
  ClientStream(metadata: Grpc.Metadata, options: Grpc.CallOptions, callback: Callback<EchoReply>): Grpc.ClientWritableStream<EchoRequest>;
  Bidi(metadata?: Grpc.Metadata, options?: Grpc.CallOptions): Grpc.ClientDuplexStream<EchoRequest, EchoReply>;
}

/** `grpc.health.v1.HealthCheckResponse.ServingStatus`, by name. */
export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface HealthCheckRequest {
  /** '' (the default) asks about the whole server. */
  service?: string;
}

export interface HealthCheckResponse {
  status: HealthStatus;
}

/** The client of `grpc.health.v1.Health`, as `loadHealthService()` makes it (enums as names). */
export interface HealthClient extends Grpc.Client {
  Check(request: HealthCheckRequest, callback: Callback<HealthCheckResponse>): Grpc.ClientUnaryCall;
  Check(
    request: HealthCheckRequest,
    metadata: Grpc.Metadata,
    options: Grpc.CallOptions,
    callback: Callback<HealthCheckResponse>,
  ): Grpc.ClientUnaryCall;
  Watch(request: HealthCheckRequest, metadata?: Grpc.Metadata, options?: Grpc.CallOptions): Grpc.ClientReadableStream<HealthCheckResponse>;
}

export type GrpcClientConstructor<C extends Grpc.Client> = (new (
  address: string,
  credentials: Grpc.ChannelCredentials,
  options?: Grpc.ClientOptions,
) => C) & {
  readonly service: Grpc.ServiceDefinition;
};

export type EchoClientConstructor = GrpcClientConstructor<EchoClient>;
export type HealthClientConstructor = GrpcClientConstructor<HealthClient>;

/** Where the package's .proto files are, for your own loader or code generator. */
export interface ProtoFiles {
  /** The include directory: `health` is imported as `grpc/health/v1/health.proto` relative to it. */
  readonly root: string;
  /** `hlb.test.Echo` */
  readonly echo: string;
  /** `grpc.health.v1.Health` */
  readonly health: string;
}

/** The service name under which the pods report the echo service's health. */
export const ECHO_SERVICE_NAME = 'hlb.test.Echo';

/**
 * The package's proto/ folder sits next to dist/ (installed) and src/ (this repository), and
 * this module may be bundled into dist/, dist/testing/ or a test's own bundle: look upwards.
 */
export function protoFiles(): ProtoFiles {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const root = join(dir, 'proto');
    const files = { root, echo: join(root, 'echo.proto'), health: join(root, 'grpc', 'health', 'v1', 'health.proto') };
    if (existsSync(files.echo) && existsSync(files.health)) return files;
    if (dirname(dir) === dir) break;
  }
  throw new Error(`headless-lb/testing: proto/echo.proto not found above ${fileURLToPath(import.meta.url)}`);
}

export interface GrpcRuntime {
  readonly grpc: GrpcModule;
  readonly Echo: EchoClientConstructor;
  readonly Health: HealthClientConstructor;
}

let runtime: Promise<GrpcRuntime> | undefined;

/** grpc-js and both services, loaded once per process. */
export function loadGrpcRuntime(): Promise<GrpcRuntime> {
  runtime ??= load().catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}

/** The client constructor of `hlb.test.Echo`: `new Echo('127.1.2.11:50051', grpc.credentials.createInsecure())`. */
export async function loadEchoService(): Promise<EchoClientConstructor> {
  return (await loadGrpcRuntime()).Echo;
}

/** The client constructor of `grpc.health.v1.Health` (statuses as names: `'SERVING'`). */
export async function loadHealthService(): Promise<HealthClientConstructor> {
  return (await loadGrpcRuntime()).Health;
}

interface LoadedPackages {
  hlb: { test: { Echo: EchoClientConstructor } };
  grpc: { health: { v1: { Health: HealthClientConstructor } } };
}

async function load(): Promise<GrpcRuntime> {
  // Literal specifiers, so that bundlers see them; each peer is named when it is missing.
  const grpc = await importPeer(() => import('@grpc/grpc-js'), '@grpc/grpc-js');
  const loader = await importPeer(() => import('@grpc/proto-loader'), '@grpc/proto-loader');
  const files = protoFiles();
  const definition = loader.loadSync([files.echo, files.health], {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    includeDirs: [files.root],
  });
  const packages = grpc.loadPackageDefinition(definition) as unknown as LoadedPackages;
  return { grpc, Echo: packages.hlb.test.Echo, Health: packages.grpc.health.v1.Health };
}

/** A CommonJS peer imported from ESM: `default` is its `module.exports`, whatever the loader makes of the rest. */
async function importPeer<M extends object>(load: () => Promise<M>, name: string): Promise<M> {
  let module: M;
  try {
    module = await load();
  } catch (error) {
    throw new Error(`headless-lb/testing: gRPC pods need ${name} (npm install --save-dev @grpc/grpc-js @grpc/proto-loader)`, {
      cause: error,
    });
  }
  const exports = (module as { default?: unknown }).default;
  return typeof exports === 'object' && exports !== null ? (exports as M) : module;
}
