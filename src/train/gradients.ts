/**
 * Loss and gradients of one batch, for inspection and tests: the gradient model (forward + loss +
 * backward, no update) run once. `--dump-gradients` writes what this returns.
 */
import type { Dataset } from '../data/types.js';
import { UserError } from '../errors.js';
import { fitSample } from '../runtime/feed.js';
import { int, type ModelProto } from '../onnx/types.js';
import { openRuntime } from '../runtime/index.js';
import type { HostTensor, Runtime } from '../runtime/types.js';
import { chooseParameters } from './params.js';
import { buildTrainingModel, LOSS_OUTPUT, type TrainingModel } from './step.js';
import { tensorFromProto } from '../runtime/tensor.js';
import { epochOrder, inputBatch, labelBatch, type BatchShape } from './batches.js';
import type { LossKind } from './loss.js';
import type { BatchNormMode } from './batchnorm.js';

export interface GradientBatch {
  /** the model input's batch */
  x: HostTensor;
  /** class indices (any integer typed array, one per row) or regression targets shaped like the output */
  y: HostTensor;
}

export interface GradientOptions {
  /** default: a fresh cpu runtime, closed afterwards */
  runtime?: Runtime;
  sourceDir?: string;
  file?: string;
  task?: 'classification' | 'regression';
  /** default: every parameter chooseParameters() picks */
  params?: string[];
  freeze?: string[];
  trainOnly?: string[];
  input?: string;
  output?: string;
  /** make a fixed batch dimension symbolic (for batches of another size) */
  dynamicBatch?: boolean;
  /** 'train': gradients with batch statistics, as a `--bn train` step computes them */
  batchNorm?: BatchNormMode;
}

export interface GradientResult {
  loss: number;
  lossKind: LossKind;
  logits: HostTensor;
  /** parameter name -> gradient of the loss, shaped like the parameter */
  grads: Record<string, HostTensor>;
  /** the model that computed them */
  trainingModel: TrainingModel;
}

export async function computeGradients(model: ModelProto, batch: GradientBatch, o: GradientOptions = {}): Promise<GradientResult> {
  const task = o.task ?? 'classification';
  const params = o.params ?? chooseParameters(model.graph!, { freeze: o.freeze, trainOnly: o.trainOnly }).trainable;
  const tm = buildTrainingModel(model, {
    sourceDir: o.sourceDir ?? '.',
    file: o.file ?? 'model',
    params,
    task,
    input: o.input,
    output: o.output,
    dynamicBatch: o.dynamicBatch,
    sampleDims: batch.x.dims.slice(1),
    outputRank: undefined,
    batchNorm: o.batchNorm,
  });
  const rt = o.runtime ?? (await openRuntime('cpu'));
  try {
    // the training graph runs the user's forward: its failures are the model's or the data's
    const s = await rt.load(tm.bytes(), { name: o.file });
    try {
      const feeds: Record<string, HostTensor> = { [tm.input]: batch.x, [tm.labels]: labelsFeed(batch.y, task) };
      for (const p of [...tm.params, ...tm.running]) feeds[p.name] = tensorFromProto(tm.initial.get(p.name)!);
      const out = await s.run(feeds);
      const grads: Record<string, HostTensor> = {};
      for (const p of tm.params) grads[p.name] = out[p.grad]!;
      return { loss: Number(out[LOSS_OUTPUT]!.data[0]), lossKind: tm.loss.kind, logits: out[tm.output]!, grads, trainingModel: tm };
    } finally {
      await s.release();
    }
  } finally {
    if (!o.runtime) await rt.close();
  }
}

export interface FirstBatchOptions extends Omit<GradientOptions, 'task' | 'dynamicBatch' | 'params'> {
  batchSize: number;
  seed: number;
  shuffle: boolean;
  /** the model's own folder and name, for external data and messages */
  sourceDir: string;
  file: string;
}

/**
 * Loss and gradients on the first training batch a fine-tune with the same seed would take: what
 * `finetune --dump-gradients` writes. The data must fit the model's input.
 */
export async function firstBatchGradients(model: ModelProto, train: Dataset, o: FirstBatchOptions): Promise<GradientResult & { rows: number }> {
  const rows = epochOrder(train.count, o.seed, 0, o.shuffle).subarray(0, Math.min(o.batchSize, train.count));
  const inits = new Set((model.graph!.initializer ?? []).map((t) => t.name));
  const inMeta = (model.graph!.input ?? []).find((i) => (o.input ? i.name === o.input : !inits.has(i.name)));
  if (!inMeta) throw new UserError(o.input ? `input=${o.input}` : o.file, o.input ? 'no such model input' : 'has no data input');
  const shape = (inMeta.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined ? int(d.dimValue) : (d.dimParam ?? '?')));
  const fit = fitSample(shape, train.sampleShape);
  if (!fit?.hasBatchDim)
    throw new UserError(o.file, `input '${inMeta.name}' takes shape [${shape.join(', ')}]; samples of shape [${train.sampleShape.join(', ')}] do not fit`);
  const fixed = typeof shape[0] === 'number' ? shape[0] : undefined;
  // the same feeds the loop cuts: int64 [n, 1] class indices, or each row's targetSize targets
  const batchShape: BatchShape = { sampleDims: fit.sampleDims, inputType: 'float32', labelDims: [train.targetSize ?? 1] };
  const x = inputBatch(train, rows, batchShape);
  const y = labelBatch(train, rows, batchShape);
  const g = await computeGradients(model, { x, y }, { ...o, task: train.task, dynamicBatch: fixed !== undefined && fixed !== rows.length });
  return { ...g, rows: rows.length };
}

/** Class indices as the int64 [n, 1] the loss gathers with; regression targets as given. */
export function labelsFeed(y: HostTensor, task: 'classification' | 'regression'): HostTensor {
  if (task === 'regression') return y;
  const n = y.data.length;
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) out[i] = BigInt(y.data[i]!);
  return { type: 'int64', data: out, dims: [n, 1] };
}
