/**
 * The preprocessing real models were trained with, applied to a loaded data set in a fixed order:
 * x * scale, then (x - mean) / std, then the layout change. Every loader produces channels-first
 * samples ([C, H, W] for images, [F] for tables), so mean and std are per channel (the first sample
 * axis) or per feature, or one value for all.
 */
import { UserError } from '../errors.js';
import type { Dataset } from './types.js';
import { elementCount } from '../onnx/tensor.js';

export interface PreprocessOptions {
  /** multiply every value by this first (e.g. 255 for models trained on raw pixels) */
  scale?: number;
  /** per-channel (or single) mean subtracted after scaling */
  mean?: number[];
  /** per-channel (or single) standard deviation divided by after subtracting the mean */
  std?: number[];
  /** memory layout the model expects for image data: nchw as loaded, nhwc channels last */
  layout?: 'nchw' | 'nhwc';
}

export function hasPreprocessing(p: PreprocessOptions): boolean {
  return p.scale !== undefined || p.mean !== undefined || p.std !== undefined || (p.layout !== undefined && p.layout !== 'nchw');
}

/** Per-channel values spread to one per element of a sample, or a UserError saying what fits. */
function perElement(flag: string, values: number[], shape: number[]): Float32Array {
  const size = elementCount(shape);
  const channels = shape[0] ?? 1;
  if (values.length !== 1 && values.length !== channels) {
    throw new UserError(
      flag,
      `expected 1 value or ${channels} (one per ${shape.length === 1 ? 'feature' : 'channel'} of samples shaped [${shape.join(',')}]), found ${values.length}`,
    );
  }
  const per = size / channels;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = values.length === 1 ? values[0]! : values[Math.floor(i / per)]!;
  return out;
}

function checkFinite(flag: string, values: number[]): void {
  for (const v of values) if (!Number.isFinite(v)) throw new UserError(flag, `expected numbers, found ${v}`);
}

/** A preprocessed copy of `ds` (the input is never modified: built-in sets are cached and shared). */
export function preprocess(ds: Dataset, p: PreprocessOptions): Dataset {
  if (!hasPreprocessing(p)) return ds;
  const shape = ds.sampleShape;
  const size = elementCount(shape);
  const scale = p.scale ?? 1;
  if (!Number.isFinite(scale)) throw new UserError('scale', `expected a number, found ${p.scale}`);
  if (p.mean) checkFinite('mean', p.mean);
  if (p.std) {
    checkFinite('std', p.std);
    if (p.std.some((s) => s === 0)) throw new UserError('std', 'expected non-zero values (each value divides the data)');
  }
  const mean = p.mean ? perElement('mean', p.mean, shape) : undefined;
  const std = p.std ? perElement('std', p.std, shape) : undefined;
  const x = new Float32Array(ds.x.length);
  for (let r = 0; r < ds.count; r++) {
    const o = r * size;
    for (let i = 0; i < size; i++) {
      let v = ds.x[o + i]! * scale;
      if (mean) v -= mean[i]!;
      if (std) v /= std[i]!;
      x[o + i] = v;
    }
  }
  if (p.layout === 'nhwc') {
    if (shape.length !== 3) throw new UserError('layout=nhwc', `expected image samples [C,H,W], found samples shaped [${shape.join(',')}]`);
    const [c, h, w] = shape as [number, number, number];
    const t = new Float32Array(x.length);
    for (let r = 0; r < ds.count; r++) {
      const o = r * size;
      for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) t[o + i * c + k] = x[o + k * h * w + i]!;
    }
    return { ...ds, x: t, sampleShape: [h, w, c] };
  }
  return { ...ds, x };
}
