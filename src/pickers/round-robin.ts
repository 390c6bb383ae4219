import type { Endpoint } from '../pool/endpoint.js';
import type { Picker, PickRequest } from './picker.js';

/**
 * Round-robin over the endpoints. Starts at a random offset so that a fleet of clients that
 * start together does not send its first requests to the same pod.
 */
export class RoundRobinPicker implements Picker {
  readonly name = 'round-robin';
  private next: number;

  constructor(random: () => number = Math.random) {
    this.next = Math.floor(random() * 0x7fffffff);
  }

  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
    const n = endpoints.length;
    if (n === 0) return undefined;
    const start = this.next++ % n;
    if (this.next > 0x3fffffff) this.next = start + 1;
    const tried = request.tried;
    if (tried === undefined || tried.size === 0) return endpoints[start];
    for (let i = 0; i < n; i++) {
      const candidate = endpoints[(start + i) % n]!;
      if (!tried.has(candidate)) return candidate;
    }
    return undefined;
  }
}
