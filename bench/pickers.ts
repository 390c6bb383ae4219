/**
 * Pick cost of every picker at n = 3, 100 and 1,000 endpoints, in ns per pick, with the ratio
 * to a bare array-index loop (`endpoints[j]`, j cycling) measured in the same process.
 *
 * Each picker runs in its own child process so that call sites stay monomorphic, as in an
 * application that uses one picker; each child runs 3 times (`--runs N`) and the best median
 * counts. About 80 s in all.
 *
 *   npm run bench -- pickers [--runs 3]        (node bench/support/run.mjs pickers)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { monotonicClock } from '../src/clock.js';
import { LeastLatencyPicker } from '../src/pickers/least-latency.js';
import { LeastRequestPicker } from '../src/pickers/least-request.js';
import type { Picker, PickRequest } from '../src/pickers/picker.js';
import { RandomPicker } from '../src/pickers/random.js';
import { RoundRobinPicker } from '../src/pickers/round-robin.js';
import { ShardKeyPicker } from '../src/pickers/shard-key.js';
import { WeightedRoundRobinPicker } from '../src/pickers/weighted-round-robin.js';
import type { Endpoint } from '../src/pool/endpoint.js';
import { pods, seededRandom } from './support/fixtures.js';
import { fixed, machine, nsPerOp, sink, table } from './support/measure.js';

const SIZES = [3, 100, 1000] as const;
const HOT_KEYS = 1024;
const DISTINCT_KEYS = 1 << 18;

interface Setup {
  readonly endpoints: readonly Endpoint[];
  readonly picker: Picker;
  /** Requests cycled through by the loop (a power-of-two count). */
  readonly requests: readonly PickRequest[];
}

interface Variant {
  readonly id: string;
  readonly label: string;
  setup(n: number): Setup;
}

const keyless: readonly PickRequest[] = [{ key: undefined, tried: undefined, attempt: 1 }];

function keyed(count: number): PickRequest[] {
  return Array.from({ length: count }, (_, i) => ({ key: `user-${i}`, tried: undefined, attempt: 1 }));
}

/**
 * Endpoints with some load: 0–3 requests in flight and a latency history of 5–50 ms (two
 * responses, so that least-latency has an estimate to compare rather than a probe to send). For
 * bounded-load shard-key (capacity ⌈1.25 · 2.5⌉ = 2 at n = 1000) half of them are full.
 */
function loadedPods(n: number, weight?: (i: number) => number): Endpoint[] {
  const random = seededRandom(n);
  const endpoints = pods(n, monotonicClock, weight);
  for (const endpoint of endpoints) {
    const latency = 5 + random() * 45;
    for (let i = 0; i < 2; i++) {
      endpoint.start();
      endpoint.finish(monotonicClock() - latency, 'success');
    }
    const inflight = Math.floor(random() * 4);
    for (let i = 0; i < inflight; i++) endpoint.start();
  }
  return endpoints;
}

/** One request in flight everywhere: capacity ⌈1.25 · (n + 1) / n⌉ = 2, so nothing spills. */
function evenlyLoadedPods(n: number): Endpoint[] {
  const endpoints = pods(n, monotonicClock);
  for (const endpoint of endpoints) endpoint.start();
  return endpoints;
}

function withPicker(endpoints: Endpoint[], picker: Picker, requests: readonly PickRequest[]): Setup {
  picker.update?.(endpoints);
  return { endpoints, picker, requests };
}

const variants: readonly Variant[] = [
  { id: 'round-robin', label: 'round-robin', setup: (n) => withPicker(loadedPods(n), new RoundRobinPicker(seededRandom(1)), keyless) },
  { id: 'random', label: 'random', setup: (n) => withPicker(loadedPods(n), new RandomPicker(seededRandom(1)), keyless) },
  {
    id: 'least-request',
    label: 'least-request (P2C)',
    setup: (n) => withPicker(loadedPods(n), new LeastRequestPicker(seededRandom(1)), keyless),
  },
  {
    id: 'least-latency',
    label: 'least-latency (P2C, mean estimate)',
    setup: (n) => withPicker(loadedPods(n), new LeastLatencyPicker(seededRandom(1)), keyless),
  },
  {
    id: 'wrr-equal',
    label: 'weighted-round-robin, equal weights',
    setup: (n) => withPicker(loadedPods(n), new WeightedRoundRobinPicker(seededRandom(1)), keyless),
  },
  {
    id: 'wrr-weighted',
    label: 'weighted-round-robin, weights 1–10',
    setup: (n) =>
      withPicker(
        loadedPods(n, (i) => 1 + (i % 10)),
        new WeightedRoundRobinPicker(seededRandom(1)),
        keyless,
      ),
  },
  {
    id: 'shard-hot',
    label: `shard-key, ${HOT_KEYS} keys (table hits)`,
    setup: (n) => withPicker(loadedPods(n), new ShardKeyPicker(), keyed(HOT_KEYS)),
  },
  {
    id: 'shard-distinct',
    label: `shard-key, ${DISTINCT_KEYS} keys (table misses)`,
    setup: (n) => withPicker(loadedPods(n), new ShardKeyPicker(), keyed(DISTINCT_KEYS)),
  },
  {
    id: 'shard-bounded-light',
    label: `shard-key, bounded 1.25, ${HOT_KEYS} keys, all below capacity`,
    setup: (n) => withPicker(evenlyLoadedPods(n), new ShardKeyPicker({ boundedLoad: 1.25 }), keyed(HOT_KEYS)),
  },
  {
    id: 'shard-bounded-heavy',
    label: `shard-key, bounded 1.25, ${HOT_KEYS} keys, half at capacity`,
    setup: (n) => withPicker(loadedPods(n), new ShardKeyPicker({ boundedLoad: 1.25 }), keyed(HOT_KEYS)),
  },
];

interface Measurement {
  readonly id: string;
  readonly n: number;
  readonly baselineNs: number;
  readonly pickNs: number;
}

function measureVariant(variant: Variant): Measurement[] {
  const out: Measurement[] = [];
  for (const n of SIZES) {
    const { endpoints, picker, requests } = variant.setup(n);
    const mask = requests.length - 1;
    const baselineNs = nsPerOp((iterations) => {
      let j = 0;
      let last: Endpoint | undefined;
      for (let i = 0; i < iterations; i++) {
        last = endpoints[j];
        if (++j === n) j = 0;
      }
      sink.value = last;
    });
    const pickNs = nsPerOp((iterations) => {
      let last: Endpoint | undefined;
      for (let i = 0; i < iterations; i++) last = picker.pick(endpoints, requests[i & mask]!);
      sink.value = last;
    });
    out.push({ id: variant.id, n, baselineNs, pickNs });
  }
  return out;
}

function main(): void {
  const childIndex = process.argv.indexOf('--child');
  if (childIndex >= 0) {
    const variant = variants.find((v) => v.id === process.argv[childIndex + 1]);
    if (variant === undefined) throw new Error(`unknown variant ${process.argv[childIndex + 1]}`);
    process.stdout.write(`${JSON.stringify(measureVariant(variant))}\n`);
    return;
  }

  const runsIndex = process.argv.indexOf('--runs');
  const runs = runsIndex >= 0 ? Math.max(1, Number(process.argv[runsIndex + 1]) || 1) : 3;
  console.log(`Pick cost, ns per pick: median of samples within a run, best of ${runs} runs; ${machine()}\n`);
  // Best of several runs: on a shared machine the least-disturbed run is the closest estimate.
  const results: Measurement[] = [];
  for (const variant of variants) {
    const best = new Map<number, Measurement>();
    for (let run = 0; run < runs; run++) {
      const child = spawnSync(process.execPath, [process.argv[1]!, '--child', variant.id], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (child.status !== 0) throw new Error(`benchmark ${variant.id} failed`);
      for (const m of JSON.parse(child.stdout) as Measurement[]) {
        const prev = best.get(m.n);
        best.set(m.n, {
          id: m.id,
          n: m.n,
          baselineNs: Math.min(prev?.baselineNs ?? Infinity, m.baselineNs),
          pickNs: Math.min(prev?.pickNs ?? Infinity, m.pickNs),
        });
      }
    }
    results.push(...best.values());
  }

  const rows = variants.map((variant) => {
    const cells = [variant.label];
    for (const n of SIZES) {
      const m = results.find((r) => r.id === variant.id && r.n === n)!;
      cells.push(fixed(m.pickNs), `${fixed(m.pickNs / m.baselineNs)}×`);
    }
    return cells;
  });
  const baseline = SIZES.map((n) => {
    const ofSize = results.filter((r) => r.n === n).map((r) => r.baselineNs);
    return `${fixed(Math.min(...ofSize), 2)}–${fixed(Math.max(...ofSize), 2)}`;
  });
  rows.push(['bare array-index loop (range over runs)', baseline[0]!, '1×', baseline[1]!, '1×', baseline[2]!, '1×']);
  console.log(table(['picker', 'n=3 ns', 'ratio', 'n=100 ns', 'ratio', 'n=1000 ns', 'ratio'], rows));

  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/pickers.json',
    `${JSON.stringify({ machine: machine(), date: new Date().toISOString(), results }, null, 2)}\n`,
  );
  console.log('\nRaw results: bench/results/pickers.json');
}

main();
