import { channel } from 'node:diagnostics_channel';
import type { Endpoint } from './pool/endpoint.js';

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
