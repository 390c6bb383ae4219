import { AsyncLocalStorage } from 'node:async_hooks';
import { isIP } from 'node:net';
import {
  connectivityState,
  type ChannelInterface,
  type ChannelOptions,
  type Client,
  type ClientOptions,
  type Deadline,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { InvalidOptionError } from '../errors.js';
import { defaultMaxPods } from '../pod-bound.js';
import { timerDelay } from '../timer-delay.js';
import type { Endpoint } from '../pool/endpoint.js';
import type { PoolChange } from '../pool/pool.js';
import { BalancedCall, MethodShape, type GrpcBalancer } from './call.js';
import type { GrpcCall, ParentCall } from './grpc-call.js';
import { MethodPolicies } from './method-policies.js';
import type { GrpcMethodPolicy } from './method-policy.js';
import { resolveGrpcOptions, type GrpcChannelOptions, type ResolvedGrpcOptions } from './options.js';
import { PodChannels, type PodChannelsStats } from './pod-channels.js';
import { RetryThrottle } from './retry-throttle.js';

type ChannelzRef = ReturnType<ChannelInterface['getChannelzRef']>;

export interface HeadlessChannelStats extends PodChannelsStats {
  readonly closed: boolean;
}

interface StateWatcher {
  readonly currentState: connectivityState;
  readonly callback: (error?: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** A constructor of a generated client (`@grpc/proto-loader` + `loadPackageDefinition`, or `grpc-tools`). */
export type GrpcClientConstructor<C extends Client> = new (
  address: string,
  credentials: GrpcChannelOptions['credentials'],
  options?: ClientOptions,
) => C;

/**
 * A grpc-js channel over the pods of a headless Service: pass it as `channelOverride` to any
 * generated client, and each call goes to a pod chosen by the balancer's picker, over one channel
 * per pod, with safe failover (see `BalancedCall`). Closing it drains and closes its pod channels,
 * not the balancer.
 */
export class HeadlessChannel implements ChannelInterface {
  /** @internal */ readonly lb: GrpcBalancer;
  /** @internal */ readonly options: ResolvedGrpcOptions;
  /** @internal */ readonly pods: PodChannels;
  private readonly keys = new AsyncLocalStorage<string>();
  /** @internal */ readonly methodShapes = new Map<string, number>();
  private readonly watchers = new Set<StateWatcher>();
  private readonly target: string;
  private readonly channelzRef: ChannelzRef;
  private closing: Promise<void> | undefined;
  /** The policies of the shorthand options, by idempotence: made once, shared. */
  private readonly shorthandPolicies: readonly [GrpcMethodPolicy, GrpcMethodPolicy];
  /** The service config's policies, if one was given. */
  private readonly methodPolicies: MethodPolicies | undefined;
  /** @internal The service config's retry throttling (gRFC A6), one bucket for the channel. */
  readonly throttle: RetryThrottle | undefined;
  private readonly onChange = (change: PoolChange): void => {
    this.pods.onChange(change);
    this.stateMayHaveChanged();
  };
  /** Set once the balancer drains or closes: it refuses new calls for good, so the channel is SHUTDOWN. */
  private lbClosed: boolean;
  private readonly onLbClosing = (): void => {
    if (this.lbClosed) return;
    this.lbClosed = true;
    this.stateMayHaveChanged();
  };

  /** Use `createGrpcChannel`. */
  constructor(lb: GrpcBalancer, options: GrpcChannelOptions) {
    if (lb === null || typeof lb !== 'object' || typeof lb.dispatch !== 'function' || typeof lb.on !== 'function') {
      throw new InvalidOptionError('lb', lb, 'a Balancer from createBalancer()');
    }
    this.lb = lb;
    this.options = resolveGrpcOptions(options);
    const authority = this.options.authority;
    const channelOptions = this.options.channelOptions;
    const optionsFor = (endpoint: Endpoint): ChannelOptions => {
      const podAuthority = authority ?? `${lb.service}:${endpoint.port}`;
      // A pod channel's target is the pod's IP, which grpc-js would use as the TLS name: check the
      // certificate against the Service name instead (as a dns:/// channel to the Service would).
      const host = authorityHost(podAuthority);
      return {
        'grpc.default_authority': podAuthority,
        ...(isIP(host) === 0 ? { 'grpc.ssl_target_name_override': host } : {}),
        ...channelOptions,
      };
    };
    this.pods = new PodChannels(
      this.options.credentials,
      optionsFor,
      this.options.drainTimeoutMs,
      this.options.maxPods ?? defaultMaxPods(lb),
      () => this.stateMayHaveChanged(),
    );
    this.target = `headless:///${lb.service}`;
    this.channelzRef = { kind: 'channel' as ChannelzRef['kind'], id: 0, name: this.target };
    const { retries, attemptTimeoutMs, retryableCodes, hedge } = this.options;
    this.shorthandPolicies = [
      Object.freeze({ runOptions: Object.freeze({ idempotent: false, retries, attemptTimeoutMs }), retryableCodes }),
      Object.freeze({ runOptions: Object.freeze({ idempotent: true, retries, attemptTimeoutMs, hedge }), retryableCodes }),
    ];
    const serviceConfig = this.options.serviceConfig;
    this.methodPolicies = serviceConfig === undefined ? undefined : new MethodPolicies(serviceConfig, this.shorthandPolicies);
    const throttling = serviceConfig?.retryThrottling;
    this.throttle = throttling === undefined ? undefined : new RetryThrottle(throttling);
    // A Balancer has isClosed; the type an adapter takes does not require it (nor its events be emitted).
    this.lbClosed = (lb as { isClosed?: unknown }).isClosed === true;
    lb.on('change', this.onChange);
    lb.on('draining', this.onLbClosing);
    lb.on('close', this.onLbClosing);
  }

  /** @internal What the calls of `method` may do. */
  policyFor(method: string): GrpcMethodPolicy {
    if (this.methodPolicies !== undefined) return this.methodPolicies.policyFor(method, this.options.isIdempotent);
    return this.shorthandPolicies[this.options.isIdempotent(method) ? 1 : 0];
  }

  /**
   * Runs `fn` with `key` as the shard key of every call it starts (synchronously, or in async
   * code it awaits): `channel.withKey('user-42', () => client.getUser(req, cb))`. Takes precedence
   * over the `key` function and `keyMetadata`.
   */
  withKey<T>(key: string, fn: () => T): T {
    if (typeof key !== 'string') throw new InvalidOptionError('key', key, 'a string');
    return this.keys.run(key, fn);
  }

  /**
   * Makes a generated client that calls through this channel, and learns its service's methods
   * (see `addService`).
   */
  client<C extends Client>(
    Client: GrpcClientConstructor<C>,
    options: Omit<ClientOptions, 'channelOverride' | 'channelFactoryOverride'> = {},
  ): C {
    if (typeof Client !== 'function') throw new InvalidOptionError('Client', Client, 'a generated client constructor');
    const service = (Client as { service?: unknown }).service;
    if (service !== undefined) this.addService(service as ServiceDefinition);
    return new Client(this.target, this.options.credentials, { ...options, channelOverride: this });
  }

  /**
   * Tells the channel the methods of a service (`Client.service` of a generated client; `client()`
   * does it for you). Calls of methods with a unary response then commit at their status instead of
   * at the response metadata, so an idempotent call whose connection drops mid-answer is retried;
   * the one message of a unary request is written without a write callback of the channel's.
   */
  addService(service: ServiceDefinition): void {
    if (service === null || typeof service !== 'object')
      throw new InvalidOptionError('service', service, 'a grpc ServiceDefinition (Client.service)');
    for (const method of Object.values(service)) {
      if (method === null || typeof method !== 'object' || typeof method.path !== 'string') continue;
      const shape =
        (method.responseStream === false ? MethodShape.UnaryResponse : 0) | (method.requestStream === false ? MethodShape.UnaryRequest : 0);
      if (shape !== 0) this.methodShapes.set(method.path, shape);
    }
  }

  stats(): HeadlessChannelStats {
    return { ...this.pods.stats(), closed: this.closing !== undefined };
  }

  // ---- grpc-js ChannelInterface ----

  createCall(
    method: string,
    deadline: Deadline,
    host: string | null | undefined,
    parentCall: ParentCall,
    propagateFlags: number | null | undefined,
  ): GrpcCall {
    if (typeof method !== 'string') throw new TypeError('Channel#createCall: method must be a string');
    if (!(typeof deadline === 'number' || deadline instanceof Date))
      throw new TypeError('Channel#createCall: deadline must be a number or Date');
    if (this.closing !== undefined) throw new Error('Channel has been shut down');
    const policy = this.policyFor(method);
    if (this.methodPolicies?.hasTimeouts === true) {
      // The service config's timeout shortens the caller's deadline, never lengthens it (as grpc-js does).
      const timeoutMs = policy.timeoutMs;
      if (timeoutMs !== undefined) {
        const configDeadline = Date.now() + timeoutMs;
        if (configDeadline < (deadline instanceof Date ? deadline.getTime() : deadline)) deadline = configDeadline;
      }
    }
    return new BalancedCall(this, method, policy, deadline, host, parentCall, propagateFlags, this.keys.getStore());
  }

  /**
   * Stops accepting calls and closes every pod channel once its calls have ended (at most
   * `drainTimeoutMs`). Resolves when all are closed. Does not close the balancer.
   */
  // grpc-js's Channel declares close(): void; returning the drain's promise as well lets callers await it.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.lb.off('change', this.onChange);
      this.lb.off('draining', this.onLbClosing);
      this.lb.off('close', this.onLbClosing);
      this.closing = this.pods.close();
      this.stateMayHaveChanged();
    }
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  getTarget(): string {
    return this.target;
  }

  /**
   * READY when any pod channel is READY; else CONNECTING when one connects; TRANSIENT_FAILURE when
   * all have failed; IDLE otherwise. `tryToConnect` connects to every pod of the pool (to the
   * subset's members when subsetting is on), up to `maxPods`. SHUTDOWN once the channel is closed,
   * and once its balancer drains or is closed: like a shut-down grpc-js channel, it refuses new
   * calls for good (they fail UNAVAILABLE) while calls in flight may finish, and it never leaves
   * that state; so `watchConnectivityState` throws, and `client.waitForReady` fails at once.
   */
  getConnectivityState(tryToConnect: boolean): connectivityState {
    if (tryToConnect && this.closing === undefined && !this.lbClosed) {
      for (const endpoint of podsToConnect(this.lb, this.pods.maxPods)) this.pods.acquire(endpoint).channel.getConnectivityState(true);
    }
    return this.computeState();
  }

  watchConnectivityState(currentState: connectivityState, deadline: Date | number, callback: (error?: Error) => void): void {
    if (this.closing !== undefined || this.lbClosed) throw new Error('Channel has been shut down');
    const watcher: StateWatcher = { currentState, callback, timer: undefined };
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    if (deadlineMs !== Number.POSITIVE_INFINITY) {
      const wait = deadlineMs - Date.now();
      if (wait <= 0) {
        process.nextTick(callback, new Error('Deadline passed without connectivity state change'));
        return;
      }
      const expire = (): void => {
        // A deadline beyond a timer's reach (2^31−1 ms, ~24.8 days) takes more than one timer.
        const left = deadlineMs - Date.now();
        if (left > 0) {
          watcher.timer = setTimeout(expire, timerDelay(left));
          return;
        }
        this.watchers.delete(watcher);
        callback(new Error('Deadline passed without connectivity state change'));
      };
      watcher.timer = setTimeout(expire, timerDelay(wait));
    }
    this.watchers.add(watcher);
  }

  getChannelzRef(): ChannelzRef {
    return this.channelzRef;
  }

  private computeState(): connectivityState {
    if (this.closing !== undefined || this.lbClosed) return connectivityState.SHUTDOWN;
    let connecting = false;
    let idle = false;
    let failing = false;
    for (const pod of this.pods.channels()) {
      if (pod.state === connectivityState.READY) return connectivityState.READY;
      if (pod.state === connectivityState.CONNECTING) connecting = true;
      else if (pod.state === connectivityState.TRANSIENT_FAILURE) failing = true;
      else idle = true;
    }
    if (connecting) return connectivityState.CONNECTING;
    // Pods without a channel yet count as idle.
    if (idle || !failing || this.pods.size < this.lb.endpoints().length) return connectivityState.IDLE;
    return connectivityState.TRANSIENT_FAILURE;
  }

  private stateMayHaveChanged(): void {
    if (this.watchers.size === 0) return;
    const state = this.computeState();
    for (const watcher of [...this.watchers]) {
      if (watcher.currentState === state) continue;
      this.watchers.delete(watcher);
      clearTimeout(watcher.timer);
      watcher.callback();
    }
  }
}

/** The pods `tryToConnect` connects to: the subset's members when subsetting is on, else every pod; at most `max`. */
function podsToConnect(lb: GrpcBalancer, max: number): readonly Endpoint[] {
  const endpoints = lb.endpoints();
  // A Balancer has stats(); the type an adapter takes does not require it.
  const stats = (lb as { stats?: () => { subset?: { members: readonly string[] } } }).stats;
  const members = typeof stats === 'function' ? stats.call(lb).subset?.members : undefined;
  const wanted = members === undefined ? endpoints : endpoints.filter((e) => members.includes(e.id));
  return wanted.length > max ? wanted.slice(0, max) : wanted;
}

/** The host of `host[:port]` or `[v6]:port`. */
function authorityHost(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const colon = authority.lastIndexOf(':');
  return colon > 0 && authority.indexOf(':') === colon ? authority.slice(0, colon) : authority;
}

/** Creates a grpc-js channel over the pods of `lb`, for generated clients' `channelOverride`. */
export function createGrpcChannel(lb: GrpcBalancer, options: GrpcChannelOptions): HeadlessChannel {
  return new HeadlessChannel(lb, options);
}
