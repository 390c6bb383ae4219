import type { Answer, RecordType, SoaAnswer, SrvAnswer, StringAnswer } from 'dns-packet';
import { ResolutionError, type ResolutionFailure } from '../errors.js';
import type { Target } from '../pool/target.js';
import { formatDnsServer, type DnsServerAddress } from './dns-server-address.js';
import { DnsTransportError, exchange, type DnsResponse } from './dns-transport.js';
import { searchCandidates, stripDot } from './resolv-conf.js';

/**
 * Which address records to use. 'auto' asks for A and falls back to AAAA only when a name has
 * no A record, so an IPv4 or dual-stack cluster costs one query and an IPv6-only one still works.
 */
export type AddressFamily = 4 | 6 | 'auto';

/** How the service's endpoints are found. */
export type DiscoveryMode =
  | { readonly kind: 'address'; readonly port: number }
  | { readonly kind: 'srv'; readonly portName: string; readonly protocol: string };

export interface DnsResolverConfig {
  readonly servers: readonly DnsServerAddress[];
  readonly search: readonly string[];
  readonly ndots: number;
  /** Per-message timeout. */
  readonly timeoutMs: number;
  /** Rounds over the server list before giving up. */
  readonly attempts: number;
  readonly family: AddressFamily;
}

/** The outcome of one resolution: the pods, or the authoritative statement that there are none. */
export type Resolution =
  | {
      readonly kind: 'targets';
      readonly targets: readonly Target[];
      /** Shortest TTL of the records used, seconds. */
      readonly ttl: number;
      /** The fully qualified name that answered. */
      readonly name: string;
      readonly queries: number;
    }
  | {
      readonly kind: 'empty';
      readonly rcode: 'NXDOMAIN' | 'NODATA';
      /** Negative-caching TTL from the SOA (RFC 2308), seconds. */
      readonly ttl: number;
      readonly queries: number;
    };

interface QueryResult {
  readonly response: DnsResponse;
  readonly messages: number;
}

const NEGATIVE_TTL_DEFAULT = 5;

/**
 * Resolves a headless Service name to targets with raw DNS queries (dns-packet), so it sees
 * record TTLs (SRV too), tells NXDOMAIN/NODATA from failures, uses the SRV answer's additional
 * section, and expands short names with the search list as a pod's resolver would.
 */
export class DnsResolver {
  /** The candidate that answered last time: tried first, so a steady state costs one lookup. */
  private pinned: string | undefined;

  constructor(
    private readonly service: string,
    private readonly mode: DiscoveryMode,
    private readonly config: DnsResolverConfig,
  ) {}

  async resolve(signal?: AbortSignal): Promise<Resolution> {
    const base = this.mode.kind === 'srv' ? `_${this.mode.portName}._${this.mode.protocol}.${this.service}` : this.service;
    let candidates = searchCandidates(base, this.config.search, this.config.ndots);
    if (this.pinned !== undefined && candidates.includes(this.pinned)) {
      candidates = [this.pinned, ...candidates.filter((c) => c !== this.pinned)];
    }
    let queries = 0;
    let emptyRcode: 'NXDOMAIN' | 'NODATA' | undefined;
    let negativeTtl = Number.POSITIVE_INFINITY;
    let refused: ResolutionError | undefined;
    for (const candidate of candidates) {
      let outcome: CandidateOutcome;
      try {
        outcome = this.mode.kind === 'srv' ? await this.resolveSrv(candidate, signal) : await this.resolveAddresses(candidate, this.mode.port, signal);
      } catch (error) {
        // A search candidate outside the server's zones may be refused; the next one may answer.
        if (error instanceof ResolutionError && error.reason === 'REFUSED' && candidates.length > 1) {
          refused = error;
          queries += 1;
          continue;
        }
        throw error;
      }
      queries += outcome.queries;
      if (outcome.kind === 'targets') {
        this.pinned = candidate;
        return { kind: 'targets', targets: outcome.targets, ttl: outcome.ttl, name: candidate, queries };
      }
      emptyRcode = emptyRcode === 'NODATA' ? 'NODATA' : outcome.rcode;
      negativeTtl = Math.min(negativeTtl, outcome.ttl);
    }
    if (emptyRcode === undefined) {
      throw refused ?? new ResolutionError(this.service, 'OTHER', 'no name to query');
    }
    return { kind: 'empty', rcode: emptyRcode, ttl: Number.isFinite(negativeTtl) ? negativeTtl : NEGATIVE_TTL_DEFAULT, queries };
  }

  private async resolveAddresses(name: string, port: number, signal?: AbortSignal): Promise<CandidateOutcome> {
    const found = await this.lookupAddresses(name, signal);
    if (found.kind === 'empty') return found;
    const targets: Target[] = [];
    const seen = new Set<string>();
    for (const address of found.addresses) {
      const family = address.includes(':') ? 6 : 4;
      const id = family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
      if (seen.has(id)) continue;
      seen.add(id);
      targets.push({ id, address, addresses: [address], port, family, name: undefined, weight: 1, priority: 0 });
    }
    return { kind: 'targets', targets, ttl: found.ttl, queries: found.queries };
  }

  /** A (then AAAA in 'auto' mode when there is no A) for one name. */
  private async lookupAddresses(name: string, signal?: AbortSignal): Promise<AddressOutcome> {
    const families: ('A' | 'AAAA')[] = this.config.family === 4 ? ['A'] : this.config.family === 6 ? ['AAAA'] : ['A', 'AAAA'];
    let queries = 0;
    let empty: EmptyOutcome | undefined;
    for (const type of families) {
      const result = await this.query(name, type, signal);
      queries += result.messages;
      const records = addressRecords(result.response.answers, type);
      if (records.length > 0) {
        return { kind: 'addresses', addresses: records.map((r) => r.data), ttl: minTtl(result.response.answers), queries };
      }
      const thisEmpty = emptyOutcome(result.response, queries);
      // NODATA for A still means the name exists: remember the stronger statement.
      empty = empty?.rcode === 'NODATA' ? { ...empty, queries } : thisEmpty;
      if (thisEmpty.rcode === 'NXDOMAIN') break; // no name means no AAAA either
    }
    return { ...(empty ?? { kind: 'empty', rcode: 'NXDOMAIN', ttl: NEGATIVE_TTL_DEFAULT }), queries };
  }

  private async resolveSrv(name: string, signal?: AbortSignal): Promise<CandidateOutcome> {
    const result = await this.query(name, 'SRV', signal);
    let queries = result.messages;
    const response = result.response;
    const srvRecords = response.answers.filter((a): a is SrvAnswer => a.type === 'SRV');
    if (srvRecords.length === 0) return { ...emptyOutcome(response, queries), queries };
    let ttl = minTtl(response.answers);

    // Addresses of the targets: from the additional section when the server sent them
    // (CoreDNS does), else one lookup per target.
    const glue = new Map<string, { v4: string[]; v6: string[]; ttl: number }>();
    for (const record of response.additionals) {
      if (record.type !== 'A' && record.type !== 'AAAA') continue;
      const key = record.name.toLowerCase();
      const entry = glue.get(key) ?? { v4: [], v6: [], ttl: Number.POSITIVE_INFINITY };
      (record.type === 'A' ? entry.v4 : entry.v6).push((record as StringAnswer).data);
      entry.ttl = Math.min(entry.ttl, record.ttl ?? 0);
      glue.set(key, entry);
    }

    const targets: Target[] = [];
    const ids = new Set<string>();
    const lookups = await Promise.all(
      srvRecords.map(async (srv) => {
        const targetName = stripDot(srv.data.target).toLowerCase();
        const known = glue.get(targetName);
        const addresses = known === undefined ? undefined : this.chooseFamily(known.v4, known.v6);
        if (addresses !== undefined && addresses.length > 0) return { srv, targetName, addresses, ttl: known!.ttl, queries: 0 };
        const found = await this.lookupAddresses(targetName, signal);
        if (found.kind === 'empty') return { srv, targetName, addresses: [] as string[], ttl: Number.POSITIVE_INFINITY, queries: found.queries };
        return { srv, targetName, addresses: found.addresses, ttl: found.ttl, queries: found.queries };
      }),
    );
    for (const lookup of lookups) {
      queries += lookup.queries;
      // A target that no longer resolves is a pod on its way out: skip it.
      if (lookup.addresses.length === 0) continue;
      ttl = Math.min(ttl, lookup.ttl);
      const address = lookup.addresses[0]!;
      const port = lookup.srv.data.port;
      const id = ids.has(lookup.targetName) ? `${lookup.targetName}:${port}` : lookup.targetName;
      if (ids.has(id)) continue;
      ids.add(id);
      targets.push({
        id,
        address,
        addresses: lookup.addresses,
        port,
        family: address.includes(':') ? 6 : 4,
        name: lookup.targetName,
        weight: Math.max(1, lookup.srv.data.weight ?? 1),
        priority: lookup.srv.data.priority ?? 0,
      });
    }
    if (targets.length === 0) return { kind: 'empty', rcode: 'NODATA', ttl, queries };
    return { kind: 'targets', targets, ttl, queries };
  }

  /** Preferred addresses first: IPv4 then IPv6 in 'auto', only the asked family otherwise. */
  private chooseFamily(v4: string[], v6: string[]): string[] {
    if (this.config.family === 4) return v4;
    if (this.config.family === 6) return v6;
    return [...v4, ...v6];
  }

  /** Asks the servers in turn, `attempts` rounds, until one gives a usable answer. */
  private async query(name: string, type: RecordType, signal?: AbortSignal): Promise<QueryResult> {
    let messages = 0;
    let lastReason: ResolutionFailure = 'OTHER';
    let lastDetail = 'no DNS server configured';
    let lastServer: string | undefined;
    let lastCause: unknown;
    for (let round = 0; round < this.config.attempts; round++) {
      for (const server of this.config.servers) {
        signal?.throwIfAborted();
        lastServer = formatDnsServer(server);
        let response: DnsResponse;
        try {
          response = await exchange(server, name, type, { timeoutMs: this.config.timeoutMs, signal });
        } catch (error) {
          if (signal?.aborted) throw signal.reason;
          messages += 1;
          lastCause = error;
          if (error instanceof DnsTransportError) {
            lastReason = error.reason;
            lastDetail = `${error.message} from ${lastServer} for ${name} ${type}`;
          } else {
            lastReason = 'OTHER';
            lastDetail = `${(error as Error)?.message ?? String(error)} from ${lastServer}`;
          }
          continue;
        }
        messages += response.messages;
        if (response.rcode === 'NOERROR' || response.rcode === 'NXDOMAIN') return { response, messages };
        lastReason = rcodeFailure(response.rcode);
        lastDetail = `${response.rcode} from ${lastServer} for ${name} ${type}`;
        lastCause = undefined;
      }
    }
    throw new ResolutionError(this.service, lastReason, lastDetail, { cause: lastCause, server: lastServer });
  }
}

type EmptyOutcome = { readonly kind: 'empty'; readonly rcode: 'NXDOMAIN' | 'NODATA'; readonly ttl: number };
type AddressOutcome = { readonly kind: 'addresses'; readonly addresses: string[]; readonly ttl: number; readonly queries: number } | (EmptyOutcome & { readonly queries: number });
type CandidateOutcome = { readonly kind: 'targets'; readonly targets: Target[]; readonly ttl: number; readonly queries: number } | (EmptyOutcome & { readonly queries: number });

function addressRecords(answers: readonly Answer[], type: 'A' | 'AAAA'): StringAnswer[] {
  return answers.filter((a): a is StringAnswer => a.type === type);
}

function minTtl(records: readonly Answer[]): number {
  let ttl = Number.POSITIVE_INFINITY;
  for (const record of records) {
    if (record.type === 'OPT') continue;
    ttl = Math.min(ttl, (record as { ttl?: number }).ttl ?? 0);
  }
  return Number.isFinite(ttl) ? ttl : 0;
}

/** NXDOMAIN or NODATA, with the negative TTL of RFC 2308: min(SOA TTL, SOA minimum). */
function emptyOutcome(response: DnsResponse, queries: number): EmptyOutcome & { queries: number } {
  const soa = response.authorities.find((a): a is SoaAnswer => a.type === 'SOA');
  const ttl = soa === undefined ? NEGATIVE_TTL_DEFAULT : Math.min(soa.ttl ?? NEGATIVE_TTL_DEFAULT, soa.data.minimum ?? NEGATIVE_TTL_DEFAULT);
  return { kind: 'empty', rcode: response.rcode === 'NXDOMAIN' ? 'NXDOMAIN' : 'NODATA', ttl, queries };
}

function rcodeFailure(rcode: string): ResolutionFailure {
  switch (rcode) {
    case 'SERVFAIL':
    case 'REFUSED':
    case 'FORMERR':
    case 'NOTIMP':
      return rcode;
    default:
      return 'OTHER';
  }
}
