import { isIP } from 'node:net';
import { InvalidOptionError } from '../errors.js';

/** A DNS server to query. */
export interface DnsServerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address. Only IP literals are
 * accepted: resolving the resolver's own name would need a resolver.
 */
export function parseDnsServer(value: unknown, field: string): DnsServerAddress {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidOptionError(field, value, "an IP address with optional port, such as '10.96.0.10' or '127.0.0.1:5353'");
  }
  let host = value;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (isIP(value) === 6) {
    host = value;
  } else {
    const colon = value.lastIndexOf(':');
    if (colon !== -1) {
      host = value.slice(0, colon);
      port = Number(value.slice(colon + 1));
    }
  }
  if (isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidOptionError(field, value, "an IP address with optional port, such as '10.96.0.10' or '127.0.0.1:5353'");
  }
  return { host, port };
}

export function formatDnsServer(server: DnsServerAddress): string {
  return isIP(server.host) === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
