import * as grpc from '@grpc/grpc-js';
import { createGrpcChannel, type GrpcChannelOptions, type HeadlessChannel } from '../../src/grpc/index.js';
import type { Balancer, BalancerOptions } from '../../src/index.js';
import { loadEcho, type EchoClient } from './grpc-pods.js';
import type { GrpcKnotCluster } from './knot-cluster.js';

export interface EchoOverPods {
  readonly lb: Balancer;
  readonly channel: HeadlessChannel;
  readonly client: EchoClient;
}

/**
 * A balancer over the gRPC Service `service` of `env` (port name 'grpc'), a channel on it and an
 * echo client on the channel; the client and the channel close with `env`.
 */
export function echoOverPods(
  env: GrpcKnotCluster,
  service: string,
  options: Partial<GrpcChannelOptions> = {},
  lbOptions: Partial<BalancerOptions> = {},
): EchoOverPods {
  const lb = env.balancer({ service, portName: 'grpc', ...lbOptions });
  const channel = createGrpcChannel(lb, { credentials: grpc.credentials.createInsecure(), ...options });
  const client = channel.client(loadEcho());
  env.onClose(async () => {
    client.close();
    await channel.close();
  });
  return { lb, channel, client };
}
