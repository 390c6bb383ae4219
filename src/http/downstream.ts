import type { Duplex } from 'node:stream';
import { util, type Dispatcher } from 'undici';

/**
 * The caller's handler, seen through one interface whichever handler API it implements:
 * undici's legacy callbacks (`onConnect`/`onHeaders`/`onData`/`onComplete`/`onError`, what
 * `undici.request`, `undici.fetch` and Node's global fetch of undici 6 and 7 pass) or the
 * controller API (`onRequestStart`/`onResponseStart`/... , what `compose()` interceptors and
 * undici 8's fetch pass). Responses arrive with raw header buffers, and with headers already
 * parsed when the pods' pools are undici 8's: each caller gets its shape without a conversion
 * where one can be avoided.
 */
export interface Downstream {
  /** The request starts; `abort` cancels it. */
  start(abort: (reason?: Error) => void): void;
  responseStarted(): void;
  /**
   * Response headers (also 1xx), raw and, when undici parsed them already, as an object.
   * `resume` continues a paused response. Returns false to pause.
   */
  headers(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string, parsed?: ParsedHeaders): boolean;
  data(chunk: Buffer): boolean;
  complete(rawTrailers: Buffer[] | string[] | null, parsed?: ParsedHeaders): void;
  error(error: Error): void;
  upgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex, parsed?: ParsedHeaders): void;
}

/** Headers as undici's controller API passes them. */
export type ParsedHeaders = Record<string, string | string[] | undefined>;

type Handler = Dispatcher.DispatchHandler;
type RawList = (Buffer | string | (Buffer | string)[])[];

class LegacyDownstream implements Downstream {
  constructor(private readonly handler: Handler) {}

  start(abort: (reason?: Error) => void): void {
    this.handler.onConnect?.(abort);
  }
  responseStarted(): void {
    this.handler.onResponseStarted?.();
  }
  headers(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.handler.onHeaders?.(statusCode, rawHeaders, resume, statusText) !== false;
  }
  data(chunk: Buffer): boolean {
    return this.handler.onData?.(chunk) !== false;
  }
  complete(rawTrailers: Buffer[] | string[] | null): void {
    this.handler.onComplete?.(rawTrailers as string[] | null);
  }
  error(error: Error): void {
    if (typeof this.handler.onError !== 'function') throw error;
    this.handler.onError(error);
  }
  upgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.handler.onUpgrade?.(statusCode, rawHeaders, socket);
  }
}

/** The controller a controller-API handler gets; stable across attempts. */
class Controller implements Dispatcher.DispatchController {
  private pausedFlag = false;
  private abortedFlag = false;
  private abortReason: Error | null = null;
  /** Resumes the response currently being delivered. */
  resumeTarget: (() => void) | undefined;
  rawHeaders: Buffer[] | null = null;
  rawTrailers: Buffer[] | string[] | null = null;

  constructor(private readonly onAbort: (reason?: Error) => void) {}

  get aborted(): boolean {
    return this.abortedFlag;
  }
  get paused(): boolean {
    return this.pausedFlag;
  }
  get reason(): Error | null {
    return this.abortReason;
  }
  abort(reason?: Error): void {
    if (this.abortedFlag) return;
    this.abortedFlag = true;
    this.abortReason = reason ?? null;
    this.onAbort(reason);
  }
  pause(): void {
    this.pausedFlag = true;
  }
  resume(): void {
    if (!this.pausedFlag) return;
    this.pausedFlag = false;
    this.resumeTarget?.();
  }
}

class ControllerDownstream implements Downstream {
  private controller: Controller | undefined;

  constructor(private readonly handler: Handler) {}

  private get ctl(): Controller {
    return (this.controller ??= new Controller(() => {}));
  }

  start(abort: (reason?: Error) => void): void {
    this.controller = new Controller(abort);
    this.handler.onRequestStart?.(this.controller, {});
  }
  responseStarted(): void {}
  headers(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string, parsed?: ParsedHeaders): boolean {
    const ctl = this.ctl;
    ctl.resumeTarget = resume;
    ctl.rawHeaders = rawHeaders;
    this.handler.onResponseStart?.(ctl, statusCode, objectOf(rawHeaders, parsed), statusText);
    return !ctl.paused;
  }
  data(chunk: Buffer): boolean {
    const ctl = this.ctl;
    this.handler.onResponseData?.(ctl, chunk);
    return !ctl.paused;
  }
  complete(rawTrailers: Buffer[] | string[] | null, parsed?: ParsedHeaders): void {
    const ctl = this.ctl;
    ctl.rawTrailers = rawTrailers;
    this.handler.onResponseEnd?.(ctl, objectOf(rawTrailers, parsed));
  }
  error(error: Error): void {
    if (typeof this.handler.onResponseError !== 'function') throw error;
    this.handler.onResponseError(this.ctl, error);
  }
  upgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex, parsed?: ParsedHeaders): void {
    const ctl = this.ctl;
    ctl.rawHeaders = rawHeaders as Buffer[] | null;
    this.handler.onRequestUpgrade?.(ctl, statusCode, objectOf(rawHeaders, parsed), socket);
  }
}

/** Headers as an object for a controller-API caller: undici's own parse when there is one. */
function objectOf(raw: Buffer[] | string[] | null, parsed: ParsedHeaders | undefined): Record<string, string | string[]> {
  return (parsed ?? util.parseHeaders((raw ?? []) as RawList)) as Record<string, string | string[]>;
}

/** Wraps the caller's handler; throws undici's error for something that is no handler at all. */
export function toDownstream(handler: Handler): Downstream {
  return typeof handler.onRequestStart === 'function' || typeof handler.onResponseStart === 'function'
    ? new ControllerDownstream(handler)
    : new LegacyDownstream(handler);
}
