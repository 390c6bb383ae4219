import { InvalidOptionError } from '../errors.js';
import type { Picker } from './picker.js';
import { RandomPicker } from './random.js';
import { RoundRobinPicker } from './round-robin.js';

/** Names of the built-in pickers. */
export type PickerName = 'round-robin' | 'random';

/** Shared services a picker may use; injected so tests control time and randomness. */
export interface PickerContext {
  readonly random: () => number;
  readonly clock: () => number;
}

export const pickerNames: readonly PickerName[] = ['round-robin', 'random'];

/** Builds a picker from its name, or returns the user's own picker. */
export function createPicker(spec: PickerName | Picker, context: PickerContext, field = 'picker'): Picker {
  if (typeof spec === 'object' && spec !== null && typeof spec.pick === 'function') return spec;
  switch (spec) {
    case 'round-robin':
      return new RoundRobinPicker(context.random);
    case 'random':
      return new RandomPicker(context.random);
    default:
      throw new InvalidOptionError(field, spec, `one of ${pickerNames.map((n) => `'${n}'`).join(', ')}, or an object with a pick() method`);
  }
}
