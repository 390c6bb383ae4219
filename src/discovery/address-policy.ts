import { isIP } from 'node:net';
import { InvalidOptionError } from '../errors.js';

/** Why an address from DNS may not be an endpoint. */
export type AddressRefusal =
  'unspecified-address' | 'multicast-address' | 'broadcast-address' | 'link-local-address' | 'address-not-allowed';

/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
interface IpBytes {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** An IP network: the first `prefix` bits of `bytes` are significant, the rest are zero. */
export interface Cidr extends IpBytes {
  readonly prefix: number;
}

const EXPECTED_CIDR = "a CIDR such as '10.244.0.0/16' or 'fd00::/8' (or a single address)";

/**
 * Parses one CIDR strictly: an IP literal (no zone index), then `/prefix` in plain decimal within
 * the family's length; a bare address is a single host. Host bits after the prefix must be zero
 * ('10.0.0.1/8' is refused: it is a typo for a host or for '10.0.0.0/8', and we cannot tell which).
 * An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is the IPv4 network it maps (`10.0.0.0/8`),
 * since mapped addresses are judged as IPv4.
 */
export function parseCidr(value: unknown, field: string): Cidr {
  if (typeof value !== 'string') throw new InvalidOptionError(field, value, EXPECTED_CIDR);
  const slash = value.indexOf('/');
  const addressText = slash === -1 ? value : value.slice(0, slash);
  const prefixText = slash === -1 ? undefined : value.slice(slash + 1);
  const address = parseIp(addressText);
  if (address === undefined) throw new InvalidOptionError(field, value, `${EXPECTED_CIDR}; '${addressText}' is not an IP address`);
  const bits = address.bytes.length * 8;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
      throw new InvalidOptionError(field, value, `${EXPECTED_CIDR}; the prefix length must be 0..${bits} in decimal`);
    }
    prefix = Number(prefixText);
  }
  const network: Cidr = { ...address, prefix };
  if (!hostBitsClear(network)) {
    const suggestion = `${formatIp(masked(network))}/${prefix}`;
    throw new InvalidOptionError(field, value, `a network address: bits after /${prefix} must be zero (did you mean '${suggestion}'?)`);
  }
  const mapped = mappedIpv4(address);
  if (mapped !== undefined && prefix >= 96) return { ...mapped, prefix: prefix - 96 };
  return network;
}

/** Parses the `allowedAddresses` option: a non-empty array of CIDRs. */
export function parseAllowedAddresses(value: unknown, field = 'allowedAddresses'): Cidr[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidOptionError(
      field,
      value,
      "a non-empty array of CIDRs such as ['10.244.0.0/16', 'fd00::/8'] (leave it out to allow every safe address)",
    );
  }
  return value.map((entry, i) => parseCidr(entry, `${field}[${i}]`));
}

/** Whether `address` lies in `network`. An IPv4-mapped IPv6 address counts as its IPv4 address. */
export function cidrContains(network: Cidr, address: string): boolean {
  const ip = parseIp(address);
  return ip !== undefined && contains(network, mappedIpv4(ip) ?? ip);
}

/** Ranges that are never endpoints: nothing listens there for us, or something we must not reach does. */
const NEVER_ENDPOINTS: readonly { readonly network: Cidr; readonly reason: AddressRefusal }[] = [
  // 0.0.0.0/8 is "this network" (RFC 1122): 0.0.0.0 reaches the local host on Linux.
  { network: cidr('0.0.0.0/8'), reason: 'unspecified-address' },
  { network: cidr('::/128'), reason: 'unspecified-address' },
  { network: cidr('224.0.0.0/4'), reason: 'multicast-address' },
  { network: cidr('ff00::/8'), reason: 'multicast-address' },
  { network: cidr('255.255.255.255/32'), reason: 'broadcast-address' },
  // 169.254.169.254 is the cloud metadata service (credentials): the target of DNS rebinding.
  { network: cidr('169.254.0.0/16'), reason: 'link-local-address' },
  { network: cidr('fe80::/10'), reason: 'link-local-address' },
];

/**
 * Which addresses from DNS may be endpoints: never unspecified, multicast, broadcast or
 * link-local ones, and, when `allowed` is given, only those inside it. Loopback is allowed
 * (tests and sidecars use it). IPv4-mapped IPv6 addresses are judged as the IPv4 address they
 * map to, since that is what a connection to them reaches.
 */
export class AddressPolicy {
  constructor(private readonly allowed?: readonly Cidr[]) {}

  /** Undefined when `address` may be an endpoint; otherwise why not. */
  refusal(address: string): AddressRefusal | undefined {
    const parsed = parseIp(address);
    if (parsed === undefined) return 'address-not-allowed'; // not an IP literal at all
    const ip = mappedIpv4(parsed) ?? parsed;
    for (const { network, reason } of NEVER_ENDPOINTS) if (contains(network, ip)) return reason;
    return this.inAllowed(ip) ? undefined : 'address-not-allowed';
  }

  /** Whether `address` is inside `allowedAddresses` (always, without it). The safety ranges are not checked. */
  allows(address: string): boolean {
    const parsed = parseIp(address);
    return parsed !== undefined && this.inAllowed(mappedIpv4(parsed) ?? parsed);
  }

  /** The allowed networks as text, for messages; undefined when every safe address is allowed. */
  describeAllowed(): string | undefined {
    return this.allowed?.map((network) => `${formatIp(network)}/${network.prefix}`).join(', ');
  }

  private inAllowed(ip: IpBytes): boolean {
    return this.allowed === undefined || this.allowed.some((network) => contains(network, ip));
  }
}

function cidr(text: string): Cidr {
  return parseCidr(text, 'cidr');
}

function contains(network: Cidr, ip: IpBytes): boolean {
  if (network.family !== ip.family) return false;
  const whole = network.prefix >> 3;
  for (let i = 0; i < whole; i++) if (network.bytes[i] !== ip.bytes[i]) return false;
  const rest = network.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (network.bytes[whole]! & mask) === (ip.bytes[whole]! & mask);
}

function masked(network: Cidr): IpBytes {
  const bytes = new Uint8Array(network.bytes.length);
  for (let bit = 0; bit < network.prefix; bit++) {
    const i = bit >> 3;
    bytes[i] = bytes[i]! | (network.bytes[i]! & (0x80 >> (bit & 7)));
  }
  return { family: network.family, bytes };
}

function hostBitsClear(network: Cidr): boolean {
  const clean = masked(network).bytes;
  return network.bytes.every((byte, i) => byte === clean[i]);
}

/** `::ffff:a.b.c.d` as the IPv4 address it maps to; undefined for any other address. */
function mappedIpv4(ip: IpBytes): IpBytes | undefined {
  if (ip.family !== 6) return undefined;
  for (let i = 0; i < 10; i++) if (ip.bytes[i] !== 0) return undefined;
  if (ip.bytes[10] !== 0xff || ip.bytes[11] !== 0xff) return undefined;
  return { family: 4, bytes: ip.bytes.slice(12) };
}

/** An IPv4 or IPv6 literal as bytes; undefined for anything else (names, zone indexes, stray text). */
function parseIp(text: string): IpBytes | undefined {
  const family = isIP(text);
  if (family === 4) return { family: 4, bytes: Uint8Array.from(text.split('.'), Number) };
  if (family !== 6 || text.includes('%')) return undefined;
  const bytes = new Uint8Array(16);
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = ipv6Groups(head);
  const tailGroups = tail === undefined ? [] : ipv6Groups(tail);
  headGroups.forEach((group, i) => bytes.set(group, i * 2));
  tailGroups.forEach((group, i) => bytes.set(group, 16 - (tailGroups.length - i) * 2));
  return { family: 6, bytes };
}

/** The 16-bit groups of one side of '::' as byte pairs; an embedded dotted IPv4 gives two. */
function ipv6Groups(text: string): Uint8Array[] {
  if (text === '') return [];
  return text.split(':').flatMap((group) => {
    if (group.includes('.')) {
      const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
      return [Uint8Array.of(a, b), Uint8Array.of(c, d)];
    }
    const value = parseInt(group, 16);
    return [Uint8Array.of(value >> 8, value & 0xff)];
  });
}

function formatIp(ip: IpBytes): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16));
  // Shorten the longest run of two or more zero groups to '::' (RFC 5952).
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.length && j - i >= 2) best = { start: i, length: j - i };
    i = j;
  }
  if (best.start === -1) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.length).join(':')}`;
}
