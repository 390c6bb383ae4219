import type { ClusterModel } from './model.js';

/**
 * Something that serves a ClusterModel as cluster DNS: the embedded server (`startDnsServer`)
 * or a real one (the test suite's Knot harness). A cluster publishes every change to it.
 */
export interface ClusterDns {
  /** `'127.0.0.1:<port>'`, ready for `createBalancer({ dnsServers: [address] })`. */
  readonly address: string;
  /** Serves `model` from now on; resolves once the server answers with it (its SOA serial). */
  publish(model: ClusterModel): Promise<void>;
  /** Stops serving and releases every socket, process and file. */
  close(): Promise<void>;
}
