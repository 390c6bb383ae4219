/**
 * `headless-lb/otel`: OpenTelemetry metrics and spans for a balancer. Needs `@opentelemetry/api`
 * (an optional peer dependency: only this entry imports it).
 */
export { instrumentBalancer, SCOPE_NAME } from './instrument.js';
export type { BalancerInstrumentation, InstrumentBalancerOptions } from './instrument.js';
export { ATTR } from './attributes.js';
export { ATTEMPT_SPAN, CALL_SPAN } from './tracing.js';
