/**
 * One backend as a discovery source reports it. The pool turns targets into long-lived
 * Endpoint objects keyed by `id`.
 */
export interface Target {
  /** Stable identity: the pod's DNS name in SRV mode or when a static list names it, `address:port` otherwise. */
  readonly id: string;
  /** The address to connect to (IPv4 preferred when the pod has both). */
  readonly address: string;
  /** Every address of the pod (its A and AAAA records), preferred first. */
  readonly addresses: readonly string[];
  readonly port: number;
  readonly family: 4 | 6;
  /** The pod's DNS name (SRV target, without the trailing dot) or the name given in a static list. */
  readonly name: string | undefined;
  /** Relative weight (SRV weight, or as given); 1 when unknown. */
  readonly weight: number;
  /** SRV priority (lower is preferred); 0 when unknown. */
  readonly priority: number;
}
