/**
 * headless-lb/testing: a headless Service without a cluster. An embedded authoritative DNS
 * server that answers like cluster DNS, and pods that are real HTTP or gRPC servers on
 * 127.0.0.0/8, to test a client (this library, or your own service) against scaling, crashes
 * and restarts.
 */
export { startCluster, Cluster, Service } from './cluster.js';
export type { AppProtocol, BehaviourOf, ClusterOptions, CreateServiceOptions, ClusterPod } from './cluster.js';
export type { ClusterDns } from './cluster-dns.js';
export { startDnsServer, DnsServer } from './dns-server.js';
export type { DnsFault, DnsQueryFilter, DnsQueryRecord, DnsServerOptions } from './dns-server.js';
export { startPod, Pod } from './pods.js';
export type { PodBehaviour, PodCloseOptions, PodResponseBody, PodState, StartPodOptions } from './pods.js';
export { startGrpcPod, GrpcPod } from './grpc-pods.js';
export type { GrpcPodBehaviour, StartGrpcPodOptions } from './grpc-pods.js';
export { ECHO_SERVICE_NAME, loadEchoService, loadHealthService, protoFiles } from './grpc-protos.js';
export type {
  EchoClient,
  EchoClientConstructor,
  EchoReply,
  EchoRequest,
  GrpcClientConstructor,
  HealthCheckRequest,
  HealthCheckResponse,
  HealthClient,
  HealthClientConstructor,
  HealthStatus,
  ProtoFiles,
} from './grpc-protos.js';
export { ClusterModel, records, serviceFqdn, srvFqdn, podFqdn } from './model.js';
export type {
  ClusterModelOptions,
  DnsRecord,
  HeadlessService,
  PodEndpoint,
  PortProtocol,
  ServicePort,
  ServiceSpec,
  SoaRecordData,
  SrvRecordData,
} from './model.js';
export { toZoneFile } from './zone-file.js';
