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

  /**
   * Slot a comes before slot b in a heap ordered on (picks + offset) / weight, ties by `tieOrder`.
   * The eligible heap uses offset 1 (the due time of the next pick), the waiting heap offset 0
   * (the time the slot becomes eligible again).
   */
  private before(a: number, b: number, offset: number): boolean {
    const left = (this.picks[a]! + offset) * this.weights[b]!;
    const right = (this.picks[b]! + offset) * this.weights[a]!;
    return left < right || (left === right && this.tieOrder[a]! < this.tieOrder[b]!);
  }

  private pushEligible(slot: number): void {
    this.siftUp(this.eligible, this.eligibleSize++, slot, DUE);
  }

  private popEligible(): number {
    const top = this.eligible[0]!;
    this.siftDown(this.eligible, --this.eligibleSize, DUE);
    return top;
  }

  private pushWaiting(slot: number): void {
    this.siftUp(this.waiting, this.waitingSize++, slot, ELIGIBLE);
  }

  private popWaiting(): number {
    const top = this.waiting[0]!;
    this.siftDown(this.waiting, --this.waitingSize, ELIGIBLE);
    return top;
  }

  /** Places `slot` at the free position `i` of `heap` and moves it up to its place. */
  private siftUp(heap: Int32Array, i: number, slot: number, offset: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(slot, heap[parent]!, offset)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = slot;
  }

  /** After the top was taken: moves the last element (at index `size`) down from the root. */
  private siftDown(heap: Int32Array, size: number, offset: number): void {
    const last = heap[size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && this.before(heap[child + 1]!, heap[child]!, offset)) child++;
      if (!this.before(heap[child]!, last, offset)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}

/** Heap offsets for `before`: the eligible heap orders on the next pick's due time, the waiting heap on eligibility. */
const DUE = 1;
const ELIGIBLE = 0;

/** Largest weight kept exact; larger or fractional weights are scaled into 1..MAX_WEIGHT. */
const MAX_WEIGHT = 65535;

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
