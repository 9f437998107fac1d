/**
 * The paired tests against independent references: the exact signed-rank distribution enumerated from its
 * definition (every sign assignment of the ranks), and Student's t tail integrated numerically from its density.
 */
import { describe, expect, it } from 'vitest';
import { pairedTests, summarize } from '../../src/experiment/stats.js';

/** Two-sided exact p of the signed-rank statistic W+ for distinct non-zero |d|: enumeration of all 2^n sign sets. */
function exactWilcoxon(d: number[]): number {
  const n = d.length;
  const order = d.map((v, i) => [Math.abs(v), i] as const).sort((a, b) => a[0] - b[0]);
  const rank = new Array<number>(n);
  order.forEach(([, i], r) => (rank[i] = r + 1));
  const w = d.reduce((s, v, i) => s + (v > 0 ? rank[i]! : 0), 0);
  let le = 0;
  let ge = 0;
  for (let mask = 0; mask < 1 << n; mask++) {
    let s = 0;
    for (let r = 1; r <= n; r++) if (mask & (1 << (r - 1))) s += r;
    if (s <= w) le++;
    if (s >= w) ge++;
  }
  return Math.min(1, (2 * Math.min(le, ge)) / (1 << n));
}

/** Student t density with df degrees of freedom (log-gamma by Lanczos). */
function tDensity(t: number, df: number): number {
  const lgamma = (x: number): number => {
    const g = [
      676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
      1.5056327351493116e-7,
    ];
    if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lgamma(1 - x);
    x -= 1;
    let a = 0.99999999999980993;
    const tt = x + 7.5;
    g.forEach((c, i) => (a += c / (x + i + 1)));
    return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(tt) - tt + Math.log(a);
  };
  return Math.exp(lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * Math.log(df * Math.PI) - ((df + 1) / 2) * Math.log(1 + (t * t) / df));
}

/** Two-sided p = 2 * integral of the density from |t| to infinity (substituting t = |t| / u, Simpson on u in (0, 1]). */
function tTwoSided(t: number, df: number): number {
  const a = Math.abs(t);
  const n = 20000;
  const f = (u: number) => (u === 0 ? 0 : (tDensity(a / u, df) * a) / (u * u));
  let s = f(0) + f(1);
  for (let i = 1; i < n; i++) s += f(i / n) * (i % 2 ? 4 : 2);
  return 2 * (s / (3 * n));
}

function pairedT(a: number[], b: number[]): { t: number; df: number } {
  const d = a.map((v, i) => v - b[i]!);
  const n = d.length;
  const m = d.reduce((s, v) => s + v, 0) / n;
  const sd = Math.sqrt(d.reduce((s, v) => s + (v - m) ** 2, 0) / (n - 1));
  return { t: m / (sd / Math.sqrt(n)), df: n - 1 };
}

describe('paired tests', () => {
  const cases: [string, number[], number[]][] = [
    ['all five better (W+ = 15)', [0.91, 0.92, 0.95, 0.9, 0.97], [0.9, 0.9, 0.92, 0.86, 0.92]],
    ['mixed signs', [0.91, 0.85, 0.95, 0.9, 0.97], [0.9, 0.9, 0.92, 0.86, 0.99]],
    ['all worse', [0.1, 0.2, 0.3, 0.4, 0.5], [0.15, 0.3, 0.33, 0.47, 0.52]],
    ['six seeds', [0.5, 0.61, 0.72, 0.8, 0.55, 0.66], [0.52, 0.6, 0.69, 0.74, 0.6, 0.53]],
    ['three seeds', [1.5, 2.25, 3], [1, 2, 3.125]],
  ];
  for (const [name, a, b] of cases) {
    it(`${name}: exact Wilcoxon and t p-values`, () => {
      const r = pairedTests(a, b);
      expect(r.wilcoxon.method).toBe('exact');
      expect(r.wilcoxon.p).toBeCloseTo(exactWilcoxon(a.map((v, i) => v - b[i]!)), 12);
      const { t, df } = pairedT(a, b);
      expect(r.t.df).toBe(df);
      expect(r.t.statistic).toBeCloseTo(t, 10);
      expect(Math.abs(r.t.p! - tTwoSided(t, df))).toBeLessThan(1e-7);
    });
  }

  it('known values: n = 5, all positive gives 2/32; n = 3 never gets below 0.25', () => {
    expect(pairedTests([2, 3, 4, 5, 6], [1, 1, 1, 1, 1]).wilcoxon.p).toBeCloseTo(0.0625, 12);
    expect(pairedTests([2, 3, 4], [1, 1, 1]).wilcoxon.p).toBeCloseTo(0.25, 12);
    // W+ at the centre of the distribution: p is 1, not above it
    expect(pairedTests([1, -2, -3, 4], [0, 0, 0, 0]).wilcoxon.p).toBe(1);
  });

  it('ties and zero differences: the normal approximation, said so', () => {
    const r = pairedTests([0.9, 0.9, 0.8, 0.7, 0.95], [0.8, 0.8, 0.8, 0.6, 0.9]);
    expect(r.ties).toBe(1);
    expect(r.wilcoxon.method).toBe('normal approximation');
    expect(r.wilcoxon.note).toMatch(/zero/);
    expect(r.wilcoxon.p).toBeGreaterThan(0);
    expect(r.wilcoxon.p).toBeLessThan(1);
  });

  it('undefined tests give no p-value, with the reason', () => {
    const same = pairedTests([0.9, 0.8, 0.7], [0.9, 0.8, 0.7]);
    expect(same.wilcoxon.p).toBeNull();
    expect(same.t.p).toBeNull();
    expect(same.wilcoxon.note).toMatch(/zero/);
    const constant = pairedTests([3, 2, 1], [2.5, 1.5, 0.5]);
    expect(constant.t.note ?? '').toMatch(/(equal|zero)/);
    const one = pairedTests([1], [0]);
    expect(one.wilcoxon.p).toBeNull();
    expect(one.t.note).toMatch(/2 seeds/);
    expect(() => pairedTests([1, 2], [1])).toThrow(RangeError);
  });

  it('summarize: mean and sample standard deviation', () => {
    const s = summarize([1, 2, 3, 4]);
    expect(s.mean).toBe(2.5);
    expect(s.std).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(summarize([7]).std).toBe(0);
    expect(summarize([]).n).toBe(0);
  });
});
