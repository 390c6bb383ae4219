import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/testing/index.js';
import { buildCli, startCli, type RunningCli } from '../support/cli.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';

/**
 * `headless-lb watch --json` as a child process against a real Knot serving the test kit's pods:
 * it sees a scale-up, a crash (ejected by its probes, through the balancer's outlier detection)
 * and a restart with a new IP, each within TTL + 1 s; Ctrl-C ends it cleanly.
 */

const TTL_S = 2;
let env: HttpKnotCluster;
let cli: string;

beforeAll(async () => {
  [env, cli] = await Promise.all([startKnotCluster({ ttl: TTL_S }), buildCli('watch')]);
});

afterAll(async () => {
  await env?.close();
});

const within = TTL_S * 1000 + 1000;
const ofPod = (pod: string) => (line: Record<string, unknown>) => (line.endpoint as { pod?: string } | undefined)?.pod === pod;

describe('headless-lb watch --json', () => {
  let web: Service;
  let watch: RunningCli | undefined;

  beforeAll(async () => {
    web = await env.cluster.createService({ name: 'web-headless', replicas: 2, port: 8080, portName: 'http', podPrefix: 'web' });
  });
  afterAll(() => {
    watch?.child.kill('SIGKILL');
  });

  it('sees a scale-up, a crash and a restart with a new IP, each within TTL + 1 s', async () => {
    watch = startCli(cli, [
      'watch',
      web.fqdn,
      '--port-name',
      'http',
      '--dns-server',
      env.knot.address,
      '--search=',
      '--probe',
      'http:/',
      '--interval',
      '200',
      '--json',
    ]);
    await watch.waitForJson((l) => l.type === 'added' && ofPod('web-1')(l), 5000);
    const first = await watch.waitForJson((l) => l.type === 'snapshot' && (l.endpoints as unknown[]).length === 2, 5000);
    expect(first).toMatchObject({ service: web.fqdn, pool: { size: 2, healthy: 2, panic: false } });

    // Scale-up: the new pod is added within TTL + 1 s.
    let mark = watch.json().length;
    let since = performance.now();
    await web.scale(3);
    const added = await watch.waitForJson((l) => l.type === 'added', within, mark);
    expect(added).toMatchObject({ endpoint: { pod: 'web-2', address: web.pod('web-2').ip, port: 8080 } });
    expect(performance.now() - since).toBeLessThan(within);

    // A crash that DNS has not noticed: the probes fail, outlier detection ejects the pod.
    mark = watch.json().length;
    await web.crashPod('web-0');
    const eject = await watch.waitForJson((l) => l.type === 'eject', within, mark);
    expect(eject).toMatchObject({ endpoint: { pod: 'web-0' }, reason: 'connect-failure' });
    const ejected = await watch.waitForJson(
      (l) =>
        l.type === 'snapshot' && (l.endpoints as { pod: string; state: string }[]).some((e) => e.pod === 'web-0' && e.state === 'ejected'),
      2000,
      mark,
    );
    const row = (ejected.endpoints as { pod: string; ejectedForMs: number; probe: { successRate: number } }[]).find(
      (e) => e.pod === 'web-0',
    )!;
    expect(row.ejectedForMs).toBeGreaterThan(20_000); // the first ejection: 30 s ± 10%
    expect(row.probe.successRate).toBeLessThan(1);

    // The crashed pod restarts with a new IP under the same name: readdressed, old → new.
    const oldIp = web.pod('web-0').ip;
    mark = watch.json().length;
    since = performance.now();
    await web.restartPod('web-0');
    const readdressed = await watch.waitForJson((l) => l.type === 'readdressed', within, mark);
    expect(readdressed).toMatchObject({ endpoint: { pod: 'web-0' }, from: oldIp, to: web.pod('web-0').ip });
    expect(web.pod('web-0').ip).not.toBe(oldIp);
    expect(performance.now() - since).toBeLessThan(within);
    // A new container: its predecessor's ejection no longer counts, and its probes succeed.
    await watch.waitForJson(
      (l) =>
        l.type === 'snapshot' &&
        (l.endpoints as { pod: string; state: string; address: string }[]).some(
          (e) => e.pod === 'web-0' && e.state !== 'ejected' && e.address === web.pod('web-0').ip,
        ),
      2000,
      mark,
    );

    // Every lookup is reported with what DNS said.
    const lookup = watch.json().findLast((l) => l.type === 'lookup')!;
    expect(lookup).toMatchObject({
      outcome: 'endpoints',
      endpoints: 3,
      server: env.knot.address,
      ttlMs: TTL_S * 1000,
      answeredName: web.srvName,
    });
    expect(lookup.nextLookupInMs).toBeGreaterThan(0);

    // Ctrl-C: the balancer closes and the process ends by itself (no handle left), exit 0.
    watch.child.kill('SIGINT');
    const result = await watch.exit(5000);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });
});

describe('headless-lb watch, not on a terminal', () => {
  it('prints plain frames and events, without colour', async () => {
    const api = await env.cluster.createService({ name: 'api', replicas: 2, port: 9090, portName: 'http', podPrefix: 'api' });
    const watch = startCli(cli, [
      'watch',
      api.fqdn,
      '--port',
      '9090',
      '--dns-server',
      env.knot.address,
      '--search=',
      '--probe',
      'tcp',
      '--interval',
      '300',
    ]);
    const started = performance.now();
    while (!/api|127\./.test(watch.stdout()) || !watch.stdout().includes('PROBES')) {
      if (performance.now() - started > 5000) throw new Error(`no frame: ${watch.stdout()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    watch.child.kill('SIGINT');
    const result = await watch.exit(5000);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('\x1b');
    for (const pod of api.pods) expect(result.stdout).toContain(`+ ${pod.ip} added at ${pod.ip}:9090`);
    expect(result.stdout).toMatch(/POD\s+ADDRESS\s+PORT\s+W\/PRI\s+STATE\s+P50\s+P99\s+OK\s+PROBES/);
  });

  it('marks the subset members with --subset-size', async () => {
    const svc = await env.cluster.createService({ name: 'sub', replicas: 4, port: 9191, portName: 'http', podPrefix: 'sub' });
    const watch = startCli(cli, [
      'watch',
      svc.fqdn,
      '--port',
      '9191',
      '--dns-server',
      env.knot.address,
      '--search=',
      '--subset-size',
      '2',
      '--client-id',
      'api-1',
      '--interval',
      '300',
    ]);
    const started = performance.now();
    while (!watch.stdout().includes('subset 2/2 as api-1') || (watch.stdout().match(/ member/g) ?? []).length < 2) {
      if (performance.now() - started > 5000) throw new Error(`no frame with the subset: ${watch.stdout()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    watch.child.kill('SIGINT');
    const result = await watch.exit(5000);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/POD\s+ADDRESS\s+PORT\s+W\/PRI\s+STATE\s+SUBSET/);
    // One frame: 2 of the 4 rows are members.
    const frame = result.stdout.slice(result.stdout.lastIndexOf('POD'));
    const rows = frame.split('\n').filter((line) => svc.pods.some((pod) => line.includes(pod.ip)));
    expect(rows.filter((line) => / member/.test(line))).toHaveLength(2);
    await svc.delete();
  });
});
