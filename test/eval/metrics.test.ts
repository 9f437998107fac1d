import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  argmaxRows,
  averageRanks,
  classificationMetrics,
  confusionMatrix,
  crossEntropy,
  detectScoreKind,
  errorStats,
  logSoftmax,
  macroF1,
  meanAbsoluteError,
  meanSquaredError,
  perClassStats,
  rocAuc,
  rocAucBinary,
  topKAccuracy,
} from '../../src/eval/metrics.js';
import { halfToFloat } from '../../src/onnx/tensor.js';

describe('cross-entropy', () => {
  it('matches hand-computed values from logits', () => {
    // -log softmax([1,2,3])[2] = log(1 + e^-1 + e^-2)
    expect(crossEntropy([1, 2, 3], [2], 3)).toBeCloseTo(Math.log(1 + Math.exp(-1) + Math.exp(-2)), 12);
    // two rows, mean of the two losses; shifting logits by a constant changes nothing
    const a = crossEntropy([0, 0, 1000, 1000], [0, 1], 2);
    expect(a).toBeCloseTo(Math.log(2), 12);
  });
  it('agrees across logits, probabilities and log-probabilities', () => {
    const logits = [0.5, -1, 2, 3, 0.1, -0.2];
    const labels = [2, 0];
    const logp = logSoftmax(logits, 3);
    const p = Array.from(logp, Math.exp);
    const ref = crossEntropy(logits, labels, 3, 'logits');
    expect(crossEntropy(logp, labels, 3, 'log-probabilities')).toBeCloseTo(ref, 12);
    expect(crossEntropy(p, labels, 3, 'probabilities')).toBeCloseTo(ref, 12);
  });
  it('clips zero probabilities instead of returning infinity', () => {
    expect(crossEntropy([1, 0], [1], 2, 'probabilities')).toBeCloseTo(-Math.log(1e-15), 6);
  });
  it('detects the score kind from the values', () => {
    expect(detectScoreKind([0.2, 0.8, 0.5, 0.5], 2)).toBe('probabilities');
    expect(detectScoreKind([Math.log(0.2), Math.log(0.8)], 2)).toBe('log-probabilities');
    expect(detectScoreKind([0.2, 0.3], 2)).toBe('logits');
    expect(detectScoreKind([-3, 2], 2)).toBe('logits');
    expect(detectScoreKind([0, -Infinity], 2)).toBe('log-probabilities');
  });
});

describe('accuracy', () => {
  const scores = [
    0.1,
    0.7,
    0.2, //
    0.5,
    0.4,
    0.1, //
    0.3,
    0.3,
    0.4, //
    0.2,
    0.2,
    0.6,
  ];
  it('top-1 is argmax accuracy, first index winning ties', () => {
    expect(Array.from(argmaxRows([1, 1, 0], 3))).toEqual([0]);
    expect(Array.from(argmaxRows(scores, 3))).toEqual([1, 0, 2, 2]);
    expect(topKAccuracy(scores, [1, 1, 2, 0], 3, 1)).toBe(0.5);
    // tie: label 1 ties with class 0 which has the lower index, so top-1 misses and top-2 hits
    expect(topKAccuracy([0.5, 0.5, 0], [1], 3, 1)).toBe(0);
    expect(topKAccuracy([0.5, 0.5, 0], [0], 3, 1)).toBe(1);
    expect(topKAccuracy([0.5, 0.5, 0], [1], 3, 2)).toBe(1);
  });
  it('top-k counts ranks', () => {
    expect(topKAccuracy(scores, [0, 2, 0, 0], 3, 2)).toBe(0.5); // row0 class0 rank 3; row1 class2 rank 3; row2 class0 rank 2; row3 class0 rank 2
    expect(topKAccuracy(scores, [0, 2, 0, 0], 3, 3)).toBe(1);
  });
});

describe('confusion matrix and macro-F1', () => {
  it('matches the scikit-learn documentation example', () => {
    // sklearn f1_score docs: y_true=[0,1,2,0,1,2], y_pred=[0,2,1,0,0,1] -> macro 0.2666...
    const cm = confusionMatrix([0, 2, 1, 0, 0, 1], [0, 1, 2, 0, 1, 2], 3);
    expect(cm).toEqual([
      [2, 0, 0],
      [1, 0, 1],
      [0, 2, 0],
    ]);
    expect(macroF1(cm)).toBeCloseTo(0.8 / 3, 12);
    const s = perClassStats(cm);
    expect(s[0]).toEqual({ precision: 2 / 3, recall: 1, f1: 0.8, support: 2 });
  });
  it('skips classes absent from both labels and predictions', () => {
    const cm = confusionMatrix([0, 1, 1], [0, 1, 0], 4);
    // class 0: tp1 fn1 fp0 -> 2/3; class 1: tp1 fp1 -> 2/3; classes 2,3 unused
    expect(macroF1(cm)).toBeCloseTo(2 / 3, 12);
  });
});

describe('ROC AUC', () => {
  it('averages ranks of ties', () => {
    expect(Array.from(averageRanks([3, 1, 3, 2]))).toEqual([3.5, 1, 3.5, 2]);
  });
  it('matches hand-computed binary values, ties counting one half', () => {
    expect(rocAucBinary([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12); // sklearn docs example
    expect(rocAucBinary([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    expect(rocAucBinary([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1])).toBeCloseTo(0.875, 12);
    expect(rocAucBinary([1, 2], [1, 1])).toBeNaN();
  });
  it('uses the positive column for two classes and macro one-vs-rest beyond', () => {
    expect(rocAuc([0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8], [0, 0, 1, 1], 2)).toBeCloseTo(0.75, 12);
    // 3 classes, perfectly separable per column -> 1
    const p = [0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8];
    expect(rocAuc(p, [0, 1, 2], 3)).toBe(1);
  });
});

describe('regression and reference errors', () => {
  it('computes MSE and MAE', () => {
    expect(meanSquaredError([1, 2, 3], [1, 4, 0])).toBeCloseTo(13 / 3, 12);
    expect(meanAbsoluteError([1, 2, 3], [1, 4, 0])).toBeCloseTo(5 / 3, 12);
  });
  it('reports max abs / rel error with allclose semantics', () => {
    const s = errorStats([1, 2.5, 0.00001, NaN], [1, 2, 0, NaN]);
    expect(s.maxAbs).toBe(0.5);
    expect(s.worstIndex).toBe(1);
    expect(s.maxRel).toBe(0.25); // the zero reference is left out of the relative error
    expect(s.withinTolerance).toBe(false);
    expect(errorStats([1.00005, -3], [1, -3]).withinTolerance).toBe(true);
    expect(errorStats([NaN], [1]).maxAbs).toBe(Infinity);
  });
  it('decodes float16 bits', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });
});

/** Independent cross-check: ROC curve by thresholds + trapezoid in numpy, F1 and log loss from definitions. */
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
describe.skipIf(!hasNumpy)('cross-check against numpy', () => {
  it('agrees on random data with ties', () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const rows = 300;
    const classes = 4;
    const logits: number[] = [];
    const labels: number[] = [];
    for (let r = 0; r < rows; r++) {
      const y = Math.floor(rand() * classes);
      labels.push(y);
      // rounded to one decimal so that many scores tie
      for (let c = 0; c < classes; c++) logits.push(Math.round((rand() * 3 + (c === y ? 1.5 : 0)) * 10) / 10);
    }
    const m = classificationMetrics(logits, labels, classes, 'logits');
    const py = `
import json, sys, numpy as np
d = json.load(sys.stdin); s = np.array(d['s']).reshape(-1, ${classes}); y = np.array(d['y'])
p = np.exp(s - s.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
def auc(score, pos):
    th = np.unique(score)[::-1]
    tpr = [0.0] + [((score >= t) & pos).sum() / pos.sum() for t in th]
    fpr = [0.0] + [((score >= t) & ~pos).sum() / (~pos).sum() for t in th]
    return np.trapezoid(tpr, fpr)
pred = s.argmax(1)
f1 = []
for k in range(${classes}):
    tp = ((pred == k) & (y == k)).sum(); fp = ((pred == k) & (y != k)).sum(); fn = ((pred != k) & (y == k)).sum()
    f1.append(2 * tp / (2 * tp + fp + fn))
top2 = np.mean([ (np.argsort(-row, kind='stable')[:2] == t).any() for row, t in zip(s, y)])
print(json.dumps({'loss': float(-np.log(p[np.arange(len(y)), y]).mean()), 'acc': float((pred == y).mean()),
  'f1': float(np.mean(f1)), 'auc': float(np.mean([auc(p[:, k], y == k) for k in range(${classes})])), 'top2': float(top2)}))
`;
    const out = spawnSync('python3', ['-c', py], { input: JSON.stringify({ s: logits, y: labels }), encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    const ref = JSON.parse(out.stdout) as { loss: number; acc: number; f1: number; auc: number; top2: number };
    expect(m.loss).toBeCloseTo(ref.loss, 10);
    expect(m.top1).toBeCloseTo(ref.acc, 12);
    expect(m.macroF1).toBeCloseTo(ref.f1, 10);
    expect(m.rocAuc!).toBeCloseTo(ref.auc, 10);
    expect(topKAccuracy(logits, labels, classes, 2)).toBeCloseTo(ref.top2, 12);
  });
});
