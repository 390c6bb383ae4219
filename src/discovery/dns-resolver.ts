import pRetry, { AbortError } from 'p-retry';
import type { RecordType, SoaAnswer, SrvAnswer, StringAnswer } from 'dns-packet';
import { ResolutionError, type ResolutionFailure } from '../errors.js';
import type { Target } from '../target.js';
import { AddressPolicy } from './address-policy.js';
import { glueRecords, ownedRecords, ttlOf } from './answer-records.js';
import { formatDnsServer, type DnsServerAddress } from './dns-server-address.js';
import { DnsTransportError, exchange, type DnsResponse } from './dns-transport.js';
import { LookupReport } from './lookup-report.js';
import { nameKey, searchCandidates } from './resolv-conf.js';

/**
 * Which address records to use. 'auto' asks for A and falls back to AAAA only when a name has
 * no A record, so an IPv4 or dual-stack cluster costs one query and an IPv6-only one still works.
 */
export type AddressFamily = 4 | 6 | 'auto';

/** How the service's endpoints are found. */
export type DiscoveryMode =
  { readonly kind: 'address'; readonly port: number } | { readonly kind: 'srv'; readonly portName: string; readonly protocol: string };

export interface DnsResolverConfig {
  readonly servers: readonly DnsServerAddress[];
  readonly search: readonly string[];
  readonly ndots: number;
  /** Per-message timeout. */
  readonly timeoutMs: number;
  /** Rounds over the server list before giving up. */
  readonly attempts: number;
  readonly family: AddressFamily;
  /** Which addresses may be endpoints. Default: every safe address (see AddressPolicy). */
  readonly addressPolicy?: AddressPolicy;
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
      /** Names asked, in search-list order, up to the one that answered (for observers). */
      readonly asked?: readonly string[];
      /** The DNS server that answered last, 'ip:port'. */
      readonly server?: string;
    }
  | {
      readonly kind: 'empty';
      readonly rcode: 'NXDOMAIN' | 'NODATA';
      /** Negative-caching TTL from the SOA (RFC 2308), seconds. */
      readonly ttl: number;
      readonly queries: number;
      /** Why, when the rcode alone does not say it (SRV records that all say "no service"). */
      readonly detail?: string;
      /** Names asked, in search-list order. */
      readonly asked?: readonly string[];
      readonly server?: string;
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
 *
 * It uses only what belongs to the question: records owned by the queried name (or by names its
 * CNAME chain reaches in the same answer), glue only for SRV targets, addresses the address
 * policy allows. Everything else is put in the LookupReport. An answer that had records but none
 * that could be used is a failure (ResolutionError 'UNUSABLE'), never an empty pool.
 */
export class DnsResolver {
  /** The candidate that answered last time: tried first, so a steady state costs one lookup. */
  private pinned: string | undefined;
  private readonly policy: AddressPolicy;
  /** The server of the last answer received, for observers (lookups run one at a time). */
  private answeredBy: string | undefined;
  /** Names the last (or current) resolution asked, in order: after a failure, what was tried. */
  asked: readonly string[] = [];

  constructor(
    private readonly service: string,
    private readonly mode: DiscoveryMode,
    private readonly config: DnsResolverConfig,
  ) {
    this.policy = config.addressPolicy ?? new AddressPolicy();
  }

  /** Resolves the service; what the answers held that was not used goes into `report`. */
  async resolve(signal?: AbortSignal, report: LookupReport = new LookupReport()): Promise<Resolution> {
    const base = this.mode.kind === 'srv' ? `_${this.mode.portName}._${this.mode.protocol}.${this.service}` : this.service;
    let candidates = searchCandidates(base, this.config.search, this.config.ndots);
    if (this.pinned !== undefined && candidates.includes(this.pinned)) {
      candidates = [this.pinned, ...candidates.filter((c) => c !== this.pinned)];
    }
    let queries = 0;
    let emptyRcode: 'NXDOMAIN' | 'NODATA' | undefined;
    let emptyDetail: string | undefined;
    let negativeTtl = Number.POSITIVE_INFINITY;
    let refused: ResolutionError | undefined;
    const asked: string[] = [];
    this.asked = asked;
    this.answeredBy = undefined;
    for (const candidate of candidates) {
      asked.push(candidate);
      let outcome: CandidateOutcome;
      try {
        outcome =
          this.mode.kind === 'srv'
            ? await this.resolveSrv(candidate, report, signal)
            : await this.resolveAddresses(candidate, this.mode.port, report, signal);
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
      if (outcome.kind === 'unusable') {
        throw new ResolutionError(this.service, 'UNUSABLE', `${outcome.detail} (see the 'records-skipped' event)`);
      }
      if (outcome.kind === 'targets') {
        this.pinned = candidate;
        return { kind: 'targets', targets: outcome.targets, ttl: outcome.ttl, name: candidate, queries, asked, server: this.answeredBy };
      }
      emptyRcode = emptyRcode === 'NODATA' ? 'NODATA' : outcome.rcode;
      emptyDetail ??= outcome.detail;
      negativeTtl = Math.min(negativeTtl, outcome.ttl);
    }
    if (emptyRcode === undefined) {
      throw refused ?? new ResolutionError(this.service, 'OTHER', 'no name to query');
    }
    const ttl = Number.isFinite(negativeTtl) ? negativeTtl : NEGATIVE_TTL_DEFAULT;
    return {
      kind: 'empty',
      rcode: emptyRcode,
      ttl,
      queries,
      asked,
      server: this.answeredBy,
      ...(emptyDetail === undefined ? {} : { detail: emptyDetail }),
    };
  }

  private async resolveAddresses(name: string, port: number, report: LookupReport, signal?: AbortSignal): Promise<CandidateOutcome> {
    const found = await this.lookupAddresses(name, report, signal);
    if (found.kind !== 'addresses') return found;
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

  /**
   * A (then AAAA in 'auto' mode when there is no usable A) for one name. Records not used are
   * reported; an answer that had records but none usable makes the name 'unusable' (a failure),
   * unless the other family has usable ones.
   */
  private async lookupAddresses(name: string, report: LookupReport, signal?: AbortSignal): Promise<AddressOutcome> {
    let queries = 0;
    let empty: EmptyOutcome | undefined;
    let unusable: string | undefined;
    for (const type of this.addressTypes()) {
      const result = await this.query(name, type, report, signal);
      queries += result.messages;
      const mark = report.skipped.length;
      const owned = ownedRecords<StringAnswer>(result.response.answers, name, type, report);
      const used = owned.records.filter((record) => this.allowed(record, 'answer', report));
      if (used.length > 0) {
        return { kind: 'addresses', addresses: used.map((r) => r.data), ttl: Math.min(owned.chainTtl, ttlOf(used)), queries };
      }
      if (report.skipped.length > mark) {
        unusable = `${name} ${type}: none of the ${report.skipped.length - mark} record(s) could be used`;
        continue;
      }
      const thisEmpty = emptyOutcome(result.response, queries);
      // NODATA for A still means the name exists: remember the stronger statement.
      empty = empty?.rcode === 'NODATA' ? { ...empty, queries } : thisEmpty;
      if (thisEmpty.rcode === 'NXDOMAIN') break; // no name means no AAAA either
    }
    if (unusable !== undefined) return { kind: 'unusable', detail: unusable, queries };
    return { ...(empty ?? { kind: 'empty', rcode: 'NXDOMAIN', ttl: NEGATIVE_TTL_DEFAULT }), queries };
  }

  private async resolveSrv(name: string, report: LookupReport, signal?: AbortSignal): Promise<CandidateOutcome> {
    const result = await this.query(name, 'SRV', report, signal);
    let queries = result.messages;
    const response = result.response;
    const mark = report.skipped.length;
    const owned = ownedRecords<SrvAnswer>(response.answers, name, 'SRV', report);
    const offered: SrvAnswer[] = [];
    for (const srv of owned.records) {
      // Target '.': "decidedly not available at this domain" (RFC 2782). Nothing to look up.
      if (nameKey(srv.data.target) === '') report.skip(srv, 'answer', 'no-service');
      else if (srv.data.port === 0) report.skip(srv, 'answer', 'port-zero');
      else offered.push(srv);
    }
    if (offered.length === 0) {
      const skipped = report.skipped.slice(mark);
      if (skipped.length === 0) return { ...emptyOutcome(response, queries), queries };
      if (skipped.every((s) => s.reason === 'no-service')) {
        return {
          kind: 'empty',
          rcode: 'NODATA',
          ttl: Math.min(owned.chainTtl, ttlOf(owned.records)),
          queries,
          detail: `SRV target '.' for ${name}: the service is decidedly not available (RFC 2782)`,
        };
      }
      return { kind: 'unusable', detail: `${name} SRV: none of the ${skipped.length} record(s) could be used`, queries };
    }

    // Addresses of the targets: from the additional section when the server sent them
    // (CoreDNS does), else one lookup per target.
    const targetNames = new Set(offered.map((srv) => nameKey(srv.data.target)));
    const glue = new Map<string, { v4: StringAnswer[]; v6: StringAnswer[] }>();
    const refusedGlue = new Set<string>();
    for (const record of glueRecords(response.additionals, targetNames, this.addressTypes(), report)) {
      const key = nameKey(record.name);
      if (!this.allowed(record, 'additional', report)) {
        refusedGlue.add(key);
        continue;
      }
      const entry = glue.get(key) ?? { v4: [], v6: [] };
      (record.type === 'A' ? entry.v4 : entry.v6).push(record);
      glue.set(key, entry);
    }

    const lookups = await Promise.all(
      offered.map(async (srv) => {
        const targetName = nameKey(srv.data.target);
        const known = glue.get(targetName);
        if (known !== undefined) {
          const records = [...known.v4, ...known.v6];
          return { srv, targetName, addresses: records.map((r) => r.data), ttl: ttlOf(records), queries: 0 };
        }
        // Glue that was all refused says what a lookup would say: no usable address.
        if (refusedGlue.has(targetName)) return { srv, targetName, addresses: [] as string[], ttl: Number.POSITIVE_INFINITY, queries: 0 };
        const found = await this.lookupAddresses(targetName, report, signal);
        if (found.kind !== 'addresses')
          return { srv, targetName, addresses: [] as string[], ttl: Number.POSITIVE_INFINITY, queries: found.queries };
        return { srv, targetName, addresses: found.addresses, ttl: found.ttl, queries: found.queries };
      }),
    );
    const targets: Target[] = [];
    const ids = new Set<string>();
    let ttl = owned.chainTtl;
    for (const lookup of lookups) {
      queries += lookup.queries;
      // A target without an address (a pod on its way out, or one whose addresses were refused).
      if (lookup.addresses.length === 0) {
        report.skip(lookup.srv, 'answer', 'no-usable-address');
        continue;
      }
      ttl = Math.min(ttl, lookup.ttl, lookup.srv.ttl ?? 0);
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
    if (targets.length === 0) return { kind: 'unusable', detail: `${name} SRV: no target has a usable address`, queries };
    return { kind: 'targets', targets, ttl: Number.isFinite(ttl) ? ttl : 0, queries };
  }

  /** The address record types in use: IPv4 then IPv6 in 'auto', only the asked family otherwise. */
  private addressTypes(): ('A' | 'AAAA')[] {
    if (this.config.family === 4) return ['A'];
    if (this.config.family === 6) return ['AAAA'];
    return ['A', 'AAAA'];
  }

  /** Whether the policy allows the record's address; a refused one is reported. */
  private allowed(record: StringAnswer, section: 'answer' | 'additional', report: LookupReport): boolean {
    const refusal = this.policy.refusal(record.data);
    if (refusal === undefined) return true;
    report.skip(record, section, refusal);
    return false;
  }

  /**
   * Asks the servers in turn, `attempts` rounds, until one gives a usable answer: one p-retry
   * loop whose attempts go to the next server, at once (a resolver moves on, it does not back off).
   */
  private async query(name: string, type: RecordType, report: LookupReport, signal?: AbortSignal): Promise<QueryResult> {
    const servers = this.config.servers;
    if (servers.length === 0) throw new ResolutionError(this.service, 'OTHER', 'no DNS server configured');
    let messages = 0;
    const onDropped = (): void => report.drop();
    try {
      const response = await pRetry(
        async (attemptNumber) => {
          const server = servers[(attemptNumber - 1) % servers.length]!;
          const label = formatDnsServer(server);
          let response: DnsResponse;
          try {
            response = await exchange(server, name, type, { timeoutMs: this.config.timeoutMs, signal, onDropped });
          } catch (error) {
            if (signal?.aborted) throw new AbortError(signal.reason as Error);
            messages += 1;
            const detail = error instanceof DnsTransportError ? error.message : ((error as Error)?.message ?? String(error));
            const reason: ResolutionFailure = error instanceof DnsTransportError ? error.reason : 'OTHER';
            throw new ResolutionError(this.service, reason, `${detail} from ${label} for ${name} ${type}`, { cause: error, server: label });
          }
          messages += response.messages;
          this.answeredBy = label;
          if (response.rcode === 'NOERROR' || response.rcode === 'NXDOMAIN') return response;
          throw new ResolutionError(this.service, rcodeFailure(response.rcode), `${response.rcode} from ${label} for ${name} ${type}`, {
            server: label,
          });
        },
        { retries: servers.length * this.config.attempts - 1, minTimeout: 0, maxTimeout: 0, randomize: false, signal },
      );
      return { response, messages };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw error;
    }
  }
}

type EmptyOutcome = { readonly kind: 'empty'; readonly rcode: 'NXDOMAIN' | 'NODATA'; readonly ttl: number; readonly detail?: string };
/** The answer had records, but none could be used: a failure, not an empty service. */
type UnusableOutcome = { readonly kind: 'unusable'; readonly detail: string; readonly queries: number };
type AddressOutcome =
  | { readonly kind: 'addresses'; readonly addresses: string[]; readonly ttl: number; readonly queries: number }
  | (EmptyOutcome & { readonly queries: number })
  | UnusableOutcome;
type CandidateOutcome =
  | { readonly kind: 'targets'; readonly targets: Target[]; readonly ttl: number; readonly queries: number }
  | (EmptyOutcome & { readonly queries: number })
  | UnusableOutcome;

/** NXDOMAIN or NODATA, with the negative TTL of RFC 2308: min(SOA TTL, SOA minimum). */
function emptyOutcome(response: DnsResponse, queries: number): EmptyOutcome & { queries: number } {
  const soa = response.authorities.find((a): a is SoaAnswer => a.type === 'SOA');
  const ttl =
    soa === undefined ? NEGATIVE_TTL_DEFAULT : Math.min(soa.ttl ?? NEGATIVE_TTL_DEFAULT, soa.data.minimum ?? NEGATIVE_TTL_DEFAULT);
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
