/**
 * A bench-side prototype of a least-latency variant, to try on real pods what the model
 * (latency-model.ts) predicts, without changing the library: P2C (the library's `pickOfTwo`,
 * health first) on `estimate × (1 + in-flight / 2)`, where the estimate is a time-decayed mean
 * of the latencies (τ = 1 s) *without* the peak rule, that decays toward zero while an endpoint
 * gets no samples (τ = 10 s), so an avoided endpoint is still probed again.
 *
 * The library measures latency itself (Endpoint.start/finish); a custom picker has no such hook,
 * so the benchmark feeds `observe()` from inside `lb.run`'s callback. Not for production use.
 */
import type { Endpoint, Picker, PickRequest } from '../../src/index.js';
import { pickOfTwo } from '../../src/pickers/p2c.js';

const DEFAULT_RTT_MS = 30;

class MeanEstimate {
  private estimate = DEFAULT_RTT_MS;
  private stamp = 0;
  private seeded = false;
  constructor(
    private readonly averageMs: number,
    private readonly idleDecayMs: number,
  ) {}
  observe(sample: number, now: number): void {
    if (!this.seeded) {
      this.seeded = true;
      this.estimate = sample;
    } else {
      const w = Math.exp(-Math.max(0, now - this.stamp) / this.averageMs);
      this.estimate = this.estimate * w + sample * (1 - w);
    }
    this.stamp = now;
  }
  value(now: number): number {
    if (!this.seeded) return DEFAULT_RTT_MS;
    return this.estimate * Math.exp(-Math.max(0, now - this.stamp) / this.idleDecayMs);
  }
}

export interface PrototypeOptions {
  /** Averaging time constant, ms. */
  readonly averageMs?: number;
  /** Decay toward zero without samples, ms. */
  readonly idleDecayMs?: number;
  /** cost = estimate × (1 + inflightWeight × in-flight). */
  readonly inflightWeight?: number;
}

export function createPrototype(options: PrototypeOptions = {}): { picker: Picker; observe(endpoint: Endpoint, latencyMs: number): void } {
  const averageMs = options.averageMs ?? 1000;
  const idleDecayMs = options.idleDecayMs ?? 10_000;
  const weight = options.inflightWeight ?? 0.5;
  const estimates = new WeakMap<Endpoint, MeanEstimate>();
  const estimateOf = (endpoint: Endpoint): MeanEstimate => {
    let estimate = estimates.get(endpoint);
    if (estimate === undefined) {
      estimate = new MeanEstimate(averageMs, idleDecayMs);
      estimates.set(endpoint, estimate);
    }
    return estimate;
  };
  let now = 0;
  const cost = (endpoint: Endpoint): number => estimateOf(endpoint).value(now) * (1 + weight * endpoint.inflight);
  return {
    picker: {
      name: 'prototype',
      pick(endpoints: readonly Endpoint[], request: PickRequest): Endpoint | undefined {
        now = performance.now();
        return pickOfTwo(endpoints, request.tried, Math.random, cost);
      },
    },
    observe(endpoint, latencyMs) {
      estimateOf(endpoint).observe(latencyMs, performance.now());
    },
  };
}
