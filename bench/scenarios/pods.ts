/**
 * The pods process of the scenario benchmark: every pod is one 127.x address serving
 *
 *   - HTTP/1.1 on `ports.http` (the testing kit's `Pod`: `{ pod, ip }` JSON, keep-alive),
 *   - gRPC on `ports.grpc` (`hlb.bench.Echo/Unary` → `{ pod, ip }`),
 *   - gRPC on `ports.grpcAged`, the same with `grpc.max_connection_age_ms` = 10 s (the grpc-js
 *     maintainers' workaround, for the grpc-tuned contender only),
 *
 * so that every contender talks to the same pods. It runs in its own process so that the pods'
 * CPU is not the client's. Commands arrive as JSON lines on stdin; the process exits when stdin
 * closes (its parent is gone).
 */
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startPod, type Pod } from '../../src/testing/pods.js';
import { jsonLines, protoPath, send, sleep, type PodCommand, type PodPorts, type PodReply } from './protocol.js';

export const MAX_CONNECTION_AGE_MS = 10_000;

interface Pong {
  pod: string;
  ip: string;
}

type EchoService = grpc.ServiceDefinition;

let echoService: EchoService | undefined;

function loadEchoService(): EchoService {
  if (echoService === undefined) {
    const definition = protoLoader.loadSync(protoPath(), { keepCase: true, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { hlb: { bench: { Echo: { service: EchoService } } } };
    echoService = pkg.hlb.bench.Echo.service;
  }
  return echoService;
}

/**
 * A grpc-js server that owns its listening socket and connections (through the public connection
 * injector), so that a crash is a real one: every connection is destroyed and the port closes.
 */
class GrpcPod {
  delayMs = 0;
  private readonly server: grpc.Server;
  private readonly injector: grpc.ConnectionInjector;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    readonly name: string,
    readonly ip: string,
    private readonly listener: net.Server,
    options: grpc.ServerOptions,
  ) {
    this.server = new grpc.Server(options);
    this.server.addService(loadEchoService(), {
      Unary: (_call: grpc.ServerUnaryCall<unknown, Pong>, callback: grpc.sendUnaryData<Pong>) => {
        const reply: Pong = { pod: this.name, ip: this.ip };
        if (this.delayMs <= 0) {
          callback(null, reply);
          return;
        }
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          callback(null, reply);
        }, this.delayMs);
        this.timers.add(timer);
      },
    });
    this.injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    listener.on('connection', (socket: net.Socket) => {
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      this.injector.injectConnection(socket);
    });
  }

  /** SIGKILL: connections reset, calls in flight lost, port closed. */
  async crash(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.server.forceShutdown();
    this.injector.destroy();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  /** SIGTERM: the port closes, GOAWAY on every connection, calls in flight finish within the grace period. */
  async stop(gracePeriodMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const listenerClosed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    const deadline = setTimeout(() => {
      this.server.forceShutdown();
      for (const socket of this.sockets) socket.destroy();
    }, gracePeriodMs);
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    clearTimeout(deadline);
    this.injector.destroy();
    for (const socket of this.sockets) socket.destroy();
    await listenerClosed;
  }
}

async function listen(ip: string, port: number): Promise<net.Server> {
  const listener = net.createServer({ noDelay: true });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ host: ip, port, exclusive: true }, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  return listener;
}

interface PodSet {
  readonly name: string;
  readonly ip: string;
  readonly http: Pod;
  readonly grpc: GrpcPod;
  readonly grpcAged: GrpcPod;
}

class Pods {
  private readonly pods = new Map<string, PodSet>();
  private ports: PodPorts | undefined;

  /** Picks the three ports once, on a scratch address: every pod of the run uses them. */
  async choosePorts(): Promise<PodPorts> {
    if (this.ports !== undefined) return this.ports;
    const scratch = '127.77.255.254';
    const chosen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const probe = await listen(scratch, 0);
      chosen.push((probe.address() as net.AddressInfo).port);
      await new Promise<void>((resolve) => probe.close(() => resolve()));
    }
    const [http, grpcPort, grpcAged] = chosen as [number, number, number];
    this.ports = { http, grpc: grpcPort, grpcAged };
    return this.ports;
  }

  async start(name: string, ip: string, delayMs: number): Promise<void> {
    if (!ip.startsWith('127.')) throw new Error(`refusing a non-loopback pod address ${ip}`);
    const ports = await this.choosePorts();
    const http = await startPod({ name, address: ip, port: ports.http, behaviour: delayMs > 0 ? { delayMs } : {} });
    const grpcPod = new GrpcPod(name, ip, await listen(ip, ports.grpc), {});
    const grpcAged = new GrpcPod(name, ip, await listen(ip, ports.grpcAged), { 'grpc.max_connection_age_ms': MAX_CONNECTION_AGE_MS });
    grpcPod.delayMs = delayMs;
    grpcAged.delayMs = delayMs;
    this.pods.set(ip, { name, ip, http, grpc: grpcPod, grpcAged });
  }

  private get(ip: string): PodSet {
    const pod = this.pods.get(ip);
    if (pod === undefined) throw new Error(`no pod on ${ip}`);
    return pod;
  }

  async crash(ip: string): Promise<void> {
    const pod = this.get(ip);
    await Promise.all([pod.http.crash(), pod.grpc.crash(), pod.grpcAged.crash()]);
  }

  async stop(ip: string, gracePeriodMs: number): Promise<void> {
    const pod = this.get(ip);
    await Promise.all([pod.http.close({ gracePeriodMs }), pod.grpc.stop(gracePeriodMs), pod.grpcAged.stop(gracePeriodMs)]);
  }

  setDelay(ip: string, delayMs: number): void {
    const pod = this.get(ip);
    pod.http.setBehaviour(delayMs > 0 ? { delayMs } : {});
    pod.grpc.delayMs = delayMs;
    pod.grpcAged.delayMs = delayMs;
  }

  async reset(): Promise<void> {
    const all = [...this.pods.values()];
    this.pods.clear();
    await Promise.all(all.map((pod) => Promise.all([pod.http.crash(), pod.grpc.crash(), pod.grpcAged.crash()])));
  }
}

/** Entry point of `--role pods`. */
export async function servePods(): Promise<void> {
  const pods = new Pods();
  let queue: Promise<void> = Promise.resolve();
  const handle = async (command: PodCommand): Promise<PodReply> => {
    switch (command.op) {
      case 'ports':
        return { id: command.id, ok: true, ports: await pods.choosePorts() };
      case 'start':
        await pods.start(command.name, command.ip, command.delayMs ?? 0);
        return { id: command.id, ok: true };
      case 'crash':
        await pods.crash(command.ip);
        return { id: command.id, ok: true };
      case 'stop':
        // A graceful stop takes up to the grace period: answer at once, let it run.
        void pods
          .stop(command.ip, command.gracePeriodMs)
          .catch((error: unknown) => process.stderr.write(`pods: stop ${command.ip}: ${String(error)}\n`));
        await sleep(0);
        return { id: command.id, ok: true };
      case 'delay':
        pods.setDelay(command.ip, command.delayMs);
        return { id: command.id, ok: true };
      case 'reset':
        await pods.reset();
        return { id: command.id, ok: true };
    }
  };
  jsonLines<PodCommand>(process.stdin, (command) => {
    // One command at a time, in order; crash/stop are fast, so this adds no delay worth naming.
    queue = queue.then(async () => {
      try {
        send(await handle(command));
      } catch (error) {
        send({ id: command.id, ok: false, error: (error as Error)?.message ?? String(error) } satisfies PodReply);
      }
    });
  });
  const exit = (): void => {
    void pods.reset().finally(() => process.exit(0));
  };
  process.stdin.on('end', exit);
  process.stdin.on('close', exit);
}
