import { BlockList } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressPolicy, cidrContains, parseAllowedAddresses, parseCidr } from '../../../src/discovery/address-policy.js';
import { createBalancer, InvalidOptionError, type BalancerOptions } from '../../../src/index.js';

function invalid(run: () => unknown): InvalidOptionError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

const contains = (network: string, address: string): boolean => cidrContains(parseCidr(network, 'cidr'), address);

describe('parseCidr', () => {
  it('reads IPv4 and IPv6 networks, and a bare address as one host', () => {
    expect(parseCidr('10.244.0.0/16', 'f')).toMatchObject({ family: 4, prefix: 16 });
    expect(parseCidr('fd00::/8', 'f')).toMatchObject({ family: 6, prefix: 8 });
    expect(parseCidr('10.0.0.7', 'f')).toMatchObject({ family: 4, prefix: 32 });
    expect(parseCidr('2001:db8::1', 'f')).toMatchObject({ family: 6, prefix: 128 });
    expect(parseCidr('FD00::/8', 'f')).toMatchObject({ family: 6, prefix: 8 });
  });

  it('takes an IPv4-mapped IPv6 network as the IPv4 network it maps', () => {
    expect(parseCidr('::ffff:10.0.0.0/104', 'f')).toMatchObject({ family: 4, prefix: 8 });
    expect(parseCidr('::ffff:0:0/96', 'f')).toMatchObject({ family: 4, prefix: 0 });
    expect(parseCidr('::ffff:a00:1', 'f')).toMatchObject({ family: 4, prefix: 32 });
  });

  it.each([
    ['10.0.0.1/8', "did you mean '10.0.0.0/8'"], // host bits set
    ['fd00::1/8', "did you mean 'fd00::/8'"],
    ['2001:db8:1::/32', "did you mean '2001:db8::/32'"],
    ['10.0.0.0/33', '0..32'],
    ['fd00::/129', '0..128'],
    ['10.0.0.0/-1', '0..32'],
    ['10.0.0.0/08', '0..32'], // leading zero: not plain decimal
    ['10.0.0.0/0x8', '0..32'],
    ['10.0.0.0/', '0..32'],
    ['10.0.0.0/8/8', '0..32'],
    ['10.0.0.0 /8', 'not an IP address'],
    ['010.0.0.0/8', 'not an IP address'],
    ['10.0.0/8', 'not an IP address'],
    ['fe80::1%eth0/64', 'not an IP address'], // zone index
    ['pods.local/16', 'not an IP address'],
    ['', 'not an IP address'],
  ])('refuses %j, saying why', (value, why) => {
    const error = invalid(() => parseCidr(value, 'allowedAddresses[1]'));
    expect(error.field).toBe('allowedAddresses[1]');
    expect(error.value).toBe(value);
    expect(error.message).toContain(why);
  });

  it('refuses what is not a string', () => {
    for (const value of [undefined, null, 10, ['10.0.0.0/8'], { cidr: '10.0.0.0/8' }]) {
      expect(invalid(() => parseCidr(value, 'allowedAddresses[0]')).field).toBe('allowedAddresses[0]');
    }
  });
});

describe('parseAllowedAddresses', () => {
  it('names the entry at fault', () => {
    const error = invalid(() => parseAllowedAddresses(['10.244.0.0/16', '10.245.0.1/16']));
    expect(error.field).toBe('allowedAddresses[1]');
    expect(error.value).toBe('10.245.0.1/16');
  });

  it('refuses an empty list and what is not a list', () => {
    expect(invalid(() => parseAllowedAddresses([])).field).toBe('allowedAddresses');
    expect(invalid(() => parseAllowedAddresses('10.0.0.0/8')).field).toBe('allowedAddresses');
  });
});

describe('cidrContains', () => {
  it('matches IPv4 prefixes, including the edges /0 and /32', () => {
    expect(contains('10.244.0.0/16', '10.244.255.255')).toBe(true);
    expect(contains('10.244.0.0/16', '10.245.0.0')).toBe(false);
    expect(contains('10.244.0.0/14', '10.247.1.1')).toBe(true); // a prefix inside a byte
    expect(contains('10.244.0.0/14', '10.248.0.0')).toBe(false);
    expect(contains('0.0.0.0/0', '203.0.113.9')).toBe(true);
    expect(contains('0.0.0.0/0', '::1')).toBe(false); // families never mix
    expect(contains('10.0.0.7/32', '10.0.0.7')).toBe(true);
    expect(contains('10.0.0.7/32', '10.0.0.6')).toBe(false);
  });

  it('matches IPv6 prefixes, including /0 and /128', () => {
    expect(contains('fd00::/8', 'fd12:3456::1')).toBe(true);
    expect(contains('fd00::/8', 'fe80::1')).toBe(false);
    expect(contains('fe80::/10', 'febf::1')).toBe(true);
    expect(contains('fe80::/10', 'fec0::1')).toBe(false);
    expect(contains('::/0', '2001:db8::1')).toBe(true);
    expect(contains('::/0', '10.0.0.1')).toBe(false);
    expect(contains('2001:db8::1/128', '2001:db8:0:0:0:0:0:1')).toBe(true);
    expect(contains('2001:db8::1/128', '2001:db8::2')).toBe(false);
  });

  it('judges an IPv4-mapped address as the IPv4 address it maps to', () => {
    expect(contains('10.244.0.0/16', '::ffff:10.244.1.2')).toBe(true);
    expect(contains('10.244.0.0/16', '::ffff:af4:102')).toBe(true); // the same, as dns-packet writes it
    expect(contains('::/0', '::ffff:10.244.1.2')).toBe(false); // an IPv6 network does not cover it
    expect(contains('::ffff:10.0.0.0/104', '10.1.2.3')).toBe(true);
  });

  it('agrees with node:net BlockList on random networks and addresses', () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((bytes) => bytes.join('.'));
    const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((groups) => groups.map((g) => g.toString(16)).join(':'));
    const sample = fc.oneof(
      fc.record({ family: fc.constant(4 as const), base: ipv4, prefix: fc.nat(32), address: ipv4 }),
      fc.record({ family: fc.constant(6 as const), base: ipv6, prefix: fc.nat(128), address: ipv6 }),
    );
    fc.assert(
      fc.property(sample, ({ family, base, prefix, address }) => {
        // BlockList masks the base itself; parseCidr wants the network address.
        const blockList = new BlockList();
        blockList.addSubnet(base, prefix, family === 4 ? 'ipv4' : 'ipv6');
        const network = networkOf(base, prefix, family);
        expect(contains(network, address)).toBe(blockList.check(address, family === 4 ? 'ipv4' : 'ipv6'));
        expect(contains(network, base)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('AddressPolicy', () => {
  const safe = new AddressPolicy();

  it.each([
    ['0.0.0.0', 'unspecified-address'],
    ['0.1.2.3', 'unspecified-address'],
    ['::', 'unspecified-address'],
    ['224.0.0.1', 'multicast-address'],
    ['239.255.255.250', 'multicast-address'],
    ['ff02::1', 'multicast-address'],
    ['255.255.255.255', 'broadcast-address'],
    ['169.254.169.254', 'link-local-address'],
    ['fe80::1', 'link-local-address'],
    ['::ffff:169.254.169.254', 'link-local-address'],
    ['::ffff:a9fe:a9fe', 'link-local-address'],
    ['::ffff:0.0.0.0', 'unspecified-address'],
    ['::ffff:224.0.0.1', 'multicast-address'],
    ['not an address', 'address-not-allowed'],
  ])('never takes %s (%s)', (address, reason) => {
    expect(safe.refusal(address)).toBe(reason);
  });

  it.each(['127.0.0.1', '127.0.0.11', '::1', '::ffff:127.0.0.11', '10.244.1.2', 'fd00::5', '203.0.113.9'])(
    'takes %s by default',
    (address) => {
      expect(safe.refusal(address)).toBeUndefined();
    },
  );

  it('takes only addresses inside allowedAddresses, and still never the unsafe ones', () => {
    const policy = new AddressPolicy(parseAllowedAddresses(['10.244.0.0/16', 'fd00::/8', '169.254.0.0/16']));
    expect(policy.refusal('10.244.3.4')).toBeUndefined();
    expect(policy.refusal('::ffff:10.244.3.4')).toBeUndefined();
    expect(policy.refusal('fd00::5')).toBeUndefined();
    expect(policy.refusal('10.245.0.1')).toBe('address-not-allowed');
    expect(policy.refusal('127.0.0.1')).toBe('address-not-allowed');
    expect(policy.refusal('2001:db8::1')).toBe('address-not-allowed');
    expect(policy.refusal('169.254.169.254')).toBe('link-local-address'); // listing it does not make it safe
    expect(policy.allows('169.254.169.254')).toBe(true); // (allows() checks the list only: for static endpoints)
    expect(policy.describeAllowed()).toBe('10.244.0.0/16, fd00::/8, 169.254.0.0/16');
  });
});

describe('the allowedAddresses option', () => {
  const dns = { service: 'web-headless.default.svc.cluster.local', port: 8080, dnsServers: ['127.0.0.1:5353'] };

  it('is validated at createBalancer, naming the entry', () => {
    const error = invalid(() => createBalancer({ ...dns, allowedAddresses: ['10.244.0.0/16', '10.0.0.1/8'] }));
    expect(error.field).toBe('allowedAddresses[1]');
    expect(error.value).toBe('10.0.0.1/8');
    expect(invalid(() => createBalancer({ ...dns, allowedAddresses: [] })).field).toBe('allowedAddresses');
    expect(invalid(() => createBalancer({ ...dns, allowedAddresses: '10.0.0.0/8' } as unknown as BalancerOptions)).field).toBe(
      'allowedAddresses',
    );
  });

  it('applies to a static list: an endpoint outside it is an error, unsafe ranges are the user’s choice', async () => {
    const error = invalid(() =>
      createBalancer({
        endpoints: [
          { address: '127.0.0.11', port: 80 },
          { address: '127.0.1.12', port: 80 },
        ],
        allowedAddresses: ['127.0.0.0/24'],
      }),
    );
    expect(error.field).toBe('endpoints[1].address');
    expect(error.value).toBe('127.0.1.12');
    expect(error.message).toContain('127.0.0.0/24');
    const lb = createBalancer({ endpoints: [{ address: '169.254.1.1', port: 80 }] });
    expect(lb.endpoints().map((e) => e.address)).toEqual(['169.254.1.1']);
    await lb.close();
  });
});

/** `base` with the bits after `prefix` cleared, as CIDR text. */
function networkOf(base: string, prefix: number, family: 4 | 6): string {
  const bits =
    family === 4
      ? base
          .split('.')
          .map((b) => Number(b).toString(2).padStart(8, '0'))
          .join('')
      : base
          .split(':')
          .map((g) => parseInt(g, 16).toString(2).padStart(16, '0'))
          .join('');
  const kept = bits.slice(0, prefix).padEnd(bits.length, '0');
  if (family === 4) return `${[0, 8, 16, 24].map((i) => parseInt(kept.slice(i, i + 8), 2)).join('.')}/${prefix}`;
  const groups = [];
  for (let i = 0; i < 128; i += 16) groups.push(parseInt(kept.slice(i, i + 16), 2).toString(16));
  return `${groups.join(':')}/${prefix}`;
}
