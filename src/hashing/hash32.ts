/**
 * 32-bit hashing for shard keys and endpoint identities.
 *
 * These functions are part of the shard-key contract: every client that balances the same
 * Service must map a key to the same pod, so they are fixed, platform-independent and written
 * down in docs/pickers.md (MurmurHash3_x86_32 with seed 0 over the UTF-8 bytes; a standard hash
 * with implementations in every language). Changing them remaps every key; do that only in a
 * major version.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3's 32-bit finalizer: a bijection of int32 with full avalanche. Returns an int32. */
export function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return x ^ (x >>> 16);
}

/** One 4-byte block of MurmurHash3_x86_32. */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * MurmurHash3_x86_32 (seed 0) of a string's UTF-8 bytes, as an int32. The bytes are encoded on
 * the fly, without allocating; a lone surrogate counts as U+FFFD, as TextEncoder does, so the
 * result equals `murmur3_32(new TextEncoder().encode(s), 0)` in any language's implementation.
 */
export function hashString(s: string): number {
  const length = s.length;
  let h = 0;
  let i = 0;
  // ASCII fast path: four characters are one block.
  while (i + 4 <= length) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) >= 0x80) break;
    h = mixBlock(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24));
    i += 4;
  }
  let bytes = i;
  // Then byte by byte through a 4-byte buffer: the rest of an ASCII string, or any UTF-8.
  let word = 0;
  let shift = 0;
  for (; i < length; i++) {
    let c = s.charCodeAt(i);
    let count: number;
    let encoded: number;
    if (c < 0x80) {
      count = 1;
      encoded = c;
    } else if (c < 0x800) {
      count = 2;
      encoded = 0xc0 | (c >> 6) | ((0x80 | (c & 0x3f)) << 8);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
        } else {
          c = 0xfffd;
        }
      }
      if (c >= 0x10000) {
        count = 4;
        encoded = 0xf0 | (c >> 18) | ((0x80 | ((c >> 12) & 0x3f)) << 8) | ((0x80 | ((c >> 6) & 0x3f)) << 16) | ((0x80 | (c & 0x3f)) << 24);
      } else {
        count = 3;
        encoded = 0xe0 | (c >> 12) | ((0x80 | ((c >> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
      }
    }
    bytes += count;
    for (let b = 0; b < count; b++) {
      word |= (encoded & 0xff) << shift;
      encoded >>>= 8;
      shift += 8;
      if (shift === 32) {
        h = mixBlock(h, word);
        word = 0;
        shift = 0;
      }
    }
  }
  if (shift > 0) {
    let k = Math.imul(word, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  return fmix32(h ^ bytes);
}

/**
 * Rendezvous (highest-random-weight) score of a key for an endpoint, as an int32 compared
 * signed. Both inputs are already well mixed; fmix32 of their XOR is a bijection for a fixed
 * key, so two endpoints tie only if their identity hashes are equal.
 */
export function rendezvousScore(keyHash: number, identityHash: number): number {
  return fmix32(keyHash ^ identityHash);
}
