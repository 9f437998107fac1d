/**
 * The training loop: epochs of optimizer steps on any Runtime, validation after each epoch, the best
 * parameters kept, a checkpoint at every epoch end, early stopping, resume, and a clean stop on NaN/Inf
 * loss or interruption. The result is the input model, graph unchanged, with its trained initializers
 * replaced by the best epoch's values.
 *
 * Files (all written atomically, never half): the checkpoint after each epoch; the output model and
 * the JSON log only when the run ends normally (all epochs, or early stopping).
 */
import { createHash } from 'node:crypto';
import { checkOutputs, sameFile, writeFileAtomic, type InputSource } from '../atomic.js';
import { UserError } from '../errors.js';
import type { Dataset } from '../data/types.js';
import { fitSample } from '../runtime/feed.js';
import { isExternal, readExternalBytes } from '../onnx/external.js';
import { decodeModel, encodeModel } from '../onnx/schema.js';
import type { ModelProto, TensorProto } from '../onnx/types.js';
import { encodeInline, externalDataInputs, modelOutputFiles, writeModel } from '../onnx/write.js';
import { tensorFromProto, bytesOf, toFloat64 } from '../runtime/tensor.js';
import type { AdapterInfo, HostTensor, Runtime, Session, TensorType } from '../runtime/types.js';
import { epochOrder, inputBatch, labelBatch, type BatchShape } from './batches.js';
import {
  readCheckpoint,
  settingsDifferences,
  writeCheckpoint,
  type Checkpoint,
  type CheckpointMeta,
  type EpochRecord,
  type RunSettings,
} from './checkpoint.js';
import { checkOptimizer, stateSlots, type OptimizerConfig } from './optim.js';
import { chooseParameters } from './params.js';
import { deviceResident, stepKernels, StepRunner, zerosLike } from './runner.js';
import { checkSchedule, learningRate, type ScheduleConfig } from './schedule.js';
import { buildEvalModel, type ForwardOptions } from './forward.js';
import { demoteData, promoteTensor } from './precision.js';
import { buildTrainingModel, type TrainingModel } from './step.js';
import { batchNormLayers, type BatchNormChoice, type BatchNormMode } from './batchnorm.js';
import { metricsOf, predict } from './validate.js';
import { elementCount } from '../onnx/tensor.js';
import { sourcesKey, type SplitSources } from '../data/ownSplits.js';
import type { ImageSizeChoice } from '../data/imageSize.js';
import type { HeadReplacement } from './head.js';

export interface FinetuneProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** mean loss of this epoch's steps so far */
  runningLoss: number;
}

export interface FinetuneOptions {
  /** the model to fine-tune (not modified) and where its external data lives */
  model: ModelProto;
  sourceDir: string;
  /** for messages and the log */
  file: string;
  train: Dataset;
  val: Dataset;
  /** evaluated once with the best parameters at the end, when given */
  test?: Dataset;
  runtime: Runtime;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig;
  seed?: number;
  shuffle?: boolean;
  freeze?: string[];
  trainOnly?: string[];
  /** BatchNormalization as exported ('frozen', default) or with batch statistics and running updates ('train') */
  batchNorm?: BatchNormMode;
  /** stop after this many epochs without a better validation score */
  patience?: number;
  /** at most this many steps per epoch (short runs, tests) */
  maxSteps?: number;
  input?: string;
  output?: string;
  /** where the fine-tuned model goes; undefined: nothing written (library use) */
  out?: string;
  force?: boolean;
  checkpoint?: string;
  log?: string;
  /**
   * where the optimizer's update runs: 'auto' (default) chooses by where the parameters live and their size
   * (updateOn below); 'host' needs parameters in host memory (cpu, wasm, the browser EPs)
   */
  updateOn?: 'auto' | 'graph' | 'host';
  /** continue the run saved in `checkpoint` (true), or in this file (the run's checkpoints still go to `checkpoint`) */
  resume?: boolean | string;
  /** further files the run reads (data), which no output may replace */
  inputs?: InputSource[];
  /** where each split came from; recorded in the log, and own split files are part of the run's identity */
  sources?: SplitSources;
  /** the classifier head replaced before training (replaceHead); recorded, and part of the run's identity */
  head?: HeadReplacement;
  /** image folders: the size the images were resized to, and why; recorded in the log */
  imageSize?: ImageSizeChoice;
  signal?: AbortSignal;
  onProgress?: (p: FinetuneProgress) => void;
  onEpoch?: (e: EpochRecord) => void;
  say?: (line: string) => void;
}

export interface FinetuneLog {
  model: string;
  output: string | null;
  ep: string;
  /** threads the provider computed with (onnxruntime's intra-op pool, or wasm threads) */
  threads: number;
  /** webgpu and browser-webgpu: the adapter trained on, and whether it is a software (CPU) one */
  adapter?: AdapterInfo;
  startedAt: string;
  data: { train: number; val: number; test: number | null; classes: number | null; task: Dataset['task']; sources?: SplitSources; imageSize?: ImageSizeChoice };
  /** the classifier head replaced before training, when it was */
  head?: HeadReplacement;
  loss: { kind: string; note: string };
  /** default-domain opset of the model and of the training graph (raised where the gradients need newer ops) */
  opset: { model: number; training: number; rewritten: number };
  /** float16/bfloat16 parameters were trained in float32 and rounded back when written */
  float32Master: boolean;
  parameters: { trainable: string[]; frozen: { name: string; reason: string }[]; values: number };
  /** 'train': layers normalized with batch statistics, whose running statistics (`running`) the run updates */
  batchNorm: { mode: BatchNormMode; running: string[] } & BatchNormChoice;
  batch: { size: number; relaxed: boolean; originalBatch: number | string | null; stepsPerEpoch: number };
  optimizer: Required<OptimizerConfig>;
  schedule: ScheduleConfig;
  seed: number;
  shuffle: boolean;
  /** whether parameters and optimizer state stayed in device memory between steps */
  deviceResident: boolean;
  /** where the optimizer's update ran (updateOn: the graph on device EPs and for small models), and the convs on cpu's blocked-layout kernels */
  stepGraph: { update: 'graph' | 'host'; blockedConvs: number };
  /** validation score of the starting parameters */
  initial: Record<string, number | null>;
  epochs: EpochRecord[];
  best: { epoch: number; value: number; loss?: number; metric: string } | null;
  test: Record<string, number | null> | null;
  stopped: 'completed' | 'early-stopping';
  resumedFrom: number | null;
  seconds: number;
}

export interface FinetuneResult {
  log: FinetuneLog;
  /** the fine-tuned model (a copy of the input with updated initializers) */
  model: ModelProto;
  params: Record<string, HostTensor>;
}

/** A stop that leaves the last good checkpoint in place (NaN loss, interruption). */
export class TrainingStopped extends UserError {
  constructor(
    subject: string,
    cause: string,
    readonly reason: 'nan' | 'interrupted',
    exitCode = 2,
  ) {
    super(subject, cause, exitCode);
  }
}

const metricName = (ds: Dataset) => (ds.task === 'classification' ? 'accuracy' : 'mse');
/**
 * Higher accuracy (lower mse) wins; an accuracy tie goes to the lower validation loss. Without a
 * validation set (`ds` undefined) the value is the training loss: lower wins.
 */
function better(ds: Dataset | undefined, a: { value: number; loss?: number }, b: { value: number; loss?: number }): boolean {
  if (ds?.task !== 'classification') return a.value < b.value;
  if (a.value !== b.value) return a.value > b.value;
  return a.loss !== undefined && b.loss !== undefined && a.loss < b.loss;
}
const lossOf = (s: Record<string, number | null>) => (typeof s.loss === 'number' ? s.loss : undefined);

export function modelHash(model: ModelProto, sourceDir: string): string {
  return createHash('sha256').update(encodeInline(model, sourceDir)).digest('hex');
}

/** sha256 of the training and validation samples and labels, as the model sees them (after preprocessing). */
export function dataHash(train: Dataset, val: Dataset): string {
  const h = createHash('sha256');
  for (const ds of [train, val]) {
    h.update(JSON.stringify([ds.count, ds.sampleShape, ds.task, ds.targetSize ?? 1]));
    h.update(bytesOf(ds.x.subarray(0, ds.count * elementCount(ds.sampleShape))));
    h.update(bytesOf(ds.y));
  }
  return h.digest('hex');
}

type FileOptions = Pick<FinetuneOptions, 'model' | 'sourceDir' | 'file' | 'out' | 'checkpoint' | 'log' | 'resume' | 'force' | 'inputs'>;

/** The checkpoint a resumed run reads, or undefined. */
const resumeFile = (o: FileOptions): string | undefined => (typeof o.resume === 'string' ? o.resume : o.resume ? o.checkpoint : undefined);

/**
 * Checks every file the run will write (model and its data files, checkpoint, log) against the rules of
 * src/atomic.ts, before any work. Returns whether the checkpoint written is the one resumed from (then
 * replacing it is the point).
 */
export async function checkFinetuneFiles(o: FileOptions): Promise<{ continuing: boolean }> {
  const from = resumeFile(o);
  if (o.resume && !from) throw new UserError('resume', 'needs a checkpoint path');
  const continuing = from !== undefined && o.checkpoint !== undefined && (await sameFile(from, o.checkpoint));
  const outputs = [
    ...(o.out
      ? [
          o.out,
          ...modelOutputFiles(o.model, o.out, { sourceDir: o.sourceDir })
            .slice(1)
            .map((path) => ({ path, createFolders: true })),
        ]
      : []),
    ...(o.checkpoint
      ? [{ path: o.checkpoint, mayExist: continuing, existsCause: 'a checkpoint of an earlier run is here: --resume to continue it, or --force to start over' }]
      : []),
    ...(o.log ? [o.log] : []),
  ];
  await checkOutputs(outputs, {
    force: o.force,
    inputs: [
      { path: o.file, what: 'the input model' },
      ...(from && !continuing ? [{ path: from, what: 'the checkpoint resumed from' }] : []),
      ...(o.inputs ?? []),
      async () => externalDataInputs(o.model, o.sourceDir),
    ],
  });
  return { continuing };
}

/**
 * The input model with `params` written over its initializers: a copy (encode/decode keeps every field),
 * where the replaced tensors become inline and all others stay as they were, external data included.
 */
function withParameters(source: ModelProto, params: Record<string, HostTensor>): ModelProto {
  const copy = decodeModel(encodeModel(source));
  for (const t of copy.graph!.initializer ?? []) {
    const v = t.name ? params[t.name] : undefined;
    if (!v) continue;
    replaceData(t, v);
  }
  return copy;
}

function replaceData(t: TensorProto, v: HostTensor): void {
  // float16/bfloat16 parameters trained in float32 go back rounded to their own type
  t.rawData = demoteData(t.dataType, v) ?? new Uint8Array(bytesOf(v.data));
  for (const k of ['floatData', 'doubleData', 'externalData', 'dataLocation'] as const) delete (t as Record<string, unknown>)[k];
}

/** Values of the named initializers as host tensors (external data read). */
function initialParameters(model: ModelProto, sourceDir: string, names: string[]): Record<string, HostTensor> {
  const inits = new Map((model.graph!.initializer ?? []).map((t) => [t.name!, t]));
  const out: Record<string, HostTensor> = {};
  for (const n of names) out[n] = tensorFromProto(promoteTensor(inlineTensor(inits.get(n)!, sourceDir)));
  return out;
}

/** Checkpoint keys for state tensors: slot and parameter, independent of generated input names. */
const stateKey = (s: { slot: string; param: string }) => `${s.slot}:${s.param}`;

type EvalModel = ReturnType<typeof buildEvalModel>;

/** What the run trains and carries, checked against the options and (when resuming) the checkpoint. */
interface RunPlan {
  say: (line: string) => void;
  seed: number;
  shuffle: boolean;
  optimizer: Required<OptimizerConfig>;
  schedule: ScheduleConfig;
  /** the checkpoint written is the one resumed from */
  continuing: boolean;
  /** the checkpoint resumed from, read and checked against this model and these settings */
  resumed?: { file: string; checkpoint: Checkpoint };
  choice: ReturnType<typeof chooseParameters>;
  bnMode: BatchNormMode;
  bn: BatchNormChoice;
  /** running statistics trained with --bn train, carried with the parameters */
  running: string[];
  hash: string;
  settings: RunSettings;
  /** the starting values of the carried tensors (parameters and running statistics) */
  initialParams: Record<string, HostTensor>;
  /** options every forward and training model of the run is built with */
  base: ForwardOptions;
  /** the forward model as it is, whose input tells the batch geometry */
  evalModel: EvalModel;
}

/** The batch geometry the run trains and validates with, and the validation model that has it. */
interface BatchPlan {
  evalModel: EvalModel;
  session: Session;
  shape: BatchShape;
  batchSize: number;
  /** a fixed batch dimension made symbolic (checked against the original model) */
  relaxed: boolean;
  fixedBatch: boolean;
}

/** Where training starts: the training model and its runner's inputs, the starting score, and the checkpoint state. */
interface StartState {
  tm: TrainingModel;
  params: Record<string, HostTensor>;
  state: Record<string, HostTensor>;
  meta: CheckpointMeta;
  best: Record<string, HostTensor>;
  /** the epoch the file at o.checkpoint holds (what an interrupted run can continue from) */
  saved: number;
  classes: number | null;
  initial: Record<string, number | null>;
  stepsPerEpoch: number;
  /** the epoch the resumed checkpoint held */
  resumedFrom: number | null;
}

/**
 * The validation session's one owner: `load` replaces the session (releasing the one before), `close`
 * releases the last; finetune closes it once, however the run ends.
 */
class ValidationSession {
  private session?: Session;
  constructor(
    private readonly runtime: Runtime,
    private readonly file: string,
  ) {}
  async load(model: EvalModel): Promise<Session> {
    await this.close();
    // no arena: validation's activations are freed after each batch instead of staying reserved through
    // the training steps beside the step's own (ResNet-18 at batch 8: the fine-tune's peak 40-60 MB lower)
    this.session = await this.runtime.load(model.bytes, { name: this.file, arena: false });
    return this.session;
  }
  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.release();
  }
}

/** Scores of `ds` under the plan's validation model, with `params` over the starting values. */
async function scoresOf(plan: BatchPlan, run: RunPlan, ds: Dataset, params: Record<string, HostTensor>) {
  return predict(plan.session, plan.evalModel.input, plan.evalModel.output, ds, plan.shape, plan.batchSize, plan.fixedBatch, {
    ...run.initialParams,
    ...params,
  });
}

async function validationMetrics(plan: BatchPlan, run: RunPlan, ds: Dataset, params: Record<string, HostTensor>) {
  const p = await scoresOf(plan, run, ds, params);
  return metricsOf(ds, p.scores, p.perSample);
}

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const started = Date.now();
  const run = await planRun(o);
  const validation = new ValidationSession(o.runtime, o.file);
  try {
    const plan = await planBatches(o, run, validation);
    const start = await startState(o, run, plan);
    const runner = await StepRunner.open(o.runtime, start.tm, { params: start.params, state: start.state });
    let stopped: FinetuneLog['stopped'];
    try {
      stopped = await trainEpochs(o, run, plan, start, runner);
    } finally {
      await runner.close();
    }
    const testMetrics = o.test?.count ? (await validationMetrics(plan, run, o.test, start.best)).summary : null;
    const model = withParameters(o.model, start.best);
    const log = buildLog(o, run, plan, start, { started, stopped, testMetrics, deviceResident: runner.onDevice });
    if (o.out)
      await writeModel(model, o.out, { sourceDir: o.sourceDir, force: o.force, inputs: [{ path: o.file, what: 'the input model' }, ...(o.inputs ?? [])] });
    if (o.log) await writeFileAtomic(o.log, JSON.stringify(log, null, 2) + '\n', { replace: o.force });
    return { log, model, params: start.best };
  } finally {
    await validation.close();
  }
}

/** Checks the options and output files, chooses the parameters, and reads and checks the checkpoint resumed from. */
async function planRun(o: FinetuneOptions): Promise<RunPlan> {
  const say = o.say ?? (() => undefined);
  const seed = o.seed ?? 0;
  const shuffle = o.shuffle ?? true;
  const optimizer = checkOptimizer(o.optimizer);
  const schedule = checkSchedule(o.schedule);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new UserError('epochs', `must be a whole number ≥ 1, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new UserError('batchSize', `must be a whole number ≥ 1, got ${o.batchSize}`);
  if (o.updateOn !== undefined && !['auto', 'graph', 'host'].includes(o.updateOn))
    throw new UserError('updateOn', `must be 'auto', 'graph' or 'host', got ${JSON.stringify(o.updateOn)}`);
  if (o.updateOn === 'host' && deviceResident(o.runtime))
    throw new UserError('updateOn', `'host' needs parameters in host memory; on ${o.runtime.ep} they stay in device memory (use cpu, wasm or a browser EP)`);
  if (o.patience !== undefined && !(Number.isInteger(o.patience) && o.patience >= 1))
    throw new UserError('patience', `must be a whole number of epochs ≥ 1, got ${o.patience}`);
  const { train, val } = o;
  if (train.task !== val.task) throw new Error('train and validation sets differ in task');
  const { continuing } = await checkFinetuneFiles(o);
  const from = resumeFile(o);

  const choice = chooseParameters(o.model.graph!, { freeze: o.freeze, trainOnly: o.trainOnly });
  // --bn train: running statistics travel with the parameters (fed to validation, checkpointed, written out)
  const bnMode = o.batchNorm ?? 'frozen';
  const bn = bnMode === 'train' ? batchNormLayers(o.model.graph!, choice.trainable) : { train: [], frozen: [] };
  const running = bn.train.flatMap((l) => [l.mean, l.var]);
  const carried = [...choice.trainable, ...running];
  const hash = modelHash(o.model, o.sourceDir);
  let resumed: Checkpoint | undefined;
  if (from) {
    resumed = await readCheckpoint(from);
    if (resumed.meta.modelHash !== hash)
      throw new UserError(from, `was made for another model (or another version of ${o.file})${headDifference(resumed.meta.settings, o.head, seed)}`);
  }

  const initialParams = initialParameters(o.model, o.sourceDir, carried);
  // validation runs ALReLU as one LeakyRelu, as the step does (the written model keeps the user's form);
  // the forward as it is tells the input's shape, and stays the validation model unless the batch is relaxed
  const base = { sourceDir: o.sourceDir, file: o.file, params: carried, input: o.input, output: o.output, fuseActivations: true };
  const evalModel = buildEvalModel(o.model, { ...base });
  const settings: RunSettings = {
    data: {
      name: train.name,
      train: train.count,
      val: val.count,
      sha256: o.checkpoint || from ? dataHash(train, val) : '',
      // the user's own split files (not the seeded 80/10/10 of one set) are part of the identity
      ...(o.sources && sourcesKey(o.sources) !== undefined ? { sources: sourcesKey(o.sources) } : {}),
    },
    ...(o.head ? { numClasses: o.head.newClasses } : {}),
    batchSize: o.batchSize,
    optimizer,
    schedule: { name: schedule.name, lr: schedule.lr, every: schedule.every ?? 1, gamma: schedule.gamma ?? 0.1 },
    scheduleEpochs: schedule.name === 'cosine' ? o.epochs : null,
    seed,
    shuffle,
    freeze: o.freeze ?? [],
    trainOnly: o.trainOnly ?? [],
    input: evalModel.input,
    output: evalModel.output,
    maxSteps: o.maxSteps ?? null,
    batchNorm: bnMode,
  };
  if (resumed) {
    const diffs = settingsDifferences(resumed.meta.settings, settings);
    if (diffs.length) {
      throw new UserError(from!, `was made with ${diffs.join('; ')}; resume with the checkpoint's settings, or start the run over`);
    }
    if (resumed.meta.params.join('\n') !== choice.trainable.join('\n')) {
      throw new UserError(from!, 'trains a different set of parameters');
    }
  }
  return {
    say,
    seed,
    shuffle,
    optimizer,
    schedule,
    continuing,
    ...(resumed ? { resumed: { file: from!, checkpoint: resumed } } : {}),
    choice,
    bnMode,
    bn,
    running,
    hash,
    settings,
    initialParams,
    base,
    evalModel,
  };
}

/**
 * Batch geometry: the samples must fit the input with a batch dimension; a fixed batch dimension is
 * relaxed when the requested size differs, and kept (training in batches of it) when relaxing it
 * changes the model's outputs on the first samples.
 */
async function planBatches(o: FinetuneOptions, run: RunPlan, validation: ValidationSession): Promise<BatchPlan> {
  let evalModel = run.evalModel;
  let session = await validation.load(evalModel);
  const inMeta = session.inputs.find((i) => i.name === evalModel.input)!;
  const fit = fitSample(inMeta.shape, o.train.sampleShape);
  if (!fit?.hasBatchDim) {
    throw new UserError(
      o.file,
      `input '${evalModel.input}' takes shape [${inMeta.shape.join(', ')}]; samples of shape [${o.train.sampleShape.join(', ')}] with a batch dimension do not fit`,
    );
  }
  const fixed = typeof inMeta.shape[0] === 'number' && (inMeta.shape[0] as number) > 0 ? (inMeta.shape[0] as number) : undefined;
  const inputType: TensorType = inMeta.type === 'unknown' ? 'float32' : inMeta.type;
  const shape: BatchShape = { sampleDims: fit.sampleDims, inputType, labelDims: [1] };
  if (fixed === undefined) return { evalModel, session, shape, batchSize: o.batchSize, relaxed: false, fixedBatch: false };
  if (fixed === o.batchSize) return { evalModel, session, shape, batchSize: fixed, relaxed: false, fixedBatch: true };

  // Probe the output with a symbolic batch, and check it against the original model.
  evalModel = buildEvalModel(o.model, { ...run.base, dynamicBatch: true });
  session = await validation.load(evalModel);
  const probeSet = o.val.count ? o.val : o.train;
  const firstRows = Int32Array.from({ length: Math.min(o.batchSize, o.val.count || o.train.count) }, (_, k) => k);
  if (await relaxedAgrees(o, session, evalModel.input, evalModel.output, probeSet, shape, firstRows, fixed, run.initialParams)) {
    return { evalModel, session, shape, batchSize: o.batchSize, relaxed: true, fixedBatch: false };
  }
  run.say(`note: the model's batch dimension is fixed at ${fixed}; making it symbolic changed its outputs, so training uses batches of ${fixed}`);
  evalModel = run.evalModel;
  session = await validation.load(evalModel);
  return { evalModel, session, shape, batchSize: fixed, relaxed: false, fixedBatch: true };
}

/** past this much of parameters and optimizer state, their copies in and out of every step outweigh the rest */
const HOST_UPDATE_BYTES = 128 * 2 ** 20;

/**
 * Where the optimizer's update runs. Parameters in device memory are updated there. Host ones are updated
 * in place on the host (optim.ts hostUpdate) once they and their state are large: then the copies through
 * onnxruntime dominate (ResNet-18 with Adam, 141 MB: the fine-tune's peak fell 130-230 MB); below that the
 * graph's own update keeps the peak lower (MobileNetV2 with Adam, 42 MB: about 110 MB lower than on the
 * host, whose step was 15-30% faster).
 */
function updateOn(o: FinetuneOptions, run: RunPlan): 'graph' | 'host' {
  if (o.updateOn === 'host' || o.updateOn === 'graph') return o.updateOn; // checked in planRun
  if (deviceResident(o.runtime)) return 'graph';
  const values = run.choice.trainable.reduce((n, p) => n + (run.initialParams[p]?.data.length ?? 0), 0);
  return values * 4 * (1 + stateSlots(run.optimizer.name).length) >= HOST_UPDATE_BYTES ? 'host' : 'graph';
}

/**
 * Where training starts: the starting parameters' score (which also tells the output's classes and
 * label shape), the training model, and the parameters, optimizer state and record, fresh or resumed.
 */
async function startState(o: FinetuneOptions, run: RunPlan, plan: BatchPlan): Promise<StartState> {
  const { train, val } = o;
  const { batchSize, shape } = plan;
  const probeSet = val.count ? val : train;
  const initialPred = await scoresOf(plan, run, probeSet, {});
  const classes = train.task === 'classification' ? initialPred.perSample : null;
  checkLabels(train, val, initialPred.perSample, plan.evalModel.output);
  if (train.task === 'regression') shape.labelDims = initialPred.dims;

  if (run.running.length && batchSize < 2)
    throw new UserError('batchSize', `is ${batchSize}; BatchNormalization with batch statistics needs batches of 2 or more samples`);
  const tm = buildTrainingModel(o.model, {
    ...run.base,
    params: run.choice.trainable,
    batchNorm: run.bnMode,
    dynamicBatch: plan.relaxed,
    sampleDims: shape.sampleDims,
    batch: batchSize,
    task: train.task,
    optimizer: run.optimizer,
    outputRank: 1 + initialPred.dims.length,
    ...(await stepKernels(o.runtime)),
    optimizerOn: updateOn(o, run),
  });
  const stepsAvail = Math.floor(train.count / batchSize);
  if (stepsAvail < 1)
    throw new UserError('train', `the training split has ${train.count} samples, fewer than one batch of ${batchSize}; lower --batch-size or give more data`);
  const stepsPerEpoch = Math.min(stepsAvail, o.maxSteps ?? Infinity);

  const resumed = run.resumed?.checkpoint;
  const params = resumed ? resumed.params : run.initialParams;
  const state: Record<string, HostTensor> = {};
  for (const s of tm.state) state[s.name] = resumed?.state[stateKey(s)] ?? zerosLike(s.dims, s.dataType);
  if (run.resumed)
    checkTensors(
      run.resumed.file,
      run.resumed.checkpoint,
      [...tm.params, ...tm.running],
      tm.state.map((s) => ({ ...s, name: stateKey(s) })),
    );
  // The probe above ran the starting parameters over the validation set already (when there is one): its scores are the starting score.
  const initial = metricsOf(probeSet, initialPred.scores, initialPred.perSample);
  const initialMetrics = initial.summary;
  const initialVal = val.count ? initial : { value: NaN, summary: initialMetrics };

  const meta: CheckpointMeta = resumed?.meta ?? {
    version: 2,
    modelHash: run.hash,
    settings: run.settings,
    params: run.choice.trainable,
    epoch: 0,
    globalStep: 0,
    best: null,
    sinceBest: 0,
    history: [],
  };
  if (!meta.best && val.count) meta.best = { epoch: 0, value: initialVal.value, loss: lossOf(initialVal.summary) };
  if (resumed) run.say(`resuming after epoch ${meta.epoch} (step ${meta.globalStep}) from ${run.resumed!.file}`);
  return {
    tm,
    params,
    state,
    meta,
    best: resumed ? resumed.best : params,
    saved: run.continuing ? meta.epoch : 0,
    classes,
    initial: initialVal.summary,
    stepsPerEpoch,
    resumedFrom: resumed ? resumed.meta.epoch : null,
  };
}

/**
 * The epochs: steps, a NaN/Inf check, validation, the best parameters kept and a checkpoint at each
 * epoch's end, until the last epoch or early stopping. Updates `start` (meta, best, saved) as it goes.
 */
async function trainEpochs(o: FinetuneOptions, run: RunPlan, plan: BatchPlan, start: StartState, runner: StepRunner): Promise<FinetuneLog['stopped']> {
  const { train, val } = o;
  const { meta, stepsPerEpoch, tm } = start;
  const { batchSize, shape } = plan;
  const totalSteps = stepsPerEpoch * o.epochs;
  const lastGood = () => (start.saved ? `The last good checkpoint is ${o.checkpoint} (epoch ${start.saved})` : 'No epoch had completed; nothing was written');
  for (let epoch = meta.epoch; epoch < o.epochs; epoch++) {
    if (o.patience !== undefined && meta.sinceBest >= o.patience) return 'early-stopping';
    const t0 = Date.now();
    const order = epochOrder(train.count, run.seed, epoch, run.shuffle);
    let sum = 0;
    let lr = 0;
    for (let b = 0; b < stepsPerEpoch; b++) {
      if (o.signal?.aborted) {
        throw new TrainingStopped(
          o.file,
          `interrupted during epoch ${epoch + 1} (step ${meta.globalStep + 1}); ${start.saved ? `the checkpoint ${o.checkpoint} holds epoch ${start.saved}: continue with --resume` : 'no epoch had completed, nothing was written'}`,
          'interrupted',
          130,
        );
      }
      const rows = order.subarray(b * batchSize, (b + 1) * batchSize);
      lr = learningRate(run.schedule, epoch, meta.globalStep, totalSteps);
      const { loss } = await runner.step(inputBatch(train, rows, shape), labelBatch(train, rows, shape), meta.globalStep + 1, lr);
      if (!Number.isFinite(loss)) {
        throw new TrainingStopped(
          o.file,
          `loss is ${loss} at step ${meta.globalStep + 1} (epoch ${epoch + 1}, batch ${b + 1}); stopped. ${lastGood()}; try a lower --lr`,
          'nan',
        );
      }
      meta.globalStep++;
      sum += loss;
      o.onProgress?.({ epoch: epoch + 1, epochs: o.epochs, batch: b + 1, batches: stepsPerEpoch, runningLoss: sum / (b + 1) });
    }
    const snap = await runner.snapshot();
    // The last update of the epoch can overflow without a loss to show it: never checkpoint it.
    const bad = Object.entries(snap.params).find(([, t]) => !allFinite(t.data as Float32Array));
    if (bad) {
      throw new TrainingStopped(
        o.file,
        `parameter '${bad[0]}' holds NaN/Inf after step ${meta.globalStep} (epoch ${epoch + 1}); stopped. ${lastGood()}; try a lower --lr`,
        'nan',
      );
    }
    const v = val.count ? await validationMetrics(plan, run, val, snap.params) : { value: sum / stepsPerEpoch, summary: {} };
    const rec: EpochRecord = {
      epoch: epoch + 1,
      trainLoss: sum / stepsPerEpoch,
      valMetric: v.value,
      val: v.summary,
      lr,
      seconds: (Date.now() - t0) / 1000,
      steps: stepsPerEpoch,
    };
    meta.history.push(rec);
    meta.epoch = epoch + 1;
    const score = { value: v.value, loss: lossOf(v.summary) };
    if (!meta.best || better(val.count ? val : undefined, score, meta.best)) {
      meta.best = { epoch: epoch + 1, ...score };
      start.best = snap.params;
      meta.sinceBest = 0;
    } else {
      meta.sinceBest++;
    }
    o.onEpoch?.(rec);
    if (o.checkpoint) {
      const state: Record<string, HostTensor> = {};
      for (const s of tm.state) state[stateKey(s)] = snap.state[s.name]!;
      await writeCheckpoint(o.checkpoint, { meta, params: snap.params, state, best: start.best }, { replace: o.force || run.continuing || start.saved > 0 });
      start.saved = meta.epoch;
    }
  }
  return o.patience !== undefined && meta.epoch < o.epochs ? 'early-stopping' : 'completed';
}

/** The run's record: what was trained, how, each epoch, the best, and the test score. */
function buildLog(
  o: FinetuneOptions,
  run: RunPlan,
  plan: BatchPlan,
  start: StartState,
  end: { started: number; stopped: FinetuneLog['stopped']; testMetrics: Record<string, number | null> | null; deviceResident: boolean },
): FinetuneLog {
  const { train, val } = o;
  const { tm, meta } = start;
  const { running, choice } = run;
  return {
    model: o.file,
    output: o.out ?? null,
    ep: o.runtime.ep,
    threads: o.runtime.threads,
    ...(o.runtime.adapter ? { adapter: o.runtime.adapter } : {}),
    startedAt: new Date(end.started).toISOString(),
    data: {
      train: train.count,
      val: val.count,
      test: o.test?.count ?? null,
      classes: start.classes,
      task: train.task,
      ...(o.sources ? { sources: o.sources } : {}),
      ...(o.imageSize ? { imageSize: o.imageSize } : {}),
    },
    ...(o.head ? { head: o.head } : {}),
    loss: { kind: tm.loss.kind, note: tm.loss.note },
    opset: { model: tm.sourceOpset, training: tm.opset, rewritten: tm.rewritten },
    float32Master: tm.promoted,
    batchNorm: { mode: run.bnMode, running, ...run.bn },
    parameters: {
      trainable: tm.params.map((p) => p.name),
      frozen: [...choice.frozen.filter((f) => !running.includes(f.name)), ...tm.noGrad.map((name) => ({ name, reason: 'the loss does not depend on it' }))],
      values: tm.params.reduce((n, p) => n + elementCount(p.dims), 0),
    },
    batch: { size: plan.batchSize, relaxed: plan.relaxed, originalBatch: tm.originalBatch, stepsPerEpoch: start.stepsPerEpoch },
    optimizer: run.optimizer,
    schedule: run.schedule,
    seed: run.seed,
    shuffle: run.shuffle,
    deviceResident: end.deviceResident,
    stepGraph: { update: tm.hostOptimizer ? 'host' : 'graph', blockedConvs: tm.blockedConvs },
    initial: start.initial,
    epochs: meta.history,
    best: meta.best ? { ...meta.best, metric: val.count ? metricName(val) : 'train loss' } : null,
    test: end.testMetrics,
    stopped: end.stopped,
    resumedFrom: start.resumedFrom,
    seconds: (Date.now() - end.started) / 1000,
  };
}

/** A plain loop: typed-array every() with a callback took 1.4 s over ResNet-18's 11.7M parameters. */
function allFinite(a: Float32Array | Float64Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

/**
 * A new head is part of the model trained: a checkpoint of another head count, or of a head drawn from
 * another seed, is for another model. Says which, where it is one of those.
 */
function headDifference(was: RunSettings, head: HeadReplacement | undefined, seed: number): string {
  const a = was.numClasses ?? null;
  const b = head?.newClasses ?? null;
  const own = "the model's own head";
  if (a !== b) return `: its run had ${a === null ? own : `a new head of ${a} classes`}, this one has ${b === null ? own : `a new head of ${b} classes`}`;
  if (b !== null && was.seed !== seed) return `: its new head was drawn with seed ${was.seed}, this run's with seed ${seed}`;
  return '';
}

/** A resumed checkpoint holds exactly the run's tensors, each with its type and dims. */
function checkTensors(file: string, c: Checkpoint, params: { name: string; dims: number[] }[], state: { name: string; dims: number[] }[]): void {
  const check = (part: Record<string, HostTensor>, want: { name: string; dims: number[] }[], what: string) => {
    const names = new Set(want.map((w) => w.name));
    const extra = Object.keys(part).find((k) => !names.has(k));
    if (extra !== undefined) throw new UserError(file, `holds ${what} '${extra}', which this run does not train`);
    for (const w of want) {
      const v = part[w.name];
      if (!v) throw new UserError(file, `${what} '${w.name}' is missing`);
      if (v.type !== 'float32' || v.dims.join(',') !== w.dims.join(',')) {
        throw new UserError(file, `${what} '${w.name}' is ${v.type} [${v.dims.join(', ')}], this run needs float32 [${w.dims.join(', ')}]`);
      }
    }
  };
  check(c.params, params, 'parameter');
  check(c.best, params, 'best parameter');
  check(c.state, state, 'optimizer state');
}

function inlineTensor(t: TensorProto, sourceDir: string): TensorProto {
  if (!isExternal(t)) return t;
  const { dataLocation: _location, externalData: _ref, ...inline } = t;
  return { ...inline, rawData: readExternalBytes(sourceDir, t) };
}

function checkLabels(train: Dataset, val: Dataset, perSample: number, output: string): void {
  if (train.task === 'classification') {
    let max = -1;
    for (const ds of [train, val]) for (let i = 0; i < ds.count; i++) max = Math.max(max, ds.y[i]!);
    if (max >= perSample) {
      throw new UserError(
        'data',
        `labels go up to ${max}, but the model's output '${output}' has ${perSample} value${perSample === 1 ? '' : 's'} per sample (classes 0..${perSample - 1})`,
      );
    }
    return;
  }
  const ts = train.targetSize ?? 1;
  if (ts !== perSample) throw new UserError('data', `targets have ${ts} values per sample, but the model's output '${output}' has ${perSample}`);
}

async function relaxedAgrees(
  o: FinetuneOptions,
  relaxed: Session,
  input: string,
  output: string,
  ds: Dataset,
  shape: BatchShape,
  rows: Int32Array,
  fixed: number,
  params: Record<string, HostTensor>,
): Promise<boolean> {
  if (rows.length < fixed) return false;
  const original = await o.runtime.load(encodeInline(o.model, o.sourceDir), { name: o.file });
  try {
    const a = toFloat64((await relaxed.run({ [input]: inputBatch(ds, rows, shape), ...params }))[output]!);
    // Each of the first few blocks of `fixed` rows must match the original model run on that block alone.
    const blocks = Math.min(4, Math.floor(rows.length / fixed));
    for (let k = 0; k < blocks; k++) {
      const b = toFloat64((await original.run({ [input]: inputBatch(ds, rows.subarray(k * fixed, (k + 1) * fixed), shape) }))[output]!);
      if (a.length !== (b.length / fixed) * rows.length) return false;
      const off = k * b.length;
      for (let i = 0; i < b.length; i++) if (!(Math.abs(a[off + i]! - b[i]!) <= 1e-4 * (1 + Math.abs(b[i]!)))) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    await original.release();
  }
}
