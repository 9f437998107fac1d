/** A labelled data set in memory: samples as one flat float array, labels (or regression targets) beside. */

export interface Dataset {
  name: string;
  /** shape of one sample, e.g. [1, 28, 28] or [4] */
  sampleShape: number[];
  /** all samples, row-major, count * product(sampleShape) floats */
  x: Float32Array;
  /** class indices (classification) or targets (regression: count * targetSize floats) */
  y: Int32Array | Float32Array;
  task: 'classification' | 'regression';
  /** class names in label order, for classification */
  classes?: string[];
  count: number;
  /** which part of the full set this is; 'all' when unsplit */
  split?: Split;
  /** for each row, its position in the full (unsplit) set, so results can be traced back to a sample */
  indices?: Int32Array;
  /** names of the features along the last sample axis, for tabular data */
  featureNames?: string[];
  /** values per sample in `y` for regression (product of y's trailing dims); 1 for classification */
  targetSize?: number;
  /** where it came from: a built-in name or the path that was given, for messages */
  source?: string;
  /** image folders: the [height, width] every image was resized to */
  resizedTo?: [number, number];
}

/** An ONNX `test_data_set_N` folder: model inputs and the reference outputs to compare against. */
export interface ReferenceCase {
  name: string;
  inputs: Record<string, import('../runtime/types.js').HostTensor>;
  outputs: Record<string, import('../runtime/types.js').HostTensor>;
}

export type Split = 'train' | 'val' | 'test' | 'all';

export const SPLITS: readonly Split[] = ['train', 'val', 'test', 'all'];
