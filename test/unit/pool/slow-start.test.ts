import { afterEach, describe, expect, it } from 'vitest';
import { createBalancer, type Balancer } from '../../../src/index.js';
import { ShardKeyPicker, shardKeyOrder } from '../../../src/pickers/shard-key.js';
import { SlowStart } from '../../../src/pickers/slow-start.js';
import { ManualClock, pods, request, seededRandom } from '../pickers/support.js';

const RAMP = { windowMs: 30_000, aggression: 1, minWeight: 0.1 };
const KEYS = Array.from({ length: 300 }, (_, i) => `user-${i}`);

describe('SlowStart with the shard-key picker', () => {
  it('sends every key owned by a warming endpoint to it, all through the ramp, and still ramps keyless requests', () => {
    const clock = new ManualClock();
    const endpoints = pods(6, clock.read);
    const newcomer = endpoints[5]!;
    for (const endpoint of endpoints) endpoint.health.availableSince = Number.NEGATIVE_INFINITY;
    newcomer.health.availableSince = 0;
    const picker = new ShardKeyPicker();
    picker.update(endpoints);
    // A random source that turns every warming choice away (its weight stays below 0.99 until
    // 29.7 s into the ramp) unless the request is exempt.
    const slowStart = new SlowStart(RAMP, () => 0.99);
    const owned = KEYS.filter((key) => shardKeyOrder(key, endpoints)[0] === newcomer);
    expect(owned.length).toBeGreaterThan(20);
    for (const t of [0, 1000, 10_000, 29_000]) {
      clock.now = t;
      for (const key of owned) {
        const req = request({ key });
        expect(slowStart.admit(picker.pick(endpoints, req)!, endpoints, picker, req, t)).toBe(newcomer);
      }
      // Requests without a key go to the fallback picker and are ramped: here all turned away.
      let keyless = 0;
      for (let i = 0; i < 600; i++) {
        const req = request();
        if (slowStart.admit(picker.pick(endpoints, req)!, endpoints, picker, req, t) === newcomer) keyless++;
      }
      expect(keyless).toBe(0);
    }
  });
});

describe('slow start in the balancer, with shard-key', () => {
  let lb: Balancer | undefined;
  afterEach(async () => {
    await lb?.close();
    lb = undefined;
  });

  it('keeps every key of a new pod on that pod during the ramp; keyless requests ramp up', async () => {
    let now = 0;
    lb = createBalancer({
      endpoints: Array.from({ length: 6 }, (_, i) => ({ address: `127.0.0.${11 + i}`, port: 8080, name: `web-${i}` })),
      picker: 'shard-key',
      slowStart: { windowMs: 10_000 },
      clock: () => now,
      random: seededRandom(7),
    });
    await lb.ready();
    // Endpoints of the first lookup start warm; make one look as if it had just joined.
    const newcomer = lb.endpoints()[5]!;
    newcomer.health.availableSince = 0;
    const owned = KEYS.filter((key) => shardKeyOrder(key, lb!.endpoints())[0] === newcomer);
    for (const t of [100, 2_500, 5_000, 9_900]) {
      now = t;
      for (const key of owned) expect(lb.pick({ key })).toBe(newcomer);
      let keyless = 0;
      const n = 6000;
      for (let i = 0; i < n; i++) if (lb.pick() === newcomer) keyless++;
      // Round-robin fallback: 1/6 of keyless picks land on it, admitted with its ramp weight.
      expect(keyless).toBeGreaterThan(0);
      expect(keyless / n).toBeLessThan((Math.max(0.1, t / 10_000) / 6) * 1.3 + 0.01);
    }
  });
});
