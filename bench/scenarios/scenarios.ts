/**
 * The five headless-Service scenarios, as scripts the orchestrator plays
 * against the pods and the DNS server while a contender's closed loop runs. Times are ms after
 * the loop started (`ctx.at`); every scenario starts with a warm-up of 2 s (S4: 1 s) before
 * anything changes.
 */

export type ScenarioId = 'S1' | 'S2' | 'S3' | 'S4' | 'S5';

/** What a scenario script can do; implemented by the orchestrator for one trial. */
export interface TrialContext {
  /** Starts a pod (HTTP + gRPC) on a fresh 127.x address; in DNS or not. Returns its IP. */
  startPod(name: string, options?: { inDns?: boolean; delayMs?: number }): Promise<string>;
  /** Puts the pod in DNS or takes it out (the next `publish` serves it). */
  setInDns(ip: string, inDns: boolean): void;
  /** Serves the pods now in DNS; resolves once Knot answers with it. Returns that moment (epoch ms). */
  publish(): Promise<number>;
  /** SIGKILL: connections reset, port closed. Returns the moment it was sent (epoch ms). */
  crash(ip: string): Promise<number>;
  /** SIGTERM: port closed, in-flight requests finish within the grace period. */
  stop(ip: string, gracePeriodMs: number): Promise<number>;
  /** Tells the oracle which pods are alive and fast. */
  oracle(ips: readonly string[]): void;
  /** The oracle's table as last set. */
  readonly oracleIps: readonly string[];
  /** Resolves at `ms` after the load started. */
  at(ms: number): Promise<void>;
  /** Epoch ms of the load start (valid inside `script`). */
  readonly loadStart: number;
  /** Named moments (epoch ms) and pods, for the metrics. */
  readonly events: Record<string, number>;
  readonly roles: { newIp?: string; deadIp?: string; slowIp?: string };
}

export interface Scenario {
  readonly id: ScenarioId;
  readonly title: string;
  /** What happens, for the docs. */
  readonly description: string;
  readonly durationMs: number;
  /** Pods and DNS before the client starts; sets the oracle's table. */
  setup(ctx: TrialContext): Promise<void>;
  /** What happens during the run; `events.change` is the moment the metrics count from. */
  script(ctx: TrialContext): Promise<void>;
}

export const EVENT_AT_MS = 2000;
/** A graceful stop lets in-flight requests finish for this long (a kubelet's grace period, shortened). */
export const GRACE_PERIOD_MS = 2000;
/** S3: the crashed pod stays in DNS this long, as when the kubelet has not yet noticed. */
export const CRASH_IN_DNS_MS = 10_000;
/** S4: the slow pod's added latency. */
export const SLOW_DELAY_MS = 50;
/** S4: latency and shares count from here, after connections are up. */
export const S4_MEASURE_FROM_MS = 1000;
/** S5: the new container is ready (and enters DNS) this long after the old one left. */
export const RESTART_GAP_MS = 1000;

/** Starts web-0 … web-3 in DNS and marks web-3 as the pod the scenario takes away (`roles.deadIp`); returns their IPs. */
async function fourPodsOneToGo(ctx: TrialContext): Promise<string[]> {
  const ips: string[] = [];
  for (let i = 0; i < 4; i++) ips.push(await ctx.startPod(`web-${i}`));
  ctx.roles.deadIp = ips[3]!;
  return ips;
}

/** Publishes the zone as set up, with the oracle sending to `ips`. */
async function serve(ctx: TrialContext, ips: string[]): Promise<void> {
  await ctx.publish();
  ctx.oracle(ips);
}

/** Waits for the event time and takes the doomed pod out of the oracle's set; returns its IP. */
async function atEvent(ctx: TrialContext): Promise<string> {
  await ctx.at(EVENT_AT_MS);
  const dead = ctx.roles.deadIp!;
  ctx.oracle(ctx.oracleIps.filter((ip) => ip !== dead));
  return dead;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'S1',
    title: 'S1 scale-up 3→4',
    description:
      'Three pods serve; a fourth, already listening, enters DNS at 2 s. Measured: time from the DNS change to the first request answered by the new pod.',
    durationMs: 12_000,
    async setup(ctx) {
      const ips: string[] = [];
      for (let i = 0; i < 3; i++) ips.push(await ctx.startPod(`web-${i}`));
      ctx.roles.newIp = await ctx.startPod('web-3', { inDns: false });
      await serve(ctx, ips);
    },
    async script(ctx) {
      await ctx.at(EVENT_AT_MS);
      ctx.setInDns(ctx.roles.newIp!, true);
      ctx.events.change = await ctx.publish();
      ctx.oracle([...ctx.oracleIps, ctx.roles.newIp!]);
    },
  },
  {
    id: 'S2',
    title: 'S2 graceful scale-down 4→3',
    description: `Four pods; at 2 s web-3 leaves DNS and, once Knot serves that, shuts down gracefully (listener closed, in-flight requests finish, ${GRACE_PERIOD_MS / 1000} s grace). Measured: failed requests, and how long after the DNS removal web-3 is still sent requests.`,
    durationMs: 12_000,
    async setup(ctx) {
      await serve(ctx, await fourPodsOneToGo(ctx));
    },
    async script(ctx) {
      const dead = await atEvent(ctx);
      ctx.setInDns(dead, false);
      ctx.events.change = await ctx.publish();
      ctx.events.stop = await ctx.stop(dead, GRACE_PERIOD_MS);
    },
  },
  {
    id: 'S3',
    title: 'S3 pod crash, still in DNS for 10 s',
    description: `Four pods; at 2 s web-3 dies (every connection reset, port closed) but stays in DNS for ${CRASH_IN_DNS_MS / 1000} s more. Measured: failed requests, and how long the crashed pod is still tried.`,
    durationMs: EVENT_AT_MS + CRASH_IN_DNS_MS + 4000,
    async setup(ctx) {
      await serve(ctx, await fourPodsOneToGo(ctx));
    },
    async script(ctx) {
      const dead = await atEvent(ctx);
      ctx.events.change = await ctx.crash(dead);
      await ctx.at(EVENT_AT_MS + CRASH_IN_DNS_MS);
      ctx.setInDns(dead, false);
      ctx.events.dnsRemoved = await ctx.publish();
    },
  },
  {
    id: 'S4',
    title: `S4 one pod of four ${SLOW_DELAY_MS} ms slow`,
    description: `Four pods, web-3 answers ${SLOW_DELAY_MS} ms late (HTTP and gRPC), the others at once (~1 ms on this machine). Measured from 1 s (connections up): the slow pod's share of requests, latency percentiles, throughput.`,
    durationMs: 10_000,
    async setup(ctx) {
      const ips: string[] = [];
      for (let i = 0; i < 3; i++) ips.push(await ctx.startPod(`web-${i}`));
      ctx.roles.slowIp = await ctx.startPod('web-3', { delayMs: SLOW_DELAY_MS });
      await serve(ctx, ips);
    },
    async script(ctx) {
      ctx.events.change = ctx.loadStart + S4_MEASURE_FROM_MS;
    },
  },
  {
    id: 'S5',
    title: 'S5 pod restart with a new IP',
    description: `Four pods; at 2 s web-3 leaves DNS and shuts down gracefully (as on \`kubectl delete pod\`); its replacement (same name, new IP) enters DNS ${RESTART_GAP_MS / 1000} s later. Measured: failed requests, time from the new IP's DNS add to its first request, how long the old IP is still tried.`,
    durationMs: 13_000,
    async setup(ctx) {
      const ips = await fourPodsOneToGo(ctx);
      ctx.roles.newIp = await ctx.startPod('web-3', { inDns: false });
      await serve(ctx, ips);
    },
    async script(ctx) {
      const dead = await atEvent(ctx);
      ctx.setInDns(dead, false);
      ctx.events.change = await ctx.publish();
      ctx.events.stop = await ctx.stop(dead, GRACE_PERIOD_MS);
      await ctx.at(EVENT_AT_MS + RESTART_GAP_MS);
      ctx.setInDns(ctx.roles.newIp!, true);
      ctx.events.newInDns = await ctx.publish();
      ctx.oracle([...ctx.oracleIps, ctx.roles.newIp!]);
    },
  },
];

export function scenarioById(id: string): Scenario {
  const scenario = SCENARIOS.find((s) => s.id === id.toUpperCase());
  if (scenario === undefined) throw new Error(`unknown scenario ${id} (have ${SCENARIOS.map((s) => s.id).join(', ')})`);
  return scenario;
}
