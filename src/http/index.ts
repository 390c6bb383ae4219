/**
 * `headless-lb/http`: an undici Dispatcher over the pods of a headless Service, for
 * `undici.request`, `undici.fetch` and Node's global `fetch`.
 */
export { createDispatcher, HeadlessDispatcher } from './dispatcher.js';
export type { HeadlessDispatcherStats, HttpBalancer } from './dispatcher.js';
export type { HttpDispatcherOptions, HttpRequestInfo, PodPoolOptions } from './options.js';
export type { HttpRequestOptions } from './request-options.js';
export type { PerRequestHeaderKey } from './override-header.js';
export { OVERRIDE_HEADER } from './override-header.js';
export { HTTP_DEFAULTS } from './options.js';
export { HttpStatusError } from './errors.js';
