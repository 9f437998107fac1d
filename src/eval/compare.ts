/**
 * Agreement between runs of the same data: one model on several execution providers (numerical drift
 * between backends), and several models on one provider (original vs converted: what the rewrite cost).
 */
import { argmaxRows, errorStats } from './metrics.js';

/** One model output over every evaluated sample, concatenated in sample order. */
export interface CollectedOutput {
  /** elements per sample; rows = data.length / rowSize */
  rowSize: number;
  data: Float64Array;
}

export type CollectedOutputs = Record<string, CollectedOutput>;

export interface OutputDiff {
  output: string;
  maxAbsDiff: number;
  /** relative to the reference side, over reference elements of magnitude >= 1e-6 */
  maxRelDiff: number;
  /** % of samples whose argmax is the same on both sides; null for one-element rows (nothing to rank) */
  argmaxAgreementPct: number | null;
  samples: number;
}

/** Element-wise and argmax comparison of every output present on both sides with the same size. */
export function diffOutputs(reference: CollectedOutputs, other: CollectedOutputs): OutputDiff[] {
  const diffs: OutputDiff[] = [];
  for (const [name, ref] of Object.entries(reference)) {
    const o = other[name];
    if (!o || o.rowSize !== ref.rowSize || o.data.length !== ref.data.length) continue;
    const e = errorStats(o.data, ref.data);
    const samples = ref.rowSize ? ref.data.length / ref.rowSize : 0;
    let argmaxAgreementPct: number | null = null;
    if (ref.rowSize > 1 && samples > 0) {
      const a = argmaxRows(ref.data, ref.rowSize);
      const b = argmaxRows(o.data, o.rowSize);
      let same = 0;
      for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
      argmaxAgreementPct = (100 * same) / a.length;
    }
    diffs.push({ output: name, maxAbsDiff: e.maxAbs, maxRelDiff: e.maxRel, argmaxAgreementPct, samples });
  }
  return diffs;
}

export interface EpAgreement {
  model: string;
  /** the provider every other one is measured against (the first that succeeded, normally cpu) */
  referenceEp: string;
  ep: string;
  outputs: OutputDiff[];
}

/** Each provider's outputs against the reference provider's, for one model. */
export function epAgreement(model: string, runs: { ep: string; outputs: CollectedOutputs }[]): EpAgreement[] {
  const [ref, ...rest] = runs;
  if (!ref) return [];
  return rest.map((r) => ({ model, referenceEp: ref.ep, ep: r.ep, outputs: diffOutputs(ref.outputs, r.outputs) }));
}

/** The headline quality number of a run, whatever the task. */
export interface Score {
  /** 'top1' (fraction), 'mse' or 'maxAbs' (reference data) */
  metric: 'top1' | 'mse' | 'maxAbs';
  value: number;
  /** true when a larger value is better */
  higherIsBetter: boolean;
  loss?: number;
}

export interface ModelComparison {
  ep: string;
  baseline: string;
  model: string;
  metric: Score['metric'];
  baselineValue: number;
  value: number;
  /** baseline - model for accuracy, model - baseline for errors: positive always means worse */
  drop: number;
  lossDelta: number | null;
  outputs: OutputDiff[];
}

/** The first model is the baseline (the original); each further model is set beside it on each provider. */
export function compareModels(runs: { model: string; ep: string; score: Score; outputs: CollectedOutputs }[], models: string[]): ModelComparison[] {
  const [baseline, ...others] = models;
  if (baseline === undefined) return [];
  const out: ModelComparison[] = [];
  for (const model of others) {
    for (const b of runs.filter((r) => r.model === baseline)) {
      const m = runs.find((r) => r.model === model && r.ep === b.ep);
      if (!m || m.score.metric !== b.score.metric) continue;
      const drop = b.score.higherIsBetter ? b.score.value - m.score.value : m.score.value - b.score.value;
      out.push({
        ep: b.ep,
        baseline,
        model,
        metric: b.score.metric,
        baselineValue: b.score.value,
        value: m.score.value,
        drop,
        lossDelta: b.score.loss !== undefined && m.score.loss !== undefined ? m.score.loss - b.score.loss : null,
        outputs: diffOutputs(b.outputs, m.outputs),
      });
    }
  }
  return out;
}
