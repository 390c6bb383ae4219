import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs example without type declarations
import { createZonePicker } from '../../../examples/custom-picker.mjs';
import { LeastRequestPicker } from '../../../src/pickers/least-request.js';
import type { Picker } from '../../../src/pickers/picker.js';
import { RoundRobinPicker } from '../../../src/pickers/round-robin.js';
import { ShardKeyPicker } from '../../../src/pickers/shard-key.js';
import type { Endpoint } from '../../../src/pool/endpoint.js';
import { load, makeEndpoint, request, seededRandom } from './support.js';

const zonePicker = createZonePicker as (options: { zonePrefix: string; inner: Picker }) => Picker;

const endpoints = ['web-a-0', 'web-a-1', 'web-b-0', 'web-b-1'].map((name) => makeEndpoint({ name }));
const [a0, a1, b0, b1] = endpoints as [Endpoint, Endpoint, Endpoint, Endpoint];

describe('examples/custom-picker.mjs', () => {
  it('sends everything to the own zone while it has endpoints', () => {
    const picker = zonePicker({ zonePrefix: 'web-a-', inner: new RoundRobinPicker(seededRandom(1)) });
    picker.update?.(endpoints);
    const picks = Array.from({ length: 6 }, () => picker.pick(endpoints, request()));
    expect(new Set(picks)).toEqual(new Set([a0, a1]));
  });

  it('fails over to the other zone once the own zone is tried or gone', () => {
    const picker = zonePicker({ zonePrefix: 'web-a-', inner: new LeastRequestPicker(seededRandom(2)) });
    load(b0, 1);
    expect(picker.pick(endpoints, request({ tried: new Set([a0, a1]), attempt: 3 }))).toBe(b1);
    expect([b0, b1]).toContain(picker.pick([b0, b1], request()));
    expect(picker.pick(endpoints, request({ tried: new Set(endpoints), attempt: 5 }))).toBeUndefined();
  });

  it('composes with shard-key: keys stay on in-zone pods, by identity', () => {
    const inner = new ShardKeyPicker();
    const picker = zonePicker({ zonePrefix: 'web-b-', inner });
    picker.update?.(endpoints);
    for (let i = 0; i < 50; i++) {
      const chosen = picker.pick(endpoints, request({ key: `user-${i}` }));
      expect([b0, b1]).toContain(chosen);
      expect(picker.pick(endpoints, request({ key: `user-${i}` }))).toBe(chosen);
    }
  });
});
