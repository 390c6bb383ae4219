import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/testing/index.js';
import { buildCli } from '../support/cli.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';
import { sleep } from '../support/wait.js';

/**
 * The live view of `headless-lb watch` in a real terminal: tmux runs it in a 150×40 pane, and
 * `capture-pane` reads the screen as a user would see it (no screenshot). On its own tmux server
 * (socket), killed at the end.
 */

const run = promisify(execFile);
const SOCKET = `hlb-cli-view-${process.pid}`;
const SESSION = 'watch';
const tmux = (...args: string[]) => run('tmux', ['-L', SOCKET, ...args]);
/** The screen now: plain text, or with its colour codes (`-e`). */
const screen = async (colour = false): Promise<string> =>
  (await tmux('capture-pane', '-p', ...(colour ? ['-e'] : []), '-t', SESSION)).stdout;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Reads the screen until `holds` accepts it; fails with the last screen after `timeoutMs`. */
async function screenWhen(holds: (text: string) => boolean, timeoutMs: number, what: string): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const text = await screen();
    if (holds(text)) return text;
    if (performance.now() > deadline) throw new Error(`${what} not on screen within ${timeoutMs} ms:\n${text}`);
    await sleep(100);
  }
}

let env: HttpKnotCluster;
let cli: string;
let web: Service;

beforeAll(async () => {
  [env, cli] = await Promise.all([startKnotCluster({ ttl: 2 }), buildCli('view')]);
  web = await env.cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });
});

afterAll(async () => {
  await tmux('kill-server').catch(() => {});
  await env?.close();
});

describe('headless-lb watch in a terminal', () => {
  it('draws the header, a row per pod and the event log in place, follows a scale-up, and quits on Ctrl-C', async () => {
    const command = `${process.execPath} ${cli} watch ${web.fqdn} --port-name http --dns-server ${env.knot.address} --search= --probe http:/ --interval 250; echo "exited with $?"; sleep 60`;
    await tmux('new-session', '-d', '-s', SESSION, '-x', '150', '-y', '40', '-e', 'NO_COLOR=', command);

    const row = (name: string, ip: string, weight: string) =>
      new RegExp(`^${name}\\s+${escape(ip)}\\s+8080\\s+${weight}/0\\s+healthy\\s+\\d+\\.\\d+ ms\\s+\\d+\\.\\d+ ms\\s+100%\\s+\\d+`, 'm');
    let text = await screenWhen((t) => web.pods.every((pod) => row(pod.name, pod.ip, '33').test(t)), 10_000, 'a row per pod');
    expect(text).toMatch(
      new RegExp(`^headless-lb watch  ${escape(web.fqdn)}  SRV _http._tcp · picker round-robin · probe http:/ every 250 ms`, 'm'),
    );
    expect(text).toMatch(new RegExp(`^DNS   server ${escape(env.knot.address)}  names _http\\._tcp\\.${escape(web.fqdn)} ✓`, 'm'));
    expect(text).toMatch(/^ {6}TTL 2 s {2}next lookup in \d+(?: ms|\.\d s) {2}last success .* ago {2}last error none {2}failures 0\/\d+/m);
    expect(text).toMatch(/^Pool {2}3 endpoints {2}3 healthy {2}no panic/m);
    expect(text).toMatch(/^POD\s+ADDRESS\s+PORT\s+W\/PRI\s+STATE\s+P50\s+P99\s+OK\s+PROBES/m);
    for (const pod of web.pods)
      expect(text).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  \\+ ${pod.name} added at ${escape(pod.ip)}:8080`, 'm'));
    expect(text.match(/headless-lb watch/g)).toHaveLength(1); // redrawn in place, not scrolled
    expect(await screen(true)).toContain('\x1b[32m'); // a terminal: colour (green for healthy)

    await web.scale(4);
    text = await screenWhen((t) => row('web-3', web.pod('web-3').ip, '25').test(t) && /\+ web-3 added at/.test(t), 4000, 'the new pod');
    expect(text).toMatch(/^Pool {2}4 endpoints {2}4 healthy/m);
    for (const pod of web.pods) expect(text).toMatch(row(pod.name, pod.ip, '25'));

    await tmux('send-keys', '-t', SESSION, 'C-c');
    text = await screenWhen((t) => t.includes('exited with'), 5000, 'the exit');
    expect(text).toContain('exited with 0');
    expect(text).not.toContain('headless-lb watch'); // the alternate screen is gone, the shell's is back
  });
});
