import { isIP } from 'node:net';
import { InvalidOptionError } from '../errors.js';
import { parsePort } from '../port.js';

/** A DNS server to query. */
export interface DnsServerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address. Only IP literals are
 * accepted: resolving the resolver's own name would need a resolver. A port is decimal digits,
 * 1–65535 (`Number()` would also take `0x35`, `5e1` or ` 53`).
 */
export function parseDnsServer(value: unknown, field: string): DnsServerAddress {
  const expected = "an IP address with optional decimal port 1-65535, such as '10.96.0.10' or '127.0.0.1:5353'";
  if (typeof value !== 'string' || value.length === 0) throw new InvalidOptionError(field, value, expected);
  let host = value;
  let port: number | undefined = 53;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = parsePort(bracketed[2]);
  } else if (isIP(value) === 6) {
    host = value;
  } else {
    const colon = value.lastIndexOf(':');
    if (colon !== -1) {
      host = value.slice(0, colon);
      port = parsePort(value.slice(colon + 1));
    }
  }
  if (isIP(host) === 0 || port === undefined) throw new InvalidOptionError(field, value, expected);
  return { host, port };
}

export function formatDnsServer(server: DnsServerAddress): string {
  return isIP(server.host) === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
