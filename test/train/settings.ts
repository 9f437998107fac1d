/** A checkpoint's run settings as the checkpoint tests build them: an iris Adam run, every field set. */
import type { RunSettings } from '../../src/train/checkpoint.js';

export const IRIS_ADAM_SETTINGS: RunSettings = {
  data: { name: 'iris', train: 120, val: 15, sha256: 'f'.repeat(64) },
  batchSize: 8,
  optimizer: { name: 'adam', weightDecay: 0, momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  schedule: { name: 'constant', lr: 0.01, every: 1, gamma: 0.1 },
  scheduleEpochs: null,
  seed: 0,
  shuffle: true,
  freeze: [],
  trainOnly: [],
  input: 'x',
  output: 'y',
  maxSteps: null,
};
