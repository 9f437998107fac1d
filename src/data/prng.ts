/**
 * The one seeded random generator for everything in src/data (splits, batch shuffling), so a seed means
 * the same thing everywhere and results are reproducible across machines and Node versions.
 */

/**
 * mulberry32: a 32-bit state generator (Tommy Ettinger's, public domain). Returns floats in [0, 1).
 * Chosen because it is tiny, fast, and fully specified by integer arithmetic (no platform variance).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A permutation of 0..n-1: Fisher–Yates from the last position down, j = floor(rand() * (i + 1)),
 * with rand = mulberry32(seed).
 */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
