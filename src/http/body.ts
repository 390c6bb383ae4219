import { Readable } from 'node:stream';

/**
 * Decides whether a request body may be handed to another attempt.
 *
 * - No body, strings, buffers, Blobs and FormData are values: undici reads them afresh on every
 *   dispatch, so they can be sent again.
 * - A body that is a stream (a Node Readable, a web ReadableStream, an async or sync iterable,
 *   which is what `fetch` passes for every request body) is never *re*-sent: another attempt may
 *   use it only if the failed attempt never read a byte of it. That is the case when the request
 *   never reached a socket (connection refused, connect timeout), which is exactly when a retry
 *   is most useful.
 */
export class RequestBody {
  private pulled = false;
  /** The body of most requests: none. Shared. */
  static readonly NONE: RequestBody = new RequestBody('value', null);

  private constructor(
    private readonly kind: 'value' | 'readable' | 'iterable',
    private readonly source: unknown,
  ) {}

  static from(body: unknown): RequestBody {
    if (body === null || body === undefined) return RequestBody.NONE;
    if (typeof body === 'string' || body instanceof Uint8Array || ArrayBuffer.isView(body) || body instanceof ArrayBuffer) {
      return new RequestBody('value', body);
    }
    if (typeof body !== 'object' && typeof body !== 'function') return new RequestBody('value', body);
    const b = body as Record<PropertyKey, unknown>;
    if (typeof b.pipe === 'function' && typeof b.on === 'function') return new RequestBody('readable', body);
    if (typeof b[Symbol.asyncIterator] === 'function' || typeof b[Symbol.iterator] === 'function') return new RequestBody('iterable', body);
    // Blob, FormData, or anything else undici will judge by itself.
    return new RequestBody('value', body);
  }

  /** A value body (no stream): it can be sent any number of times, even twice at once (hedging). */
  get isValue(): boolean {
    return this.kind === 'value';
  }

  /** Whether this body can be given to another attempt now. */
  get replayable(): boolean {
    switch (this.kind) {
      case 'value':
        return true;
      case 'iterable':
        return !this.pulled;
      case 'readable': {
        const stream = this.source as Readable;
        return !Readable.isDisturbed(stream) && !stream.destroyed && stream.readableDidRead !== true;
      }
    }
  }

  /** The body to dispatch for one attempt. Call only while `replayable`. */
  forAttempt(): unknown {
    if (this.kind !== 'iterable') return this.source;
    // A fresh lazy wrapper per attempt: it touches the caller's iterable only when undici starts
    // writing the body, so an attempt that fails before that leaves it untouched.
    const source = this.source as AsyncIterable<unknown> | Iterable<unknown>;
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
    return (async function* guarded() {
      self.pulled = true;
      yield* source;
    })();
  }
}
