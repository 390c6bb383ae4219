import { createBalancer, type Balancer, type BalancerOptions } from '../../src/index.js';
import { startCluster, type Cluster } from '../../src/testing/index.js';
import type { GrpcCluster } from './grpc-pods.js';
import { startKnot, type KnotDns } from './knot.js';

/**
 * What the integration files against a real Knot DNS share: one Knot, one cluster of pods that
 * publishes its Services to it, balancers that look names up there, and a teardown in reverse
 * order. Start it in `beforeAll`, close it in `afterAll`.
 */

interface PodClusters {
  /** The testing kit's HTTP pods (`startCluster`). */
  http: Cluster<KnotDns>;
  /** The grpc-js echo pods of ./grpc-pods.ts. */
  grpc: GrpcCluster;
}

export interface StartKnotClusterOptions<P extends keyof PodClusters> {
  /** Record TTL of the cluster's Services, seconds. */
  readonly ttl: number;
  /** Which pods the cluster runs. Default `'http'`. */
  readonly pods?: P;
}

/** Knot's DNS settings for a balancer (or the gRPC resolver): Knot only, no search list. */
export interface KnotDnsSettings {
  readonly dnsServers: readonly string[];
  readonly search: readonly string[];
  readonly ndots: number;
}

export interface KnotCluster<C> {
  readonly knot: KnotDns;
  readonly cluster: C;
  readonly dns: KnotDnsSettings;
  /** `createBalancer` with `dns` as defaults; closed by `close()`. */
  balancer(options: Partial<BalancerOptions> & { readonly service: string }): Balancer;
  /** Runs at `close()`, before the balancers made before it are closed (cleanups run in reverse). */
  onClose(cleanup: () => unknown): void;
  /** Cleanups and balancers in reverse order, then the cluster, then Knot. */
  close(): Promise<void>;
}

export type HttpKnotCluster = KnotCluster<Cluster<KnotDns>>;
export type GrpcKnotCluster = KnotCluster<GrpcCluster>;

export async function startKnotCluster<P extends keyof PodClusters = 'http'>(
  options: StartKnotClusterOptions<P>,
): Promise<KnotCluster<PodClusters[P]>> {
  const knot = await startKnot();
  let cluster: PodClusters[P];
  try {
    if (options.pods === 'grpc') {
      const { GrpcCluster } = await import('./grpc-pods.js'); // grpc-js loads only for the gRPC files
      cluster = new GrpcCluster(knot, options.ttl) as PodClusters[P];
    } else {
      cluster = (await startCluster({ dns: knot, ttl: options.ttl })) as PodClusters[P];
    }
  } catch (error) {
    await knot.close();
    throw error;
  }
  const dns: KnotDnsSettings = { dnsServers: [knot.address], search: [], ndots: 1 };
  const cleanups: (() => unknown)[] = [];
  return {
    knot,
    cluster,
    dns,
    balancer(balancerOptions) {
      const lb = createBalancer({ ...dns, ...balancerOptions } as BalancerOptions);
      cleanups.push(() => lb.close());
      return lb;
    },
    onClose(cleanup) {
      cleanups.push(cleanup);
    },
    async close() {
      const errors: unknown[] = [];
      const attempt = async (step: () => unknown): Promise<void> => {
        try {
          await step();
        } catch (error) {
          errors.push(error);
        }
      };
      for (const cleanup of cleanups.splice(0).reverse()) await attempt(cleanup);
      await attempt(() => cluster.close());
      await attempt(() => knot.close());
      if (errors.length > 0) throw errors[0];
    },
  };
}
