/**
 * A smooth weighted round-robin schedule: WF2Q (Bennett & Zhang 1996) in virtual time, which
 * keeps every slot within one pick of its exact share at every prefix of the sequence:
 * |picks_i − k·w_i/W| < 1 after k picks. (Nginx's smooth WRR has the same bound but costs O(n)
 * per pick; Envoy's EDF is O(log n) but sends bursts: weights 5:1:1 give five picks in a row.)
 *
 * Slot i may be picked once it is not ahead of its share (picks_i / w_i ≤ k / W, "eligible");
 * among eligible slots the one whose next pick is due first ((picks_i + 1) / w_i) wins. Two
 * binary heaps make that O(log n). After one full period (k = W) every slot has had exactly
 * w_i picks, so the state is reset, which keeps the integer arithmetic exact.
 *
 * Weights must be positive integers with W · max(w) < 2^53. Equal weights give plain
 * round-robin in `tieOrder`.
 */
export class WeightedSchedule {
  readonly size: number;
  private readonly weights: Float64Array;
  private readonly picks: Float64Array;
  private readonly tieOrder: Int32Array;
  private readonly period: number;
  private round = 0;
  /** Eligible slots, a min-heap on the due time of their next pick. */
  private readonly eligible: Int32Array;
  private eligibleSize = 0;
  /** Slots ahead of their share, a min-heap on the time they become eligible again. */
  private readonly waiting: Int32Array;
  private waitingSize = 0;

  /**
   * @param weights positive integer weight of each slot
   * @param rotation slot that comes first among equals (a random offset de-synchronizes clients)
   */
  constructor(weights: ArrayLike<number>, rotation = 0) {
    const size = weights.length;
    this.size = size;
    this.weights = Float64Array.from(weights);
    this.picks = new Float64Array(size);
    this.tieOrder = new Int32Array(size);
    let period = 0;
    for (let i = 0; i < size; i++) {
      period += this.weights[i]!;
      this.tieOrder[i] = (i - (rotation % size) + size) % size;
    }
    this.period = period;
    this.eligible = new Int32Array(size);
    this.waiting = new Int32Array(size);
    this.restart();
  }

  /** The next slot. */
  next(): number {
    const { picks, weights, waiting } = this;
    // Slots whose share caught up with them become eligible: picks_i · W ≤ k · w_i.
    while (this.waitingSize > 0) {
      const top = waiting[0]!;
      if (picks[top]! * this.period > this.round * weights[top]!) break;
      this.pushEligible(this.popWaiting());
    }
    // The WF2Q invariant guarantees an eligible slot; the fallback only guards rounding.
    const slot = this.eligibleSize > 0 ? this.popEligible() : this.popWaiting();
    picks[slot]!++;
    this.round++;
    if (this.round >= this.period) this.restart();
    else this.pushWaiting(slot);
    return slot;
  }

  private restart(): void {
    this.round = 0;
    this.picks.fill(0);
    this.waitingSize = 0;
    this.eligibleSize = 0;
    for (let i = 0; i < this.size; i++) this.pushEligible(i);
  }

  /** Slot a's next pick is due before slot b's: (picks_a + 1) / w_a < (picks_b + 1) / w_b. */
  private dueBefore(a: number, b: number): boolean {
    const left = (this.picks[a]! + 1) * this.weights[b]!;
    const right = (this.picks[b]! + 1) * this.weights[a]!;
    return left < right || (left === right && this.tieOrder[a]! < this.tieOrder[b]!);
  }

  /** Slot a becomes eligible before slot b: picks_a / w_a < picks_b / w_b. */
  private eligibleBefore(a: number, b: number): boolean {
    const left = this.picks[a]! * this.weights[b]!;
    const right = this.picks[b]! * this.weights[a]!;
    return left < right || (left === right && this.tieOrder[a]! < this.tieOrder[b]!);
  }

  private pushEligible(slot: number): void {
    const heap = this.eligible;
    let i = this.eligibleSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.dueBefore(slot, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = slot;
  }

  private popEligible(): number {
    const heap = this.eligible;
    const top = heap[0]!;
    const last = heap[--this.eligibleSize]!;
    const size = this.eligibleSize;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && this.dueBefore(heap[child + 1]!, heap[child]!)) child++;
      if (!this.dueBefore(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }

  private pushWaiting(slot: number): void {
    const heap = this.waiting;
    let i = this.waitingSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.eligibleBefore(slot, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = slot;
  }

  private popWaiting(): number {
    const heap = this.waiting;
    const top = heap[0]!;
    const last = heap[--this.waitingSize]!;
    const size = this.waitingSize;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && this.eligibleBefore(heap[child + 1]!, heap[child]!)) child++;
      if (!this.eligibleBefore(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

/** Largest weight kept exact; larger or fractional weights are scaled into 1..MAX_WEIGHT. */
export const MAX_WEIGHT = 65535;

/**
 * Turns endpoint weights into positive integers for `WeightedSchedule`: non-positive or
 * non-finite weights become 0 (not scheduled), integers up to 65535 are kept, anything else is
 * scaled proportionally into 1..65535.
 */
export function quantizeWeights(weights: readonly number[]): number[] {
  let max = 0;
  let exact = true;
  const out = weights.map((w) => (Number.isFinite(w) && w > 0 ? w : 0));
  for (const w of out) {
    if (w > max) max = w;
    if (!Number.isInteger(w) || w > MAX_WEIGHT) exact = false;
  }
  if (exact || max === 0) return out;
  const scale = MAX_WEIGHT / max;
  return out.map((w) => (w === 0 ? 0 : Math.max(1, Math.round(w * scale))));
}
