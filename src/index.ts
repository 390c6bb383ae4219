// The balancer: create it, run calls through it, watch its events and stats.
export { Balancer, createBalancer } from './balancer.js';
export type {
  BalancerEvents,
  BalancerState,
  BalancerStats,
  CloseEvent,
  CloseOptions,
  DiscoveryStats,
  DrainingEvent,
  EjectEvent,
  EndpointStats,
  ReadyOptions,
  RecordsSkippedEvent,
  ResolveEvent,
  SubsetStats,
} from './balancer.js';
export type { LookupEvent } from './lookup-event.js';

// Options of createBalancer() and run().
export type {
  AddressDiscoveryOptions,
  BalancerOptions,
  BudgetOptions,
  BackoffOptions,
  HedgeOptions,
  LatencyOptions,
  OutlierDetectionOptions,
  RefreshOptions,
  RetryDefaults,
  RunOptions,
  SlowStartOptions,
  SrvDiscoveryOptions,
  StaticEndpoint,
  StaticOptions,
  SubsetOptions,
} from './options.js';

// Discovery: where the endpoints come from.
export type { Target } from './target.js';
export type { AddressFamily } from './discovery/dns-resolver.js';
export type { DiscoverySource, DiscoveryUpdate, LookupDetails, SetAside } from './discovery/source.js';
export type { SkippedRecord, SkipReason } from './discovery/lookup-report.js';
export type { AddressRefusal } from './discovery/address-policy.js';

// The pool: endpoints, their load and their health.
export { Endpoint } from './pool/endpoint.js';
export type { EndpointState, Outcome } from './pool/endpoint.js';
export type { PoolChange } from './pool/pool.js';
export type { EjectionReason } from './pool/outlier-detector.js';

// Pickers: the built-in ones, and the interface for your own.
export type { Picker, PickRequest } from './pickers/picker.js';
export {
  createPicker,
  LeastLatencyPicker,
  LeastRequestPicker,
  RandomPicker,
  RoundRobinPicker,
  ShardKeyPicker,
  WeightedRoundRobinPicker,
  latencyCost,
  meanLatencyCost,
  pickerNames,
  shardIdentity,
  shardKeyOrder,
} from './pickers/index.js';
export type { LatencyEstimator } from './pickers/least-latency.js';
export type {
  LeastLatencyPickerOptions,
  LeastRequestPickerOptions,
  PickerContext,
  PickerName,
  PickerOptions,
  PickerSpec,
  RandomPickerOptions,
  RoundRobinPickerOptions,
  ShardKeyPickerOptions,
  WeightedRoundRobinPickerOptions,
} from './pickers/index.js';

// Calls: what an attempt receives, and how failures are judged.
export type { AttemptContext, AttemptFunction, AttemptHandle, DispatchedCall } from './retry/call-contract.js';
export { classifyFailure } from './failure-kind.js';
export type { FailureKind } from './failure-kind.js';
export { isRetryBudgetExhausted } from './retry/marks.js';

// Errors.
export {
  AttemptTimeoutError,
  BalancerClosedError,
  DeadlineExceededError,
  HeadlessLbError,
  InvalidOptionError,
  NoEndpointsError,
  NotSentError,
  ResolutionError,
  RetryableError,
} from './errors.js';
export type { ResolutionFailure } from './errors.js';

// Diagnostics channels, for tracing and metrics.
export { channels } from './diagnostics.js';
export type { AttemptEndMessage, AttemptStartMessage } from './diagnostics.js';
