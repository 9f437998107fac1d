/**
 * Pure metric functions. Scores are row-major `rows x classes` arrays; labels are class indices.
 * Conventions follow scikit-learn where one exists, so numbers can be cross-checked against it.
 */

export type Scores = ArrayLike<number>;

/** What the model's last layer emits; decides how loss and probabilities are derived. */
export type ScoreKind = 'logits' | 'probabilities' | 'log-probabilities';

function rowsOf(scores: Scores, classes: number): number {
  if (classes <= 0 || scores.length % classes !== 0) {
    throw new RangeError(`scores length ${scores.length} is not a multiple of ${classes} classes`);
  }
  return scores.length / classes;
}

/**
 * Guesses the score kind from the values: rows of non-negative numbers summing to 1 are probabilities
 * (Softmax ending), rows of non-positive numbers whose exponentials sum to 1 are log-probabilities
 * (LogSoftmax ending); anything else is logits. A one-column output is never treated as a distribution
 * because every row would trivially "sum to 1". Tolerance 1e-3 covers float16 and float32 rounding.
 */
export function detectScoreKind(scores: Scores, classes: number, tol = 1e-3): ScoreKind {
  const rows = rowsOf(scores, classes);
  if (rows === 0 || classes < 2) return 'logits';
  let probs = true;
  let logProbs = true;
  for (let r = 0; r < rows && (probs || logProbs); r++) {
    let sum = 0;
    let expSum = 0;
    for (let c = 0; c < classes; c++) {
      const v = scores[r * classes + c]!;
      if (!Number.isFinite(v) && v !== -Infinity) return 'logits';
      if (v < -tol || v > 1 + tol) probs = false;
      if (v > tol) logProbs = false;
      sum += v;
      expSum += Math.exp(v);
    }
    if (Math.abs(sum - 1) > tol) probs = false;
    if (Math.abs(expSum - 1) > tol) logProbs = false;
  }
  // A row like [0, -inf, ...] is both; the non-positive reading is the one a Softmax cannot produce.
  if (probs) return 'probabilities';
  if (logProbs) return 'log-probabilities';
  return 'logits';
}

/** Row-wise log-softmax in float64, max-shifted so large logits do not overflow. */
export function logSoftmax(scores: Scores, classes: number): Float64Array {
  const rows = rowsOf(scores, classes);
  const out = new Float64Array(scores.length);
  for (let r = 0; r < rows; r++) {
    const o = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, scores[o + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(scores[o + c]! - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c < classes; c++) out[o + c] = scores[o + c]! - lse;
  }
  return out;
}

/** Probabilities from any score kind (AUC one-vs-rest needs comparable per-class columns). */
function toProbabilities(scores: Scores, classes: number, kind: ScoreKind): Float64Array {
  if (kind === 'probabilities') return Float64Array.from(scores as ArrayLike<number>);
  const logp = kind === 'log-probabilities' ? Float64Array.from(scores as ArrayLike<number>) : logSoftmax(scores, classes);
  for (let i = 0; i < logp.length; i++) logp[i] = Math.exp(logp[i]!);
  return logp;
}

/** Probabilities are clipped here before the log, as scikit-learn's log_loss does, so one zero cannot make the loss infinite. */
const PROB_EPS = 1e-15;

/** Mean negative log-likelihood of the true class (natural log). */
export function crossEntropy(scores: Scores, labels: ArrayLike<number>, classes: number, kind: ScoreKind = 'logits'): number {
  const rows = rowsOf(scores, classes);
  if (labels.length !== rows) throw new RangeError(`${labels.length} labels for ${rows} rows`);
  if (rows === 0) return NaN;
  const logp = kind === 'logits' ? logSoftmax(scores, classes) : null;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const i = r * classes + labels[r]!;
    if (kind === 'logits') total -= logp![i]!;
    else if (kind === 'log-probabilities') total -= Math.max(scores[i]!, Math.log(PROB_EPS));
    else total -= Math.log(Math.min(1 - PROB_EPS, Math.max(scores[i]!, PROB_EPS)));
  }
  return total / rows;
}

/** Index of the row maximum; the first one on ties, like numpy.argmax. NaN never wins. */
export function argmaxRows(scores: Scores, classes: number): Int32Array {
  const rows = rowsOf(scores, classes);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestV = -Infinity;
    for (let c = 0; c < classes; c++) {
      const v = scores[r * classes + c]!;
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/**
 * Fraction of rows whose true class ranks within the top k. A class tied with the true class counts
 * ahead of it only when it has the lower index, so k=1 agrees exactly with argmax accuracy.
 */
export function topKAccuracy(scores: Scores, labels: ArrayLike<number>, classes: number, k: number): number {
  const rows = rowsOf(scores, classes);
  if (labels.length !== rows) throw new RangeError(`${labels.length} labels for ${rows} rows`);
  if (rows === 0) return NaN;
  let hits = 0;
  for (let r = 0; r < rows; r++) {
    const y = labels[r]!;
    const o = r * classes;
    const sy = scores[o + y]!;
    let ahead = 0;
    for (let c = 0; c < classes && ahead < k; c++) {
      const v = scores[o + c]!;
      if (v > sy || (v === sy && c < y) || Number.isNaN(sy)) ahead++;
    }
    if (ahead < k) hits++;
  }
  return hits / rows;
}

/** Rows are true classes, columns predicted classes (scikit-learn's orientation). */
export function confusionMatrix(predicted: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number[][] {
  if (predicted.length !== labels.length) throw new RangeError(`${predicted.length} predictions for ${labels.length} labels`);
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]!]![predicted[i]!]! += 1;
  return m;
}

export interface ClassStats {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** Per-class precision/recall/F1; 0 where a ratio's denominator is 0 (scikit-learn's zero_division=0). */
export function perClassStats(cm: number[][]): ClassStats[] {
  const n = cm.length;
  return cm.map((row, k) => {
    const tp = row[k]!;
    const support = row.reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let i = 0; i < n; i++) predicted += cm[i]![k]!;
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = support + predicted ? (2 * tp) / (support + predicted) : 0;
    return { precision, recall, f1, support };
  });
}

/**
 * Unweighted mean of per-class F1 over the classes that occur in the labels or the predictions,
 * which is what scikit-learn's f1_score(average='macro') does when `labels` is not given: a class
 * the evaluation subset never touches neither helps nor hurts.
 */
export function macroF1(cm: number[][]): number {
  const stats = perClassStats(cm);
  let sum = 0;
  let n = 0;
  stats.forEach((s, k) => {
    let predicted = 0;
    for (const row of cm) predicted += row[k]!;
    if (s.support + predicted > 0) {
      sum += s.f1;
      n++;
    }
  });
  return n ? sum / n : NaN;
}

/** 1-based ranks with ties sharing their average rank (scipy.stats.rankdata 'average'). */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]!] === values[order[i]!]) j++;
    const avg = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) ranks[order[t]!] = avg;
    i = j + 1;
  }
  return ranks;
}

/**
 * Binary ROC AUC via the Mann-Whitney U statistic: equals the trapezoidal area under the ROC curve,
 * with tied scores counting one half. NaN when only one class is present (AUC is undefined).
 */
export function rocAucBinary(scores: ArrayLike<number>, positive: ArrayLike<boolean | number>): number {
  if (scores.length !== positive.length) throw new RangeError(`${scores.length} scores for ${positive.length} labels`);
  const ranks = averageRanks(scores);
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < scores.length; i++) {
    if (positive[i]) {
      nPos++;
      rankSum += ranks[i]!;
    }
  }
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * ROC AUC for a classifier: binary (2 classes) uses the positive-class probability; more classes use
 * one-vs-rest with an unweighted mean (scikit-learn's multi_class='ovr', average='macro'). Classes
 * absent from the labels are skipped rather than making the whole result undefined.
 */
export function rocAuc(probs: Scores, labels: ArrayLike<number>, classes: number): number {
  const rows = rowsOf(probs, classes);
  if (labels.length !== rows) throw new RangeError(`${labels.length} labels for ${rows} rows`);
  const column = (k: number) => {
    const col = new Float64Array(rows);
    for (let r = 0; r < rows; r++) col[r] = probs[r * classes + k]!;
    return col;
  };
  const isClass = (k: number) => Array.from(labels, (y) => y === k);
  if (classes === 2) return rocAucBinary(column(1), isClass(1));
  let sum = 0;
  let n = 0;
  for (let k = 0; k < classes; k++) {
    const auc = rocAucBinary(column(k), isClass(k));
    if (!Number.isNaN(auc)) {
      sum += auc;
      n++;
    }
  }
  return n ? sum / n : NaN;
}

export function meanSquaredError(predicted: ArrayLike<number>, target: ArrayLike<number>): number {
  if (predicted.length !== target.length) throw new RangeError(`${predicted.length} predictions for ${target.length} targets`);
  let s = 0;
  for (let i = 0; i < target.length; i++) s += (predicted[i]! - target[i]!) ** 2;
  return target.length ? s / target.length : NaN;
}

export function meanAbsoluteError(predicted: ArrayLike<number>, target: ArrayLike<number>): number {
  if (predicted.length !== target.length) throw new RangeError(`${predicted.length} predictions for ${target.length} targets`);
  let s = 0;
  for (let i = 0; i < target.length; i++) s += Math.abs(predicted[i]! - target[i]!);
  return target.length ? s / target.length : NaN;
}

export interface ErrorStats {
  maxAbs: number;
  /** max |a-e| / |e| over elements whose reference is not (near) zero; 0 when there are none */
  maxRel: number;
  /** element index of maxAbs, to point at the worst value */
  worstIndex: number;
  /** every element within atol + rtol * |expected| (numpy.allclose semantics; NaN matches NaN) */
  withinTolerance: boolean;
}

/** Relative error is meaningless against an exact zero; below this magnitude only absolute error counts. */
const REL_FLOOR = 1e-6;

/** Elementwise differences between an output and its reference (same length required). */
export function errorStats(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-4, rtol = 1e-4): ErrorStats {
  if (actual.length !== expected.length) throw new RangeError(`${actual.length} values against ${expected.length} reference values`);
  let maxAbs = 0;
  let maxRel = 0;
  let worstIndex = -1;
  let within = true;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    let d: number;
    if (Number.isNaN(a) || Number.isNaN(e)) d = Number.isNaN(a) && Number.isNaN(e) ? 0 : Infinity;
    else if (a === e)
      d = 0; // also equal infinities
    else d = Math.abs(a - e);
    if (d > maxAbs || worstIndex < 0) {
      maxAbs = Math.max(maxAbs, d);
      worstIndex = i;
    }
    if (Math.abs(e) >= REL_FLOOR && d > 0) maxRel = Math.max(maxRel, d / Math.abs(e));
    if (!(d <= atol + rtol * Math.abs(e))) within = false;
  }
  return { maxAbs, maxRel, worstIndex, withinTolerance: within };
}

export interface ClassificationMetrics {
  count: number;
  classes: number;
  scoreKind: ScoreKind;
  loss: number;
  top1: number;
  /** null when the model has 5 classes or fewer (top-5 would trivially be 1) */
  top5: number | null;
  macroF1: number;
  /** null when undefined (a single class present) */
  rocAuc: number | null;
  confusion: number[][];
}

/** Every classification metric at once, from raw model scores. */
export function classificationMetrics(scores: Scores, labels: ArrayLike<number>, classes: number, kind?: ScoreKind): ClassificationMetrics {
  const scoreKind = kind ?? detectScoreKind(scores, classes);
  const predicted = argmaxRows(scores, classes);
  const confusion = confusionMatrix(predicted, labels, classes);
  const auc = rocAuc(toProbabilities(scores, classes, scoreKind), labels, classes);
  return {
    count: labels.length,
    classes,
    scoreKind,
    loss: crossEntropy(scores, labels, classes, scoreKind),
    top1: topKAccuracy(scores, labels, classes, 1),
    top5: classes > 5 ? topKAccuracy(scores, labels, classes, 5) : null,
    macroF1: macroF1(confusion),
    rocAuc: Number.isNaN(auc) ? null : auc,
    confusion,
  };
}

export interface RegressionMetrics {
  count: number;
  mse: number;
  mae: number;
}

export function regressionMetrics(predicted: ArrayLike<number>, target: ArrayLike<number>, count: number): RegressionMetrics {
  return { count, mse: meanSquaredError(predicted, target), mae: meanAbsoluteError(predicted, target) };
}
