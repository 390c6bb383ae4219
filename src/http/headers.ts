import type { Dispatcher } from 'undici';

/**
 * Request headers as undici accepts them in `dispatch()`: a plain object (what `fetch` and most
 * callers pass), a flat `[name, value, name, value]` array, or an iterable of `[name, value]`
 * pairs (a `Headers` or a `Map`).
 */
export type RequestHeaders = Dispatcher.DispatchOptions['headers'];

type HeaderValue = string | number | boolean | readonly (string | number | boolean | null)[] | null | undefined;

function asString(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v) => (v === null ? '' : String(v))).join(', ');
  return value === null ? '' : String(value);
}

function isPairIterable(headers: object): headers is Iterable<readonly [string, HeaderValue]> {
  return typeof (headers as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function';
}

/** Reads one header (name given in lower case); several values are joined with ', '. */
export function readHeader(headers: RequestHeaders | unknown, lowerName: string): string | undefined {
  if (headers === null || headers === undefined || typeof headers !== 'object') return undefined;
  if (Array.isArray(headers)) {
    const found: string[] = [];
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === lowerName) {
        const value = asString(headers[i + 1]);
        if (value !== undefined) found.push(value);
      }
    }
    return found.length === 0 ? undefined : found.join(', ');
  }
  if (isPairIterable(headers)) {
    const found: string[] = [];
    for (const pair of headers) {
      if (Array.isArray(pair) && String(pair[0]).toLowerCase() === lowerName) {
        const value = asString(pair[1]);
        if (value !== undefined) found.push(value);
      }
    }
    return found.length === 0 ? undefined : found.join(', ');
  }
  const record = headers as Record<string, unknown>;
  // Fast path: fetch passes lower-case names.
  const direct = record[lowerName];
  if (direct !== undefined) return asString(direct);
  for (const name of Object.keys(record)) {
    if (name.toLowerCase() === lowerName) return asString(record[name]);
  }
  return undefined;
}

/**
 * Returns headers that carry `host` unless the caller set a Host header already. Never mutates
 * the caller's headers. Objects, arrays and iterables all become a flat `[name, value, ...]`
 * array, which undici accepts and which is much cheaper to build than a copied object.
 * `hostOnly` is the (frozen, shared) result for a request without headers.
 */
export function withHost(headers: RequestHeaders, host: string, hostOnly: readonly string[] = ['host', host]): RequestHeaders {
  if (headers === null || headers === undefined) return hostOnly as string[];
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (isHost(headers[i])) return headers;
    const flat = (headers as string[]).slice();
    flat.push('host', host);
    return flat;
  }
  if (isPairIterable(headers)) {
    const flat: string[] = [];
    let hasHost = false;
    for (const pair of headers) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        // Let undici report the malformed entry as it would without us.
        return headers;
      }
      const name = String(pair[0]);
      if (isHost(name)) hasHost = true;
      const value = pair[1] as HeaderValue;
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) flat.push(name, v === null ? '' : String(v));
      else flat.push(name, value === null ? '' : String(value));
    }
    if (!hasHost) flat.push('host', host);
    return flat;
  }
  const record = headers as Record<string, unknown>;
  const names = Object.keys(record);
  const flat = new Array<unknown>(names.length * 2 + 2);
  let j = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const value = record[name];
    if (value === undefined) continue;
    if (isHost(name)) return headers;
    flat[j++] = name;
    flat[j++] = value;
  }
  flat[j++] = 'host';
  flat[j++] = host;
  flat.length = j;
  return flat as string[];
}

function isHost(name: unknown): boolean {
  return typeof name === 'string' ? name.length === 4 && name.toLowerCase() === 'host' : String(name).toLowerCase() === 'host';
}

/**
 * Takes one header (name given in lower case) out of a request's headers, never mutating the
 * caller's. `undefined`: the header is absent and `headers` can be used as they are. Else the
 * header's values joined with ', ' (`undefined` when an iterable, read once here, lacked it) and
 * the other headers as a flat `[name, value, ...]` list.
 */
export function takeHeader(
  headers: RequestHeaders | unknown,
  lowerName: string,
): { value: string | undefined; rest: string[] } | undefined {
  if (headers === null || headers === undefined || typeof headers !== 'object') return undefined;
  const taken = { value: undefined as string | undefined, rest: [] as string[] };
  if (Array.isArray(headers)) {
    if (!hasName(headers, lowerName)) return undefined;
    for (let i = 0; i + 1 < headers.length; i += 2) sortHeader(taken, String(headers[i]), headers[i + 1], lowerName);
  } else if (isPairIterable(headers)) {
    // An iterable may be readable only once: flattened whatever it holds.
    for (const pair of headers) {
      // Let undici report a malformed entry as it would without us.
      if (!Array.isArray(pair) || pair.length !== 2) return undefined;
      sortHeader(taken, String(pair[0]), pair[1], lowerName);
    }
  } else {
    const record = headers as Record<string, unknown>;
    let present = false;
    for (const name in record) if (isName(name, lowerName)) present = true;
    if (!present) return undefined;
    for (const name of Object.keys(record)) sortHeader(taken, name, record[name], lowerName);
  }
  return taken;
}

/** One header: into the taken value (joined with ', ') or the rest. */
function sortHeader(taken: { value: string | undefined; rest: string[] }, name: string, value: unknown, lowerName: string): void {
  if (isName(name, lowerName)) {
    const one = asString(value);
    if (one !== undefined) taken.value = taken.value === undefined ? one : `${taken.value}, ${one}`;
  } else if (value !== undefined) {
    if (Array.isArray(value)) for (const v of value as unknown[]) taken.rest.push(name, v === null ? '' : String(v));
    else taken.rest.push(name, value === null ? '' : String(value));
  }
}

function hasName(flat: readonly unknown[], lowerName: string): boolean {
  for (let i = 0; i < flat.length; i += 2) if (isName(String(flat[i]), lowerName)) return true;
  return false;
}

function isName(name: string, lowerName: string): boolean {
  return name.length === lowerName.length && name.toLowerCase() === lowerName;
}
