import type { Endpoint } from '../pool/endpoint.js';

/**
 * How healthy an endpoint looks to a load-aware picker: lower is better. Pickers compare this
 * before load (Finagle's P2C compares status first), so a pod that just failed loses to a
 * busier one that works. Kept in one place so that ejection states can extend it.
 */
export function healthRank(endpoint: Endpoint): number {
  // Ejected endpoints are candidates only in panic mode: still the last resort there.
  if (endpoint.state === 'ejected') return 2;
  return endpoint.consecutiveFailures === 0 && endpoint.state === 'healthy' ? 0 : 1;
}
