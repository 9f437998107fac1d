/** From run records to what the experiment says: per data set and variant mean ± std, and the paired tests. */
import type { RunRecord } from './results.js';
import type { ExperimentResult } from './run.js';
import { pairedTests, summarize, type PairedTest, type Summary } from './stats.js';

/** loss: the test cross-entropy (lower is better), which still separates models whose test accuracy ties */
export const METRICS = ['accuracy', 'macroF1', 'auc', 'loss'] as const;
export type Metric = (typeof METRICS)[number];

export interface VariantSummary {
  variant: string;
  seeds: number;
  metrics: Record<Metric, Summary>;
}

export interface Comparison {
  /** a vs b: positive differences favour a */
  a: string;
  b: string;
  metric: Metric;
  test: PairedTest;
}

export interface DataAnalysis {
  data: string;
  variants: VariantSummary[];
  comparisons: Comparison[];
  /** from scratch: whether every seed's variants started from the same weights (sha256 of the initializers) */
  sameStart: boolean;
}

export interface Analysis {
  mode: ExperimentResult['settings']['mode'];
  data: DataAnalysis[];
}

/**
 * The pairs tested: ALReLU against each other variant (without ALReLU, the first variant against the others);
 * in the swap design, (c) against the control (d).
 */
export function comparedPairs(mode: 'scratch' | 'swap', variants: string[]): [string, string][] {
  if (mode === 'swap') return [['alrelu-finetuned', 'relu-finetuned']];
  const a = variants.includes('alrelu') ? 'alrelu' : variants[0];
  return variants.filter((v) => v !== a).map((v) => [a!, v]);
}

const value = (r: RunRecord, m: Metric): number | null => r.test[m];

export function analyze(result: ExperimentResult): Analysis {
  const s = result.settings;
  const variants = s.mode === 'scratch' ? [...s.variants] : ['original', 'converted', 'alrelu-finetuned', 'relu-finetuned'];
  const pairs = comparedPairs(s.mode, variants);
  const data = s.data.map((d) => {
    const runs = result.runs.filter((r) => r.data === d.spec);
    const of = (v: string) => runs.filter((r) => r.variant === v);
    const summaries = variants.map((v) => ({
      variant: v,
      seeds: of(v).length,
      metrics: Object.fromEntries(
        METRICS.map((m) => [
          m,
          summarize(
            of(v)
              .map((r) => value(r, m))
              .filter((x): x is number => x !== null),
          ),
        ]),
      ) as Record<Metric, Summary>,
    }));
    const comparisons: Comparison[] = [];
    for (const [a, b] of pairs) {
      for (const metric of METRICS) {
        // pair by seed; a seed missing on either side, or without a value (AUC undefined), is left out
        const xs: number[] = [];
        const ys: number[] = [];
        for (const seed of s.seeds) {
          const x = of(a).find((r) => r.seed === seed);
          const y = of(b).find((r) => r.seed === seed);
          const vx = x ? value(x, metric) : null;
          const vy = y ? value(y, metric) : null;
          if (vx !== null && vy !== null) {
            xs.push(vx);
            ys.push(vy);
          }
        }
        comparisons.push({ a, b, metric, test: pairedTests(xs, ys) });
      }
    }
    const sameStart = s.seeds.every((seed) => new Set(runs.filter((r) => r.seed === seed).map((r) => r.initialWeights)).size <= 1);
    return { data: d.spec, variants: summaries, comparisons, sameStart };
  });
  return { mode: s.mode, data };
}
