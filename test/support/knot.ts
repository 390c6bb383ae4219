import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import packet from 'dns-packet';
import type { ClusterDns } from '../../src/testing/cluster-dns.js';
import { ClusterModel } from '../../src/testing/model.js';
import { toZoneFile } from '../../src/testing/zone-file.js';
import { findFreeDualPort } from './ports.js';
import { sleep } from './wait.js';

/**
 * A real Knot DNS 3.2 for integration tests, serving a ClusterModel like the embedded server
 * does. One per test file: it is cheap (~15 ms, ~9 MiB).
 *
 * knotd runs under a small sh guard that kills it when its stdin closes. The test process holds
 * the other end of that pipe, so knotd dies with the test process, even on SIGKILL.
 */

/** `$1` is the config file. Prints knotd's PID, then waits for knotd or for stdin to close. */
export const KNOT_GUARD_SCRIPT = [
  'exec 3<&0', // a background job's stdin is /dev/null: keep the pipe on fd 3 for the watcher
  'knotd -c "$1" </dev/null &',
  'pid=$!',
  'echo "knotd-pid $pid"',
  '( read _ <&3; kill $pid 2>/dev/null ) &',
  'watcher=$!',
  'wait $pid',
  'status=$?',
  'kill $watcher 2>/dev/null',
  'exit $status',
].join('\n');

/** knotd and knotc live in /usr/sbin on Debian, which is not on every PATH. */
export const KNOT_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/usr/local/sbin` };

const START_TIMEOUT_MS = 5000;
const MAX_START_ATTEMPTS = 5;
const LOG_LIMIT = 64 * 1024;

export interface StartKnotOptions {
  /** The zone Knot is authoritative for. Default `'cluster.local'`. */
  readonly domain?: string;
  /** Served from the start. Default: an empty zone. */
  readonly model?: ClusterModel;
}

export function knotConfig(dir: string, port: number, domain: string): string {
  return `server:
    rundir: "${dir}/run"
    listen: [ 127.0.0.1@${port} ]
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "${dir}/db"
control:
    listen: "${dir}/run/knot.sock"
template:
  - id: default
    storage: "${dir}/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: ${domain}
`;
}

type GuardProcess = ChildProcessByStdio<Writable, Readable, Readable>;

export class KnotDns implements ClusterDns {
  readonly dir: string;
  readonly domain: string;
  #port: number;
  #child: GuardProcess | undefined;
  #exited: Promise<number | null> | undefined;
  #knotdPid: number | undefined;
  #log = '';
  #serial: number;
  #queue: Promise<void> = Promise.resolve();
  #zoneWrites = 0;
  #closed = false;

  /** Use `startKnot()`. */
  constructor(dir: string, domain: string, port: number, serial: number) {
    this.dir = dir;
    this.domain = domain;
    this.#port = port;
    this.#serial = serial;
  }

  get port(): number {
    return this.#port;
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** knotd's PID while it runs. */
  get pid(): number | undefined {
    return this.#knotdPid;
  }

  /** The last 64 KiB of knotd's log, for failure messages. */
  get log(): string {
    return this.#log;
  }

  get configPath(): string {
    return join(this.dir, 'knot.conf');
  }

  get controlSocket(): string {
    return join(this.dir, 'run', 'knot.sock');
  }

  /**
   * Writes the zone (atomically: a temp file renamed into place), reloads it with knotc and waits
   * until Knot serves the new serial. While stopped, only writes it: `start()` serves it.
   */
  publish(model: ClusterModel): Promise<void> {
    if (model.domain !== this.domain) return Promise.reject(new Error(`Knot serves ${this.domain}, not ${model.domain}`));
    const text = toZoneFile(model);
    const serial = model.serial;
    const run = this.#queue.then(async () => {
      await this.#writeZone(text);
      this.#serial = serial;
      if (this.#child === undefined) return;
      await this.#knotc(['zone-reload', this.domain]);
      await this.#waitForSerial(serial, 2000);
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Starts knotd on the same port again (after `stop()`), serving the last published zone. */
  async start(): Promise<void> {
    if (this.#closed) throw new Error('KnotDns is closed');
    if (this.#child !== undefined) return;
    const exitCode = await this.#spawnAndWait();
    if (exitCode !== undefined) throw new Error(`knotd exited with status ${exitCode} while starting on port ${this.#port}:\n${this.#log}`);
  }

  /** Kills knotd; the port, directory and zone stay, for `start()`. Clients now get no answer. */
  async stop(): Promise<void> {
    const child = this.#child;
    const exited = this.#exited;
    if (child === undefined || exited === undefined) return;
    child.stdin.end(); // the guard kills knotd
    const timer = setTimeout(() => {
      if (this.#knotdPid !== undefined) killQuietly(this.#knotdPid);
      killQuietly(child.pid);
    }, 3000);
    await exited;
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** @internal First start: a port taken meanwhile makes knotd exit 1; then try another. */
  async boot(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const exitCode = await this.#spawnAndWait();
      if (exitCode === undefined) return;
      if (attempt >= MAX_START_ATTEMPTS) throw new Error(`knotd failed to start ${attempt} times (last status ${exitCode}):\n${this.#log}`);
      this.#port = await findFreeDualPort();
      await writeFile(this.configPath, knotConfig(this.dir, this.#port, this.domain));
    }
  }

  async #writeZone(text: string): Promise<void> {
    const file = join(this.dir, 'zones', `${this.domain}.zone`);
    const temp = `${file}.${++this.#zoneWrites}.tmp`;
    await writeFile(temp, text);
    await rename(temp, file);
  }

  /** Spawns the guard; resolves undefined once Knot answers, or with knotd's exit status if it died first. */
  async #spawnAndWait(): Promise<number | undefined> {
    let child: GuardProcess;
    try {
      child = spawn('sh', ['-c', KNOT_GUARD_SCRIPT, 'knot-guard', this.configPath], { env: KNOT_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (error) {
      throw new Error(`cannot start knotd: ${(error as Error).message}`, { cause: error });
    }
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    this.#child = child;
    this.#exited = exited;
    const append = (chunk: Buffer): void => {
      this.#log = (this.#log + chunk.toString()).slice(-LOG_LIMIT);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      const match = /knotd-pid (\d+)/.exec(chunk.toString());
      if (match !== null) this.#knotdPid = Number(match[1]);
      append(chunk);
    });
    child.stderr.on('data', append);
    child.stdin.on('error', () => {});
    void exited.then(() => {
      if (this.#child === child) {
        this.#child = undefined;
        this.#exited = undefined;
        this.#knotdPid = undefined;
      }
    });
    // knotd missing shows up as sh's "knotd: not found" and status 127.
    const deadline = Date.now() + START_TIMEOUT_MS;
    let died: number | null | undefined;
    void exited.then((code) => (died = code));
    while (died === undefined) {
      if (existsSync(this.controlSocket) && (await soaSerial(this.#port, 200, this.domain)) === this.#serial) return undefined;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`knotd did not answer on port ${this.#port} within ${START_TIMEOUT_MS} ms:\n${this.#log}`);
      }
      await sleep(10);
    }
    if (died === 127)
      throw new Error(
        `knotd not found on PATH (with /usr/sbin): install Knot DNS (apt-get install -y --no-install-recommends knot knot-dnsutils)\n${this.#log}`,
      );
    return died ?? -1;
  }

  #knotc(args: readonly string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile('knotc', ['-s', this.controlSocket, '-b', ...args], { env: KNOT_ENV, timeout: 5000 }, (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`knotc ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}\n${this.#log}`));
        else resolve();
      });
    });
  }

  async #waitForSerial(serial: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen: number | undefined;
    while (Date.now() < deadline) {
      seen = await soaSerial(this.#port, 200, this.domain);
      if (seen === serial) return;
      await sleep(5);
    }
    throw new Error(`Knot still serves serial ${String(seen)} instead of ${serial}:\n${this.#log}`);
  }
}

/** Starts knotd on a free port of 127.0.0.1 in a temp directory; resolves once it answers. */
export async function startKnot(options: StartKnotOptions = {}): Promise<KnotDns> {
  const domain = options.domain ?? options.model?.domain ?? 'cluster.local';
  const model = options.model ?? new ClusterModel({ domain });
  const dir = await mkdtemp(join(tmpdir(), 'headless-lb-knot-'));
  try {
    await Promise.all(['run', 'db', 'zones'].map((sub) => mkdir(join(dir, sub))));
    const port = await findFreeDualPort();
    await writeFile(join(dir, 'knot.conf'), knotConfig(dir, port, domain));
    await writeFile(join(dir, 'zones', `${domain}.zone`), toZoneFile(model));
    const knot = new KnotDns(dir, domain, port, model.serial);
    await knot.boot();
    return knot;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The SOA serial served on 127.0.0.1:port, or undefined if no answer came in time. */
export function soaSerial(port: number, timeoutMs: number, domain = 'cluster.local'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const id = Math.floor(Math.random() * 65536);
    const done = (serial: number | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(serial);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => {});
    socket.on('message', (message) => {
      try {
        const response = packet.decode(message);
        const soa = response.answers?.find((answer) => answer.type === 'SOA');
        if (response.id === id) done(soa?.type === 'SOA' ? soa.data.serial : undefined);
      } catch {
        // not for us
      }
    });
    socket.send(packet.encode({ type: 'query', id, questions: [{ name: domain, type: 'SOA' }] }), port, '127.0.0.1');
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
