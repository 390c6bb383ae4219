/**
 * What per-request options cost in the HTTP dispatcher, without sockets: `dispatch()` with a
 * balancer stub whose `dispatch()` does nothing, so what is measured is the request's setup
 * (reading its dispatch options and headers, its policy, the balancer's options). CPU ns per
 * request, each setting in a process of its own (inline caches of one setting do not slow
 * another), in interleaved repetitions; the median is shown.
 *
 *   node bench/support/run.mjs http-overrides      (npm run bench -- http-overrides; about 30 s)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Dispatcher } from 'undici';
import { createDispatcher, type HttpDispatcherOptions } from '../src/http/index.js';
import { fixed, machine, median, table } from './support/measure.js';

const ORIGIN = 'http://web-headless.default.svc.cluster.local:8080';

/** Each request a fresh literal, as a caller's code makes it. */
const SETTINGS: readonly { id: string; label: string; options: HttpDispatcherOptions; request: () => Dispatcher.DispatchOptions }[] = [
  {
    id: 'none',
    label: 'no overrides (the dispatcher reads no header)',
    options: { timeoutMs: 1000 },
    request: () => ({ method: 'GET', headers: { accept: '*/*', 'x-user-id': 'u1' }, origin: ORIGIN, path: '/users/1' }),
  },
  {
    id: 'header-on',
    label: 'no overrides, perRequestHeader: true (headers looked through)',
    options: { timeoutMs: 1000, perRequestHeader: true },
    request: () => ({ method: 'GET', headers: { accept: '*/*', 'x-user-id': 'u1' }, origin: ORIGIN, path: '/users/1' }),
  },
  {
    id: 'option',
    label: 'headlessLb: { retries: 1 }',
    options: { timeoutMs: 1000 },
    request: () => ({
      method: 'GET',
      headers: { accept: '*/*', 'x-user-id': 'u1' },
      headlessLb: { retries: 1 },
      origin: ORIGIN,
      path: '/users/1',
    }),
  },
  {
    id: 'header',
    label: "'x-headless-lb: retries=1'",
    options: { timeoutMs: 1000, perRequestHeader: true },
    request: () => ({
      method: 'GET',
      headers: { accept: '*/*', 'x-user-id': 'u1', 'x-headless-lb': 'retries=1' },
      origin: ORIGIN,
      path: '/users/1',
    }),
  },
];
const REPEATS = 5;
const WARMUP = 200_000;
const REQUESTS = 1_000_000;

function measure(id: string): number {
  const setting = SETTINGS.find((s) => s.id === id)!;
  const lb = { dispatch() {}, on() {}, off() {} };
  const dispatcher = createDispatcher(lb as never, setting.options);
  const handler: Dispatcher.DispatchHandler = {
    onConnect() {},
    onHeaders: () => true,
    onData: () => true,
    onComplete() {},
    onError(error) {
      throw error;
    },
  };
  const make = setting.request;
  for (let i = 0; i < WARMUP; i++) dispatcher.dispatch(make(), handler);
  const started = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) dispatcher.dispatch(make(), handler);
  const used = process.cpuUsage(started);
  return ((used.user + used.system) * 1000) / REQUESTS;
}

const role = process.argv[2];
if (role !== undefined && SETTINGS.some((s) => s.id === role)) {
  process.stdout.write(`${measure(role)}\n`);
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
const samples = new Map<string, number[]>(SETTINGS.map((s) => [s.id, []]));
for (let r = 0; r < REPEATS; r++) {
  for (const setting of SETTINGS) {
    const out = spawnSync(process.execPath, [self, setting.id], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`${setting.id}: ${out.stderr}`);
    samples.get(setting.id)!.push(Number(out.stdout.trim()));
  }
}
const base = median(samples.get('none')!);
console.log(
  `# headless-lb/http: per-request options, CPU per dispatch(), no sockets\n\n${machine()}; ${REPEATS} interleaved repetitions of ${REQUESTS} requests per setting, median shown\n`,
);
console.log(
  table(
    ['setting', 'ns/request', 'added ns/request'],
    SETTINGS.map((s) => {
      const value = median(samples.get(s.id)!);
      return [s.label, fixed(value, 0), s.id === 'none' ? '—' : fixed(value - base, 0)];
    }),
  ),
);
