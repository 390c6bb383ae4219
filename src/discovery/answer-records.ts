import type { Answer, RecordType, StringAnswer } from 'dns-packet';
import type { LookupReport } from './lookup-report.js';
import { nameKey } from './resolv-conf.js';

/** Longest CNAME chain followed inside one answer: real ones have one or two links. */
const MAX_CNAME_CHAIN = 8;

export interface OwnedRecords<T extends Answer> {
  /** The records of the asked type that belong to the queried name. */
  readonly records: T[];
  /** Shortest TTL of the CNAMEs followed to reach them (Infinity without a chain), seconds. */
  readonly chainTtl: number;
}

/**
 * Picks from an answer section the records of `type` that belong to `name`: owned by it, or by
 * a name that its CNAME chain inside the same answer reaches. Every other record is reported as
 * skipped: a genuine server sends nothing else, so anything else was put there by someone else.
 */
export function ownedRecords<T extends Answer>(
  answers: readonly Answer[],
  name: string,
  type: RecordType,
  report: LookupReport,
): OwnedRecords<T> {
  const chain = followCnames(answers, nameKey(name));
  const records: T[] = [];
  for (const record of answers) {
    if (chain.links.has(record)) continue;
    const owner = nameKey(record.name);
    if (!isInternetClass(record) || (record.type !== type && record.type !== 'CNAME')) report.skip(record, 'answer', 'unexpected-record');
    else if (!chain.names.has(owner)) report.skip(record, 'answer', 'foreign-owner');
    else if (record.type === type) records.push(record as T);
    else report.skip(record, 'answer', 'unexpected-record'); // a second CNAME for a name of the chain
  }
  return { records, chainTtl: ttlOf(chain.links) };
}

/**
 * The address records of an additional section that belong to one of `targets` (the SRV
 * targets): glue for anything else is reported as skipped. Types other than `types` are not
 * address data we would use and are passed over.
 */
export function glueRecords(
  additionals: readonly Answer[],
  targets: ReadonlySet<string>,
  types: readonly ('A' | 'AAAA')[],
  report: LookupReport,
): StringAnswer[] {
  const glue: StringAnswer[] = [];
  for (const record of additionals) {
    if (!(types as readonly string[]).includes(record.type)) continue;
    if (!isInternetClass(record)) report.skip(record, 'additional', 'unexpected-record');
    else if (!targets.has(nameKey(record.name))) report.skip(record, 'additional', 'foreign-owner');
    else glue.push(record as StringAnswer);
  }
  return glue;
}

/** Shortest TTL of `records`, seconds; Infinity when there is none. */
export function ttlOf(records: Iterable<Answer>): number {
  let ttl = Number.POSITIVE_INFINITY;
  for (const record of records) ttl = Math.min(ttl, (record as { ttl?: number }).ttl ?? 0);
  return ttl;
}

/** The names reachable from `start` through CNAMEs of the answer, and the CNAME records followed. */
function followCnames(answers: readonly Answer[], start: string): { names: Set<string>; links: Set<Answer> } {
  const names = new Set([start]);
  const links = new Set<Answer>();
  let current = start;
  for (let hop = 0; hop < MAX_CNAME_CHAIN; hop++) {
    const link = answers.find((record) => record.type === 'CNAME' && isInternetClass(record) && nameKey(record.name) === current);
    if (link === undefined) break;
    links.add(link);
    current = nameKey((link as StringAnswer).data);
    if (names.has(current)) break; // a loop: its names are all reached already
    names.add(current);
  }
  return { names, links };
}

/** Class IN, without the mDNS cache-flush bit that a unicast server never sets. */
function isInternetClass(record: Answer): boolean {
  const { class: recordClass, flush } = record as { class?: string; flush?: boolean };
  return (recordClass === undefined || recordClass === 'IN') && flush !== true;
}
