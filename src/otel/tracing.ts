import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { CallTracer } from '../diagnostics.js';
import type { AttemptContext, AttemptFunction, AttemptHandle, DispatchedCall, Endpoint } from '../index.js';
import { ATTR, EndpointAttributeCache, errorType, failureKind } from './attributes.js';

export const CALL_SPAN = 'headless_lb.call';
export const ATTEMPT_SPAN = 'headless_lb.attempt';

/**
 * Spans for one balancer's calls: a `headless_lb.call` span per call of `run()` or `dispatch()`,
 * child of the caller's active span, and under it a `headless_lb.attempt` span per attempt (the
 * first, each retry, each hedge), current while the attempt runs: the spans an HTTP or gRPC
 * client instrumentation (or the user) starts in the attempt are its children.
 */
export class CallSpans implements CallTracer {
  private readonly attributes: EndpointAttributeCache;
  private readonly callAttributes: Attributes;

  constructor(
    private readonly tracer: Tracer,
    service: string,
  ) {
    this.attributes = new EndpointAttributeCache(service);
    this.callAttributes = { [ATTR.serverAddress]: service };
  }

  run<T, P>(fn: AttemptFunction<T>, plan: P, start: (fn: AttemptFunction<T>, plan: P) => Promise<T>): Promise<T> {
    const call = this.startCall();
    if (call === undefined) return start(fn, plan);
    const traced: AttemptFunction<T> = (endpoint, attemptContext) => {
      const attempt = this.startAttempt(call, endpoint, attemptContext);
      let work: Promise<T>;
      try {
        work = Promise.resolve(context.with(attempt.context, fn, undefined, endpoint, attemptContext));
      } catch (error) {
        attempt.fail(error);
        throw error;
      }
      return work.then(
        (value) => {
          attempt.succeed();
          return value;
        },
        (error: unknown) => {
          attempt.fail(error);
          throw error;
        },
      );
    };
    return start(traced, plan).then(
      (value) => {
        call.end(undefined);
        return value;
      },
      (error: unknown) => {
        call.end(error);
        throw error;
      },
    );
  }

  dispatch<T>(call: DispatchedCall<T>): DispatchedCall<T> {
    const span = this.startCall();
    return span === undefined ? call : new TracedCall(call, this, span);
  }

  /**
   * A call span, child of the active context; undefined when it is not recorded (no SDK, or the
   * trace is sampled out): the call then runs as if not traced, in the caller's context.
   */
  startCall(): CallSpan | undefined {
    const parent = context.active();
    const span = this.tracer.startSpan(CALL_SPAN, { kind: SpanKind.INTERNAL, attributes: this.callAttributes }, parent);
    if (!span.isRecording()) return undefined;
    return new CallSpan(span, trace.setSpan(parent, span));
  }

  /** An attempt span, child of the call's, and the context that makes it current. */
  startAttempt(call: CallSpan, endpoint: Endpoint, attempt: AttemptContext): AttemptSpan {
    call.attempts++;
    const attributes = this.attributes.attemptStart(endpoint, attempt.attempt, attempt.hedged);
    const span = this.tracer.startSpan(ATTEMPT_SPAN, { kind: SpanKind.INTERNAL, attributes }, call.context);
    return new AttemptSpan(span, trace.setSpan(call.context, span), attempt);
  }
}

class CallSpan {
  attempts = 0;
  constructor(
    readonly span: Span,
    readonly context: Context,
  ) {}

  end(error: unknown): void {
    this.span.setAttribute(ATTR.attempts, this.attempts);
    if (error !== undefined) {
      this.span.setAttribute(ATTR.errorType, errorType(error));
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    this.span.end();
  }
}

class AttemptSpan {
  private ended = false;
  constructor(
    readonly span: Span,
    readonly context: Context,
    private readonly attempt: AttemptContext,
  ) {}

  succeed(): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttribute(ATTR.outcome, 'success');
    this.span.end();
  }

  /** A failure, or `cancelled` when the attempt's signal was aborted (the hedged twin won, the call stopped). */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (this.attempt.signal.aborted) {
      this.span.setAttribute(ATTR.outcome, 'cancelled');
    } else {
      this.span.setAttributes({ [ATTR.outcome]: 'failure', [ATTR.failureKind]: failureKind(error), [ATTR.errorType]: errorType(error) });
      if (error instanceof Error) this.span.recordException(error);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    this.span.end();
  }
}

/** A dispatched call with its spans: each attempt runs with its span current, and ends it when it reports. */
class TracedCall<T> implements DispatchedCall<T> {
  constructor(
    private readonly inner: DispatchedCall<T>,
    private readonly spans: CallSpans,
    private readonly call: CallSpan,
  ) {}

  startAttempt(endpoint: Endpoint, handle: AttemptHandle<T>): void {
    const traced = new TracedHandle(handle, this.spans.startAttempt(this.call, endpoint, handle));
    try {
      context.with(traced.span.context, this.inner.startAttempt, this.inner, endpoint, traced);
    } catch (error) {
      traced.fail(error); // throwing counts as fail, as in the core
    }
  }

  succeeded(value: T): void {
    this.call.end(undefined);
    this.inner.succeeded(value);
  }

  failed(error: unknown): void {
    this.call.end(error);
    this.inner.failed(error);
  }

  mayHedge(): boolean {
    return this.inner.mayHedge?.() !== false;
  }

  retryWait(giveUp: (() => void) | undefined): void {
    this.inner.retryWait?.(giveUp);
  }
}

class TracedHandle<T> implements AttemptHandle<T> {
  constructor(
    private readonly inner: AttemptHandle<T>,
    readonly span: AttemptSpan,
  ) {}

  get signal(): AbortSignal {
    return this.inner.signal;
  }

  get attempt(): number {
    return this.inner.attempt;
  }

  get hedged(): boolean {
    return this.inner.hedged;
  }

  succeed(value: T): void {
    this.span.succeed();
    this.inner.succeed(value);
  }

  fail(error: unknown): void {
    this.span.fail(error);
    this.inner.fail(error);
  }
}
