/**
 * The shipped models the tool trains itself, from scratch (build.ts + the fine-tuning loop), with no Python:
 * `npm run models` rewrites them. Seeded init and batch order on onnxruntime CPU with one thread make the
 * written bytes the same on every run (test/experiment/shipped.test.ts trains twice and compares).
 * mnist-cnn.onnx and iris-mlp.onnx stay PyTorch's (models/train.py): tests and the README quote them.
 */
import { encodeModel } from '../onnx/schema.js';
import type { Runtime } from '../runtime/types.js';
import { finetune } from '../train/loop.js';
import { buildModel, describeArch, type ArchSpec } from './build.js';
import { loadSets, testScores } from './run.js';
import type { TestScores } from './results.js';

export interface ShippedModel {
  /** path from the repository root */
  file: string;
  data: string;
  arch: ArchSpec;
  seed: number;
  epochs: number;
  batchSize: number;
  lr: number;
  /** at most this many samples (spread evenly) before the split; null: all (tests use a small one) */
  limit: number | null;
}

export const SHIPPED: ShippedModel[] = [
  { file: 'models/spam-mlp.onnx', data: 'spam', arch: { arch: 'mlp', hidden: [64], channels: [] }, seed: 0, epochs: 3, batchSize: 32, lr: 0.01, limit: null },
];

export interface TrainedModel {
  bytes: Uint8Array;
  test: TestScores;
  bestEpoch: number | null;
  counts: { train: number; val: number; test: number };
}

/** Builds and trains one shipped model; `runtime` should be cpu with one thread for identical bytes. */
export async function trainShipped(m: ShippedModel, runtime: Runtime): Promise<TrainedModel> {
  // the data as `eval --data spam:test` feeds it: no standardisation, so the model needs no extra flags
  const sets = await loadSets(m.data, { limit: m.limit, preprocess: {}, standardize: false });
  const initial = buildModel({ ...m.arch, activation: 'relu', sampleShape: sets.settings.sampleShape, classes: sets.settings.classes, seed: m.seed });
  const { model, log } = await finetune({
    model: initial,
    sourceDir: process.cwd(),
    file: m.file,
    train: sets.train,
    val: sets.val,
    runtime,
    epochs: m.epochs,
    batchSize: m.batchSize,
    optimizer: { name: 'adam' },
    schedule: { name: 'constant', lr: m.lr },
    seed: m.seed,
    shuffle: true,
  });
  const test = await testScores(runtime, model, process.cwd(), m.file, sets.test, m.batchSize);
  model.producerName = 'alrelu';
  model.docString =
    `${describeArch(m.arch)} (ReLU) trained from scratch by alrelu (npm run models) on ${m.data} ` +
    `${sets.train.count}/${sets.val.count}/${sets.test.count} (split seed 0): seed ${m.seed}, ${m.epochs} epochs, batch ${m.batchSize}, Adam lr ${m.lr}, ` +
    `best validation epoch ${log.best?.epoch ?? '-'}; test accuracy ${(100 * test.accuracy).toFixed(2)}%`;
  return { bytes: encodeModel(model), test, bestEpoch: log.best?.epoch ?? null, counts: sets.settings.counts };
}
