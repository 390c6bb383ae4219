/**
 * Shard-key distribution:
 *  1. keys moved when one endpoint joins (n → n+1) or leaves (n → n−1), for n = 10 and 100, as a
 *     ratio to the ideal (the share of the endpoint that joined or left), and max/avg keys per
 *     endpoint, over 100,000 keys;
 *  2. bounded load: the largest in-flight share under a Zipf key distribution, plain vs bounded;
 *  3. with --compare: the same numbers for the algorithms rendezvous was chosen against, plus
 *     lookup cost at n = 1,000 and lru-cache vs the lookup table.
 *
 *   npm run bench -- shard-key [--compare]     (node bench/support/run.mjs shard-key --compare)
 */
import { LRUCache } from 'lru-cache';
import { hashString } from '../src/hashing/hash32.js';
import type { PickRequest } from '../src/pickers/picker.js';
import { ShardKeyPicker, shardIdentity } from '../src/pickers/shard-key.js';
import type { Endpoint } from '../src/pool/endpoint.js';
import { alternatives, type Algorithm } from './support/alternatives.js';
import { named, podName, pods, seededRandom, zipf } from './support/fixtures.js';
import { fixed, machine, nsPerOp, sink, table } from './support/measure.js';

const KEYS = 100_000;
const TRIALS = 10;
const clock = (): number => 0;

const keyRequests: readonly PickRequest[] = Array.from({ length: KEYS }, (_, i) => ({ key: `user-${i}`, tried: undefined, attempt: 1 }));

/** Owner identity of every key, through the picker as the balancer uses it. */
function owners(endpoints: readonly Endpoint[]): string[] {
  const picker = new ShardKeyPicker();
  picker.update(endpoints);
  return keyRequests.map((request) => shardIdentity(picker.pick(endpoints, request)!));
}

interface Movement {
  /** Mean and worst ratio of the fraction moved to the ideal, over the trials. */
  readonly mean: number;
  readonly worst: number;
  /** Keys that moved between endpoints that were there before and after. */
  readonly stray: number;
}

function summarize(ratios: readonly number[], stray: number): Movement {
  return { mean: ratios.reduce((a, b) => a + b, 0) / ratios.length, worst: Math.max(...ratios), stray };
}

function maxOverAvg(assignment: readonly (string | number)[], n: number): number {
  const counts = new Map<string | number, number>();
  for (const owner of assignment) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return Math.max(...counts.values()) / (assignment.length / n);
}

/** Max/avg of uniformly random assignment of the same number of keys: the noise floor of any hash. */
function randomAssignmentMaxOverAvg(n: number, seed: number): number {
  const random = seededRandom(seed);
  return maxOverAvg(
    Array.from({ length: KEYS }, () => Math.floor(random() * n)),
    n,
  );
}

interface Distribution {
  readonly n: number;
  readonly add: Movement;
  readonly remove: Movement;
  readonly maxOverAvg: number;
  readonly randomMaxOverAvg: number;
}

/** `assign` maps a list of identities to each key's owner identity. */
function distribution(n: number, assign: (identities: readonly string[]) => readonly string[]): Distribution {
  const identities = Array.from({ length: n }, (_, i) => podName(i));
  const before = assign(identities);
  const addRatios: number[] = [];
  const removeRatios: number[] = [];
  let addStray = 0;
  let removeStray = 0;
  for (let t = 0; t < TRIALS; t++) {
    const joined = podName(n + t);
    const afterAdd = assign([...identities, joined]);
    let moved = 0;
    afterAdd.forEach((owner, k) => {
      if (owner === before[k]) return;
      moved++;
      if (owner !== joined) addStray++;
    });
    addRatios.push(moved / KEYS / (1 / (n + 1)));

    const left = identities[(t * 7919) % n]!;
    const afterRemove = assign(identities.filter((id) => id !== left));
    moved = 0;
    afterRemove.forEach((owner, k) => {
      if (owner === before[k]) return;
      moved++;
      if (before[k] !== left) removeStray++;
    });
    removeRatios.push(moved / KEYS / (1 / n));
  }
  const randomMax = Array.from({ length: TRIALS }, (_, seed) => randomAssignmentMaxOverAvg(n, seed + 1));
  return {
    n,
    add: summarize(addRatios, addStray),
    remove: summarize(removeRatios, removeStray),
    maxOverAvg: maxOverAvg(before, n),
    randomMaxOverAvg: randomMax.reduce((a, b) => a + b, 0) / randomMax.length,
  };
}

function pickerAssign(identities: readonly string[]): string[] {
  return owners(named(identities, clock));
}

function algorithmAssign(algorithm: Algorithm): (identities: readonly string[]) => string[] {
  const keyHashes = keyRequests.map((r) => hashString(r.key!));
  return (identities) => {
    const lookup = algorithm.build(identities);
    return keyHashes.map((h) => identities[lookup(h)]!);
  };
}

function ratio(m: Movement): string {
  return `${fixed(m.mean, 3)} (worst ${fixed(m.worst, 3)})`;
}

/** Keys that moved between staying endpoints, as % of all keys, per membership change. */
function strayPercent(stray: number): string {
  return `${fixed((100 * stray) / (2 * TRIALS * KEYS), 2)}%`;
}

function distributionSection(): void {
  console.log(`## Keys moved and balance (${KEYS.toLocaleString('en')} keys, ${TRIALS} trials each)\n`);
  const rows: string[][] = [];
  for (const n of [10, 100]) {
    const d = distribution(n, pickerAssign);
    rows.push([
      String(n),
      ratio(d.add),
      ratio(d.remove),
      `${d.add.stray + d.remove.stray}`,
      fixed(d.maxOverAvg, 3),
      fixed(d.randomMaxOverAvg, 3),
    ]);
  }
  console.log(
    table(
      [
        'n',
        'moved on n→n+1 ÷ 1/(n+1)',
        'moved on n→n−1 ÷ 1/n',
        'keys moved between staying endpoints',
        'max/avg keys',
        'max/avg, uniform random assignment',
      ],
      rows,
    ),
  );
}

interface LoadResult {
  readonly label: string;
  readonly maxShare: number;
  readonly meanMaxOverAvg: number;
  readonly worstMaxOverAvg: number;
  readonly spilled: number;
}

/**
 * Closed loop with `perEndpoint · n` requests in flight: each step finishes a random in-flight
 * request (memoryless service times) and starts one for a Zipf(s) key over `keyCount` keys.
 */
function simulateLoad(n: number, boundedLoad: number | undefined, s: number, steps: number): LoadResult {
  const keyCount = 10_000;
  const perEndpoint = 8;
  const endpoints = pods(n, clock);
  const picker = new ShardKeyPicker({ boundedLoad });
  picker.update(endpoints);
  const owner = new ShardKeyPicker();
  owner.update(endpoints);
  const random = seededRandom(42);
  const nextKey = zipf(keyCount, s, random);
  const requests = Array.from({ length: keyCount }, (_, k) => ({ key: `key-${k}`, tried: undefined, attempt: 1 }));
  const running: Endpoint[] = [];
  const concurrency = perEndpoint * n;
  const warmup = steps / 10;
  let maxShare = 0;
  let sumMaxOverAvg = 0;
  let worstMaxOverAvg = 0;
  let spilled = 0;
  for (let step = 0; step < steps + warmup; step++) {
    if (running.length === concurrency) {
      const i = Math.floor(random() * running.length);
      running[i]!.finish(0, 'cancelled');
      running[i] = running[running.length - 1]!;
      running.pop();
    }
    const request = requests[nextKey()]!;
    const chosen = picker.pick(endpoints, request)!;
    chosen.start();
    running.push(chosen);
    if (step < warmup) continue;
    if (chosen !== owner.pick(endpoints, request)) spilled++;
    let max = 0;
    for (const endpoint of endpoints) if (endpoint.inflight > max) max = endpoint.inflight;
    const total = running.length;
    maxShare = Math.max(maxShare, max / total);
    const overAvg = max / (total / n);
    sumMaxOverAvg += overAvg;
    worstMaxOverAvg = Math.max(worstMaxOverAvg, overAvg);
  }
  return {
    label: boundedLoad === undefined ? 'plain' : `bounded, c = ${boundedLoad}`,
    maxShare,
    meanMaxOverAvg: sumMaxOverAvg / steps,
    worstMaxOverAvg,
    spilled: spilled / steps,
  };
}

function boundedLoadSection(): void {
  const s = 1.1;
  const steps = 100_000;
  console.log(`\n## Bounded load under a Zipf(s = ${s}) key distribution\n`);
  console.log(`10,000 keys; ${8} requests in flight per endpoint on average; ${steps.toLocaleString('en')} requests after warm-up.\n`);
  const rows: string[][] = [];
  for (const n of [10, 100]) {
    for (const c of [undefined, 1.25, 2]) {
      const r = simulateLoad(n, c, s, steps);
      const bound = c === undefined ? '–' : fixed(Math.ceil(c * 8) / 8, 3);
      rows.push([
        String(n),
        r.label,
        `${fixed(100 * r.maxShare, 1)}%`,
        `${fixed(100 / n, 1)}%`,
        fixed(r.meanMaxOverAvg, 2),
        fixed(r.worstMaxOverAvg, 2),
        bound,
        `${fixed(100 * r.spilled, 1)}%`,
      ]);
    }
  }
  console.log(
    table(
      [
        'n',
        'mode',
        'largest in-flight share',
        'fair share',
        'max/avg in flight (mean)',
        'max/avg (worst)',
        '⌈c·avg⌉/avg',
        'requests not on the key owner',
      ],
      rows,
    ),
  );
}

function compareSection(): void {
  console.log('\n## Alternatives (same hashes, same keys)\n');
  const rows: string[][] = [];
  const keyHashes = Int32Array.from({ length: 1 << 18 }, (_, i) => hashString(`user-${i}`));
  for (const algorithm of alternatives) {
    const cells = [algorithm.name];
    for (const n of [10, 100]) {
      const d = distribution(n, algorithmAssign(algorithm));
      cells.push(fixed(d.add.mean, 3), fixed(d.remove.mean, 3), strayPercent(d.add.stray + d.remove.stray), fixed(d.maxOverAvg, 3));
    }
    const identities = Array.from({ length: 1000 }, (_, i) => podName(i));
    const started = performance.now();
    const lookup = algorithm.build(identities);
    const buildMs = performance.now() - started;
    // Best of three: the lookups are short and the machine may be shared.
    const ns = Math.min(
      ...[0, 1, 2].map(() =>
        nsPerOp((iterations) => {
          let acc = 0;
          for (let i = 0; i < iterations; i++) acc += lookup(keyHashes[i & 262143]!);
          sink.value = acc;
        }, 200),
      ),
    );
    cells.push(fixed(ns, 0), fixed(buildMs, 1));
    rows.push(cells);
  }
  console.log(
    table(
      [
        'algorithm',
        'n=10 moved +1',
        'n=10 moved −1',
        'n=10 stray',
        'n=10 max/avg',
        'n=100 moved +1',
        'n=100 moved −1',
        'n=100 stray',
        'n=100 max/avg',
        'lookup ns, n=1000',
        'build ms, n=1000',
      ],
      rows,
    ),
  );
  console.log(
    '\nmoved: fraction moved ÷ ideal (mean of 10 trials); stray: keys moved between endpoints present before and after, % of keys per change.',
  );

  // Cache for hot keys: lru-cache (string → owner) against the picker's set-associative table,
  // with the same string objects every time (V8 caches their hash) and with fresh strings, as
  // keys parsed from each request are.
  const n = 1000;
  const endpoints = pods(n, clock);
  const picker = new ShardKeyPicker();
  picker.update(endpoints);
  const ids = Array.from({ length: 1024 }, (_, i) => 100_000 + 7 * i);
  const requests = ids.map((id) => ({ key: `user-${id}`, tried: undefined, attempt: 1 }));
  const lru = new LRUCache<string, Endpoint>({ max: 4096 });
  for (const request of requests) lru.set(request.key, picker.pick(endpoints, request)!);
  const best = (loop: (iterations: number) => void): number => Math.min(nsPerOp(loop), nsPerOp(loop), nsPerOp(loop));
  const lruSame = best((iterations) => {
    let last: Endpoint | undefined;
    for (let i = 0; i < iterations; i++) last = lru.get(requests[i & 1023]!.key);
    sink.value = last;
  });
  const tableSame = best((iterations) => {
    let last: Endpoint | undefined;
    for (let i = 0; i < iterations; i++) last = picker.pick(endpoints, requests[i & 1023]!);
    sink.value = last;
  });
  const makeFresh = best((iterations) => {
    let length = 0;
    for (let i = 0; i < iterations; i++) length += `user-${ids[i & 1023]!}`.length;
    sink.value = length;
  });
  const lruFresh = best((iterations) => {
    let last: Endpoint | undefined;
    for (let i = 0; i < iterations; i++) last = lru.get(`user-${ids[i & 1023]!}`);
    sink.value = last;
  });
  const fresh: { key: string | undefined; tried: undefined; attempt: number } = { key: undefined, tried: undefined, attempt: 1 };
  const tableFresh = best((iterations) => {
    let last: Endpoint | undefined;
    for (let i = 0; i < iterations; i++) {
      fresh.key = `user-${ids[i & 1023]!}`;
      last = picker.pick(endpoints, fresh);
    }
    sink.value = last;
  });
  console.log('\nHot keys at n = 1000 (1,024 keys), ns per lookup (best of 3):\n');
  console.log(
    table(
      ['', 'same string objects', 'fresh strings (creation subtracted)'],
      [
        ['lru-cache get (string → endpoint), lookup only', fixed(lruSame), fixed(lruFresh - makeFresh)],
        ['ShardKeyPicker.pick: hash + table + checks', fixed(tableSame), fixed(tableFresh - makeFresh)],
      ],
    ),
  );
}

console.log(`# Shard-key distribution (${machine()})\n`);
distributionSection();
boundedLoadSection();
if (process.argv.includes('--compare')) compareSection();
