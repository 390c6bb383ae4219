import { seededRandom } from '../../support/random.js';
export { seededRandom };
import { Endpoint } from '../../../src/pool/endpoint.js';
import type { Target } from '../../../src/target.js';
import type { Picker, PickRequest } from '../../../src/pickers/picker.js';

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

export function makeEndpoint(
  spec: EndpointSpec = {},
  clock: () => number = () => 0,
  metrics = { decayMs: 10_000, defaultRttMs: 30 },
): Endpoint {
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

/**
 * Gives the endpoint a current latency estimate of `latencyMs`: least-latency trusts an estimate
 * from the second response on (the first may carry a connection set-up).
 */
export function measure(endpoint: Endpoint, clock: ManualClock, latencyMs: number): void {
  sample(endpoint, clock, latencyMs);
  sample(endpoint, clock, latencyMs);
}

/** Records a failed request. */
export function fail(endpoint: Endpoint): void {
  endpoint.finish(endpoint.start(), 'failure');
}

export interface ClosedLoopOptions {
  /** Requests in flight at once. */
  readonly concurrency: number;
  /** Picks in all (the loop is bounded). */
  readonly picks: number;
  /** How long the request to `endpoint` takes, ms, given how many responses it had before. */
  readonly latency: (endpoint: Endpoint, responses: number) => number;
}

/**
 * A closed loop on a manual clock: `concurrency` requests in flight, each answered `latency` ms
 * after its pick, and a new pick as each answer arrives. Returns every pick, in order.
 */
export function closedLoop(picker: Picker, endpoints: readonly Endpoint[], clock: ManualClock, options: ClosedLoopOptions): Endpoint[] {
  const picked: Endpoint[] = [];
  const responses = new Map<Endpoint, number>();
  const pending: { endsAt: number; endpoint: Endpoint; startedAt: number }[] = [];
  const issue = (): void => {
    const endpoint = picker.pick(endpoints, request())!;
    picked.push(endpoint);
    const startedAt = endpoint.start();
    const n = responses.get(endpoint) ?? 0;
    responses.set(endpoint, n + 1);
    pending.push({ endsAt: clock.now + options.latency(endpoint, n), endpoint, startedAt });
  };
  for (let i = 0; i < options.concurrency && picked.length < options.picks; i++) issue();
  while (pending.length > 0) {
    let first = 0;
    for (let i = 1; i < pending.length; i++) if (pending[i]!.endsAt < pending[first]!.endsAt) first = i;
    const next = pending.splice(first, 1)[0]!;
    clock.now = next.endsAt;
    next.endpoint.finish(next.startedAt, 'success');
    if (picked.length < options.picks) issue();
  }
  return picked;
}

/** How many of `picks` went to each endpoint (0 for none). */
export function countPicks(picks: readonly Endpoint[], endpoints: readonly Endpoint[]): number[] {
  return endpoints.map((endpoint) => picks.filter((e) => e === endpoint).length);
}
