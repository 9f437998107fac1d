/** Turning x/y arrays from a user's file into a Dataset, with the checks every user format shares. */
import { UserError } from '../errors.js';
import type { Dataset } from './types.js';

export type Task = Dataset['task'];

export interface RawArrays {
  /** samples, row-major */
  x: Float32Array;
  /** full shape of x, rows first */
  xShape: number[];
  /** labels or targets as numbers, row-major */
  y: ArrayLike<number>;
  /** full shape of y, rows first */
  yShape: number[];
  /** names for label values 0..k-1 when the file had names (CSV strings) */
  classes?: string[];
  featureNames?: string[];
}

/**
 * Labels are class indices, and classes '0'..'max' are named from the largest: one flipped bit in an
 * int64 label must not ask for billions of names. 2^20 classes is far beyond any model's output here.
 */
export const MAX_CLASS_INDEX = 2 ** 20 - 1;

/**
 * Validates and packs arrays. Classification needs y of shape [n] or [n, 1] holding integers ≥ 0; the
 * classes default to '0'..'max'. Regression takes any y of n rows, targetSize = product of its other dims.
 */
export function datasetFromArrays(subject: string, name: string, a: RawArrays, task: Task = 'classification'): Dataset {
  if (a.xShape.length === 0) throw new UserError(subject, 'x is a scalar; expected an array with one row per sample');
  const n = a.xShape[0]!;
  if (n === 0) throw new UserError(subject, 'has zero rows (x is empty); expected at least one sample');
  if (a.yShape.length === 0) throw new UserError(subject, 'y is a scalar; expected one label per row of x');
  if (a.yShape[0] !== n) throw new UserError(subject, `x has ${n} rows but y has ${a.yShape[0]}; expected one label per row`);
  for (let i = 0; i < a.x.length; i++) {
    if (!Number.isFinite(a.x[i]!)) {
      throw new UserError(subject, `x holds ${a.x[i]} at flat index ${i} (row ${Math.floor(i / (a.x.length / n))}); expected finite numbers`);
    }
  }
  const sampleShape = a.xShape.length === 1 ? [1] : a.xShape.slice(1);
  const base = { name, sampleShape, x: a.x, count: n, source: subject, split: 'all' as const, ...(a.featureNames ? { featureNames: a.featureNames } : {}) };
  if (task === 'regression') {
    const y = Float32Array.from(a.y);
    const targetSize = a.yShape.slice(1).reduce((p, d) => p * d, 1);
    for (let i = 0; i < y.length; i++) {
      if (!Number.isFinite(y[i]!)) throw new UserError(subject, `y holds ${a.y[i]} at index ${i}; expected finite targets`);
    }
    return { ...base, y, task, targetSize };
  }
  if (a.yShape.length > 2 || (a.yShape.length === 2 && a.yShape[1] !== 1)) {
    throw new UserError(subject, `y has shape [${a.yShape.join(', ')}]; class labels must be shape [${n}] or [${n}, 1] (one integer per row; not one-hot)`);
  }
  const y = new Int32Array(n);
  let max = -1;
  for (let i = 0; i < n; i++) {
    const v = a.y[i]!;
    if (!Number.isInteger(v) || v < 0) {
      throw new UserError(
        subject,
        `label y[${i}] = ${v} is not a class index; classification needs integers ≥ 0 (use task 'regression' for real-valued targets)`,
      );
    }
    if (v > MAX_CLASS_INDEX) {
      throw new UserError(
        subject,
        `label y[${i}] = ${v} is above ${MAX_CLASS_INDEX}, the largest class index supported (a class name is made for every index up to the largest label)`,
      );
    }
    y[i] = v;
    if (v > max) max = v;
  }
  let classes = a.classes;
  if (classes && max >= classes.length) throw new Error(`label ${max} has no class name`);
  classes ??= Array.from({ length: max + 1 }, (_, i) => String(i));
  return { ...base, y, task, classes, targetSize: 1 };
}
