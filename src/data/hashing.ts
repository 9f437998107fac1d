/**
 * Deterministic text featurisation: a hashed bag of words, so text becomes a fixed-length float vector
 * without a vocabulary file.
 *
 * - tokeniser: the text is lower-cased (String.prototype.toLowerCase), tokens are maximal runs of
 *   Unicode letters or digits (/[\p{L}\p{N}]+/u); tokens shorter than 2 or longer than 30 characters are
 *   skipped (single letters carry little, and the long runs are mostly base64 or hex blobs);
 * - hash: 32-bit FNV-1a over the token's UTF-8 bytes (offset basis 2166136261, prime 16777619);
 * - bucket = hash mod `buckets` (default 1024);
 * - value per bucket: log1p(count) by default (ln(1 + occurrences)), or 1/0 with `values: 'binary'`.
 */

export const DEFAULT_BUCKETS = 1024;
const MIN_TOKEN = 2;
const MAX_TOKEN = 30;

export type TermValues = 'log1p' | 'binary';

const TOKEN = /[\p{L}\p{N}]+/gu;
const utf8 = new TextEncoder();

export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(TOKEN)) {
    const t = m[0];
    if (t.length >= MIN_TOKEN && t.length <= MAX_TOKEN) out.push(t);
  }
  return out;
}

/** 32-bit FNV-1a of the UTF-8 bytes of `s`, as an unsigned integer. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of utf8.encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Writes the hashed bag of words of `text` into `out` (length = number of buckets, zeroed by the caller). */
export function hashedBagOfWords(text: string, out: Float32Array, values: TermValues = 'log1p'): Float32Array {
  const counts = new Uint32Array(out.length);
  for (const t of tokenize(text)) counts[fnv1a(t) % out.length]!++;
  for (let i = 0; i < out.length; i++) {
    const c = counts[i]!;
    out[i] = c === 0 ? 0 : values === 'binary' ? 1 : Math.log1p(c);
  }
  return out;
}
