import { Agent, request } from 'undici';
import type { Balancer, Endpoint, RunOptions } from '../../src/index.js';

export interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  readonly errors: readonly string[];
  /** Successful requests per pod name (from the pod's answer). */
  readonly byPod: ReadonlyMap<string, number>;
  /** Successful requests per pod IP. */
  readonly byIp: ReadonlyMap<string, number>;
}

export interface Load {
  /** Time (performance.now) of the first answer from each pod IP. */
  readonly firstAnswer: ReadonlyMap<string, number>;
  /** Resolves when a pod with this IP (or name) has answered, or rejects after `timeoutMs`. */
  waitForAnswerFrom(ipOrName: string, timeoutMs: number): Promise<number>;
  snapshot(): LoadResult;
  /** Stops now: workers finish their current request. */
  stop(): Promise<LoadResult>;
  /** Waits until the load ends by itself (maxRequests or maxMs). */
  finished(): Promise<LoadResult>;
}

/**
 * A closed loop of `concurrency` HTTP GETs through `lb.run`, bounded by `maxRequests` and
 * `maxMs` so that it always ends. Real sockets, keep-alive per pod.
 */
export function startLoad(
  lb: Balancer,
  options: { concurrency?: number; maxRequests?: number; maxMs?: number; run?: RunOptions; method?: 'GET' | 'POST' } = {},
): Load {
  const concurrency = options.concurrency ?? 8;
  const maxRequests = options.maxRequests ?? 200_000;
  const deadline = performance.now() + (options.maxMs ?? 60_000);
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 4 });
  const byPod = new Map<string, number>();
  const byIp = new Map<string, number>();
  const firstAnswer = new Map<string, number>();
  const errors: string[] = [];
  const waiters: { match: string; resolve: (t: number) => void }[] = [];
  let ok = 0;
  let failed = 0;
  let started = 0;
  let running = true;
  const method = options.method ?? 'GET';

  const attempt = async (endpoint: Endpoint, { signal }: { signal: AbortSignal }): Promise<{ pod: string; ip: string }> => {
    const response = await request(`http://${endpoint.host}/`, {
      method,
      dispatcher: agent,
      signal,
      body: method === 'POST' ? 'x' : undefined,
    });
    const body = (await response.body.json()) as { pod: string; ip: string };
    if (response.statusCode >= 500) throw Object.assign(new Error(`HTTP ${response.statusCode}`), { code: 'ERR_HLB_RETRYABLE' });
    return body;
  };

  const worker = async (): Promise<void> => {
    while (running && started < maxRequests && performance.now() < deadline) {
      started++;
      try {
        const { pod, ip } = await lb.run(attempt, { idempotent: method === 'GET', timeoutMs: 5000, ...options.run });
        ok++;
        byPod.set(pod, (byPod.get(pod) ?? 0) + 1);
        byIp.set(ip, (byIp.get(ip) ?? 0) + 1);
        if (!firstAnswer.has(ip)) {
          const now = performance.now();
          firstAnswer.set(ip, now);
          for (const waiter of [...waiters]) if (waiter.match === ip || waiter.match === pod) waiter.resolve(now);
        }
        if (!firstAnswer.has(pod)) firstAnswer.set(pod, performance.now());
      } catch (error) {
        failed++;
        if (errors.length < 20) errors.push(`${(error as Error)?.name}: ${(error as Error)?.message}`);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  const snapshot = (): LoadResult => ({ ok, failed, errors: [...errors], byPod: new Map(byPod), byIp: new Map(byIp) });

  return {
    firstAnswer,
    waitForAnswerFrom(match, timeoutMs) {
      const seen = firstAnswer.get(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (t: number) => {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(waiter), 1);
            resolve(t);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no answer from ${match} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    snapshot,
    async stop() {
      running = false;
      return this.finished();
    },
    async finished() {
      await Promise.all(workers);
      await agent.close();
      return snapshot();
    },
  };
}
