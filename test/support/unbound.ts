import { spawn, type ChildProcessByStdio } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import packet from 'dns-packet';
import { KNOT_ENV } from './knot.js';
import { findFreeDualPort } from './ports.js';
import { sleep } from './wait.js';

/**
 * A real caching resolver (Unbound, Debian's `unbound`) between a client and Knot, as CoreDNS's
 * `cache` plugin or NodeLocal DNSCache sit between a pod and the cluster's DNS: answers come
 * from its cache with TTLs that count down, and it asks Knot again only once its copy expired.
 *
 * Unbound counts in whole seconds of the wall clock: a copy fetched at 12.4 s with TTL 5 is
 * served until 18.0 s, as TTL 5 … 1 and then TTL 0 for its last second.
 *
 * It runs in the foreground under the same kind of sh guard as knotd (./knot.ts): the guard
 * kills it when its stdin closes, and the test process holds the other end of that pipe, so
 * Unbound dies with the test process, even on SIGKILL. Its configuration is private (no
 * chroot, no user change, no pidfile, no remote control, no DNSSEC), logs go to stderr.
 */

/** `$1` is the config file. Prints Unbound's PID, then waits for Unbound or for stdin to close. */
const UNBOUND_GUARD_SCRIPT = [
  'exec 3<&0', // a background job's stdin is /dev/null: keep the pipe on fd 3 for the watcher
  'unbound -c "$1" </dev/null &',
  'pid=$!',
  'echo "unbound-pid $pid"',
  '( read _ <&3; kill $pid 2>/dev/null ) &',
  'watcher=$!',
  'wait $pid',
  'status=$?',
  'kill $watcher 2>/dev/null',
  'exit $status',
].join('\n');

const START_TIMEOUT_MS = 5000;
const MAX_START_ATTEMPTS = 5;
const LOG_LIMIT = 64 * 1024;

export interface StartUnboundOptions {
  /** The authoritative server's port on 127.0.0.1 (Knot's `port`). */
  readonly upstreamPort: number;
  /** The zone stub-resolved to it. Default `'cluster.local'`. */
  readonly domain?: string;
}

export function unboundConfig(dir: string, port: number, upstreamPort: number, domain: string): string {
  return `server:
    directory: "${dir}"
    chroot: ""
    username: ""
    pidfile: ""
    do-daemonize: no
    use-syslog: no
    logfile: ""
    log-time-ascii: yes
    verbosity: 1
    num-threads: 1
    interface: 127.0.0.1@${port}
    port: ${port}
    so-reuseport: no
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    domain-insecure: "${domain}"
    qname-minimisation: no
    cache-min-ttl: 0
    prefetch: no
    serve-expired: no
    minimal-responses: no
remote-control:
    control-enable: no
stub-zone:
    name: "${domain}"
    stub-addr: 127.0.0.1@${upstreamPort}
`;
}

type GuardProcess = ChildProcessByStdio<Writable, Readable, Readable>;

export class UnboundCache {
  readonly dir: string;
  readonly domain: string;
  #port: number;
  #child: GuardProcess | undefined;
  #exited: Promise<number | null> | undefined;
  #pid: number | undefined;
  #log = '';

  /** Use `startUnbound()`. */
  constructor(dir: string, domain: string, port: number) {
    this.dir = dir;
    this.domain = domain;
    this.#port = port;
  }

  get port(): number {
    return this.#port;
  }

  /** For `dnsServers`. */
  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  /** Unbound's PID while it runs. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** The last 64 KiB of Unbound's log, for failure messages. */
  get log(): string {
    return this.#log;
  }

  get configPath(): string {
    return join(this.dir, 'unbound.conf');
  }

  /**
   * When Unbound's cached copy of `name`'s `type` records expires, in `Date.now()` ms: it counts
   * whole seconds of the wall clock, so an answer of TTL t at wall time w expires at ⌊w⌋ + t + 1 s.
   * Asking fetches a copy if none is cached (as any client's lookup would).
   */
  async copyExpiry(name: string, type: 'A' | 'AAAA' | 'SRV' = 'A'): Promise<number> {
    const answer = await query(this.#port, name, type, 1000);
    const ttl = answer?.ttl;
    if (answer === undefined || ttl === undefined)
      throw new Error(`no ${type} answer for ${name} from unbound on port ${this.#port}:\n${this.#log}`);
    return (Math.floor(answer.at / 1000) + ttl + 1) * 1000;
  }

  async close(): Promise<void> {
    const child = this.#child;
    const exited = this.#exited;
    if (child !== undefined && exited !== undefined) {
      child.stdin.end(); // the guard kills Unbound
      const timer = setTimeout(() => {
        killQuietly(this.#pid);
        killQuietly(child.pid);
      }, 3000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  /** @internal First start: a port taken meanwhile makes Unbound exit; then try another. */
  async boot(upstreamPort: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const exitCode = await this.#spawnAndWait();
      if (exitCode === undefined) return;
      if (attempt >= MAX_START_ATTEMPTS)
        throw new Error(`unbound failed to start ${attempt} times (last status ${exitCode}):\n${this.#log}`);
      this.#port = await findFreeDualPort();
      await writeFile(this.configPath, unboundConfig(this.dir, this.#port, upstreamPort, this.domain));
    }
  }

  /** Spawns the guard; resolves undefined once Unbound answers, or with its exit status if it died first. */
  async #spawnAndWait(): Promise<number | undefined> {
    const child = spawn('sh', ['-c', UNBOUND_GUARD_SCRIPT, 'unbound-guard', this.configPath], {
      env: KNOT_ENV,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    this.#child = child;
    this.#exited = exited;
    const append = (chunk: Buffer): void => {
      this.#log = (this.#log + chunk.toString()).slice(-LOG_LIMIT);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      const match = /unbound-pid (\d+)/.exec(chunk.toString());
      if (match !== null) this.#pid = Number(match[1]);
      append(chunk);
    });
    child.stderr.on('data', append);
    child.stdin.on('error', () => {});
    void exited.then(() => {
      if (this.#child === child) {
        this.#child = undefined;
        this.#exited = undefined;
        this.#pid = undefined;
      }
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    let died: number | null | undefined;
    void exited.then((code) => (died = code));
    while (died === undefined) {
      // The zone's SOA comes back once Unbound is up and reaches Knot.
      if (await recursiveSoa(this.#port, 200, this.domain)) return undefined;
      if (Date.now() > deadline) {
        await this.close();
        throw new Error(`unbound did not answer on port ${this.#port} within ${START_TIMEOUT_MS} ms:\n${this.#log}`);
      }
      await sleep(10);
    }
    if (died === 127)
      throw new Error(
        `unbound not found on PATH (with /usr/sbin): install it (apt-get install -y --no-install-recommends unbound)\n${this.#log}`,
      );
    return died ?? -1;
  }
}

/**
 * Starts Unbound on a free port of 127.0.0.1, stub-resolving `domain` to Knot on
 * 127.0.0.1:`upstreamPort`; resolves once it answers that zone's SOA through Knot.
 */
export async function startUnbound(options: StartUnboundOptions): Promise<UnboundCache> {
  const domain = options.domain ?? 'cluster.local';
  const dir = await mkdtemp(join(tmpdir(), 'headless-lb-unbound-'));
  try {
    const port = await findFreeDualPort();
    await writeFile(join(dir, 'unbound.conf'), unboundConfig(dir, port, options.upstreamPort, domain));
    const unbound = new UnboundCache(dir, domain, port);
    await unbound.boot(options.upstreamPort);
    return unbound;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The shortest TTL of a recursive query's answer records and the wall time it came at, or undefined. */
function query(
  port: number,
  name: string,
  type: 'A' | 'AAAA' | 'SRV',
  timeoutMs: number,
): Promise<{ ttl: number | undefined; at: number } | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const id = Math.floor(Math.random() * 65536);
    const done = (result: { ttl: number | undefined; at: number } | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => {});
    socket.on('message', (message) => {
      const at = Date.now();
      try {
        const response = packet.decode(message);
        if (response.id !== id) return;
        const ttls = (response.answers ?? []).flatMap((a) => (a.type === type ? [a.ttl ?? 0] : []));
        done({ ttl: ttls.length > 0 ? Math.min(...ttls) : undefined, at });
      } catch {
        // not for us
      }
    });
    socket.send(packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name, type }] }), port, '127.0.0.1');
  });
}

/** Whether a recursive SOA query for `domain` to 127.0.0.1:port got the SOA back within `timeoutMs`. */
function recursiveSoa(port: number, timeoutMs: number, domain: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const id = Math.floor(Math.random() * 65536);
    const done = (answered: boolean): void => {
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('error', () => {});
    socket.on('message', (message) => {
      try {
        const response = packet.decode(message);
        if (response.id === id && response.answers?.some((answer) => answer.type === 'SOA') === true) done(true);
      } catch {
        // not for us
      }
    });
    socket.send(
      packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name: domain, type: 'SOA' }] }),
      port,
      '127.0.0.1',
    );
  });
}

function killQuietly(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
