import net from 'node:net';
import type * as Grpc from '@grpc/grpc-js';
import { InvalidOptionError } from '../errors.js';
import { checkBoolean, checkKnownKeys, checkMilliseconds, checkObject, optionalMilliseconds } from '../option-checks.js';
import {
  ECHO_SERVICE_NAME,
  loadGrpcRuntime,
  type EchoReply,
  type EchoRequest,
  type GrpcModule,
  type GrpcRuntime,
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthStatus,
} from './grpc-protos.js';
import { handlesReleased } from './handles.js';
import { LoopbackBlock, listenOnLoopback } from './loopback.js';
import type { PodCloseOptions, PodState } from './pods.js';

/**
 * How a gRPC pod answers echo calls, switchable while it runs. Fields combine and apply in this
 * order: `hang`, `delayMs`, then `status` or `reset`. `{}` is a healthy pod. The health service
 * is not slowed or failed by them: it reports `health` (and NOT_SERVING once the pod stops).
 */
export interface GrpcPodBehaviour {
  /** Start answering every call this late, ms. */
  readonly delayMs?: number;
  /** Accept calls and never answer them (until the pod stops or crashes). */
  readonly hang?: boolean;
  /** Send the response metadata, then reset the call's connection (the pod keeps listening). */
  readonly reset?: boolean;
  /** Fail every call with this status code (1…16, e.g. 14 UNAVAILABLE), before any response metadata. */
  readonly status?: number;
  /** The details of that status. Default `pod <name> answers <CODE>`. */
  readonly details?: string;
  /**
   * Trailing metadata sent with that status (e.g. `{ 'grpc-retry-pushback-ms': '0' }`): each
   * value is one entry, an array several entries of the same key (a grpc-js client sees them as
   * one value joined by `, `). Ignored without `status`.
   */
  readonly trailers?: Readonly<Record<string, string | readonly string[]>>;
  /** What `grpc.health.v1.Health` reports while the pod runs. Default `'SERVING'`. */
  readonly health?: 'SERVING' | 'NOT_SERVING';
}

export interface StartGrpcPodOptions {
  /** The pod's name, in every echo reply. */
  readonly name: string;
  /** Default 50051; 0 takes any free port. */
  readonly port?: number;
  /**
   * A 127.0.0.0/8 address, or a function that hands out candidates (tried until one is free).
   * Default: the next address of a random 127.A.B.x block.
   */
  readonly address?: string | (() => string);
  readonly behaviour?: GrpcPodBehaviour;
  /** Serve TLS with this key and certificate (PEM) instead of plaintext. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
}

interface Watcher {
  readonly call: Grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;
  readonly known: boolean;
  last: HealthStatus | undefined;
}

/** What every kind of server call has. */
interface EchoCall {
  readonly cancelled: boolean;
  getPeer(): string;
  sendMetadata(metadata: Grpc.Metadata): void;
  once(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

const defaultBlock = new LoopbackBlock();
/** Long enough for the response metadata to leave before `reset` cuts the connection. */
const RESET_AFTER_MS = 20;

/**
 * A gRPC pod: a real grpc-js server on its own loopback address serving `hlb.test.Echo` (every
 * reply says which pod answered) and `grpc.health.v1.Health`. The pod owns its listening socket
 * and its connections (handed to grpc-js through its connection injector), so a crash is a real
 * one (connections reset, port closed) and a graceful stop is grpc-js's own (GOAWAY, calls in
 * flight finish).
 */
export class GrpcPod {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly #grpc: GrpcModule;
  readonly #server: Grpc.Server;
  readonly #injector: Grpc.ConnectionInjector;
  readonly #listener: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** Sleeping and hung echo handlers, woken when the pod is killed. */
  readonly #waiting = new Map<() => void, NodeJS.Timeout | undefined>();
  readonly #watchers = new Set<Watcher>();
  #behaviour: GrpcPodBehaviour;
  #requests = 0;
  #inFlight = 0;
  #cancelled = 0;
  #connectionsAccepted = 0;
  #state: PodState = 'running';
  /** Connections reset: handlers still running have nobody to answer. */
  #killed = false;
  #closed: Promise<void> | undefined;

  /** Use `startGrpcPod()`. */
  constructor(
    runtime: GrpcRuntime,
    name: string,
    address: string,
    listener: net.Server,
    behaviour: GrpcPodBehaviour,
    credentials: Grpc.ServerCredentials,
  ) {
    const grpc = runtime.grpc;
    this.#grpc = grpc;
    this.name = name;
    this.address = address;
    this.port = (listener.address() as net.AddressInfo).port;
    this.#listener = listener;
    this.#behaviour = behaviour;
    this.#server = new grpc.Server();
    this.#server.addService(runtime.Echo.service, {
      Unary: (call: Grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: Grpc.sendUnaryData<EchoReply>) =>
        this.#echo(call, callback, async () => {
          await this.#wait(call.request.delayMs ?? 0, call);
          callback(null, this.#reply(call.request.text, 0));
        }),
      ServerStream: (call: Grpc.ServerWritableStream<EchoRequest, EchoReply>) =>
        this.#echo(call, undefined, async () => {
          const count = Math.max(1, call.request.count ?? 1);
          for (let seq = 0; seq < count && !call.cancelled; seq++) {
            await this.#wait(call.request.delayMs ?? 0, call);
            call.write(this.#reply(call.request.text, seq));
          }
          call.end();
        }),
      ClientStream: (call: Grpc.ServerReadableStream<EchoRequest, EchoReply>, callback: Grpc.sendUnaryData<EchoReply>) =>
        this.#echo(call, callback, async () => {
          const texts: string[] = [];
          for await (const request of call as AsyncIterable<EchoRequest>) texts.push(request.text ?? '');
          callback(null, this.#reply(texts.join(','), texts.length));
        }),
      Bidi: (call: Grpc.ServerDuplexStream<EchoRequest, EchoReply>) =>
        this.#echo(call, undefined, async () => {
          // Not `for await`: ending that iteration destroys the duplex, writable side included.
          let seq = 0;
          let chain = Promise.resolve();
          await new Promise<void>((resolve, reject) => {
            call.on('data', (request: EchoRequest) => {
              chain = chain.then(async () => {
                await this.#wait(request.delayMs ?? 0, call);
                call.write(this.#reply(request.text, seq++));
              });
            });
            call.on('end', () => void chain.then(resolve, reject));
            call.on('error', reject);
          });
          call.end();
        }),
    });
    this.#server.addService(runtime.Health.service, {
      Check: (call: Grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: Grpc.sendUnaryData<HealthCheckResponse>) => {
        if (isKnownService(call.request.service)) callback(null, { status: this.health });
        else callback(this.#error(grpc.status.NOT_FOUND, `unknown service ${call.request.service ?? ''}`));
      },
      Watch: (call: Grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => this.#watch(call),
    });
    this.#injector = this.#server.createConnectionInjector(credentials);
    listener.on('connection', (socket: net.Socket) => {
      this.#sockets.add(socket);
      this.#connectionsAccepted++;
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {}); // reset by the client, or by our own crash: nothing to report
      this.#injector.injectConnection(socket);
    });
  }

  /** `<address>:<port>`, a gRPC target: `new Echo(pod.target, grpc.credentials.createInsecure())`. */
  get target(): string {
    return `${this.address}:${this.port}`;
  }

  /** `http://<address>:<port>` (HTTP/2 without TLS). */
  get url(): string {
    return `http://${this.target}`;
  }

  /** Echo calls received since the pod started (including hung, reset and failed ones); health calls are not counted. */
  get requests(): number {
    return this.#requests;
  }

  /** Echo calls received and not yet answered, failed or cancelled. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Echo calls the client cancelled (or whose deadline passed) before they were answered: a hedge's losers, for one. */
  get cancelled(): number {
    return this.#cancelled;
  }

  /** Client connections open now. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Client connections accepted since the pod started. */
  get connectionsAccepted(): number {
    return this.#connectionsAccepted;
  }

  get behaviour(): GrpcPodBehaviour {
    return this.#behaviour;
  }

  get state(): PodState {
    return this.#state;
  }

  /** What `grpc.health.v1.Health` reports for `''` and `hlb.test.Echo`: NOT_SERVING from the moment the pod stops. */
  get health(): 'SERVING' | 'NOT_SERVING' {
    return this.#state === 'running' ? (this.#behaviour.health ?? 'SERVING') : 'NOT_SERVING';
  }

  /** Applies to calls that arrive from now on; a health change reaches Watch calls at once. */
  setBehaviour(behaviour: GrpcPodBehaviour): void {
    this.#behaviour = validateGrpcBehaviour(behaviour);
    this.#notifyWatchers();
  }

  /**
   * Graceful termination, as after SIGTERM: the port closes (new connections refused), health
   * Watch calls get NOT_SERVING and end, GOAWAY goes out on every connection, calls in flight
   * finish, and whatever still runs after the grace period is reset.
   *
   * Done means the pod's connections have closed, not that `tryShutdown` called back: from
   * Node 24 on, `Http2Server.close()` closes the sessions itself (gracefully), and grpc-js's
   * `tryShutdown` then finds them closed and calls back while their streams still run (grpc-js
   * 1.14.7). A session closed gracefully closes its socket after its last stream, on every Node
   * version: that is what is awaited.
   */
  close(options: PodCloseOptions = {}): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    const gracePeriodMs = optionalMilliseconds(options.gracePeriodMs, 'gracePeriodMs', 2000);
    this.#state = 'stopped';
    this.#notifyWatchers();
    for (const watcher of this.#watchers) watcher.call.end();
    this.#watchers.clear();
    const listenerClosed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    const shutdown = new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace-over'>((resolve) => {
      graceTimer = setTimeout(() => resolve('grace-over'), gracePeriodMs);
    });
    this.#closed = (async () => {
      const outcome = await Promise.race([Promise.all([shutdown, this.#connectionsClosed()]), graceOver]);
      clearTimeout(graceTimer);
      if (outcome === 'grace-over') this.#destroyAll();
      this.#injector.destroy();
      for (const socket of this.#sockets) socket.destroy();
      await listenerClosed;
      await handlesReleased();
    })();
    return this.#closed;
  }

  /** Dies at once, like a SIGKILL: every connection is reset, calls in flight fail, the port closes. */
  crash(): Promise<void> {
    if (this.#closed !== undefined) {
      // Already stopping: cut the grace period short.
      this.#destroyAll();
      return this.#closed;
    }
    this.#state = 'crashed';
    this.#watchers.clear();
    const listenerClosed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    this.#destroyAll();
    this.#injector.destroy();
    this.#closed = listenerClosed.then(handlesReleased);
    return this.#closed;
  }

  #destroyAll(): void {
    this.#killed = true;
    for (const socket of this.#sockets) socket.resetAndDestroy();
    this.#server.forceShutdown();
    for (const [wake, timer] of this.#waiting) {
      clearTimeout(timer);
      wake();
    }
    this.#waiting.clear();
  }

  #watch(call: Grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>): void {
    const watcher: Watcher = { call, known: isKnownService(call.request.service), last: undefined };
    this.#watchers.add(watcher);
    call.on('cancelled', () => this.#watchers.delete(watcher));
    call.on('error', () => this.#watchers.delete(watcher));
    this.#send(watcher);
  }

  #notifyWatchers(): void {
    for (const watcher of this.#watchers) this.#send(watcher);
  }

  #send(watcher: Watcher): void {
    const status: HealthStatus = watcher.known ? this.health : 'SERVICE_UNKNOWN';
    if (status === watcher.last || watcher.call.cancelled) return;
    watcher.last = status;
    watcher.call.write({ status });
  }

  /**
   * Runs one echo call under the pod's behaviour: counted, held by `hang` and `delayMs`, failed
   * by `status`, cut by `reset`, else answered by `answer`. `callback` is the unary answer's, or
   * undefined for calls that answer on their stream.
   */
  #echo(call: EchoCall, callback: Grpc.sendUnaryData<EchoReply> | undefined, answer: () => Promise<void>): void {
    this.#requests++;
    this.#inFlight++;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#inFlight--;
    };
    // grpc-js also says 'cancelled' when an answered call's stream closes: counted only before the answer.
    call.once('cancelled', () => {
      if (!done) this.#cancelled++;
      finish();
    });
    const fail = (error: Grpc.ServiceError): void => {
      if (callback !== undefined) callback(error);
      // A stream's status: grpc-js ends a server stream with the error it emits.
      else (call as Grpc.ServerWritableStream<EchoRequest, EchoReply>).emit('error', error);
    };
    const gone = (): boolean => this.#killed || call.cancelled;
    void (async () => {
      const behaviour = this.#behaviour;
      if (behaviour.hang === true) await this.#wait(undefined, call);
      await this.#wait(behaviour.delayMs ?? 0, call);
      if (gone()) return;
      if (behaviour.status !== undefined) {
        const names = this.#grpc.status as unknown as Record<number, string>;
        const error = this.#error(behaviour.status, behaviour.details ?? `pod ${this.name} answers ${names[behaviour.status]}`);
        for (const [key, values] of Object.entries(behaviour.trailers ?? {}))
          for (const value of typeof values === 'string' ? [values] : values) error.metadata.add(key, value);
        return fail(error);
      }
      if (behaviour.reset === true) {
        call.sendMetadata(new this.#grpc.Metadata());
        await this.#wait(RESET_AFTER_MS, call);
        const peer = call.getPeer();
        for (const socket of this.#sockets) if (`${socket.remoteAddress}:${socket.remotePort}` === peer) socket.resetAndDestroy();
        return;
      }
      await answer();
    })()
      .catch((error: unknown) => {
        if (!gone()) fail(this.#error(this.#grpc.status.INTERNAL, String(error)));
      })
      .finally(finish);
  }

  #reply(text: string | undefined, seq: number): EchoReply {
    return { pod: this.name, address: this.address, text: text ?? '', seq };
  }

  #error(code: number, details: string): Grpc.ServiceError {
    return Object.assign(new Error(details), { code, details, metadata: new this.#grpc.Metadata() });
  }

  /** `ms` later (unref'd: the client's deadline is what a test waits on), or never when undefined; ends early if the call is cancelled or the pod killed. */
  #wait(ms: number | undefined, call: EchoCall): Promise<void> {
    if (ms !== undefined && ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(this.#waiting.get(wake));
        this.#waiting.delete(wake);
        call.off('cancelled', wake);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(wake, ms).unref();
      this.#waiting.set(wake, timer);
      call.once('cancelled', wake);
    });
  }

  #connectionsClosed(): Promise<void> {
    return Promise.all(
      [...this.#sockets].map((socket) =>
        socket.closed ? undefined : new Promise<void>((resolve) => socket.once('close', () => resolve())),
      ),
    ).then(() => undefined);
  }
}

/** Starts a gRPC pod; loads @grpc/grpc-js and @grpc/proto-loader on first use. */
export async function startGrpcPod(options: StartGrpcPodOptions): Promise<GrpcPod> {
  checkKnownKeys(checkObject(options, 'options'), ['name', 'port', 'address', 'behaviour', 'tls'], '');
  if (typeof options.name !== 'string' || options.name === '') throw new InvalidOptionError('name', options.name, 'a non-empty string');
  const port = options.port ?? 50051;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError('port', port, 'an integer from 0 to 65535');
  const behaviour = validateGrpcBehaviour(options.behaviour ?? {});
  const tls = options.tls === undefined ? undefined : checkObject(options.tls, 'tls');
  for (const field of ['key', 'cert'] as const)
    if (tls !== undefined && typeof tls[field] !== 'string' && !Buffer.isBuffer(tls[field]))
      throw new InvalidOptionError(`tls.${field}`, tls[field], 'a PEM string or Buffer');
  const runtime = await loadGrpcRuntime();
  const { grpc } = runtime;
  if (typeof grpc.Server.prototype.createConnectionInjector !== 'function')
    throw new Error('headless-lb/testing: gRPC pods need @grpc/grpc-js 1.11 or later (Server.createConnectionInjector)');
  const credentials =
    options.tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(options.tls.key), cert_chain: Buffer.from(options.tls.cert) }]);
  const { server, address } = await listenOnLoopback(
    () => net.createServer({ noDelay: true }),
    options.address === undefined ? () => defaultBlock.next() : options.address,
    port,
  );
  return new GrpcPod(runtime, options.name, address, server, behaviour, credentials);
}

function isKnownService(service: string | undefined): boolean {
  return service === undefined || service === '' || service === ECHO_SERVICE_NAME;
}

const BEHAVIOUR_KEYS = ['delayMs', 'hang', 'reset', 'status', 'details', 'trailers', 'health'] as const;

function validateGrpcBehaviour(behaviour: GrpcPodBehaviour): GrpcPodBehaviour {
  const checked = checkObject(behaviour, 'behaviour');
  checkKnownKeys(checked, BEHAVIOUR_KEYS, 'behaviour');
  const { delayMs, hang, reset, status, details, trailers, health } = behaviour;
  if (trailers !== undefined) checkTrailers(trailers);
  if (delayMs !== undefined) checkMilliseconds(delayMs, 'behaviour.delayMs');
  if (hang !== undefined) checkBoolean(hang, 'behaviour.hang');
  if (reset !== undefined) checkBoolean(reset, 'behaviour.reset');
  if (status !== undefined && (!Number.isInteger(status) || status < 1 || status > 16))
    throw new InvalidOptionError('behaviour.status', status, 'a gRPC status code from 1 to 16');
  if (details !== undefined && typeof details !== 'string') throw new InvalidOptionError('behaviour.details', details, 'a string');
  if (health !== undefined && health !== 'SERVING' && health !== 'NOT_SERVING')
    throw new InvalidOptionError('behaviour.health', health, "'SERVING' or 'NOT_SERVING'");
  return Object.freeze({ ...behaviour, ...(trailers === undefined ? {} : { trailers: Object.freeze({ ...trailers }) }) });
}

/** Keys grpc-js accepts for text metadata (lowercase, no `-bin`: binary values are not offered). */
const TRAILER_KEY = /^[0-9a-z_.-]+$/;
/** Printable ASCII, not empty, no space at either end. */
const TRAILER_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

function checkTrailers(trailers: Readonly<Record<string, string | readonly string[]>>): void {
  for (const [key, values] of Object.entries(checkObject(trailers, 'behaviour.trailers'))) {
    const field = `behaviour.trailers.${key}`;
    if (!TRAILER_KEY.test(key) || key.endsWith('-bin') || (key.startsWith('grpc-') && key !== 'grpc-retry-pushback-ms'))
      throw new InvalidOptionError(field, key, 'a lowercase text metadata key (not -bin, no grpc- key but grpc-retry-pushback-ms)');
    const list: readonly unknown[] = typeof values === 'string' ? [values] : Array.isArray(values) ? values : [values];
    for (const value of list)
      if (typeof value !== 'string' || !TRAILER_VALUE.test(value))
        throw new InvalidOptionError(
          field,
          value,
          'printable ASCII, no space at either end (HTTP/2 drops such a field), or an array of them',
        );
  }
}
