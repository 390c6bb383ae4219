import { channel } from 'node:diagnostics_channel';
import type { Endpoint } from './pool/endpoint.js';
import type { AttemptFunction, DispatchedCall } from './retry/call-contract.js';

/**
 * `diagnostics_channel` channels, so OpenTelemetry, Prometheus or logs can observe every attempt
 * without a dependency. Messages are built only when someone subscribes.
 */
export const channels = {
  /** An attempt starts: `AttemptStartMessage`. */
  attemptStart: channel('headless-lb:attempt:start'),
  /** An attempt ends: `AttemptEndMessage`. */
  attemptEnd: channel('headless-lb:attempt:end'),
  /** The pool changed: `{ service, added, removed, updated, readdressed, size }`. */
  poolChange: channel('headless-lb:pool:change'),
} as const;

export interface AttemptStartMessage {
  readonly service: string;
  readonly endpoint: Endpoint;
  readonly attempt: number;
  readonly hedged: boolean;
}

export interface AttemptEndMessage extends AttemptStartMessage {
  readonly outcome: 'success' | 'failure' | 'cancelled';
  readonly durationMs: number;
  readonly error: unknown;
}

/**
 * Wraps the calls of one balancer, for a tracer that must make a span current while an attempt
 * runs: a channel message can be observed, but cannot run the attempt in a context. Installed by
 * `headless-lb/otel` (`setCallTracer`); the core only calls it, and costs one check per call
 * while none is installed.
 */
export interface CallTracer {
  /** One call of `run()`: calls `start` with the attempt function to use; returns its result. */
  run<T, P>(fn: AttemptFunction<T>, plan: P, start: (fn: AttemptFunction<T>, plan: P) => Promise<T>): Promise<T>;
  /** One call of `dispatch()`: the call to dispatch in its place. */
  dispatch<T>(call: DispatchedCall<T>): DispatchedCall<T>;
}

const tracers = new WeakMap<object, CallTracer>();
let installedTracers = 0;

/** Installs (or with `undefined`, removes) the tracer of a balancer's calls. */
export function setCallTracer(balancer: object, tracer: CallTracer | undefined): void {
  const had = tracers.has(balancer);
  if (tracer === undefined) {
    if (had) installedTracers--;
    tracers.delete(balancer);
    return;
  }
  if (!had) installedTracers++;
  tracers.set(balancer, tracer);
}

/** The tracer of a balancer's calls, if one is installed. */
export function callTracerOf(balancer: object): CallTracer | undefined {
  return installedTracers === 0 ? undefined : tracers.get(balancer);
}
