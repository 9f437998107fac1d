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
}

/** An ONNX `test_data_set_N` folder: model inputs and the reference outputs to compare against. */
export interface ReferenceCase {
  name: string;
  inputs: Record<string, import('../runtime/types.js').HostTensor>;
  outputs: Record<string, import('../runtime/types.js').HostTensor>;
}

export type Split = 'train' | 'val' | 'test' | 'all';
