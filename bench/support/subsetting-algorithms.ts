/**
 * Reference implementations of the subsetting algorithms the library's was chosen against, for
 * bench/subsetting.ts only. Written from the published descriptions (Google SRE book, "Load
 * Balancing in the Datacenter"; Finagle's deterministic aperture; gRPC A68), not from their code.
 */
import { fmix32, hashString } from '../../src/hashing/hash32.js';
import { Subset, clientOrdinal } from '../../src/pickers/subset.js';
import { seededRandom } from './fixtures.js';

/** One client's subset; `weights` (same length) when traffic is not spread evenly over it. */
export interface Assignment {
  readonly members: readonly string[];
  readonly weights?: readonly number[];
}

export interface SubsettingAlgorithm {
  readonly name: string;
  /** Needs clients with ordinals (`api-17`); undefined for random ids means "not applicable". */
  readonly needsOrdinals: boolean;
  /** Subsets of every client. `clients` is the whole fleet (Finagle needs its size). */
  assign(clients: readonly string[], pods: readonly string[], size: number): Assignment[];
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export const fullMesh: SubsettingAlgorithm = {
  name: 'full mesh',
  needsOrdinals: false,
  assign: (clients, pods) => clients.map(() => ({ members: pods })),
};

/** gRPC A68 random subsetting: the `size` pods with the highest hash(client seed, pod). */
export const rendezvous: SubsettingAlgorithm = {
  name: 'A68 rendezvous',
  needsOrdinals: false,
  assign: (clients, pods, size) => {
    const podHashes = pods.map(hashString);
    return clients.map((client) => {
      const seed = hashString(client);
      const scored = pods.map((pod, i) => ({ pod, score: fmix32(seed ^ podHashes[i]!) >>> 0 }));
      scored.sort((a, b) => b.score - a.score || byName(a.pod, b.pod));
      return { members: scored.slice(0, size).map((s) => s.pod) };
    });
  },
};

/**
 * Google's deterministic subsetting (SRE book): subset_count = pods / size; clients in rounds of
 * subset_count; each round shuffles the (canonically sorted) pods with the round as the seed and
 * client ordinal % subset_count picks a slice.
 */
export const google: SubsettingAlgorithm = {
  name: 'Google deterministic',
  needsOrdinals: true,
  assign: (clients, pods, size) => {
    const sorted = [...pods].sort(byName);
    const subsetCount = Math.max(1, Math.floor(sorted.length / size));
    const rounds = new Map<number, string[]>();
    return clients.map((client) => {
      const ordinal = clientOrdinal(client)!;
      const round = Math.floor(ordinal / subsetCount);
      let shuffled = rounds.get(round);
      if (shuffled === undefined) {
        shuffled = [...sorted];
        const random = seededRandom(round + 1);
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        rounds.set(round, shuffled);
      }
      const start = (ordinal % subsetCount) * size;
      return { members: shuffled.slice(start, start + size) };
    });
  },
};

/**
 * Finagle's deterministic aperture: pods evenly spaced on a ring (slot t = [t/P, (t+1)/P), in a
 * deterministic order), client i of C at offset i/C; its aperture is the arc of width
 * ceil(size·C/P)/C from its offset; pods partly inside get a fractional weight.
 */
export const finagle: SubsettingAlgorithm = {
  name: 'Finagle aperture',
  needsOrdinals: true,
  assign: (clients, pods, size) => {
    const ring = [...pods].sort((a, b) => (hashString(a) >>> 0) - (hashString(b) >>> 0) || byName(a, b));
    const n = ring.length;
    const c = clients.length;
    const width = Math.min(1, Math.ceil((size / n) * c) / c);
    return clients.map((client) => {
      const offset = (clientOrdinal(client)! % c) / c;
      if (width >= 1) return { members: ring };
      const members: string[] = [];
      const weights: number[] = [];
      const from = offset * n;
      const to = (offset + width) * n;
      for (let t = Math.floor(from); t < Math.ceil(to - 1e-9); t++) {
        const overlap = Math.min(t + 1, to) - Math.max(t, from);
        if (overlap <= 1e-9) continue;
        members.push(ring[((t % n) + n) % n]!);
        weights.push(overlap);
      }
      return { members, weights };
    });
  },
};

/** This library's subsetting (src/pickers/subset.ts). */
export const smoothedRings: SubsettingAlgorithm = {
  name: 'headless-lb (smoothed rings)',
  needsOrdinals: false,
  assign: (clients, pods, size) => clients.map((clientId) => ({ members: new Subset({ size, clientId }).select(pods, (p) => p) })),
};

export const algorithms: readonly SubsettingAlgorithm[] = [fullMesh, rendezvous, google, finagle, smoothedRings];
