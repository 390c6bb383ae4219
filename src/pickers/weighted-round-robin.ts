import type { Endpoint } from '../pool/endpoint.js';
import type { Picker, PickRequest } from './picker.js';
import { RoundRobinPicker } from './round-robin.js';
import { WeightedSchedule, quantizeWeights } from './weighted-schedule.js';

/**
 * Weighted round-robin that honours endpoint weights (SRV weights, or `weight` in a static
 * list) smoothly: every endpoint stays within one pick of its exact share at all times, so a
 * heavy endpoint never gets a burst (weights 5:1:1 give A B A A C A A, not A A A A A B C).
 * O(log n) per pick (see `WeightedSchedule`).
 *
 * With equal weights it *is* round-robin (the case for Kubernetes SRV answers, where CoreDNS
 * gives every pod the same weight). Weight 0 means "only when nothing else is left", in the
 * spirit of RFC 2782; if every weight is 0, all are treated as equal.
 *
 * The schedule is built over the candidate array and rebuilt when a different array is passed
 * or `update()` reports a pool change, so pass the same array while the pool is unchanged.
 */
export class WeightedRoundRobinPicker implements Picker {
  readonly name = 'weighted-round-robin';
  private readonly roundRobin: RoundRobinPicker;
  private builtFor: readonly Endpoint[] | undefined;
  private schedule: WeightedSchedule | undefined;
  /** Schedule slot → index in `builtFor`. */
  private slotIndex = new Int32Array(0);

  constructor(private readonly random: () => number = Math.random) {
    this.roundRobin = new RoundRobinPicker(random);
  }

  update(): void {
    // Weights may have changed even if the next candidate array is the same object.
    this.builtFor = undefined;
  }

  pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
    if (endpoints.length === 0) return undefined;
    if (endpoints !== this.builtFor) this.build(endpoints);
    const schedule = this.schedule;
    if (schedule === undefined) return this.roundRobin.pick(endpoints, request);
    const index = this.slotIndex[schedule.next()]!;
    const chosen = endpoints[index]!;
    const tried = request.tried;
    if (tried === undefined || tried.size === 0 || !tried.has(chosen)) return chosen;
    return failover(endpoints, tried, index);
  }

  private build(endpoints: readonly Endpoint[]): void {
    this.builtFor = endpoints;
    const weights = quantizeWeights(endpoints.map((e) => e.weight));
    const positive: number[] = [];
    const slots: number[] = [];
    for (let i = 0; i < weights.length; i++) {
      if (weights[i]! > 0) {
        positive.push(weights[i]!);
        slots.push(i);
      }
    }
    // All equal (or all zero): plain round-robin, with no schedule to maintain.
    const uniform = positive.length === 0 || (positive.length === weights.length && positive.every((w) => w === positive[0]));
    if (uniform) {
      this.schedule = undefined;
      return;
    }
    this.slotIndex = Int32Array.from(slots);
    this.schedule = new WeightedSchedule(positive, Math.floor(this.random() * positive.length));
  }
}

/** After `from` in array order: the first untried endpoint with a positive weight, else any untried one. */
function failover(endpoints: readonly Endpoint[], tried: ReadonlySet<Endpoint>, from: number): Endpoint | undefined {
  const n = endpoints.length;
  let zeroWeight: Endpoint | undefined;
  for (let step = 1; step < n; step++) {
    const candidate = endpoints[(from + step) % n]!;
    if (tried.has(candidate)) continue;
    if (candidate.weight > 0) return candidate;
    zeroWeight ??= candidate;
  }
  return zeroWeight;
}
