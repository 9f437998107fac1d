/**
 * `experiment`: does ALReLU help? Two designs, both paired across seeds and resumable run by run.
 *
 * - From scratch: for each data set and seed, one network (build.ts) with ReLU, LeakyReLU(0.01) and
 *   ALReLU(0.01), from the same initial weights (the seed), trained alike (same batches: the seed also
 *   orders them) with the fine-tuning loop, the best validation epoch scored on the test split.
 * - Swap and fine-tune, for a pretrained ReLU model: (a) as it is, (b) converted, (c) converted and
 *   fine-tuned K epochs, (d) kept ReLU and fine-tuned the same K epochs (the control); (c) and (d) per seed.
 *
 * Data: the seeded 80/10/10 split of split.ts (seed 0 for every run, so every variant and seed meets the
 * same test set); `limit` first keeps that many samples spread evenly over the whole set. From scratch,
 * samples that are feature vectors are standardised with the training split's mean and standard deviation.
 */
import { createHash } from 'node:crypto';
import { convert } from '../convert/convert.js';
import { loadData, preprocess, type Dataset, type LoadDataOptions, type PreprocessOptions } from '../data/index.js';
import { isReference, parseSpec } from '../data/index.js';
import { applySplit, select } from '../data/split.js';
import { UserError } from '../errors.js';
import { classificationMetrics } from '../eval/metrics.js';
import { fitSample } from '../runtime/feed.js';
import { elementCount } from '../onnx/tensor.js';
import { decodeModel, encodeModel } from '../onnx/schema.js';
import type { ModelProto } from '../onnx/types.js';
import { encodeInline } from '../onnx/write.js';
import type { Runtime } from '../runtime/types.js';
import { finetune, type FinetuneLog } from '../train/loop.js';
import { predict } from '../train/validate.js';
import { buildModel, type Activation, type ArchSpec } from './build.js';
import { ResultsFile, runKey, type CurvePoint, type RunRecord, type TestScores } from './results.js';

export interface TrainingSettings {
  epochs: number;
  batchSize: number;
  /** Adam's learning rate */
  lr: number;
  /** at most this many samples of each data set (spread evenly), before the split; null: all */
  limit: number | null;
}

export interface ScratchSettings extends TrainingSettings {
  mode: 'scratch';
  arch: ArchSpec;
  variants: Activation[];
  seeds: number[];
  data: DataSettings[];
}

export interface SwapSettings extends TrainingSettings {
  mode: 'swap';
  /** the pretrained model: its file name and the sha256 of its bytes */
  model: { file: string; sha256: string };
  alpha: number;
  seeds: number[];
  data: DataSettings[];
}

export type ExperimentSettings = ScratchSettings | SwapSettings;

/** A data set as the experiment uses it: part of the settings, so a resumed run meets the same data. */
export interface DataSettings {
  spec: string;
  preprocess: PreprocessOptions;
  /** sha256 of the train, validation and test samples and labels, as trained on */
  sha256: string;
  counts: { train: number; val: number; test: number };
  classes: number;
  sampleShape: number[];
  /** from scratch, feature vectors: z-scored with the training split's statistics */
  standardized: boolean;
}

export interface LoadedSets {
  train: Dataset;
  val: Dataset;
  test: Dataset;
  settings: DataSettings;
}

const hashSets = (sets: Dataset[]): string => {
  const h = createHash('sha256');
  for (const ds of sets) {
    h.update(JSON.stringify([ds.count, ds.sampleShape]));
    h.update(new Uint8Array(ds.x.buffer, ds.x.byteOffset, ds.count * elementCount(ds.sampleShape) * 4));
    h.update(new Uint8Array(ds.y.buffer, ds.y.byteOffset, ds.y.byteLength));
  }
  return h.digest('hex');
};

/** Rows 0..n-1 thinned to `limit`, spread evenly (the same rule as eval's --limit). */
function evenly(n: number, limit: number): Int32Array {
  return Int32Array.from({ length: limit }, (_, k) => Math.floor((k * n) / limit));
}

/** Feature vectors z-scored per feature with the training split's statistics (a constant feature is only centred). */
function standardize(train: Dataset, others: Dataset[]): void {
  const f = train.sampleShape[0]!;
  const mean = new Float64Array(f);
  const sd = new Float64Array(f);
  for (let i = 0; i < train.count; i++) for (let j = 0; j < f; j++) mean[j]! += train.x[i * f + j]! / train.count;
  for (let i = 0; i < train.count; i++) for (let j = 0; j < f; j++) sd[j]! += (train.x[i * f + j]! - mean[j]!) ** 2 / train.count;
  for (let j = 0; j < f; j++) sd[j] = Math.sqrt(sd[j]!) || 1;
  for (const ds of [train, ...others]) for (let i = 0; i < ds.count; i++) for (let j = 0; j < f; j++) ds.x[i * f + j] = (ds.x[i * f + j]! - mean[j]!) / sd[j]!;
}

export interface LoadSetsOptions {
  limit: number | null;
  preprocess: PreprocessOptions;
  data?: Omit<LoadDataOptions, 'split' | 'seed'>;
  standardize: boolean;
}

/** One classification data set, limited, split 80/10/10 and preprocessed. */
export async function loadSets(spec: string, o: LoadSetsOptions): Promise<LoadedSets> {
  if (parseSpec(spec).split) throw new UserError(spec, 'names a split; the experiment splits each data set itself (80/10/10, seed 0): give the whole set');
  const all = await loadData(spec, { ...o.data, split: 'all' });
  if (isReference(all)) throw new UserError(spec, 'holds reference cases (test_data_set folders), not labelled samples to train on');
  if (all.task !== 'classification') throw new UserError(spec, 'is regression data; the experiment compares classifiers (accuracy, macro-F1, AUC)');
  const base = o.limit !== null && o.limit < all.count ? select(all, evenly(all.count, o.limit)) : all;
  const [train, val, test] = (['train', 'val', 'test'] as const).map((s) => preprocess(applySplit(base, s), o.preprocess)) as [Dataset, Dataset, Dataset];
  if (train.count < 2 || val.count < 1 || test.count < 2)
    throw new UserError(
      spec,
      `${base.count} samples split into ${train.count}/${val.count}/${test.count}: too few to train, validate and test; give more data (or a higher limit)`,
    );
  let classes = all.classes?.length ?? 0;
  for (const ds of [train, val, test]) for (let i = 0; i < ds.count; i++) classes = Math.max(classes, ds.y[i]! + 1);
  const standardized = o.standardize && train.sampleShape.length === 1;
  if (standardized) standardize(train, [val, test]);
  return {
    train,
    val,
    test,
    settings: {
      spec,
      preprocess: o.preprocess,
      sha256: hashSets([train, val, test]),
      counts: { train: train.count, val: val.count, test: test.count },
      classes: Math.max(classes, 2),
      sampleShape: train.sampleShape,
      standardized,
    },
  };
}

/** sha256 over the initializers' names and bytes: what "the same starting weights" means. */
export function weightsHash(model: ModelProto): string {
  const h = createHash('sha256');
  for (const t of model.graph?.initializer ?? []) {
    h.update(`${t.name}\0${t.dataType}\0${(t.dims ?? []).join(',')}\0`);
    h.update(t.rawData ?? new Uint8Array(0));
  }
  return h.digest('hex');
}

export interface ExperimentHooks {
  runtime: Runtime;
  signal?: AbortSignal;
  /** a run is starting: for progress */
  onStart?(label: string, index: number, total: number): void;
  /** each epoch's progress inside a run */
  onStep?(batch: number, batches: number): void;
  /** a run finished and was recorded (skipped: already in the results file) */
  onRun?(run: RunRecord, skipped: boolean, index: number, total: number): void;
}

interface PlannedRun {
  data: string;
  variant: string;
  seed: number | null;
  go(): Promise<Omit<RunRecord, 'finishedAt' | 'seconds'>>;
}

export async function testScores(
  rt: Runtime,
  model: ModelProto,
  sourceDir: string,
  file: string,
  test: Dataset,
  batch: number,
  input?: string,
  output?: string,
): Promise<TestScores> {
  const session = await rt.load(encodeInline(model, sourceDir), { name: file });
  try {
    const inMeta = input ? session.inputs.find((i) => i.name === input) : session.inputs[0];
    const outName = output ?? session.outputs[0]?.name;
    if (!inMeta || !outName) throw new UserError(file, `has no input${input ? ` '${input}'` : ''} or output to score`);
    const fit = fitSample(inMeta.shape, test.sampleShape);
    if (!fit?.hasBatchDim)
      throw new UserError(
        file,
        `input '${inMeta.name}' takes shape [${inMeta.shape.join(', ')}]; samples of shape [${test.sampleShape.join(', ')}] with a batch dimension do not fit`,
      );
    const fixed = typeof inMeta.shape[0] === 'number' && (inMeta.shape[0] as number) > 0 ? (inMeta.shape[0] as number) : undefined;
    const p = await predict(
      session,
      inMeta.name,
      outName,
      test,
      { sampleDims: fit.sampleDims, inputType: 'float32', labelDims: [1] },
      fixed ?? batch,
      fixed !== undefined,
      {},
    );
    if (p.perSample < 2) throw new UserError(file, `output '${outName}' has ${p.perSample} value per sample; a classifier needs one score per class`);
    const m = classificationMetrics(p.scores, test.y, p.perSample);
    return { accuracy: m.top1, macroF1: m.macroF1, auc: m.rocAuc, loss: m.loss };
  } finally {
    await session.release();
  }
}

const curveOf = (log: FinetuneLog): CurvePoint[] => [
  { epoch: 0, trainLoss: null, valAccuracy: typeof log.initial.accuracy === 'number' ? log.initial.accuracy : null },
  ...log.epochs.map((e) => ({ epoch: e.epoch, trainLoss: e.trainLoss, valAccuracy: typeof e.val.accuracy === 'number' ? e.val.accuracy : null })),
];

interface TrainArgs {
  model: ModelProto;
  sourceDir: string;
  file: string;
  sets: LoadedSets;
  seed: number;
  t: TrainingSettings;
  hooks: ExperimentHooks;
  input?: string;
  output?: string;
}

async function trainAndTest(a: TrainArgs): Promise<Omit<RunRecord, 'data' | 'variant' | 'seed' | 'finishedAt' | 'seconds' | 'initialWeights'>> {
  const { log, model } = await finetune({
    model: a.model,
    sourceDir: a.sourceDir,
    file: a.file,
    train: a.sets.train,
    val: a.sets.val,
    runtime: a.hooks.runtime,
    epochs: a.t.epochs,
    batchSize: a.t.batchSize,
    optimizer: { name: 'adam' },
    schedule: { name: 'constant', lr: a.t.lr },
    seed: a.seed,
    shuffle: true,
    ...(a.input ? { input: a.input } : {}),
    ...(a.output ? { output: a.output } : {}),
    ...(a.hooks.signal ? { signal: a.hooks.signal } : {}),
    onProgress: a.hooks.onStep ? (p) => a.hooks.onStep!(p.batch, p.batches) : undefined,
  });
  const test = await testScores(a.hooks.runtime, model, a.sourceDir, a.file, a.sets.test, a.t.batchSize, a.input, a.output);
  return { test, curve: curveOf(log), bestEpoch: log.best?.epoch ?? null };
}

export interface ExperimentResult {
  settings: ExperimentSettings;
  runs: RunRecord[];
  /** runs found in the results file and not run again */
  skipped: number;
}

/** Runs every planned run not yet in the results file, recording each as it finishes. */
async function execute(
  settings: ExperimentSettings,
  plan: PlannedRun[],
  resultsPath: string,
  resume: boolean,
  force: boolean,
  hooks: ExperimentHooks,
): Promise<ExperimentResult> {
  const file = await ResultsFile.open(resultsPath, settings, resume, force);
  let skipped = 0;
  for (const [i, p] of plan.entries()) {
    const key = runKey(p);
    if (file.has(key)) {
      skipped++;
      hooks.onRun?.(file.runs.find((r) => runKey(r) === key)!, true, i + 1, plan.length);
      continue;
    }
    hooks.onStart?.(`${p.data} ${p.variant}${p.seed === null ? '' : ` seed ${p.seed}`}`, i + 1, plan.length);
    const t0 = Date.now();
    const r = await p.go();
    const run: RunRecord = { ...r, seconds: (Date.now() - t0) / 1000, finishedAt: new Date().toISOString() };
    await file.add(run);
    hooks.onRun?.(run, false, i + 1, plan.length);
  }
  // the file's order (resumed runs first) is not the plan's: report in plan order
  const order = new Map(plan.map((p, i) => [runKey(p), i]));
  const runs = [...file.runs].sort((a, b) => order.get(runKey(a))! - order.get(runKey(b))!);
  return { settings, runs, skipped };
}

export interface ScratchOptions {
  arch: ArchSpec;
  variants: Activation[];
  seeds: number[];
  /** data sets, loaded (loadSets with standardize: true) */
  data: LoadedSets[];
  training: TrainingSettings;
  results: string;
  resume: boolean;
  force: boolean;
}

/** From scratch: every data set × seed × variant. */
export async function runScratch(o: ScratchOptions, hooks: ExperimentHooks): Promise<ExperimentResult> {
  const settings: ScratchSettings = { mode: 'scratch', arch: o.arch, variants: o.variants, seeds: o.seeds, data: o.data.map((d) => d.settings), ...o.training };
  const plan: PlannedRun[] = [];
  for (const sets of o.data) {
    const label = sets.settings.spec;
    for (const seed of o.seeds) {
      for (const variant of o.variants) {
        plan.push({
          data: label,
          variant,
          seed,
          go: async () => {
            const model = buildModel({ ...o.arch, activation: variant, sampleShape: sets.settings.sampleShape, classes: sets.settings.classes, seed });
            const initialWeights = weightsHash(model);
            const r = await trainAndTest({ model, sourceDir: process.cwd(), file: `${o.arch.arch}-${variant}-seed${seed}`, sets, seed, t: o.training, hooks });
            return { data: label, variant, seed, initialWeights, ...r };
          },
        });
      }
    }
  }
  return execute(settings, plan, o.results, o.resume, o.force, hooks);
}

export const SWAP_VARIANTS = ['original', 'converted', 'alrelu-finetuned', 'relu-finetuned'] as const;

export interface SwapOptions {
  /** the pretrained ReLU model as read, and where its external data lives */
  model: ModelProto;
  sourceDir: string;
  file: string;
  alpha: number;
  seeds: number[];
  data: LoadedSets;
  training: TrainingSettings;
  input?: string;
  output?: string;
  results: string;
  resume: boolean;
  force: boolean;
}

/** Swap and fine-tune: (a) original, (b) converted, then per seed (c) converted + K epochs, (d) ReLU + K epochs. */
export async function runSwap(o: SwapOptions, hooks: ExperimentHooks): Promise<ExperimentResult> {
  const bytes = encodeInline(o.model, o.sourceDir);
  const converted = decodeModel(encodeModel(o.model));
  const report = convert(converted, { alpha: o.alpha, file: o.file });
  if (report.replaced === 0) throw new UserError(o.file, 'has no Relu or LeakyRelu to convert; there is nothing to compare');
  const settings: SwapSettings = {
    mode: 'swap',
    model: { file: o.file, sha256: createHash('sha256').update(bytes).digest('hex') },
    alpha: o.alpha,
    seeds: o.seeds,
    data: [o.data.settings],
    ...o.training,
  };
  const label = o.data.settings.spec;
  const startWeights = weightsHash(decodeModel(bytes));
  const io = { ...(o.input ? { input: o.input } : {}), ...(o.output ? { output: o.output } : {}) };
  const scoreOnly = (variant: string, model: ModelProto): PlannedRun => ({
    data: label,
    variant,
    seed: null,
    go: async () => ({
      data: label,
      variant,
      seed: null,
      initialWeights: startWeights,
      curve: [],
      bestEpoch: null,
      test: await testScores(hooks.runtime, model, o.sourceDir, o.file, o.data.test, o.training.batchSize, o.input, o.output),
    }),
  });
  const plan: PlannedRun[] = [scoreOnly('original', o.model), scoreOnly('converted', converted)];
  for (const seed of o.seeds) {
    for (const [variant, model] of [
      ['alrelu-finetuned', converted],
      ['relu-finetuned', o.model],
    ] as const) {
      plan.push({
        data: label,
        variant,
        seed,
        go: async () => ({
          data: label,
          variant,
          seed,
          initialWeights: startWeights,
          ...(await trainAndTest({ model, sourceDir: o.sourceDir, file: o.file, sets: o.data, seed, t: o.training, hooks, ...io })),
        }),
      });
    }
  }
  return execute(settings, plan, o.results, o.resume, o.force, hooks);
}
