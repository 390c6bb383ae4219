import type { Dispatcher } from 'undici';

/** Every option undici 7's core `Request` reads from dispatch options (a test checks the list). */
export const DISPATCH_FIELDS = [
  'path',
  'method',
  'body',
  'headers',
  'query',
  'idempotent',
  'blocking',
  'upgrade',
  'headersTimeout',
  'bodyTimeout',
  'reset',
  'expectContinue',
  'servername',
  'throwOnError',
  'maxRedirections',
  'typeOfService',
] as const;

export type DispatchField = (typeof DISPATCH_FIELDS)[number];

/**
 * The dispatch options of one request, copied once into a fixed shape.
 *
 * Why a copy, and why `for…in`: `undici.request()` builds its options with an object spread
 * (`{ ...opts, origin, path, method }`), and on Node 20 each such object gets a map of its own,
 * so every property read on it misses V8's inline caches; reading an *absent* option costs about
 * 100 ns. Enumerating the keys that are present and copying them into one class reads each
 * option once; every later read (each attempt's options, and undici's own `Request`) hits a
 * monomorphic cache.
 */
export class DispatchFields {
  origin: unknown = undefined;
  path: unknown = undefined;
  method: unknown = undefined;
  body: unknown = undefined;
  headers: unknown = undefined;
  query: unknown = undefined;
  idempotent: unknown = undefined;
  blocking: unknown = undefined;
  upgrade: unknown = undefined;
  headersTimeout: unknown = undefined;
  bodyTimeout: unknown = undefined;
  reset: unknown = undefined;
  expectContinue: unknown = undefined;
  servername: unknown = undefined;
  throwOnError: unknown = undefined;
  maxRedirections: unknown = undefined;
  typeOfService: unknown = undefined;
  /** headless-lb's own per-request options (request-options.ts); not passed to the pods' pools. */
  headlessLb: unknown = undefined;

  /** Copies the options undici reads (own or inherited, as undici's reads see them). */
  static from(opts: Dispatcher.DispatchOptions): DispatchFields {
    const fields = new DispatchFields();
    const o = opts as unknown as Record<string, unknown>;
    for (const name in o) {
      // A switch of literal names keeps each store monomorphic (a keyed store would not be), and
      // `o[name]` of the key being enumerated is read by its index in the map's enum cache, with
      // no property lookup (a named read such as `o.path` misses: this object's map is new).
      switch (name) {
        case 'origin':
          fields.origin = o[name];
          break;
        case 'path':
          fields.path = o[name];
          break;
        case 'method':
          fields.method = o[name];
          break;
        case 'body':
          fields.body = o[name];
          break;
        case 'headers':
          fields.headers = o[name];
          break;
        case 'query':
          fields.query = o[name];
          break;
        case 'idempotent':
          fields.idempotent = o[name];
          break;
        case 'blocking':
          fields.blocking = o[name];
          break;
        case 'upgrade':
          fields.upgrade = o[name];
          break;
        case 'headersTimeout':
          fields.headersTimeout = o[name];
          break;
        case 'bodyTimeout':
          fields.bodyTimeout = o[name];
          break;
        case 'reset':
          fields.reset = o[name];
          break;
        case 'expectContinue':
          fields.expectContinue = o[name];
          break;
        case 'servername':
          fields.servername = o[name];
          break;
        case 'throwOnError':
          fields.throwOnError = o[name];
          break;
        case 'maxRedirections':
          fields.maxRedirections = o[name];
          break;
        case 'typeOfService':
          fields.typeOfService = o[name];
          break;
        case 'headlessLb':
          fields.headlessLb = o[name];
          break;
        default:
          break;
      }
    }
    return fields;
  }

  /** The options of one attempt: these fields, to `origin`, with the call's headers, body and TLS name. */
  forAttempt(origin: string, headers: unknown, body: unknown, servername: string | undefined): Dispatcher.DispatchOptions {
    const attempt = new DispatchFields();
    attempt.origin = origin;
    attempt.path = this.path;
    attempt.method = this.method;
    attempt.body = body;
    attempt.headers = headers;
    attempt.query = this.query;
    attempt.idempotent = this.idempotent;
    attempt.blocking = this.blocking;
    attempt.upgrade = this.upgrade;
    attempt.headersTimeout = this.headersTimeout;
    attempt.bodyTimeout = this.bodyTimeout;
    attempt.reset = this.reset;
    attempt.expectContinue = this.expectContinue;
    attempt.servername = servername;
    attempt.throwOnError = this.throwOnError;
    attempt.maxRedirections = this.maxRedirections;
    attempt.typeOfService = this.typeOfService;
    return attempt as unknown as Dispatcher.DispatchOptions;
  }
}
