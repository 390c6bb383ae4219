import type { Endpoint } from '../pool/endpoint.js';
import type { Picker, PickRequest } from './picker.js';

/** Uniformly random choice; on failover, a random endpoint not yet tried. */
export class RandomPicker implements Picker {
  readonly name = 'random';

  constructor(private readonly random: () => number = Math.random) {}

  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
    const n = endpoints.length;
    if (n === 0) return undefined;
    const first = Math.floor(this.random() * n);
    const tried = request.tried;
    if (tried === undefined || tried.size === 0) return endpoints[first];
    // Walk from a random start so the choice among untried endpoints stays uniform enough
    // without allocating a filtered copy.
    for (let i = 0; i < n; i++) {
      const candidate = endpoints[(first + i) % n]!;
      if (!tried.has(candidate)) return candidate;
    }
    return undefined;
  }
}
