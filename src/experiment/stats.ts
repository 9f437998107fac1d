/**
 * Statistics across seeds: mean ± standard deviation, and paired tests of one variant against another.
 *
 * The tests are stdlib's (@stdlib/stats-wilcoxon, @stdlib/stats-ttest), which follow R's wilcox.test and
 * t.test: the signed-rank p-value is exact (the signed-rank distribution) for up to 50 pairs without ties or
 * zero differences, and otherwise the normal approximation with continuity and tie correction; zero
 * differences are dropped (zero_method 'wilcox'). Where a test is undefined (every difference zero, or
 * constant differences for the t test) the p-value is null and `note` says why: no number is invented.
 */
import ttest from '@stdlib/stats-ttest';
import wilcoxon from '@stdlib/stats-wilcoxon';

export interface Summary {
  n: number;
  mean: number;
  /** sample standard deviation (n - 1); 0 for a single value */
  std: number;
  min: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  const n = values.length;
  if (n === 0) return { n, mean: NaN, std: NaN, min: NaN, max: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const ss = values.reduce((a, v) => a + (v - mean) ** 2, 0);
  return { n, mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0, min: Math.min(...values), max: Math.max(...values) };
}

export interface PairedTest {
  /** pairs compared (seeds present in both) */
  n: number;
  /** mean of a - b */
  meanDiff: number;
  /** pairs where a > b, a < b, a = b */
  wins: number;
  losses: number;
  ties: number;
  wilcoxon: { statistic: number | null; p: number | null; method: 'exact' | 'normal approximation' | null; note?: string };
  t: { statistic: number | null; df: number; p: number | null; note?: string };
}

/** Paired tests of a against b (same seeds, same order), two-sided. */
export function pairedTests(a: number[], b: number[]): PairedTest {
  if (a.length !== b.length) throw new RangeError(`${a.length} values paired with ${b.length}`);
  const n = a.length;
  const d = a.map((v, i) => v - b[i]!);
  const wins = d.filter((v) => v > 0).length;
  const losses = d.filter((v) => v < 0).length;
  const out: PairedTest = {
    n,
    meanDiff: n ? d.reduce((s, v) => s + v, 0) / n : NaN,
    wins,
    losses,
    ties: n - wins - losses,
    wilcoxon: { statistic: null, p: null, method: null },
    t: { statistic: null, df: n - 1, p: null },
  };
  if (n < 2) {
    out.wilcoxon.note = out.t.note = 'needs at least 2 seeds';
    return out;
  }
  if (wins + losses === 0) {
    out.wilcoxon.note = out.t.note = 'every difference is zero';
    return out;
  }
  const w = wilcoxon(a, b, { alternative: 'two-sided' });
  const nonzero = d.filter((v) => v !== 0).map(Math.abs);
  const exact = nonzero.length <= 50 && nonzero.length === n && new Set(nonzero).size === nonzero.length;
  // R caps the two-sided value at 1; stdlib doubles a one-sided tail that can pass 0.5
  out.wilcoxon = { statistic: w.statistic, p: Math.min(1, w.pValue), method: exact ? 'exact' : 'normal approximation' };
  if (!exact) out.wilcoxon.note = nonzero.length < n ? 'zero differences dropped' : 'tied differences';
  if (d.every((v) => v === d[0])) {
    out.t.note = 'the differences are all equal (no variance)';
  } else {
    const t = ttest(a, b, { alternative: 'two-sided' });
    out.t = { statistic: t.statistic, df: t.df, p: t.pValue };
  }
  return out;
}
