export { Balancer, createBalancer } from './balancer.js';
export type { BalancerEvents, BalancerStats, DiscoveryStats, ReadyOptions, RecordsSkippedEvent, ResolveEvent } from './balancer.js';
export type {
  AddressDiscoveryOptions,
  BalancerOptions,
  LatencyOptions,
  PickerOption,
  RefreshOptions,
  RetryDefaults,
  RunOptions,
  SrvDiscoveryOptions,
  StaticEndpoint,
  StaticOptions,
} from './options.js';
export type { AddressFamily } from './discovery/dns-resolver.js';
export type { DiscoverySource, DiscoveryUpdate, SetAside } from './discovery/source.js';
export type { SkippedRecord, SkipReason } from './discovery/lookup-report.js';
export type { AddressRefusal } from './discovery/address-policy.js';
export { Endpoint } from './pool/endpoint.js';
export type { Outcome } from './pool/endpoint.js';
export type { PoolChange } from './pool/pool.js';
export type { Target } from './target.js';
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
  ShardKeyPickerConfig,
  ShardKeyPickerOptions,
  WeightedRoundRobinPickerOptions,
} from './pickers/index.js';
export type { AttemptContext, AttemptFunction, AttemptHandle, DispatchedCall } from './retry/call-contract.js';
export { classifyFailure } from './failure-kind.js';
export { isRetryBudgetExhausted } from './retry/marks.js';
export type { FailureKind } from './failure-kind.js';
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
export { channels } from './diagnostics.js';
export type { AttemptEndMessage, AttemptStartMessage } from './diagnostics.js';
export type { EndpointState } from './pool/endpoint.js';
export type { EjectionReason } from './pool/outlier-detector.js';
export type { EjectEvent, EndpointStats } from './balancer.js';
export type { BudgetOptions, HedgeOptions, OutlierDetectionOptions, SlowStartOptions } from './options.js';
