import type { Answer } from 'dns-packet';
import type { AddressRefusal } from './address-policy.js';

/**
 * Why a DNS record was not used:
 * - `foreign-owner`: owned by a name that is neither the queried name nor reached from it by a
 *   CNAME chain inside the answer; for an address in the additional section, not an SRV target;
 * - `unexpected-record`: not of the class (IN) and type that was asked for;
 * - `no-service`: an SRV record with target `.`, "decidedly not available" (RFC 2782);
 * - `port-zero`: an SRV record with port 0;
 * - `no-usable-address`: an SRV record whose target has no address that may be used;
 * - an address refusal: the address may not be an endpoint (see AddressPolicy).
 */
export type SkipReason = 'foreign-owner' | 'unexpected-record' | 'no-service' | 'port-zero' | 'no-usable-address' | AddressRefusal;

/** One record a lookup did not use, and why. */
export interface SkippedRecord {
  /** Owner name, as the answer wrote it. */
  readonly name: string;
  /** Record type: 'A', 'AAAA', 'SRV', 'CNAME', ... */
  readonly type: string;
  /** The record's data in presentation form: '169.254.169.254', '0 50 8080 .', ... */
  readonly data: string;
  readonly section: 'answer' | 'additional';
  readonly reason: SkipReason;
}

const MAX_DATA_LENGTH = 200;

/**
 * What one lookup set aside: the records it did not use and the count of messages it did not
 * believe (undecodable, or not the answer to its question). Discovery passes both on, so that
 * nothing is dropped silently.
 */
export class LookupReport {
  readonly skipped: SkippedRecord[] = [];
  droppedMessages = 0;

  skip(record: Answer, section: SkippedRecord['section'], reason: SkipReason): void {
    this.skipped.push({ name: record.name, type: record.type, data: presentData(record), section, reason });
  }

  /** Counts a message that was dropped. */
  drop(): void {
    this.droppedMessages++;
  }
}

function presentData(record: Answer): string {
  const data: unknown = (record as { data?: unknown }).data;
  let text: string;
  if (typeof data === 'string') text = data;
  else if (record.type === 'SRV') {
    const srv = data as { priority?: number; weight?: number; port?: number; target?: string };
    text = `${srv.priority ?? 0} ${srv.weight ?? 0} ${srv.port ?? 0} ${srv.target ?? ''}`;
  } else if (Buffer.isBuffer(data)) text = `\\# ${data.length} ${data.toString('hex')}`;
  else text = safeJson(data);
  return text.length > MAX_DATA_LENGTH ? `${text.slice(0, MAX_DATA_LENGTH - 3)}...` : text;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
