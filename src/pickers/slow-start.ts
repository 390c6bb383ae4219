import type { Endpoint } from '../pool/endpoint.js';
import type { Picker, PickRequest } from './picker.js';

/** Slow start's settings, validated (see SlowStartOptions). */
export interface SlowStartConfig {
  readonly windowMs: number;
  readonly aggression: number;
  readonly minWeight: number;
}

/**
 * Slow start for any picker (Envoy's formula): an endpoint that became available `t` ms ago gets
 * weight max(minWeight, (t / window)^(1 / aggression)). The picker's choice is admitted with that
 * probability; otherwise the picker chooses again without it, so the cold endpoint's share ramps
 * up smoothly whatever the picking rule.
 *
 * Requests with a key are exempt: a shard-key picker sends a key to its owner, and moving the key
 * elsewhere during the ramp would break the stickiness its users rely on (a cache miss on another
 * pod, then another when the key returns). Only keyless requests ramp.
 */
export class SlowStart {
  constructor(
    private readonly config: SlowStartConfig,
    private readonly random: () => number,
  ) {}

  weight(endpoint: Endpoint, now: number): number {
    const age = now - endpoint.health.availableSince;
    if (age >= this.config.windowMs) return 1;
    const ramp = Math.max(0, age / this.config.windowMs) ** (1 / this.config.aggression);
    return Math.max(this.config.minWeight, ramp);
  }

  admit(chosen: Endpoint, candidates: readonly Endpoint[], picker: Picker, request: PickRequest, now: number): Endpoint {
    if (request.key !== undefined) return chosen;
    const weight = this.weight(chosen, now);
    if (weight >= 1 || this.random() < weight || candidates.length < 2) return chosen;
    const tried = new Set(request.tried);
    tried.add(chosen);
    const other = picker.pick(candidates, { ...request, tried });
    // A warm endpoint takes it; a second cold one is admitted only by its own weight.
    if (other === undefined) return chosen;
    const otherWeight = this.weight(other, now);
    return otherWeight >= 1 || this.random() < otherWeight ? other : chosen;
  }
}
