/** Small timing helpers shared by the sections. */
import { percentile } from '../src/eval/latency.js';

export function median(xs: readonly number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
}

/** Wall time of one awaited call, in milliseconds. */
export async function timeMs(f: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** "min 11.9 max 13.0 n=5" */
export function spread(xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${fmt(s[0]!)} max ${fmt(s[s.length - 1]!)} n=${s.length}`;
}

/** Three significant digits, no exponent for the sizes we print. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toPrecision(3);
}

/** Rotates `items` by `k`: interleaved rounds start with a different contender each time. */
export function rotate<T>(items: readonly T[], k: number): T[] {
  const n = items.length;
  return items.map((_, i) => items[(i + k) % n]!);
}

export const MB = 1e6;
