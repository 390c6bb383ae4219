import { isIP } from 'node:net';
import { InvalidOptionError } from './errors.js';
import { MAX_TIMER_MS } from './timer-delay.js';

/*
 * Checks of option values, shared by the balancer, the adapters and the test kit: each returns
 * the value when it is valid and throws an InvalidOptionError naming the field and the value.
 */

export function checkObject(value: unknown, field: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidOptionError(field, value, 'an object');
  return value as Record<string, unknown>;
}

export function checkNumber(
  value: unknown,
  field: string,
  { min, max, integer = false }: { min: number; max?: number; integer?: boolean },
): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    value >= min &&
    (max === undefined || value <= max) &&
    (!integer || Number.isInteger(value));
  if (!ok) {
    const range = max === undefined ? `>= ${min}` : `${min}..${max}`;
    throw new InvalidOptionError(field, value, `${integer ? 'an integer' : 'a number'} ${range}`);
  }
  return value as number;
}

export function optionalNumber(
  value: unknown,
  field: string,
  fallback: number,
  range: { min: number; max?: number; integer?: boolean },
): number {
  return value === undefined ? fallback : checkNumber(value, field, range);
}

/**
 * A duration or delay in milliseconds: a finite number from `min` (default 0) to `max` (default
 * and at most 2^31−1, the longest delay Node's timers honour; a longer one fires after 1 ms).
 */
export function checkMilliseconds(
  value: unknown,
  field: string,
  { min = 0, max = MAX_TIMER_MS }: { min?: number; max?: number } = {},
): number {
  const ceiling = Math.min(max, MAX_TIMER_MS);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > ceiling) {
    const why = ceiling === MAX_TIMER_MS ? ' (2^31−1, the longest delay Node timers honour)' : '';
    throw new InvalidOptionError(field, value, `milliseconds, a number from ${min} to ${ceiling}${why}`);
  }
  return value;
}

export function optionalMilliseconds(value: unknown, field: string, fallback: number, range?: { min?: number; max?: number }): number {
  return value === undefined ? fallback : checkMilliseconds(value, field, range);
}

/** A port number: an integer from 1 to 65535. */
export function checkPort(value: unknown, field: string): number {
  return checkNumber(value, field, { min: 1, max: 65535, integer: true });
}

/** A DNS name (RFC 1123 labels; underscores allowed for SRV-style labels), optional trailing dot. */
export function checkDnsName(value: unknown, field: string): string {
  const expected = "a DNS name such as 'web-headless.default.svc.cluster.local' or 'web-headless'";
  if (typeof value !== 'string' || value.length === 0 || value.length > 254) throw new InvalidOptionError(field, value, expected);
  if (isIP(value) !== 0) throw new InvalidOptionError(field, value, `${expected}; for fixed addresses use the 'endpoints' option`);
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  const labels = name.split('.');
  const valid = labels.every((label) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label));
  if (!valid) throw new InvalidOptionError(field, value, expected);
  return value;
}

export function checkBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionError(field, value, 'true or false');
  return value;
}

export function checkFunction<T>(value: unknown, field: string): T {
  if (typeof value !== 'function') throw new InvalidOptionError(field, value, 'a function');
  return value as T;
}

export function checkSignal(value: unknown, field: string): AbortSignal {
  if (!(value instanceof AbortSignal)) throw new InvalidOptionError(field, value, 'an AbortSignal');
  return value;
}

/** Rejects keys that no option has: a typo should not be silently ignored. */
export function checkKnownKeys(value: Record<string, unknown>, known: readonly string[], field: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const path = field === '' ? key : `${field}.${key}`;
      throw new InvalidOptionError(path, value[key], `no such option; known: ${known.join(', ')}`);
    }
  }
}
