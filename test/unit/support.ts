import type { StaticEndpoint } from '../../src/index.js';

/** A refused connection, as Node reports it: the request never reached a pod. */
export const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

/** A reset connection, as Node reports it: the request may have reached the pod. */
export const reset = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

/** `count` static endpoints on 127.0.0.11, .12, …, port 8080, named web-0, web-1, … */
export function staticEndpoints(count: number): StaticEndpoint[] {
  return Array.from({ length: count }, (_, i) => ({ address: `127.0.0.${11 + i}`, port: 8080, name: `web-${i}` }));
}
