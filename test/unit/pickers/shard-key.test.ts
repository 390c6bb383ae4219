import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmix32, hashString, rendezvousScore } from '../../../src/hashing/hash32.js';
import type { Picker } from '../../../src/pickers/picker.js';
import { ShardKeyPicker, shardIdentity, shardKeyOrder } from '../../../src/pickers/shard-key.js';
import { InflightTotal, type Endpoint } from '../../../src/pool/endpoint.js';
import { load, makeEndpoint, podName, pods, request, seededRandom } from './support.js';

/** Reference: MurmurHash3_x86_32, seed 0, over TextEncoder's UTF-8 bytes, written plainly. */
function referenceHash(s: string): number {
  const bytes = new TextEncoder().encode(s);
  const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
  let h = 0;
  const blocks = bytes.length >> 2;
  for (let b = 0; b < blocks; b++) {
    let k = bytes[4 * b]! | (bytes[4 * b + 1]! << 8) | (bytes[4 * b + 2]! << 16) | (bytes[4 * b + 3]! << 24);
    k = Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593);
    h = (Math.imul(rotl(h ^ k, 13), 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let i = bytes.length - 1; i >= blocks * 4; i--) k = (k << 8) | bytes[i]!;
  if (bytes.length % 4 !== 0) h ^= Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593);
  return fmix32(h ^ bytes.length);
}

const keys = (count: number, prefix = 'user-'): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

function owners(picker: Picker, endpoints: readonly Endpoint[], keyList: readonly string[]): string[] {
  return keyList.map((key) => shardIdentity(picker.pick(endpoints, request({ key }))!));
}

function pickerFor(endpoints: readonly Endpoint[], options: ConstructorParameters<typeof ShardKeyPicker>[0] = {}): ShardKeyPicker {
  const picker = new ShardKeyPicker(options);
  picker.update(endpoints);
  return picker;
}

function shuffle<T>(items: readonly T[], seed: number): T[] {
  const random = seededRandom(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const podSet = fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 40 });

describe('hashString', () => {
  it('is MurmurHash3_x86_32 (seed 0) of the UTF-8 bytes, for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(hashString(s)).toBe(referenceHash(s));
      }),
    );
    expect(hashString('\ud800x')).toBe(referenceHash('\ufffdx'));
    expect(hashString('\udc00\ud83d\ude00é')).toBe(referenceHash('\ufffd😀é'));
  });

  it('matches the published MurmurHash3 test vectors', () => {
    expect(hashString('') >>> 0).toBe(0);
    expect(hashString('hello') >>> 0).toBe(0x248bfa47);
    expect(hashString('The quick brown fox jumps over the lazy dog') >>> 0).toBe(0x2e4ff723);
  });

  it('is pinned: changing it would remap every key on every client', () => {
    expect([hashString('user-42') >>> 0, hashString(podName(0)) >>> 0]).toMatchInlineSnapshot(`
      [
        3111312080,
        4143054662,
      ]
    `);
    const endpoints = pods(5);
    expect(keys(8).map((key) => shardKeyOrder(key, endpoints)[0]!.name!.slice(0, 5))).toMatchInlineSnapshot(`
      [
        "web-0",
        "web-2",
        "web-3",
        "web-1",
        "web-0",
        "web-3",
        "web-0",
        "web-0",
      ]
    `);
  });
});

describe('shardKeyOrder', () => {
  it('ranks by rendezvousScore(hash(key), hash(identity)), highest first', () => {
    fc.assert(
      fc.property(fc.string(), podSet, (key, ids) => {
        const endpoints = ids.map((i) => makeEndpoint({ name: podName(i) }));
        const expected = [...endpoints].sort(
          (a, b) =>
            rendezvousScore(hashString(key), hashString(shardIdentity(b))) - rendezvousScore(hashString(key), hashString(shardIdentity(a))),
        );
        expect(shardKeyOrder(key, endpoints)).toEqual(expected);
      }),
    );
  });
});

describe('shardIdentity', () => {
  it('is the name, lower-cased and without a trailing dot, else the id; never the address', () => {
    expect(shardIdentity(makeEndpoint({ name: 'Web-0.Web-Headless.default.svc.cluster.local.' }))).toBe(
      'web-0.web-headless.default.svc.cluster.local',
    );
    expect(shardIdentity(makeEndpoint({ address: '10.1.2.3', port: 80 }))).toBe('10.1.2.3:80');
    expect(shardIdentity(makeEndpoint({ name: 'web-1', address: '10.9.9.9' }))).toBe('web-1');
  });
});

describe('ShardKeyPicker', () => {
  it('sends the same key to the same endpoint across rebuilds, list orders and clients', () => {
    fc.assert(
      fc.property(podSet, fc.integer(), (ids, seed) => {
        const first = ids.map((i) => makeEndpoint({ name: podName(i) }));
        const second = shuffle(
          ids.map((i) => makeEndpoint({ name: podName(i) })),
          seed,
        );
        const keyList = keys(50);
        expect(owners(pickerFor(second), second, keyList)).toEqual(owners(pickerFor(first), first, keyList));
      }),
    );
  });

  it('keeps every key on a pod restarted with a new IP (same name)', () => {
    fc.assert(
      fc.property(podSet, fc.nat(), (ids, which) => {
        const before = ids.map((i) => makeEndpoint({ name: podName(i) }));
        const restarted = ids[which % ids.length]!;
        const after = ids.map((i) => makeEndpoint({ name: podName(i), address: i === restarted ? '192.168.77.7' : undefined }));
        const picker = pickerFor(before);
        const keyList = keys(200);
        const owned = owners(picker, before, keyList);
        picker.update(after);
        expect(owners(picker, after, keyList)).toEqual(owned);
      }),
    );
  });

  it('moves only the keys of a removed endpoint, and only to the new one when one is added', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { minLength: 2, maxLength: 40 }), fc.nat(), (ids, which) => {
        const endpoints = ids.map((i) => makeEndpoint({ name: podName(i) }));
        const keyList = keys(300);
        const picker = pickerFor(endpoints);
        const owned = owners(picker, endpoints, keyList);

        const removed = endpoints[which % endpoints.length]!;
        const fewer = endpoints.filter((e) => e !== removed);
        picker.update(fewer);
        const afterRemoval = owners(picker, fewer, keyList);
        afterRemoval.forEach((owner, k) => {
          if (owner !== owned[k]) expect(owned[k]).toBe(shardIdentity(removed));
        });

        const added = makeEndpoint({ name: podName(1000) });
        const more = [...endpoints, added];
        picker.update(more);
        const afterAddition = owners(picker, more, keyList);
        afterAddition.forEach((owner, k) => {
          if (owner !== owned[k]) expect(owner).toBe(shardIdentity(added));
        });
      }),
    );
  });

  it('fails over along a stable order that is a function of (key, identities) only', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 21 }),
        fc.string(),
        fc.integer(),
        (ids, key, seed) => {
          const endpoints = ids.map((i) => makeEndpoint({ name: podName(i) }));
          const order = shardKeyOrder(key, endpoints).map(shardIdentity);
          // Another client, other objects, another list order, its own picker.
          const other = shuffle(
            ids.map((i) => makeEndpoint({ name: podName(i), address: '10.200.0.1' })),
            seed,
          );
          expect(shardKeyOrder(key, other).map(shardIdentity)).toEqual(order);
          for (const [list, cacheSize] of [
            [endpoints, 4096],
            [other, 0],
          ] as const) {
            const picker = pickerFor(list, { cacheSize });
            const tried = new Set<Endpoint>();
            const walk: string[] = [];
            for (let attempt = 1; attempt <= list.length; attempt++) {
              const chosen = picker.pick(list, request({ key, tried, attempt }))!;
              walk.push(shardIdentity(chosen));
              tried.add(chosen);
            }
            expect(walk).toEqual(order);
            expect(picker.pick(list, request({ key, tried, attempt: list.length + 1 }))).toBeUndefined();
          }
        },
      ),
    );
  });

  it('skips endpoints outside the candidates and returns to the owner when it is back', () => {
    const endpoints = pods(8);
    const picker = pickerFor(endpoints);
    const key = 'user-7';
    const [owner, second, third] = shardKeyOrder(key, endpoints);
    expect(picker.pick(endpoints, request({ key }))).toBe(owner);
    const withoutOwner = endpoints.filter((e) => e !== owner);
    expect(picker.pick(withoutOwner, request({ key }))).toBe(second);
    const withoutTwo = withoutOwner.filter((e) => e !== second);
    expect(picker.pick(withoutTwo, request({ key }))).toBe(third);
    expect(picker.pick(endpoints, request({ key }))).toBe(owner);
  });

  it('gives the same answers with and without the lookup table, whatever its size', () => {
    fc.assert(
      fc.property(
        podSet,
        fc.array(fc.string(), { minLength: 1, maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        (ids, keyList, triedIndices) => {
          const endpoints = ids.map((i) => makeEndpoint({ name: podName(i) }));
          const tried = new Set(triedIndices.map((i) => endpoints[i % endpoints.length]!));
          const answers = [0, 1, 16, 4096].map((cacheSize) => {
            const picker = pickerFor(endpoints, { cacheSize });
            return keyList.map((key) => picker.pick(endpoints, request({ key, tried })));
          });
          for (const other of answers.slice(1)) expect(other).toEqual(answers[0]);
        },
      ),
    );
  });

  it('works before update() is called, and for candidates outside the pool', () => {
    const endpoints = pods(5);
    const picker = new ShardKeyPicker();
    expect(picker.pick(endpoints, request({ key: 'a' }))).toBe(shardKeyOrder('a', endpoints)[0]);
    const extra = makeEndpoint({ name: podName(99) });
    const candidates = [...endpoints, extra];
    expect(picker.pick(candidates, request({ key: 'a' }))).toBe(shardKeyOrder('a', candidates)[0]);
  });

  it('sends requests without a key to the fallback picker, and forwards update()', () => {
    const endpoints = pods(3);
    const calls: string[] = [];
    const fallback: Picker = {
      name: 'spy',
      update: () => calls.push('update'),
      pick: (list) => {
        calls.push('pick');
        return list[2];
      },
    };
    const picker = pickerFor(endpoints, { fallback });
    expect(picker.pick(endpoints, request())).toBe(endpoints[2]);
    expect(picker.pick(endpoints, request({ key: '' }))).toBe(shardKeyOrder('', endpoints)[0]);
    expect(calls).toEqual(['update', 'pick']);
  });

  it('spreads keys evenly', () => {
    const endpoints = pods(10);
    const picker = pickerFor(endpoints);
    const counts = new Map<string, number>();
    for (const owner of owners(picker, endpoints, keys(20_000))) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    expect(counts.size).toBe(10);
    expect(Math.max(...counts.values()) / 2000).toBeLessThan(1.06);
  });

  describe('bounded load', () => {
    it('spills a hot key to its next choice when the owner is at capacity', () => {
      const endpoints = pods(4);
      const picker = pickerFor(endpoints, { boundedLoad: 1.25 });
      const key = 'hot';
      const [owner, second, third] = shardKeyOrder(key, endpoints);
      // 4 in flight on the owner: capacity ⌈1.25 × (4 + 1) / 4⌉ = 2, so it is full.
      load(owner!, 4);
      expect(picker.pick(endpoints, request({ key }))).toBe(second);
      load(second!, 2); // capacity ⌈1.25 × 7 / 4⌉ = 3: the second still has room
      expect(picker.pick(endpoints, request({ key }))).toBe(second);
      load(second!, 1); // capacity ⌈1.25 × 8 / 4⌉ = 3: now full
      expect(picker.pick(endpoints, request({ key }))).toBe(third);
      // Off: the owner whatever its load.
      expect(pickerFor(endpoints).pick(endpoints, request({ key }))).toBe(owner);
    });

    // With and without the pool-wide InflightTotal (O(1) total vs an O(n) sum), and with some
    // endpoints outside the candidates (ejected ones still finishing requests).
    it.each([
      ['summed', false, 0],
      ['shared total', true, 0],
      ['shared total, some not candidates', true, 2],
    ] as const)('keeps every candidate within ⌈c × average⌉ in flight under a skewed key distribution (%s)', (_label, share, excluded) => {
      fc.assert(
        fc.property(fc.integer({ min: 3, max: 20 }), fc.constantFrom(1, 1.1, 1.25, 2), fc.integer(), (n, c, seed) => {
          const metrics = { decayMs: 10_000, defaultRttMs: 30, inflightTotal: share ? new InflightTotal() : undefined };
          const endpoints = Array.from({ length: n }, (_, i) => makeEndpoint({ name: podName(i) }, () => 0, metrics));
          const candidates = endpoints.slice(excluded);
          const picker = pickerFor(endpoints, { boundedLoad: c, cacheSize: 64 });
          const random = seededRandom(seed);
          const inflight: [Endpoint, number][] = [];
          // Requests still running on the endpoints that are not candidates.
          for (const endpoint of endpoints.slice(0, excluded)) inflight.push([endpoint, endpoint.start()]);
          for (let step = 0; step < 400; step++) {
            if (inflight.length > 0 && random() < 0.45) {
              const [endpoint, startedAt] = inflight.splice(Math.floor(random() * inflight.length), 1)[0]!;
              endpoint.finish(startedAt, 'success');
              continue;
            }
            // Zipf-like: key k with probability ∝ 1/(k+1), most requests on a few keys.
            const key = `k${Math.floor(Math.exp(random() * Math.log(200))) - 1}`;
            const total = candidates.reduce((sum, e) => sum + e.inflight, 0);
            const capacity = Math.ceil((c * (total + 1)) / candidates.length);
            const chosen = picker.pick(candidates, request({ key }))!;
            expect(candidates).toContain(chosen);
            expect(chosen.inflight).toBeLessThan(capacity);
            inflight.push([chosen, chosen.start()]);
          }
          if (share) expect(metrics.inflightTotal!.count).toBe(endpoints.reduce((sum, e) => sum + e.inflight, 0));
        }),
        { numRuns: 40 },
      );
    });

    it('keeps the stable failover order when combined with tried endpoints', () => {
      const endpoints = pods(6);
      const picker = pickerFor(endpoints, { boundedLoad: 1.25 });
      const key = 'user-1';
      const order = shardKeyOrder(key, endpoints);
      const tried = new Set([order[0]!]);
      expect(picker.pick(endpoints, request({ key, tried, attempt: 2 }))).toBe(order[1]);
      // Everyone else is full: the best untried endpoint still gets it rather than nothing.
      for (const endpoint of endpoints) if (endpoint !== order[0]) load(endpoint, 10);
      expect(picker.pick(endpoints, request({ key, tried, attempt: 2 }))).toBe(order[1]);
    });
  });
});
