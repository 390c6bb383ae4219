import { Metadata, status as Status, type StatusObject } from '@grpc/grpc-js';
import { AttemptTimeoutError, BalancerClosedError, HeadlessLbError, NoEndpointsError } from '../errors.js';

/**
 * A gRPC status that ended an attempt, carried through the balancer so that the caller gets the
 * pod's own status (code, details, trailers) when no retry is made. Its `code` string is not a
 * retry code: on its own it is neither retried nor counted against the pod; the adapter wraps it
 * in a NotSentError or RetryableError when it is.
 * @internal
 */
export class GrpcStatusError extends HeadlessLbError {
  readonly status: StatusObject;
  /** Response metadata the pod sent before the status, if any. */
  readonly headers: Metadata | undefined;

  constructor(status: StatusObject, where: string, headers?: Metadata) {
    super('ERR_HLB_GRPC_STATUS', `${Status[status.code] ?? status.code} from ${where}: ${status.details}`);
    this.status = status;
    this.headers = headers;
  }
}

function findStatusError(error: unknown): GrpcStatusError | undefined {
  let value: unknown = error;
  for (let depth = 0; value instanceof Error && depth < 6; depth++) {
    if (value instanceof GrpcStatusError) return value;
    value = value.cause;
  }
  return undefined;
}

/** Response metadata of the attempt whose status ends the call, if the pod sent any. */
export function headersFromError(error: unknown): Metadata | undefined {
  return findStatusError(error)?.headers;
}

/** The status the caller gets for an error that ended a balanced call. */
export function statusFromError(error: unknown): StatusObject {
  const statusError = findStatusError(error);
  if (statusError !== undefined) return statusError.status;
  if (error instanceof AttemptTimeoutError)
    return make(Status.DEADLINE_EXCEEDED, `headless-lb: attempt timed out after ${error.timeoutMs} ms`);
  if (error instanceof NoEndpointsError || error instanceof BalancerClosedError) return make(Status.UNAVAILABLE, error.message);
  const message = error instanceof Error ? error.message : String(error);
  return make(Status.UNKNOWN, `headless-lb: ${message}`);
}

export function make(code: Status, details: string): StatusObject {
  return { code, details, metadata: new Metadata() };
}
