import { afterEach, describe, expect, it } from 'vitest';
import {
  BalancerClosedError,
  InvalidOptionError,
  NoEndpointsError,
  RetryableError,
  createBalancer,
  type Balancer,
  type DispatchedCall,
  type RunOptions,
} from '../../src/index.js';
import { sleep } from '../support/wait.js';
import { refused, reset, staticEndpoints } from './support.js';

const balancers: Balancer[] = [];
afterEach(async () => {
  await Promise.all(balancers.splice(0).map((lb) => lb.close()));
});

function staticBalancer(count = 3): Balancer {
  const lb = createBalancer({
    endpoints: staticEndpoints(count),
    retry: { retries: 2, backoffBaseMs: 1, backoffMaxMs: 2 },
  });
  balancers.push(lb);
  return lb;
}

/** What an attempt does, by attempt number. */
type Behaviour = 'ok' | 'refused' | 'reset' | 'retryable' | 'app-error' | 'hang' | 'throw';

interface Observed {
  readonly result: string;
  readonly attempts: number;
  readonly successes: number;
  readonly failures: number;
  readonly inflight: number;
  /** How often the call's own end was reported (must be 1). */
  readonly ends: number;
}

const outcomeOf = (error: unknown): string => `error:${(error as { code?: string }).code ?? (error as Error).message}`;

/** Runs one scripted call through run() or dispatch() and reports what happened. */
async function observe(lb: Balancer, how: 'run' | 'dispatch', script: readonly Behaviour[], options: RunOptions): Promise<Observed> {
  let attempts = 0;
  let ends = 0;
  const step = (attempt: number): Behaviour => script[Math.min(attempt, script.length) - 1]!;
  let result: string;
  if (how === 'run') {
    result = await lb
      .run((_endpoint, { attempt }) => {
        attempts++;
        const behaviour = step(attempt);
        if (behaviour === 'throw') throw refused();
        if (behaviour === 'hang') return new Promise<string>(() => {});
        return behaviour === 'ok' ? Promise.resolve('ok') : Promise.reject(errorFor(behaviour));
      }, options)
      .then(
        (value) => value,
        (error: unknown) => outcomeOf(error),
      )
      .finally(() => ends++);
  } else {
    result = await new Promise<string>((resolve) => {
      lb.dispatch<string>(
        {
          startAttempt(_endpoint, handle) {
            attempts++;
            const behaviour = step(handle.attempt);
            if (behaviour === 'throw') throw refused();
            if (behaviour === 'hang') return;
            // Reports come later, as a socket's or a stream's callbacks would.
            setImmediate(() => (behaviour === 'ok' ? handle.succeed('ok') : handle.fail(errorFor(behaviour))));
          },
          succeeded(value) {
            ends++;
            resolve(value);
          },
          failed(error) {
            ends++;
            resolve(outcomeOf(error));
          },
        },
        options,
      );
    });
  }
  await sleep(5); // a second end, if any, would show now
  const endpoints = lb.endpoints();
  return {
    result,
    attempts,
    successes: endpoints.reduce((n, e) => n + e.successes, 0),
    failures: endpoints.reduce((n, e) => n + e.failures, 0),
    inflight: endpoints.reduce((n, e) => n + e.inflight, 0),
    ends,
  };
}

function errorFor(behaviour: Behaviour): Error {
  switch (behaviour) {
    case 'refused':
      return refused();
    case 'reset':
      return reset();
    case 'retryable':
      return new RetryableError('503');
    default:
      return new Error('404');
  }
}

describe('dispatch(): the callback form of run()', () => {
  const scripts: Behaviour[][] = [
    ['ok'],
    ['refused', 'ok'],
    ['throw', 'ok'],
    ['reset', 'ok'],
    ['retryable', 'retryable', 'ok'],
    ['app-error'],
    ['refused'],
    ['reset', 'reset', 'reset'],
  ];
  const optionSets: RunOptions[] = [
    {},
    { idempotent: true },
    { idempotent: true, retries: 0 },
    { idempotent: true, attemptTimeoutMs: 1000 },
    { idempotent: true, timeoutMs: 2000 },
  ];
  for (const script of scripts) {
    for (const options of optionSets) {
      it(`ends like run(): attempts ${script.join(' → ')}, options ${JSON.stringify(options)}`, async () => {
        const viaRun = await observe(staticBalancer(), 'run', script, options);
        const viaDispatch = await observe(staticBalancer(), 'dispatch', script, options);
        expect(viaDispatch).toEqual(viaRun);
        expect(viaDispatch.ends).toBe(1);
        expect(viaDispatch.inflight).toBe(0);
      });
    }
  }

  it('times out a hung attempt and retries it elsewhere, as run() does', async () => {
    const options = { idempotent: true, attemptTimeoutMs: 20 };
    const viaRun = await observe(staticBalancer(), 'run', ['hang', 'ok'], options);
    const viaDispatch = await observe(staticBalancer(), 'dispatch', ['hang', 'ok'], options);
    expect(viaDispatch).toEqual(viaRun);
    expect(viaDispatch).toMatchObject({ result: 'ok', attempts: 2, failures: 1, successes: 1 });
  });

  it('hedges through dispatch() too: the first success wins, the loser is aborted', async () => {
    const lb = staticBalancer(2);
    const signals: AbortSignal[] = [];
    const value = await new Promise<string>((resolve, reject) => {
      lb.dispatch<string>(
        {
          startAttempt(endpoint, handle) {
            signals.push(handle.signal);
            if (!handle.hedged) return; // the primary hangs
            setImmediate(() => handle.succeed(`hedge on ${endpoint.name}`));
          },
          succeeded: resolve,
          failed: reject,
        },
        { idempotent: true, hedge: { delayMs: 5 } },
      );
    });
    expect(value).toMatch(/^hedge on web-/);
    expect(signals).toHaveLength(2);
    expect(signals[0]!.aborted).toBe(true);
    expect(lb.stats().hedges).toBe(1);
  });

  it('reports each attempt once: later reports are ignored', async () => {
    const lb = staticBalancer(1);
    const ends: string[] = [];
    lb.dispatch<string>({
      startAttempt(_endpoint, handle) {
        handle.succeed('first');
        handle.succeed('second');
        handle.fail(refused());
      },
      succeeded: (value) => ends.push(value),
      failed: (error) => ends.push(outcomeOf(error)),
    });
    await sleep(5);
    expect(ends).toEqual(['first']);
    expect(lb.endpoints()[0]).toMatchObject({ successes: 1, failures: 0, inflight: 0 });
  });

  it('gives the first attempt a signal that never aborts, made when read, and its own', async () => {
    const lb = staticBalancer(1);
    const signals: AbortSignal[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        lb.dispatch<void>({
          startAttempt(_endpoint, handle) {
            signals.push(handle.signal);
            expect(handle).toMatchObject({ attempt: 1, hedged: false });
            handle.succeed();
          },
          succeeded: resolve,
          failed: reject,
        });
      });
    }
    expect(new Set(signals).size).toBe(3);
    expect(signals.every((s) => !s.aborted)).toBe(true);
  });

  it('reports failures of the call itself asynchronously: bad options, a closed balancer, no endpoints', async () => {
    const failures: unknown[] = [];
    const call = (): DispatchedCall<void> => ({
      startAttempt: () => expect.unreachable(),
      succeeded: () => expect.unreachable(),
      failed: (error) => failures.push(error),
    });
    const lb = staticBalancer(1);
    lb.dispatch(call(), { retries: -1 });
    expect(failures).toHaveLength(0); // never from inside dispatch()
    staticBalancer(0).dispatch(call());
    expect(failures).toHaveLength(0);
    await lb.close();
    lb.dispatch(call());
    await sleep(5);
    expect(failures[0]).toBeInstanceOf(InvalidOptionError);
    expect((failures[0] as InvalidOptionError).field).toBe('retries');
    expect(failures.some((e) => e instanceof NoEndpointsError)).toBe(true);
    expect(failures.some((e) => e instanceof BalancerClosedError)).toBe(true);
    expect(failures).toHaveLength(3);
  });

  it('throws a typed error for a call without its callbacks', () => {
    const lb = staticBalancer(1);
    expect(() => lb.dispatch({ startAttempt: () => {} } as unknown as DispatchedCall<void>)).toThrow(InvalidOptionError);
    expect(() => lb.dispatch(null as unknown as DispatchedCall<void>)).toThrow(/Invalid option call/);
  });
});

describe('dispatch(): retryWait', () => {
  it('hands the call a way to give up while the balancer waits, and takes it back when the wait is over', async () => {
    const lb = staticBalancer();
    const told: ((() => void) | undefined)[] = [];
    let attempts = 0;
    const pushedBack = new RetryableError('pushed back', { retryAfterMs: 10 });
    const ended = new Promise<unknown>((resolve) => {
      const call: DispatchedCall<string> = {
        startAttempt: (_endpoint, attempt) => {
          attempts++;
          if (attempts < 3) attempt.fail(pushedBack);
          else attempt.succeed('ok');
        },
        succeeded: resolve,
        failed: resolve,
        retryWait: (giveUp) => told.push(giveUp),
      };
      lb.dispatch(call, { idempotent: true });
    });
    expect(await ended).toBe('ok');
    expect(attempts).toBe(3);
    // Two waits, each told when it starts and when it is over.
    expect(told.map((t) => typeof t)).toEqual(['function', 'undefined', 'function', 'undefined']);
  });

  it('gives up at once when the call says so: its last failure, no timer, no live call', async () => {
    const lb = staticBalancer();
    let giveUp: (() => void) | undefined;
    let attempts = 0;
    const pushedBack = new RetryableError('pushed back', { retryAfterMs: 600_000 });
    const ended = new Promise<unknown>((resolve) => {
      lb.dispatch(
        {
          startAttempt: (_endpoint, attempt) => {
            attempts++;
            attempt.fail(pushedBack);
          },
          succeeded: resolve,
          failed: resolve,
          retryWait: (stop) => (giveUp = stop),
        },
        { idempotent: true },
      );
    });
    while (giveUp === undefined) await sleep(1);
    expect(lb.stats().inflight).toBe(1);
    giveUp();
    expect(await ended).toBe(pushedBack);
    expect(attempts).toBe(1);
    expect(lb.stats().inflight).toBe(0);
    expect(giveUp).toBeUndefined();
  });
});
