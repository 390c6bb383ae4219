import type { Attributes } from '@opentelemetry/api';
import type { Endpoint } from '../index.js';
import { classifyFailure, type FailureKind } from '../index.js';

/*
 * Attribute names: the OpenTelemetry semantic conventions' where one exists (the Service is the
 * server, the pod the network peer), `headless_lb.*` for the rest.
 */
export const ATTR = {
  serverAddress: 'server.address',
  peerAddress: 'network.peer.address',
  peerPort: 'network.peer.port',
  errorType: 'error.type',
  dnsQuestionName: 'dns.question.name',
  resendCount: 'http.request.resend_count',
  endpointName: 'headless_lb.endpoint.name',
  attempt: 'headless_lb.attempt',
  hedged: 'headless_lb.attempt.hedged',
  outcome: 'headless_lb.attempt.outcome',
  failureKind: 'headless_lb.failure.kind',
  attempts: 'headless_lb.call.attempts',
  ejectionReason: 'headless_lb.ejection.reason',
  lookupOutcome: 'headless_lb.dns.outcome',
  skipReason: 'headless_lb.dns.skip_reason',
} as const;

export type AttemptOutcome = 'success' | 'failure' | 'cancelled';

/** `error.type`: the error's code when it has one (ECONNREFUSED, UND_ERR_SOCKET, ERR_HLB_...), else its class name. */
export function errorType(error: unknown): string {
  if (error !== null && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    if (typeof code === 'number') return String(code);
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '') return name;
  }
  return '_OTHER';
}

export function failureKind(error: unknown): FailureKind {
  return classifyFailure(error);
}

/** The attributes naming a pod, with the Service. */
export function endpointAttributes(service: string, endpoint: Endpoint): Attributes {
  const attributes: Attributes = {
    [ATTR.serverAddress]: service,
    [ATTR.peerAddress]: endpoint.address,
    [ATTR.peerPort]: endpoint.port,
  };
  if (endpoint.name !== undefined) attributes[ATTR.endpointName] = endpoint.name;
  return attributes;
}

/**
 * Attribute sets per endpoint, made once and reused: a metric point per attempt then allocates
 * nothing. Forgotten when the endpoint is readdressed (same object, new address).
 */
export class EndpointAttributeCache {
  private readonly byEndpoint = new WeakMap<Endpoint, Map<string, Attributes>>();

  constructor(private readonly service: string) {}

  /** The pod's attributes alone. */
  base(endpoint: Endpoint): Attributes {
    return this.get(endpoint, '', undefined, undefined, undefined);
  }

  /** The pod's attributes with an attempt's outcome (and for a failure, its kind and error type). */
  attempt(endpoint: Endpoint, outcome: AttemptOutcome, kind: FailureKind | undefined, type: string | undefined): Attributes {
    return this.get(endpoint, outcome, kind, type, undefined);
  }

  /** An attempt span's attributes at its start: the pod's, its number, whether hedged, and its resends. */
  attemptStart(endpoint: Endpoint, attempt: number, hedged: boolean): Attributes {
    let sets = this.byEndpoint.get(endpoint);
    if (sets === undefined) {
      sets = new Map();
      this.byEndpoint.set(endpoint, sets);
    }
    const key = hedged ? `start|${attempt}|hedged` : `start|${attempt}`;
    let attributes = sets.get(key);
    if (attributes === undefined) {
      attributes = endpointAttributes(this.service, endpoint);
      attributes[ATTR.attempt] = attempt;
      attributes[ATTR.hedged] = hedged;
      // The HTTP conventions' resend model: every send after the call's first is a resend.
      const resends = attempt - 1 + (hedged ? 1 : 0);
      if (resends > 0) attributes[ATTR.resendCount] = resends;
      sets.set(key, attributes);
    }
    return attributes;
  }

  /** The pod's attributes with an ejection's reason. */
  ejection(endpoint: Endpoint, reason: string): Attributes {
    return this.get(endpoint, 'eject', undefined, undefined, reason);
  }

  forget(endpoint: Endpoint): void {
    this.byEndpoint.delete(endpoint);
  }

  private get(
    endpoint: Endpoint,
    outcome: string,
    kind: string | undefined,
    type: string | undefined,
    reason: string | undefined,
  ): Attributes {
    let sets = this.byEndpoint.get(endpoint);
    if (sets === undefined) {
      sets = new Map();
      this.byEndpoint.set(endpoint, sets);
    }
    const key = type === undefined && reason === undefined ? outcome : `${outcome}|${kind ?? ''}|${type ?? ''}|${reason ?? ''}`;
    let attributes = sets.get(key);
    if (attributes === undefined) {
      attributes = endpointAttributes(this.service, endpoint);
      if (outcome !== '' && outcome !== 'eject') attributes[ATTR.outcome] = outcome;
      if (kind !== undefined) attributes[ATTR.failureKind] = kind;
      if (type !== undefined) attributes[ATTR.errorType] = type;
      if (reason !== undefined) attributes[ATTR.ejectionReason] = reason;
      sets.set(key, attributes);
    }
    return attributes;
  }
}
