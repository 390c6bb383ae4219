import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/errors.js';
import {
  LeastLatencyPicker,
  LeastRequestPicker,
  RandomPicker,
  RoundRobinPicker,
  ShardKeyPicker,
  WeightedRoundRobinPicker,
  createPicker,
  pickerNames,
  type Picker,
  type PickerSpec,
} from '../../../src/pickers/index.js';
import { pods, request, seededRandom } from './support.js';

const context = { random: seededRandom(1), clock: () => 0 };

function invalid(spec: unknown): InvalidOptionError {
  try {
    createPicker(spec as PickerSpec, context);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('createPicker', () => {
  it('builds every built-in picker by name and by { type }', () => {
    const classes = {
      'round-robin': RoundRobinPicker,
      random: RandomPicker,
      'least-request': LeastRequestPicker,
      'least-latency': LeastLatencyPicker,
      'weighted-round-robin': WeightedRoundRobinPicker,
      'shard-key': ShardKeyPicker,
    };
    for (const name of pickerNames) {
      const byName = createPicker(name, context);
      expect(byName).toBeInstanceOf(classes[name]);
      expect(byName.name).toBe(name);
      expect(createPicker({ type: name }, context)).toBeInstanceOf(classes[name]);
      const endpoints = pods(3);
      byName.update?.(endpoints);
      expect(endpoints).toContain(byName.pick(endpoints, request({ key: 'k' })));
    }
  });

  it('returns a custom picker as is', () => {
    const custom: Picker = { name: 'mine', pick: (endpoints) => endpoints[0] };
    expect(createPicker(custom, context)).toBe(custom);
  });

  it('configures shard-key', () => {
    const fallback: Picker = { name: 'mine', pick: (endpoints) => endpoints[0] };
    const picker = createPicker({ type: 'shard-key', boundedLoad: 1.5, fallback }, context) as ShardKeyPicker;
    expect(picker.boundedLoad).toBe(1.5);
    expect(picker.fallback).toBe(fallback);
    expect((createPicker({ type: 'shard-key', boundedLoad: true }, context) as ShardKeyPicker).boundedLoad).toBe(1.25);
    expect((createPicker({ type: 'shard-key', boundedLoad: false }, context) as ShardKeyPicker).boundedLoad).toBeUndefined();
    expect((createPicker('shard-key', context) as ShardKeyPicker).fallback).toBeInstanceOf(RoundRobinPicker);
    expect((createPicker({ type: 'shard-key', fallback: 'least-request' }, context) as ShardKeyPicker).fallback).toBeInstanceOf(
      LeastRequestPicker,
    );
    expect((createPicker({ type: 'shard-key', fallback: { type: 'random' } }, context) as ShardKeyPicker).fallback).toBeInstanceOf(
      RandomPicker,
    );
  });

  const cases: [string, unknown, string, unknown][] = [
    ['unknown name', 'fastest', 'picker', 'fastest'],
    ['unknown type', { type: 'fastest' }, 'picker.type', 'fastest'],
    ['null', null, 'picker', null],
    ['number', 3, 'picker', 3],
    ['object without type or pick', { name: 'x' }, 'picker', { name: 'x' }],
    ['option of another picker', { type: 'round-robin', boundedLoad: 2 }, 'picker.boundedLoad', 2],
    ['latency decay on the picker', { type: 'least-latency', decayMs: 5000 }, 'picker.decayMs', 5000],
    ['bounded load below 1', { type: 'shard-key', boundedLoad: 0.9 }, 'picker.boundedLoad', 0.9],
    ['bounded load NaN', { type: 'shard-key', boundedLoad: Number.NaN }, 'picker.boundedLoad', Number.NaN],
    ['bounded load string', { type: 'shard-key', boundedLoad: '1.25' }, 'picker.boundedLoad', '1.25'],
    ['cache size negative', { type: 'shard-key', cacheSize: -1 }, 'picker.cacheSize', -1],
    ['cache size fractional', { type: 'shard-key', cacheSize: 1.5 }, 'picker.cacheSize', 1.5],
    ['shard-key as its own fallback', { type: 'shard-key', fallback: 'shard-key' }, 'picker.fallback', 'shard-key'],
    ['bad fallback', { type: 'shard-key', fallback: 'fastest' }, 'picker.fallback', 'fastest'],
    ['bad fallback option', { type: 'shard-key', fallback: { type: 'random', seed: 1 } }, 'picker.fallback.seed', 1],
  ];

  it.each(cases)('%s → names %s', (_label, spec, field, value) => {
    const error = invalid(spec);
    expect(error.field).toBe(field);
    expect(error.value).toEqual(value);
    expect(error.message).toContain(field);
  });

  it('points latency settings to the balancer', () => {
    expect(invalid({ type: 'least-latency', defaultRttMs: 10 }).message).toContain('latency.defaultRttMs');
  });
});
