import http from 'node:http';
import type net from 'node:net';
import { InvalidOptionError } from '../errors.js';
import { checkMilliseconds, optionalMilliseconds } from '../option-checks.js';
import { handlesReleased } from './handles.js';
import { listenOnLoopback, LoopbackBlock } from './loopback.js';

/**
 * How a pod answers, switchable while it runs. Fields combine: `{ delayMs: 50, status: 503 }`
 * answers 503 after 50 ms. `{}` is a healthy pod.
 */
export interface PodBehaviour {
  /** Answer this late. */
  readonly delayMs?: number;
  /** Accept the request and never answer it (until the pod stops or crashes). */
  readonly hang?: boolean;
  /** Send the status line, headers and part of the body, then destroy the connection. */
  readonly reset?: boolean;
  /** Answer with this status (default 200). */
  readonly status?: number;
}

/** `running`; `crashed`: killed at once, in-flight requests failed; `stopped`: shut down gracefully. */
export type PodState = 'running' | 'crashed' | 'stopped';

export interface StartPodOptions {
  /** The pod's name, echoed in every response body. */
  readonly name: string;
  /** Default 8080. */
  readonly port?: number;
  /**
   * A 127.0.0.0/8 address, or a function that hands out candidates (tried until one is free).
   * Default: the next address of a random 127.A.B.x block.
   */
  readonly address?: string | (() => string);
  readonly behaviour?: PodBehaviour;
}

export interface PodCloseOptions {
  /** How long in-flight requests may take before they are cut off, as a kubelet's grace period. Default 2000 ms. */
  readonly gracePeriodMs?: number;
}

/** The JSON body of a pod's answer. */
export interface PodResponseBody {
  readonly pod: string;
  readonly ip: string;
}

const defaultBlock = new LoopbackBlock();

/**
 * A pod: a real `node:http` server on its own loopback address, answering
 * `{ "pod": name, "ip": address }` with keep-alive, counting requests.
 */
export class Pod {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly #server: http.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #behaviour: PodBehaviour;
  #requests = 0;
  #connectionsAccepted = 0;
  #inFlight = 0;
  #state: PodState = 'running';
  #draining = false;
  #closed: Promise<void> | undefined;

  /** Use `startPod()`. */
  constructor(name: string, address: string, port: number, server: http.Server, behaviour: PodBehaviour) {
    this.name = name;
    this.address = address;
    this.port = port;
    this.#server = server;
    this.#behaviour = behaviour;
    server.on('connection', (socket: net.Socket) => {
      this.#sockets.add(socket);
      this.#connectionsAccepted++;
      socket.on('close', () => this.#sockets.delete(socket));
    });
    server.on('request', (req, res) => this.#onRequest(req, res));
  }

  /** `http://<address>:<port>` */
  get url(): string {
    return `http://${this.address}:${this.port}`;
  }

  /** Requests received since the pod started (including hung, reset and failed ones). */
  get requests(): number {
    return this.#requests;
  }

  /** Client connections open now. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Client connections accepted since the pod started. */
  get connectionsAccepted(): number {
    return this.#connectionsAccepted;
  }

  /** Requests received and not yet answered or aborted. */
  get inFlight(): number {
    return this.#inFlight;
  }

  get behaviour(): PodBehaviour {
    return this.#behaviour;
  }

  get state(): PodState {
    return this.#state;
  }

  /** Applies to requests that arrive from now on. */
  setBehaviour(behaviour: PodBehaviour): void {
    this.#behaviour = validateBehaviour(behaviour);
  }

  /**
   * Graceful shutdown, as after SIGTERM: no new connections, idle keep-alive connections closed,
   * in-flight requests finish (answered with `Connection: close`), and whatever is still running
   * after the grace period is cut off.
   */
  close(options: PodCloseOptions = {}): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    const gracePeriodMs = optionalMilliseconds(options.gracePeriodMs, 'gracePeriodMs', 2000);
    this.#state = 'stopped';
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const deadline = setTimeout(() => this.#destroyAll(), gracePeriodMs);
    deadline.unref();
    this.#closed = closed.then(async () => {
      clearTimeout(deadline);
      await handlesReleased();
    });
    return this.#closed;
  }

  /** Dies at once, like a SIGKILL: every connection is destroyed, in-flight requests fail. */
  crash(): Promise<void> {
    if (this.#closed !== undefined) {
      // Already stopping: cut the grace period short.
      this.#destroyAll();
      return this.#closed;
    }
    this.#state = 'crashed';
    this.#closed = new Promise<void>((resolve) => this.#server.close(() => resolve())).then(handlesReleased);
    this.#destroyAll();
    return this.#closed;
  }

  #destroyAll(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#sockets) socket.destroy();
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#requests++;
    this.#inFlight++;
    res.on('close', () => {
      this.#inFlight--;
      // Connections that turn idle while the pod drains are closed too, not kept alive.
      if (this.#draining) setImmediate(() => this.#server.closeIdleConnections());
    });
    const behaviour = this.#behaviour;
    // Read the body so the connection can be reused, then answer.
    req.resume();
    req.on('end', () => {
      if (behaviour.hang === true) return;
      if (behaviour.delayMs !== undefined && behaviour.delayMs > 0) {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#respond(res, behaviour);
        }, behaviour.delayMs);
        timer.unref();
        this.#timers.add(timer);
        res.on('close', () => {
          clearTimeout(timer);
          this.#timers.delete(timer);
        });
      } else {
        this.#respond(res, behaviour);
      }
    });
  }

  #respond(res: http.ServerResponse, behaviour: PodBehaviour): void {
    if (res.destroyed) return;
    const body = JSON.stringify({ pod: this.name, ip: this.address } satisfies PodResponseBody);
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    // A pod shutting down tells keep-alive clients not to reuse the connection.
    if (this.#draining) headers.connection = 'close';
    res.writeHead(behaviour.status ?? 200, headers);
    if (behaviour.reset === true) {
      const socket = res.socket;
      res.write(body.slice(0, Math.floor(body.length / 2)), () => socket?.destroy());
      return;
    }
    res.end(body);
  }
}

/** Starts a pod; if its address is taken (EADDRINUSE), tries the next one the `address` function gives. */
export async function startPod(options: StartPodOptions): Promise<Pod> {
  if (typeof options.name !== 'string' || options.name === '') throw new InvalidOptionError('name', options.name, 'a non-empty string');
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidOptionError('port', port, 'an integer from 1 to 65535');
  const behaviour = validateBehaviour(options.behaviour ?? {});
  const { server, address } = await listenOnLoopback(
    () => http.createServer(),
    options.address === undefined ? () => defaultBlock.next() : options.address,
    port,
  );
  return new Pod(options.name, address, port, server, behaviour);
}

function validateBehaviour(behaviour: PodBehaviour): PodBehaviour {
  if (typeof behaviour !== 'object' || behaviour === null) throw new InvalidOptionError('behaviour', behaviour, 'an object');
  const { delayMs, status } = behaviour;
  if (delayMs !== undefined) checkMilliseconds(delayMs, 'behaviour.delayMs');
  if (status !== undefined && (!Number.isInteger(status) || status < 100 || status > 599))
    throw new InvalidOptionError('behaviour.status', status, 'an HTTP status from 100 to 599');
  return Object.freeze({ ...behaviour });
}
