import { isIP } from 'node:net';
import { errors } from 'undici';

/** A request's origin, parsed once and cached by its dispatcher. */
export interface ParsedOrigin {
  readonly origin: string;
  readonly protocol: 'http:' | 'https:';
  /** Host header value: host[:port] as in the URL (default ports omitted). */
  readonly host: string;
  /** TLS server name: the URL's hostname, unless it is an IP address. */
  readonly servername: string | undefined;
  /** The headers of a request that has none: shared, frozen. */
  readonly hostOnly: readonly string[];
}

const ORIGIN_CACHE_MAX = 64;

/** The origins a dispatcher's requests named, parsed: a few Service URLs, so a small cache. */
export class Origins {
  private readonly cache = new Map<string, ParsedOrigin>();
  /** The last origin asked for: most dispatchers serve one Service, and comparing undici's new string of each request is cheaper than hashing it. */
  private last: ParsedOrigin | undefined;

  /** `servername`: the dispatcher's TLS server name option, which overrides the URL's. */
  constructor(private readonly servername: string | undefined) {}

  parse(origin: unknown): ParsedOrigin {
    const key = typeof origin === 'string' ? origin : origin instanceof URL ? origin.origin : undefined;
    if (key === undefined) throw new errors.InvalidArgumentError('invalid origin: the request needs an absolute http(s) URL');
    const last = this.last;
    if (last !== undefined && key === last.origin) return last;
    const cached = this.cache.get(key);
    if (cached !== undefined) return this.remember(cached);
    let url: URL;
    try {
      url = new URL(key);
    } catch {
      throw new errors.InvalidArgumentError(`invalid origin ${JSON.stringify(key)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new errors.InvalidArgumentError(`unsupported protocol ${url.protocol} (http: or https: only)`);
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const parsed: ParsedOrigin = {
      origin: key,
      protocol: url.protocol,
      host: url.host,
      servername: this.servername ?? (isIP(hostname) === 0 ? hostname : undefined),
      hostOnly: Object.freeze(['host', url.host]),
    };
    if (this.cache.size >= ORIGIN_CACHE_MAX) this.cache.clear();
    this.cache.set(key, parsed);
    return this.remember(parsed);
  }

  private remember(parsed: ParsedOrigin): ParsedOrigin {
    this.last = parsed;
    return parsed;
  }
}
