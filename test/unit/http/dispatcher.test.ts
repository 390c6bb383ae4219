import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { createBalancer, InvalidOptionError, type RunOptions } from '../../../src/index.js';
import { DISPATCH_FIELDS, DispatchFields } from '../../../src/http/dispatch-fields.js';
import { createDispatcher, HeadlessDispatcher } from '../../../src/http/index.js';

function lb() {
  // Port 9 on an address nothing listens on: these tests never reach a socket.
  return createBalancer({ endpoints: [{ address: '127.0.88.1', port: 9 }] });
}

function capture(): { handler: Dispatcher.DispatchHandler; error: Promise<Error> } {
  let fail: (e: Error) => void = () => {};
  const error = new Promise<Error>((resolve) => (fail = resolve));
  return { handler: { onConnect() {}, onHeaders: () => true, onData: () => true, onComplete() {}, onError: (e: Error) => fail(e) }, error };
}

describe('createDispatcher', () => {
  it('is an undici Dispatcher and validates its arguments', async () => {
    const balancer = lb();
    const d = createDispatcher(balancer);
    expect(d).toBeInstanceOf(Dispatcher);
    expect(d).toBeInstanceOf(HeadlessDispatcher);
    expect(() => createDispatcher({} as never)).toThrow(InvalidOptionError);
    expect(() => createDispatcher(balancer, { keyHeader: 'a b' })).toThrow(/keyHeader/);
    await d.close();
    await balancer.close();
  });

  it('reports bad requests to the handler, not by throwing', async () => {
    const balancer = lb();
    const d = createDispatcher(balancer);
    const noOrigin = capture();
    expect(d.dispatch({ path: '/', method: 'GET' }, noOrigin.handler)).toBe(false);
    expect(await noOrigin.error).toMatchObject({ code: 'UND_ERR_INVALID_ARG' });
    const ftp = capture();
    d.dispatch({ origin: 'ftp://svc', path: '/', method: 'GET' }, ftp.handler);
    expect((await ftp.error).message).toMatch(/unsupported protocol/);
    expect(() => d.dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, null as never)).toThrow(/handler/);
    // undici itself refuses the header: the caller gets that error, the pod is not charged
    const badHeader = capture();
    d.dispatch({ origin: 'http://svc', path: '/', method: 'GET', headers: { 'bad header': 'x' } }, badHeader.handler);
    expect(await badHeader.error).toMatchObject({ code: 'UND_ERR_INVALID_ARG' });
    expect(balancer.endpoints()[0]!.failures).toBe(0);
    await d.close();
    await balancer.close();
  });

  it('reports a key function that returns a non-string', async () => {
    const balancer = lb();
    const d = createDispatcher(balancer, { key: () => 42 as unknown as string });
    const c = capture();
    d.dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, c.handler);
    expect((await c.error).message).toMatch(/key function/);
    await d.close();
    await balancer.close();
  });

  it('refuses requests after close() and destroy(), with callbacks too', async () => {
    const balancer = lb();
    const d = createDispatcher(balancer);
    await new Promise<void>((resolve) => d.close(resolve));
    const closed = capture();
    d.dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, closed.handler);
    expect(await closed.error).toMatchObject({ code: 'UND_ERR_CLOSED' });
    expect(d.closed).toBe(true);
    const d2 = createDispatcher(balancer);
    await new Promise<void>((resolve) => d2.destroy(null, resolve));
    const destroyed = capture();
    d2.dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, destroyed.handler);
    expect(await destroyed.error).toMatchObject({ code: 'UND_ERR_DESTROYED' });
    expect(d2.destroyed).toBe(true);
    // the balancer is the caller's: still open
    expect(balancer.isClosed).toBe(false);
    await balancer.close();
  });

  it('stops listening to the balancer once closed', async () => {
    const balancer = lb();
    const before = balancer.listenerCount('change');
    const d = createDispatcher(balancer);
    expect(balancer.listenerCount('change')).toBe(before + 1);
    await d.close();
    expect(balancer.listenerCount('change')).toBe(before);
    await balancer.close();
  });
});

describe('the per-attempt dispatch options', () => {
  it("carry every field the installed undici's core Request reads", () => {
    // The dispatcher copies a fixed list of fields (much cheaper than a spread). If an undici
    // release adds a dispatch option, this test fails until the list has it too.
    const root = dirname(createRequire(import.meta.url).resolve('undici'));
    const source = readFileSync(join(root, 'lib', 'core', 'request.js'), 'utf8');
    const match = /constructor\s*\(\s*origin\s*,\s*\{([^}]*)\}\s*,\s*handler\s*\)/.exec(source);
    expect(match).not.toBeNull();
    const read = match![1]!
      .split(',')
      .map((f) => f.trim().split(/[\s=:]/)[0]!)
      .filter((f) => f.length > 0);
    expect([...DISPATCH_FIELDS].sort()).toEqual([...new Set(read)].sort());
  });

  it("copies every field, own or inherited, and sets the attempt's origin, headers, body and TLS name", () => {
    const own: Record<string, unknown> = {};
    for (const name of DISPATCH_FIELDS) own[name] = `value of ${name}`;
    const inherited = Object.create({ reset: true }) as Record<string, unknown>;
    inherited.origin = 'http://svc';
    for (const opts of [{ ...own, origin: 'http://svc', dispatcher: {} }, inherited]) {
      const fields = DispatchFields.from(opts as never);
      const attempt = fields.forAttempt('http://127.0.0.9:80', ['host', 'svc'], 'body', 'svc') as unknown as Record<string, unknown>;
      for (const name of DISPATCH_FIELDS) {
        if (name === 'headers') expect(attempt.headers).toEqual(['host', 'svc']);
        else if (name === 'body') expect(attempt.body).toBe('body');
        else if (name === 'servername') expect(attempt.servername).toBe('svc');
        else expect(attempt[name]).toBe(opts[name as keyof typeof opts]);
      }
      expect(attempt.origin).toBe('http://127.0.0.9:80');
      expect('dispatcher' in attempt).toBe(false);
    }
    expect(DispatchFields.from(inherited as never).reset).toBe(true);
  });
});

describe('per-request options', () => {
  it('delivers a bad headlessLb option or x-headless-lb header as the request error, naming the field', async () => {
    const balancer = lb();
    const d = createDispatcher(balancer, { perRequestHeader: ['retries'] });
    const cases: [Partial<Dispatcher.DispatchOptions>, string][] = [
      [{ headlessLb: { retries: 101 } }, 'headlessLb.retries'],
      [{ headlessLb: { timeoutMs: -1 } }, 'headlessLb.timeoutMs'],
      [{ headlessLb: { bogus: 1 } as never }, 'headlessLb.bogus'],
      [{ headers: { 'x-headless-lb': 'retries=x' } }, 'x-headless-lb: retries'],
      [{ headers: ['X-Headless-Lb', 'idempotent'] }, 'x-headless-lb: idempotent'],
      // a hedge the request cannot have: not idempotent, or a stream body
      [{ method: 'POST', headlessLb: { hedge: { delayMs: 5 } } }, 'headlessLb.hedge'],
      [{ method: 'PUT', body: (async function* () {})() as never, headlessLb: { hedge: { delayMs: 5 } } }, 'headlessLb.hedge'],
    ];
    for (const [opts, field] of cases) {
      const c = capture();
      expect(d.dispatch({ origin: 'http://svc', path: '/', method: 'GET', ...opts } as Dispatcher.DispatchOptions, c.handler)).toBe(false);
      const error = await c.error;
      expect(error, field).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).field).toBe(field);
    }
    expect(balancer.endpoints()[0]!.failures).toBe(0);
    expect(() => createDispatcher(balancer, { perRequestHeader: ['retry' as never] })).toThrow(/perRequestHeader\[0\]/);
    await d.close();
    await balancer.close();
  });

  it("passes the balancer the request's policy, the dispatcher's where the request sets nothing", () => {
    const calls: RunOptions[] = [];
    const balancer = lb();
    const fake = {
      dispatch: (_call: unknown, options: RunOptions) => calls.push(options),
      on: balancer.on.bind(balancer),
      off: balancer.off.bind(balancer),
    };
    const d = createDispatcher(fake as never, {
      retries: 2,
      timeoutMs: 1000,
      hedge: { delayMs: 50 },
      backoff: { initialMs: 10, maxMs: 100 },
      perRequestHeader: true,
    });
    const send = (opts: Partial<Dispatcher.DispatchOptions>) =>
      d.dispatch({ origin: 'http://svc', path: '/', method: 'GET', ...opts } as Dispatcher.DispatchOptions, capture().handler);
    send({});
    send({ headlessLb: { retries: 0, attemptTimeoutMs: 20 } });
    send({ method: 'POST', headers: { 'x-headless-lb': 'idempotent, retries=5, hedge-delay-ms=7' } });
    send({ headers: { 'x-headless-lb': 'retries=5, hedge-delay-ms=7' }, headlessLb: { retries: 1, hedge: false } });
    // undici's own idempotent option is code too: it wins over the header's
    send({ method: 'POST', idempotent: false, headers: { 'x-headless-lb': 'idempotent' } });
    // backoff: the request's fields over the dispatcher's, the code's over the header's
    send({ headers: { 'x-headless-lb': 'backoff-ms=40, backoff-max-ms=400' }, headlessLb: { backoff: { maxMs: 300, multiplier: 3 } } });
    expect(calls[0]).toMatchObject({ idempotent: true, retries: 2, timeoutMs: 1000, hedge: { delayMs: 50 } });
    expect(calls[0]!.backoff).toEqual({ initialMs: 10, maxMs: 100 });
    expect(Object.isFrozen(calls[0]) || calls[0]!.hedge !== undefined).toBe(true);
    expect(calls[1]).toMatchObject({ idempotent: true, retries: 0, timeoutMs: 1000, attemptTimeoutMs: 20, hedge: { delayMs: 50 } });
    expect(calls[2]).toMatchObject({ idempotent: true, retries: 5, hedge: { delayMs: 7 } });
    expect(calls[3]).toMatchObject({ idempotent: true, retries: 1, hedge: undefined });
    expect(calls[4]).toMatchObject({ idempotent: false, retries: 2, hedge: undefined });
    expect(calls[4]!.backoff).toEqual({ initialMs: 10, maxMs: 100 });
    expect(calls[5]!.backoff).toEqual({ initialMs: 40, maxMs: 300, multiplier: 3 });
    void d.close();
    void balancer.close();
  });

  it('shares frozen options for requests without overrides', () => {
    const calls: RunOptions[] = [];
    const balancer = lb();
    const fake = {
      dispatch: (_call: unknown, options: RunOptions) => calls.push(options),
      on: balancer.on.bind(balancer),
      off: balancer.off.bind(balancer),
    };
    const d = createDispatcher(fake as never, { perRequestHeader: true, backoff: { initialMs: 5 } });
    for (let i = 0; i < 2; i++)
      d.dispatch({ origin: 'http://svc', path: '/', method: 'GET', headers: { accept: '*/*' } }, capture().handler);
    expect(calls[0]).toBe(calls[1]);
    expect(Object.isFrozen(calls[0])).toBe(true);
    // a frozen backoff too: the balancer plans such options once
    expect(Object.isFrozen(calls[0]!.backoff)).toBe(true);
    void d.close();
    void balancer.close();
  });
});
