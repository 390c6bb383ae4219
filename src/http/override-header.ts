import { InvalidOptionError } from '../errors.js';
import { MAX_RETRIES } from '../options.js';
import { MAX_TIMER_MS } from '../timer-delay.js';
import { emptyOverrides, type RequestOverrides } from './request-options.js';

/**
 * The request header that carries per-request options where dispatch options cannot go (`fetch`
 * drops unknown init keys): `x-headless-lb: retries=1, timeout-ms=500, idempotent`. Read and
 * removed by the dispatcher, never sent to a pod, and only when the dispatcher's
 * `perRequestHeader` option allows it: the header may come from anyone who can reach the
 * caller (a proxy forwarding its incoming headers), so it is off by default.
 */
export const OVERRIDE_HEADER = 'x-headless-lb';

/**
 * What `perRequestHeader` can allow; `hedge` covers `hedge`, `hedge-delay-ms` and
 * `hedge-percentile`, `backoff` covers `backoff-ms` and `backoff-max-ms`.
 */
export type PerRequestHeaderKey = 'idempotent' | 'retries' | 'timeout-ms' | 'attempt-timeout-ms' | 'hedge' | 'backoff';

export const PER_REQUEST_HEADER_KEYS: readonly PerRequestHeaderKey[] = [
  'idempotent',
  'retries',
  'timeout-ms',
  'attempt-timeout-ms',
  'hedge',
  'backoff',
];

/** A longer header is refused unread: the grammar's longest sensible value is far shorter. */
export const MAX_HEADER_LENGTH = 256;

/** Each key of the grammar, and the `perRequestHeader` entry that allows it. */
const GRAMMAR_KEYS: Readonly<Record<string, PerRequestHeaderKey>> = {
  idempotent: 'idempotent',
  retries: 'retries',
  'timeout-ms': 'timeout-ms',
  'attempt-timeout-ms': 'attempt-timeout-ms',
  hedge: 'hedge',
  'hedge-delay-ms': 'hedge',
  'hedge-percentile': 'hedge',
  'backoff-ms': 'backoff',
  'backoff-max-ms': 'backoff',
};

const MEMBER = /^([a-z][a-z0-9-]*)(?:=(.*))?$/;
const INTEGER = /^[0-9]{1,10}$/;
const DECIMAL = /^[0-9](?:\.[0-9]{1,3})?$/;

/**
 * Parses the header's value: a comma-separated list of `key` or `key=value` members, a strict
 * subset of an RFC 8941 dictionary (several header lines count as one, joined with commas, as
 * `fetch`'s Headers joins them):
 *
 *   idempotent | idempotent=?1 | idempotent=?0
 *   retries=<0…100>
 *   timeout-ms=<0…2147483647>   attempt-timeout-ms=<0…2147483647>
 *   hedge-delay-ms=<0…2147483647>   hedge-percentile=<0…1, up to 3 decimals>   hedge=?0 (no hedge)
 *   backoff-ms=<0…2147483647> (backoff.initialMs)   backoff-max-ms=<0…2147483647> (backoff.maxMs)
 *
 * Anything else — an unknown, repeated or not allowed key, a value out of range, other
 * characters, an empty member — is an InvalidOptionError naming `x-headless-lb: <key>` (or the
 * header) and the value.
 */
export function parseOverrideHeader(value: string, allowed: ReadonlySet<PerRequestHeaderKey>): RequestOverrides {
  if (value.length > MAX_HEADER_LENGTH)
    throw new InvalidOptionError(OVERRIDE_HEADER, `${value.slice(0, 64)}…`, `at most ${MAX_HEADER_LENGTH} characters`);
  const overrides = emptyOverrides(HEDGE_FIELD);
  const seen = new Set<string>();
  let hedgeOff = false;
  let delayMs: number | undefined;
  let percentile: number | undefined;
  let initialMs: number | undefined;
  let maxMs: number | undefined;
  let start = 0;
  while (start <= value.length) {
    let end = value.indexOf(',', start);
    if (end === -1) end = value.length;
    const member = MEMBER.exec(withoutOws(value, start, end));
    start = end + 1;
    if (member === null)
      throw new InvalidOptionError(
        OVERRIDE_HEADER,
        value,
        'members `key` or `key=value`, separated by commas, such as "retries=1, idempotent"',
      );
    const key = member[1]!;
    const text = member[2];
    const gate = GRAMMAR_KEYS[key];
    if (gate === undefined) throw new InvalidOptionError(field(key), text ?? true, `a known key: ${Object.keys(GRAMMAR_KEYS).join(', ')}`);
    if (!allowed.has(gate))
      throw new InvalidOptionError(field(key), text ?? true, `a key the dispatcher's perRequestHeader allows (${[...allowed].join(', ')})`);
    if (seen.has(key)) throw new InvalidOptionError(field(key), text ?? true, 'each key once');
    seen.add(key);
    switch (key) {
      case 'idempotent':
        overrides.idempotent = flag(text, key);
        break;
      case 'retries':
        overrides.retries = integer(text, key, MAX_RETRIES);
        break;
      case 'timeout-ms':
        overrides.timeoutMs = integer(text, key, MAX_TIMER_MS);
        break;
      case 'attempt-timeout-ms':
        overrides.attemptTimeoutMs = integer(text, key, MAX_TIMER_MS);
        break;
      case 'hedge':
        if (text !== '?0')
          throw new InvalidOptionError(field(key), text ?? true, '?0 (no hedge); hedge with hedge-delay-ms or hedge-percentile');
        hedgeOff = true;
        break;
      case 'backoff-ms':
        initialMs = integer(text, key, MAX_TIMER_MS);
        break;
      case 'backoff-max-ms':
        maxMs = integer(text, key, MAX_TIMER_MS);
        break;
      case 'hedge-delay-ms':
        delayMs = integer(text, key, MAX_TIMER_MS);
        overrides.hedgeField = field(key);
        break;
      default: // hedge-percentile
        if (text === undefined || !DECIMAL.test(text) || Number(text) > 1)
          throw new InvalidOptionError(field(key), text, 'a quantile from 0 to 1 with up to 3 decimals, such as 0.95');
        percentile = Number(text);
        overrides.hedgeField = field(key);
        break;
    }
  }
  if (hedgeOff && (delayMs !== undefined || percentile !== undefined))
    throw new InvalidOptionError(HEDGE_FIELD, '?0', 'not together with hedge-delay-ms or hedge-percentile');
  if (hedgeOff) overrides.hedge = false;
  else if (delayMs !== undefined || percentile !== undefined)
    overrides.hedge = {
      ...(delayMs === undefined ? {} : { delayMs }),
      ...(percentile === undefined ? {} : { percentile }),
    };
  if (initialMs !== undefined || maxMs !== undefined)
    overrides.backoff = { ...(initialMs === undefined ? {} : { initialMs }), ...(maxMs === undefined ? {} : { maxMs }) };
  return overrides;
}

const HEDGE_FIELD = `${OVERRIDE_HEADER}: hedge`;

/** How an error names a key (made only when needed). */
function field(key: string): string {
  return `${OVERRIDE_HEADER}: ${key}`;
}

/** `value[start, end)` without HTTP's optional whitespace (spaces and tabs) around it, and only it. */
function withoutOws(value: string, start: number, end: number): string {
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

function flag(text: string | undefined, key: string): boolean {
  if (text === undefined || text === '?1') return true;
  if (text === '?0') return false;
  throw new InvalidOptionError(field(key), text, 'no value or ?1 (true), or ?0 (false)');
}

function integer(text: string | undefined, key: string, max: number): number {
  const n = text !== undefined && INTEGER.test(text) ? Number(text) : NaN;
  if (!(n <= max)) throw new InvalidOptionError(field(key), text, `an integer from 0 to ${max}`);
  return n;
}

/** Checks the dispatcher's `perRequestHeader` option: `false` (default), `true`, or the keys the header may set. */
export function resolvePerRequestHeader(value: unknown): ReadonlySet<PerRequestHeaderKey> | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return new Set(PER_REQUEST_HEADER_KEYS);
  if (!Array.isArray(value))
    throw new InvalidOptionError('perRequestHeader', value, `true, false, or a list of ${PER_REQUEST_HEADER_KEYS.join(', ')}`);
  const keys = new Set<PerRequestHeaderKey>();
  value.forEach((key: unknown, i: number) => {
    if (!PER_REQUEST_HEADER_KEYS.includes(key as PerRequestHeaderKey))
      throw new InvalidOptionError(`perRequestHeader[${i}]`, key, `one of ${PER_REQUEST_HEADER_KEYS.join(', ')}`);
    keys.add(key as PerRequestHeaderKey);
  });
  if (keys.size === 0) throw new InvalidOptionError('perRequestHeader', value, 'at least one key, or false for no header');
  return keys;
}
