/** Cutting a Dataset into feeds: samples as the model's input shape, labels as the training model wants them. */
import { permutation } from '../data/prng.js';
import type { Dataset } from '../data/types.js';
import { castSamples } from '../runtime/feed.js';
import type { HostTensor, TensorType } from '../runtime/types.js';
import { elementCount } from '../onnx/tensor.js';

export interface BatchShape {
  /** dims of one sample as the model input takes it */
  sampleDims: number[];
  inputType: TensorType;
  /** dims of one label row: [1] for class indices, the output's per-sample dims for regression */
  labelDims: number[];
}

/**
 * The order of training samples in an epoch: a permutation seeded by (seed, epoch), so a resumed run
 * sees the same batches as an uninterrupted one; identity without shuffling.
 */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): Int32Array {
  if (!shuffle) return Int32Array.from({ length: n }, (_, i) => i);
  return permutation(n, (seed + Math.imul(epoch + 1, 0x9e3779b9)) >>> 0);
}

/** Samples `rows` of `ds` as one input tensor, zero-padded to `padTo` rows when given. */
export function inputBatch(ds: Dataset, rows: ArrayLike<number>, shape: BatchShape, padTo?: number): HostTensor {
  const size = elementCount(ds.sampleShape);
  const n = Math.max(rows.length, padTo ?? 0);
  const x = new Float32Array(n * size);
  for (let k = 0; k < rows.length; k++) x.set(ds.x.subarray(rows[k]! * size, (rows[k]! + 1) * size), k * size);
  return { type: shape.inputType, data: castSamples(x, shape.inputType), dims: [n, ...shape.sampleDims] };
}

/** Labels of `rows`: int64 [n, 1] class indices, or float targets [n, ...labelDims]. */
export function labelBatch(ds: Dataset, rows: ArrayLike<number>, shape: BatchShape): HostTensor {
  const n = rows.length;
  if (ds.task === 'classification') {
    const y = new BigInt64Array(n);
    for (let k = 0; k < n; k++) y[k] = BigInt(ds.y[rows[k]!]!);
    return { type: 'int64', data: y, dims: [n, 1] };
  }
  const ts = elementCount(shape.labelDims);
  const y = new Float32Array(n * ts);
  for (let k = 0; k < n; k++) y.set(ds.y.subarray(rows[k]! * ts, (rows[k]! + 1) * ts), k * ts);
  return { type: 'float32', data: y, dims: [n, ...shape.labelDims] };
}
