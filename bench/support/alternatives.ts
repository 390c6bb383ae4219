/**
 * Consistent-hashing algorithms the shard-key picker was chosen against, in their textbook
 * form, over the same 32-bit hashes (`hashString`), for `bench/shard-key.ts --compare`.
 * Each builds a lookup `(keyHash) → index into identities` from a list of identities.
 */
import { fmix32, hashString } from '../../src/hashing/hash32.js';

export type Lookup = (keyHash: number) => number;

export interface Algorithm {
  readonly name: string;
  readonly note: string;
  build(identities: readonly string[]): Lookup;
}

/** Rendezvous / HRW: highest fmix32(key ^ identity) wins, as ShardKeyPicker without its table. */
export const rendezvous: Algorithm = {
  name: 'rendezvous (chosen)',
  note: 'O(n) per uncached key',
  build(identities) {
    const mixes = Int32Array.from(identities, (id) => {
      const h = hashString(id);
      return h ^ (h >>> 16);
    });
    return (keyHash) => {
      const keyMix = keyHash ^ (keyHash >>> 16);
      let best = 0;
      let bestScore = -2147483649;
      for (let i = 0; i < mixes.length; i++) {
        let x = Math.imul(keyMix ^ mixes[i]!, 0x85ebca6b);
        x ^= x >>> 13;
        x = Math.imul(x, 0xc2b2ae35);
        x ^= x >>> 16;
        if (x > bestScore) {
          best = i;
          bestScore = x;
        }
      }
      return best;
    };
  },
};

/** Sorted points on a 32-bit ring; `find(hash)` is the index of the first point ≥ hash, wrapping. */
function sortedRing(points: { point: number; owner: number }[]): {
  points: Float64Array;
  owners: Int32Array;
  find: (hash: number) => number;
} {
  points.sort((a, b) => a.point - b.point);
  const sorted = Float64Array.from(points, (p) => p.point);
  const owners = Int32Array.from(points, (p) => p.owner);
  const find = (hash: number): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === sorted.length ? 0 : lo;
  };
  return { points: sorted, owners, find };
}

/** Ketama-style ring with `vnodes` points per identity. */
export function ring(vnodes: number): Algorithm {
  return {
    name: `ring, ${vnodes} vnodes`,
    note: 'O(log n·v)',
    build(identities) {
      const points = identities.flatMap((id, owner) =>
        Array.from({ length: vnodes }, (_, v) => ({ point: hashString(`${id}#${v}`) >>> 0, owner })),
      );
      const ring = sortedRing(points);
      return (keyHash) => ring.owners[ring.find(keyHash >>> 0)]!;
    },
  };
}

/** Multi-probe consistent hashing (Appleton & O'Reilly 2015): one point per identity, `probes` probes per key. */
export function multiProbe(probes: number): Algorithm {
  return {
    name: `multi-probe, ${probes} probes`,
    note: 'O(probes·log n)',
    build(identities) {
      const ring = sortedRing(identities.map((id, owner) => ({ point: hashString(id) >>> 0, owner })));
      return (keyHash) => {
        let best = 0;
        let bestDistance = Infinity;
        for (let j = 0; j < probes; j++) {
          const probe = fmix32(keyHash + Math.imul(j, 0x9e3779b9)) >>> 0;
          const at = ring.find(probe);
          const distance = (ring.points[at]! - probe) >>> 0;
          if (distance < bestDistance) {
            bestDistance = distance;
            best = ring.owners[at]!;
          }
        }
        return best;
      };
    },
  };
}

/** Maglev (Eisenbud et al., NSDI 2016): a permutation-filled table of prime size M. */
export function maglev(size = 65537): Algorithm {
  return {
    name: `Maglev, M = ${size}`,
    note: 'O(1), table of M',
    build(identities) {
      const n = identities.length;
      const offset = identities.map((id) => (hashString(`${id}|offset`) >>> 0) % size);
      const skip = identities.map((id) => ((hashString(`${id}|skip`) >>> 0) % (size - 1)) + 1);
      const next = new Array<number>(n).fill(0);
      const table = new Int32Array(size).fill(-1);
      // Fill in identity order so the table does not depend on the list order.
      const order = identities.map((_, i) => i).sort((a, b) => (identities[a]! < identities[b]! ? -1 : 1));
      let filled = 0;
      while (filled < size) {
        for (const i of order) {
          let slot = (offset[i]! + next[i]! * skip[i]!) % size;
          while (table[slot]! >= 0) {
            next[i]!++;
            slot = (offset[i]! + next[i]! * skip[i]!) % size;
          }
          table[slot] = i;
          next[i]!++;
          if (++filled === size) break;
        }
      }
      return (keyHash) => table[(keyHash >>> 0) % size]!;
    },
  };
}

/** Rendezvous precomputed into a table of 2^bits slots (key → slot → owner). */
export function rendezvousTable(bits: number): Algorithm {
  return {
    name: `rendezvous table, 2^${bits} slots`,
    note: 'O(1), table of 2^bits',
    build(identities) {
      const owner = rendezvous.build(identities);
      const size = 1 << bits;
      const table = new Int32Array(size);
      for (let slot = 0; slot < size; slot++) table[slot] = owner(fmix32(slot ^ 0x5bd1e995));
      return (keyHash) => table[keyHash & (size - 1)]!;
    },
  };
}

export const alternatives: readonly Algorithm[] = [rendezvous, ring(160), multiProbe(21), maglev(), rendezvousTable(16)];
