/**
 * `headless-lb/grpc`: @grpc/grpc-js clients over the pods of a headless Service. One channel per
 * pod, a pod chosen per call by the balancer's picker (shard keys from metadata or `withKey`),
 * failover of calls that never reached a pod, streaming calls pinned to one pod.
 */
export { createGrpcChannel, HeadlessChannel } from './channel.js';
export type { GrpcClientConstructor, HeadlessChannelStats } from './channel.js';
export type { GrpcBalancer } from './call.js';
export type { GrpcCallInfo, GrpcChannelOptions, GrpcIdempotentOption } from './options.js';
export { GRPC_DEFAULTS, POD_CHANNEL_DEFAULTS } from './options.js';
export type { GrpcMethodConfig, GrpcServiceConfig, GrpcStatusCodeName } from './service-config.js';
export { registerHeadlessResolver } from './resolver.js';
export type { HeadlessResolverDiscovery, HeadlessResolverOptions } from './resolver.js';
