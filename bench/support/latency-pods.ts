/**
 * HTTP pods whose response time the benchmark sets at runtime, in a child process so that their
 * CPU (and their timers) do not share the client's event loop.
 *
 * The child is the benchmark's own bundle run again with `--latency-pods` (bench/support/run.mjs
 * bundles one file per benchmark, so the pods travel inside it): the benchmark calls
 * `serveLatencyPods()` when it sees that flag, `startLatencyPods()` otherwise.
 *
 * Pod i is a plain `node:http` server on `addresses[i]` (all on one port, 127.0.0.0/8 only)
 * that answers every request `delayMs[i]` after it arrived (a timer; requests overlap, like a
 * pod whose handler waits on I/O). `setDelay(i, ms)` changes it over IPC; it applies to requests
 * that arrive after the child received the message.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';

export const POD_FLAG = '--latency-pods';

const BODY = Buffer.from(JSON.stringify({ ok: true, padding: 'x'.repeat(64) }));

type ToPods = { type: 'delay'; pod: number; ms: number; id: number } | { type: 'start'; addresses: string[]; delays: number[] };
type FromPods = { type: 'listening'; port: number } | { type: 'ack'; id: number } | { type: 'error'; message: string };

export interface LatencyPods {
  readonly port: number;
  readonly addresses: readonly string[];
  /** Sets pod `pod`'s response delay; resolves once the pods process applied it. */
  setDelay(pod: number, ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Child side: waits for the addresses and delays, listens, then obeys `delay` messages. */
export async function serveLatencyPods(): Promise<void> {
  const send = (message: FromPods): void => void process.send!(message);
  const [start] = (await once(process, 'message')) as [ToPods];
  if (start.type !== 'start') throw new Error('expected a start message');
  const delays = [...start.delays];
  let port = 0;
  const servers: http.Server[] = [];
  for (let i = 0; i < start.addresses.length; i++) {
    const address = start.addresses[i]!;
    if (!address.startsWith('127.')) throw new Error(`not a loopback address: ${address}`);
    const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
      const delay = delays[i]!;
      req.resume();
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
        res.end(BODY);
      }, delay);
    });
    server.listen(port, address);
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
    servers.push(server);
  }
  process.on('message', (message: ToPods) => {
    if (message.type !== 'delay') return;
    delays[message.pod] = message.ms;
    send({ type: 'ack', id: message.id });
  });
  // Leave with the parent.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'listening', port });
}

/** Parent side: forks `entry` (the running benchmark bundle) as the pods process. */
export async function startLatencyPods(entry: string, addresses: readonly string[], delays: readonly number[]): Promise<LatencyPods> {
  for (const a of addresses) if (!a.startsWith('127.')) throw new Error(`pods must be on 127.0.0.0/8, got ${a}`);
  const child: ChildProcess = fork(entry, [POD_FLAG], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--enable-source-maps'],
  });
  const waiting = new Map<number, () => void>();
  let nextId = 1;
  let listening: (port: number) => void = () => {};
  const port = new Promise<number>((resolve, reject) => {
    listening = resolve;
    child.once('exit', (code) => reject(new Error(`the pods process exited (${code}) before listening`)));
    setTimeout(() => reject(new Error('the pods process did not listen within 10 s')), 10_000).unref();
  });
  child.on('message', (message: FromPods) => {
    if (message.type === 'listening') listening(message.port);
    else if (message.type === 'ack') {
      waiting.get(message.id)?.();
      waiting.delete(message.id);
    }
  });
  child.send({ type: 'start', addresses: [...addresses], delays: [...delays] } satisfies ToPods);
  return {
    port: await port,
    addresses,
    setDelay: (pod, ms) =>
      new Promise<void>((resolve) => {
        const id = nextId++;
        waiting.set(id, resolve);
        child.send({ type: 'delay', pod, ms, id } satisfies ToPods);
      }),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    },
  };
}
