import { describe, expect, it } from 'vitest';
import { PeakEwma } from '../../../src/pool/peak-ewma.js';

describe('PeakEwma', () => {
  it('starts at the default RTT and takes the first sample as is', () => {
    const ewma = new PeakEwma(10_000, 30, 0);
    expect(ewma.value(0)).toBe(30);
    ewma.observe(5, 100);
    expect(ewma.value(100)).toBe(5);
  });

  it('jumps to a peak at once and decays by elapsed time, not by sample count', () => {
    const ewma = new PeakEwma(10_000, 30, 0);
    ewma.observe(10, 0);
    ewma.observe(100, 1);
    expect(ewma.value(1)).toBe(100);
    // One low sample 10 s later moves the estimate by 1 - e^-1 of the gap.
    ewma.observe(10, 10_001);
    expect(ewma.value(10_001)).toBeCloseTo(10 + 90 * Math.exp(-1), 6);
  });

  it('decays toward zero while idle, so an avoided endpoint is probed again', () => {
    const ewma = new PeakEwma(10_000, 30, 0);
    ewma.observe(500, 0);
    expect(ewma.value(10_000)).toBeCloseTo(500 * Math.exp(-1), 6);
    expect(ewma.value(100_000)).toBeLessThan(1);
  });
});

describe('PeakEwma restart', () => {
  it('starts over from a sample, as from a first one', () => {
    const ewma = new PeakEwma(10_000, 30, 0);
    ewma.observe(500, 0);
    ewma.restart(5, 100);
    expect(ewma.hasSamples).toBe(true);
    expect(ewma.value(100)).toBe(5);
    ewma.observe(3, 100);
    expect(ewma.value(100)).toBe(5); // no time elapsed: a lower sample does not move it yet
  });
});
