// The demo of `headless-lb demo` (and `npm run demo`): a headless Service on an embedded,
// Kubernetes-shaped DNS server (TTL 5 s, like CoreDNS) with real HTTP pods on 127.x.y.z loopback
// addresses. Steady traffic flows through a balancer while the Service is scaled up, a pod
// crashes, a pod restarts with a new IP, and the Service is scaled down.
import { setTimeout as sleep } from 'node:timers/promises';
import { RetryableError, createBalancer, type Endpoint } from '../index.js';
import { startCluster } from '../testing/index.js';

const CONCURRENCY = 8;

interface PodTally {
  count: number;
  window: number;
  latency: number[];
}

/** Runs the demo; resolves with the exit code (0 when no request failed). `stop` ends it early. */
export async function runDemo(tty: boolean, stop: Promise<unknown>): Promise<number> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  const pause = (ms: number) => Promise.race([sleep(ms), stop]);
  const out = (text: string) => void process.stdout.write(text);

  const cluster = await startCluster({ ttl: 5 });
  const web = await cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });
  const lb = createBalancer({
    service: web.fqdn, // web-headless.default.svc.cluster.local
    portName: 'http', // SRV discovery: pod names survive restarts
    dnsServers: [cluster.dnsServer],
  });
  await lb.ready();

  // ---- traffic: a closed loop of CONCURRENCY idempotent GETs ----
  const stats = { ok: 0, failed: 0, retried: 0, byPod: new Map<string, PodTally>(), errors: [] as string[] };
  const firstSeen = new Map<string, number>(); // "pod ip" -> time of its first answer
  let running = true;

  const request = () =>
    lb.run(
      async (endpoint, { signal, attempt }) => {
        if (attempt > 1) stats.retried++;
        const started = performance.now();
        const res = await fetch(`http://${endpoint.host}/`, { signal });
        if (res.status >= 500) throw new RetryableError(`HTTP ${res.status}`);
        const body = (await res.json()) as { pod: string; ip: string };
        return { ...body, ms: performance.now() - started };
      },
      { idempotent: true, timeoutMs: 2000 },
    );

  const worker = async (): Promise<void> => {
    while (running) {
      try {
        const { pod, ip, ms } = await request();
        stats.ok++;
        const entry = stats.byPod.get(pod) ?? { count: 0, window: 0, latency: [] };
        entry.count++;
        entry.window++;
        entry.latency.push(ms);
        if (entry.latency.length > 200) entry.latency.shift();
        stats.byPod.set(pod, entry);
        if (!firstSeen.has(`${pod} ${ip}`)) firstSeen.set(`${pod} ${ip}`, performance.now());
      } catch (error) {
        stats.failed++;
        stats.errors.push(String((error as Error)?.message ?? error));
      }
    }
  };
  const workers = Array.from({ length: CONCURRENCY }, worker);

  // ---- the live table ----
  let phase = 'steady traffic, 3 pods';
  const events: string[] = [];
  const t0 = performance.now();
  const log = (line: string) => events.push(`${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s  ${line}`);

  const render = (): string[] => {
    const endpoints = new Map(lb.endpoints().map((e) => [short(e), e]));
    const totalWindow = [...stats.byPod.values()].reduce((n, e) => n + e.window, 0) || 1;
    const rows = web.pods.map((pod) => {
      const entry = stats.byPod.get(pod.name) ?? { count: 0, window: 0, latency: [] };
      const endpoint = endpoints.get(pod.name);
      const sorted = [...entry.latency].sort((a, b) => a - b);
      const p50 = sorted.length > 0 ? sorted[Math.floor(sorted.length / 2)]!.toFixed(2) : '-';
      const share = ((100 * entry.window) / totalWindow).toFixed(0);
      const bar = '█'.repeat(Math.round(entry.window / totalWindow / 0.04));
      return [
        pod.name.padEnd(6),
        pod.ip.padEnd(16),
        (pod.state + (pod.ready ? '' : ', not in DNS')).padEnd(22),
        (endpoint ? endpoint.state : 'not in pool').padEnd(11),
        `${share.padStart(3)}% ${bar}`.padEnd(32),
        `${p50} ms`.padStart(9),
        String(entry.count).padStart(7),
      ].join(' ');
    });
    for (const entry of stats.byPod.values()) entry.window = 0;
    const header = [
      'pod'.padEnd(6),
      'ip'.padEnd(16),
      'pod state'.padEnd(22),
      'pool'.padEnd(11),
      'share (last 0.5 s)'.padEnd(32),
      'p50'.padStart(9),
      'total'.padStart(7),
    ].join(' ');
    const lines = [
      `headless-lb demo — ${web.fqdn} (TTL 5 s, SRV, ${lb.endpoints().length} endpoints in the pool)`,
      `phase: ${phase}`,
      '',
      header,
      ...rows,
      '',
      `requests ok ${stats.ok}   failed ${stats.failed}   retried ${stats.retried}`,
      '',
      ...events.slice(-8),
    ];
    if (tty) out(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
    return lines;
  };

  const ticker = setInterval(() => tty && render(), 500);
  const step = async (name: string, action: (() => Promise<void>) | undefined, waitMs: number): Promise<void> => {
    if (stopped) return;
    phase = name;
    log(name);
    await action?.();
    await pause(waitMs);
    if (!tty) out(`${render().join('\n')}\n\n`);
  };

  lb.on('change', ({ added, removed, readdressed }) => {
    for (const e of added) log(`pool: + ${short(e)} (${e.address})`);
    for (const e of removed) log(`pool: - ${short(e)}`);
    for (const e of readdressed) log(`pool: ${short(e)} is now at ${e.address} (same identity, same statistics)`);
  });
  lb.on('eject', ({ endpoint, reason }) => log(`ejected ${short(endpoint)} (${reason})`));
  lb.on('return', (endpoint) => log(`${short(endpoint)} takes traffic again`));

  const firstAfter = (label: string, since: number, exact = false): number | undefined => {
    for (const [key, at] of firstSeen) {
      if ((exact ? key === label : key.startsWith(`${label} `)) && at >= since) return at - since;
    }
    return undefined;
  };

  const measured: { scaleUp?: number; restart?: number; crashFailures?: number } = {};
  let dnsChange = 0;
  try {
    await step('steady traffic, 3 pods', undefined, 5000);
    await step(
      'scale up to 4 pods',
      async () => {
        await web.scale(4);
        dnsChange = performance.now();
      },
      7000,
    );
    measured.scaleUp = firstAfter('web-3', dnsChange);
    const failedBeforeCrash = stats.failed;
    await step('web-1 crashes (still in DNS: the endpoints controller has not noticed yet)', () => web.crashPod('web-1'), 4000);
    await step('web-1 leaves DNS', () => web.removeFromDns('web-1'), 4000);
    measured.crashFailures = stats.failed - failedBeforeCrash;
    await step(
      'web-2 restarts with a new IP (same pod name)',
      async () => {
        await web.restartPod('web-2');
        dnsChange = performance.now();
      },
      7000,
    );
    measured.restart = firstAfter(`web-2 ${web.pod('web-2').ip}`, dnsChange, true);
    await step('scale down to 2 pods', () => web.scale(2), 6000);
  } finally {
    running = false;
    await Promise.all(workers);
    clearInterval(ticker);
    if (tty) render();
    await lb.close();
    await cluster.close();
  }

  if (stopped) return 0;
  const fmt = (ms: number | undefined) => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(2)} s`);
  out('\nWhat happened:\n');
  out(`  new pod web-3 got its first request ${fmt(measured.scaleUp)} after it entered DNS (TTL 5 s)\n`);
  out(`  web-2's new IP got its first request ${fmt(measured.restart)} after the restart\n`);
  out(
    `  failed requests while web-1 crashed: ${measured.crashFailures ?? 0}; over the whole run: ${stats.failed} of ${stats.ok + stats.failed}\n`,
  );
  out(`  requests that needed a retry on another pod: ${stats.retried}\n`);
  if (stats.errors.length > 0) out(`  errors: ${[...new Set(stats.errors)].slice(0, 3).join('; ')}\n`);
  return stats.failed === 0 ? 0 : 1;
}

function short(endpoint: Endpoint): string {
  return endpoint.name?.split('.')[0] ?? endpoint.address;
}
