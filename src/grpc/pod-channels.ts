import { Channel, connectivityState, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import type { Endpoint } from '../pool/endpoint.js';
import type { PoolChange } from '../pool/pool.js';
import { BoundedPods } from '../pod-bound.js';

/**
 * One grpc-js channel to one pod (`ipv4:10.1.2.3:9090`, pick_first over that single address),
 * with what the balanced calls need to know about it: how many calls it carries, and whether it
 * has been READY since a given moment.
 */
export class PodChannel {
  readonly channel: Channel;
  /** The endpoint's `host` when the channel was made: an endpoint that changes address gets a new channel. */
  readonly host: string;
  /** Calls created on this channel whose status has not arrived yet. */
  active = 0;
  /** Connectivity state, kept current by a watcher (grpc-js calls watchers synchronously on every change). */
  state: connectivityState;
  /**
   * Times the channel entered READY. grpc-js creates a stream only on a READY subchannel, and a
   * single-address pick_first channel is READY exactly when its subchannel is; so an attempt that
   * started on a channel that was not READY, and saw this number unchanged when it failed, provably
   * never sent anything to the pod.
   */
  readyEpoch = 0;
  private onIdle: (() => void) | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly endpoint: Endpoint,
    credentials: ChannelCredentials,
    options: ChannelOptions,
    private readonly onStateChange: () => void,
  ) {
    this.host = endpoint.host;
    const target = endpoint.family === 6 ? `ipv6:[${endpoint.address}]:${endpoint.port}` : `ipv4:${endpoint.address}:${endpoint.port}`;
    this.channel = new Channel(target, credentials, options);
    endpoint.openPools++;
    this.state = this.channel.getConnectivityState(false);
    this.watch();
  }

  /** The state changed: record it and watch for the next change (no timer: deadline Infinity). */
  private watch(): void {
    if (this.closed) return;
    try {
      this.channel.watchConnectivityState(this.state, Number.POSITIVE_INFINITY, () => {
        const state = this.channel.getConnectivityState(false);
        this.state = state;
        if (state === connectivityState.READY) this.readyEpoch++;
        if (state === connectivityState.SHUTDOWN) return;
        this.watch();
        this.onStateChange();
      });
    } catch {
      // The channel was shut down meanwhile.
    }
  }

  callStarted(): void {
    this.active++;
  }

  callEnded(): void {
    if (this.active > 0) this.active--;
    if (this.active === 0) this.onIdle?.();
  }

  /** Closes the channel once its calls have ended, or after `timeoutMs` (may be Infinity) whatever they do. */
  drain(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(this.drainTimer);
        this.onIdle = undefined;
        this.close();
        resolve();
      };
      if (this.active === 0) return done();
      this.onIdle = done;
      this.limitDrain(timeoutMs);
    });
  }

  /** A drain without a time limit (an evicted channel's) gets one: its pod has gone, or the balanced channel closes. */
  limitDrain(timeoutMs: number): void {
    const done = this.onIdle;
    if (done === undefined || this.drainTimer !== undefined || timeoutMs === Number.POSITIVE_INFINITY) return;
    this.drainTimer = setTimeout(done, timeoutMs);
    this.drainTimer.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endpoint.openPools--;
    this.channel.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

export interface PodChannelsStats {
  /** Channels serving current endpoints (one per pod): at most `maxPods`. */
  readonly channels: number;
  /** The most pods the channel keeps pod channels open to (`maxPods`; Infinity: no bound). */
  readonly maxPods: number;
  /** Pod channels closed to make room for another pod's, since the start. */
  readonly evictions: number;
  /** Channels of departed (or readdressed) endpoints and evicted channels, finishing their calls. */
  readonly draining: number;
  /** Calls in flight over all channels. */
  readonly active: number;
}

/**
 * The pod channels of one balanced channel: created on first use, one per endpoint, for at most
 * `maxPods` pods (the least recently used one's is closed once its calls end, to make room),
 * drained (closed after their calls end) when their endpoint leaves the pool or changes address.
 */
export class PodChannels {
  private readonly live: BoundedPods<PodChannel>;
  private readonly draining = new Map<PodChannel, Promise<void>>();
  /** Endpoints that left the pool: a call picked just before may still ask for their channel. */
  private readonly departed = new WeakSet<Endpoint>();
  private closed = false;

  constructor(
    private readonly credentials: ChannelCredentials,
    private readonly options: (endpoint: Endpoint) => ChannelOptions,
    private readonly drainTimeoutMs: number,
    maxPods: number,
    private readonly onStateChange: () => void,
  ) {
    // An evicted pod is still in the Service: its calls finish however long they take.
    this.live = new BoundedPods<PodChannel>(maxPods, (entry) => this.drain(entry, Number.POSITIVE_INFINITY));
  }

  /** The channel of this endpoint at its current address; made on first use. */
  acquire(endpoint: Endpoint): PodChannel {
    const existing = this.live.get(endpoint);
    if (existing !== undefined && existing.host === endpoint.host) return existing;
    if (existing !== undefined) {
      this.live.delete(endpoint);
      this.drain(existing, this.drainTimeoutMs);
    }
    const created = new PodChannel(endpoint, this.credentials, this.options(endpoint), this.onStateChange);
    if (this.departed.has(endpoint)) {
      // Not kept: closed once the call that asked for it ends.
      created.callStarted();
      this.drain(created, this.drainTimeoutMs);
      process.nextTick(endCall, created);
      return created;
    }
    // The new channel is the most recent: an eviction this causes never closes the channel it returns.
    this.live.set(endpoint, created);
    return created;
  }

  /** Number of live channels. */
  get size(): number {
    return this.live.size;
  }

  /** The most pods with a live channel. */
  get maxPods(): number {
    return this.live.max;
  }

  /** Whether this endpoint has a live channel (its recency unchanged). */
  has(endpoint: Endpoint): boolean {
    return this.live.has(endpoint);
  }

  /** Live channels (for the aggregate connectivity state). */
  channels(): IterableIterator<PodChannel> {
    return this.live.values();
  }

  onChange(change: PoolChange): void {
    for (const endpoint of change.removed) {
      this.departed.add(endpoint);
      const entry = this.live.peek(endpoint);
      if (entry !== undefined) {
        this.live.delete(endpoint);
        this.drain(entry, this.drainTimeoutMs);
      }
      // A channel evicted earlier and still finishing calls: the pod has gone, so it gets the drain timeout too.
      for (const draining of this.draining.keys()) {
        if (draining.endpoint === endpoint) draining.limitDrain(this.drainTimeoutMs);
      }
    }
    for (const endpoint of change.readdressed) {
      const entry = this.live.peek(endpoint);
      if (entry === undefined || entry.host === endpoint.host) continue;
      this.live.delete(endpoint);
      this.drain(entry, this.drainTimeoutMs);
    }
  }

  stats(): PodChannelsStats {
    let active = 0;
    for (const entry of this.live.values()) active += entry.active;
    for (const entry of this.draining.keys()) active += entry.active;
    return {
      channels: this.live.size,
      maxPods: this.live.max,
      evictions: this.live.evictions,
      draining: this.draining.size,
      active,
    };
  }

  /** Drains every channel: calls in flight finish (up to the drain timeout). */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of this.live.values()) this.drain(entry, this.drainTimeoutMs);
    this.live.clear();
    for (const entry of this.draining.keys()) entry.limitDrain(this.drainTimeoutMs);
    await Promise.all(this.draining.values());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private drain(entry: PodChannel, timeoutMs: number): void {
    if (this.draining.has(entry) || entry.isClosed) return;
    const done = entry.drain(timeoutMs).finally(() => {
      this.draining.delete(entry);
      this.onStateChange();
    });
    this.draining.set(entry, done);
  }
}

/** Not a closure in `acquire()` (see retry/call-scope.ts on closures in hot functions). */
function endCall(pod: PodChannel): void {
  pod.callEnded();
}
