import { seededRandom } from '../../support/random.js';
export { seededRandom };
import { Endpoint } from '../../../src/pool/endpoint.js';
import type { Target } from '../../../src/pool/target.js';
import type { PickRequest } from '../../../src/pickers/picker.js';

/** A clock the test moves by hand. */
export class ManualClock {
  now = 0;
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}


export interface EndpointSpec {
  readonly name?: string;
  readonly id?: string;
  readonly address?: string;
  readonly port?: number;
  readonly weight?: number;
}

let nextAddress = 1;

export function makeEndpoint(spec: EndpointSpec = {}, clock: () => number = () => 0, metrics = { decayMs: 10_000, defaultRttMs: 30 }): Endpoint {
  const address = spec.address ?? `10.0.${(nextAddress >> 8) & 255}.${nextAddress++ & 255}`;
  const port = spec.port ?? 8080;
  const target: Target = {
    id: spec.id ?? spec.name ?? `${address}:${port}`,
    address,
    addresses: [address],
    port,
    family: 4,
    name: spec.name,
    weight: spec.weight ?? 1,
    priority: 0,
  };
  return new Endpoint(target, clock, metrics);
}

/** n endpoints named like the pods of a StatefulSet behind a headless Service. */
export function pods(n: number, clock?: () => number, first = 0): Endpoint[] {
  return Array.from({ length: n }, (_, i) => makeEndpoint({ name: podName(first + i) }, clock));
}

export function podName(i: number): string {
  return `web-${i}.web-headless.default.svc.cluster.local`;
}

export function request(overrides: Partial<PickRequest> = {}): PickRequest {
  return { key: undefined, tried: undefined, attempt: 1, ...overrides };
}

/** Puts `count` requests in flight on the endpoint. */
export function load(endpoint: Endpoint, count: number): void {
  for (let i = 0; i < count; i++) endpoint.start();
}

/** Records a successful request of `latencyMs` that ends now, without moving the clock. */
export function sample(endpoint: Endpoint, clock: ManualClock, latencyMs: number): void {
  endpoint.start();
  endpoint.finish(clock.now - latencyMs, 'success');
}

/** Records a failed request. */
export function fail(endpoint: Endpoint): void {
  endpoint.finish(endpoint.start(), 'failure');
}
