import { records, type ClusterModel, type DnsRecord } from './model.js';
import { addressBytes, RRType, type Rdata, type RRset } from './dns-wire.js';

/** What a name is in the zone. */
export type NameLookup =
  | { readonly kind: 'node'; readonly rrsets: ReadonlyMap<number, RRset> }
  /** An empty non-terminal (`svc.cluster.local`): it exists because names below it do. NODATA, not NXDOMAIN. */
  | { readonly kind: 'empty-non-terminal' }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'outside' };

/** An immutable, indexed snapshot of the model's records, ready to answer queries from. */
export class Zone {
  readonly apex: string;
  readonly serial: number;
  readonly soa: RRset;
  readonly #nodes = new Map<string, Map<number, RRset>>();
  readonly #emptyNonTerminals = new Set<string>();

  constructor(model: ClusterModel) {
    this.apex = model.domain;
    this.serial = model.serial;
    const grouped = new Map<string, Map<number, { ttl: number; rdatas: Map<string, Rdata> }>>();
    for (const record of records(model)) {
      const type = RRType[record.type];
      let node = grouped.get(record.name);
      if (node === undefined) grouped.set(record.name, (node = new Map()));
      let rrset = node.get(type);
      if (rrset === undefined) node.set(type, (rrset = { ttl: record.ttl, rdatas: new Map() }));
      const rdata = toRdata(record);
      // An RRset is a set: identical records collapse, as in Knot.
      rrset.rdatas.set(canonicalWire(rdata).toString('hex'), rdata);
    }
    for (const [name, node] of grouped) {
      const owner = name.split('.');
      const rrsets = new Map<number, RRset>();
      for (const [type, { ttl, rdatas }] of [...node].sort(([a], [b]) => a - b)) {
        // Knot keeps RDATA in canonical order (memcmp of the wire form), and sends it in that order.
        const sorted = [...rdatas].sort(([a], [b]) => compareHex(a, b)).map(([, rdata]) => rdata);
        rrsets.set(type, { owner, type, ttl, rdatas: sorted });
      }
      this.#nodes.set(name, rrsets);
      for (let i = 1; i < owner.length; i++) {
        const ancestor = owner.slice(i).join('.');
        if (ancestor.length < this.apex.length) break;
        this.#emptyNonTerminals.add(ancestor);
      }
    }
    const soa = this.#nodes.get(this.apex)?.get(RRType.SOA);
    if (soa === undefined) throw new Error('zone without SOA');
    this.soa = soa;
  }

  /** `key` is a lower-case name without the trailing dot. */
  lookup(key: string): NameLookup {
    if (!this.contains(key)) return { kind: 'outside' };
    const rrsets = this.#nodes.get(key);
    if (rrsets !== undefined) return { kind: 'node', rrsets };
    if (this.#emptyNonTerminals.has(key)) return { kind: 'empty-non-terminal' };
    return { kind: 'nxdomain' };
  }

  contains(key: string): boolean {
    return key === this.apex || key.endsWith(`.${this.apex}`);
  }
}

function toRdata(record: DnsRecord): Rdata {
  switch (record.type) {
    case 'A':
    case 'AAAA':
      return { kind: 'address', bytes: addressBytes(record.data) };
    case 'NS':
      return { kind: 'ns', target: record.data.split('.') };
    case 'SRV':
      return { kind: 'srv', ...record.data, target: record.data.target.split('.') };
    case 'SOA':
      return { kind: 'soa', ...record.data, mname: record.data.mname.split('.'), rname: record.data.rname.split('.') };
  }
}

/** Uncompressed, lower-case wire form of RDATA: the canonical sort key. */
function canonicalWire(rdata: Rdata): Buffer {
  const name = (labels: readonly string[]): Buffer =>
    Buffer.concat([
      ...labels.map((label) => Buffer.concat([Buffer.of(label.length), Buffer.from(label.toLowerCase(), 'latin1')])),
      Buffer.of(0),
    ]);
  const u16 = (n: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  };
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  switch (rdata.kind) {
    case 'address':
      return rdata.bytes;
    case 'ns':
      return name(rdata.target);
    case 'srv':
      return Buffer.concat([u16(rdata.priority), u16(rdata.weight), u16(rdata.port), name(rdata.target)]);
    case 'soa':
      return Buffer.concat([
        name(rdata.mname),
        name(rdata.rname),
        ...[rdata.serial, rdata.refresh, rdata.retry, rdata.expire, rdata.minimum].map(u32),
      ]);
  }
}

/** Hex strings of bytes compare like memcmp, shorter first on a common prefix: RFC 4034 §6.3. */
function compareHex(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
