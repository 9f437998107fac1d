/** `alrelu-convert finetune <model.onnx> --data <spec>`: training on onnxruntime, on any execution provider. */
import { type Command, Option } from 'commander';
import { checkOutputs, writeFileAtomic, type InputPath } from '../atomic.js';
import { convert } from '../convert/convert.js';
import { parseSpec } from '../data/index.js';
import { describeImageSize, imageSizeChoice, modelImageSize, withSizeOrigin, type ImageSizeChoice } from '../data/imageSize.js';
import { describeSources, loadTrainingSets, type SplitSources } from '../data/ownSplits.js';
import type { Dataset } from '../data/types.js';
import { UserError } from '../errors.js';
import { readModel, type ModelFile } from '../onnx/read.js';
import { externalDataInputs } from '../onnx/write.js';
import type { ModelProto } from '../onnx/types.js';
import { isEpName, openRuntime, type RuntimeOptions } from '../runtime/index.js';
import { EP_NAMES, type EpName } from '../runtime/types.js';
import { pct } from '../eval/table.js';
import type { EpochRecord } from '../train/checkpoint.js';
import { firstBatchGradients } from '../train/gradients.js';
import { MAX_HEAD_CLASSES, replaceHead, type HeadReplacement } from '../train/head.js';
import { checkFinetuneFiles, finetune, TrainingStopped, type FinetuneLog } from '../train/loop.js';
import { OPTIMIZERS, type OptimizerName } from '../train/optim.js';
import { BATCH_NORM_MODES, type BatchNormMode } from '../train/batchnorm.js';
import { SCHEDULES, type ScheduleName } from '../train/schedule.js';
import { checkSelection, defaultOutput, parseOps, type ConvertCliOptions } from './convertOptions.js';
import {
  addPreprocessOptions,
  collect,
  dataInputs,
  outputBeside,
  dataOptions,
  maxDataSizeOption,
  parseInteger,
  parseNumber,
  parseThreads,
  parseWebgpuAdapter,
  preprocessOptions,
  threadsOption,
  webgpuAdapterOption,
  type PreprocessCliOptions,
} from './options.js';
import { printable } from '../printable.js';
import { action, printJson, progressBar, say, type GlobalOptions } from './run.js';

export interface FinetuneCliOptions extends GlobalOptions, PreprocessCliOptions {
  data: string;
  valData?: string;
  testData?: string;
  numClasses?: string;
  output?: string;
  ep: string;
  epochs: string;
  batchSize: string;
  lr?: string;
  optimizer: OptimizerName;
  threads?: string;
  webgpuAdapter?: string;
  weightDecay?: string;
  momentum?: string;
  schedule: ScheduleName;
  lrStep?: string;
  lrGamma?: string;
  seed: string;
  shuffle: boolean;
  freeze: string[];
  trainOnly: string[];
  bn?: BatchNormMode;
  patience?: string;
  maxSteps?: string;
  resume?: string | boolean;
  checkpoint?: string;
  log?: string;
  force?: boolean;
  input?: string;
  trainOutput?: string;
  dumpGradients?: string;
}

const num = parseNumber;
const whole = parseInteger;

const defaultFinetuneOutput = (input: string): string => outputBeside(input, '.finetuned.onnx');

/** torch's defaults: SGD has none (0.01 here), Adam/AdamW 1e-3; AdamW's weight decay 0.01. */
const DEFAULT_LR: Record<OptimizerName, number> = { sgd: 0.01, momentum: 0.01, adam: 0.001, adamw: 0.001 };

/** The training options `finetune` and `convert --finetune` share, with one set of defaults; `lead` starts each help text. */
function addTrainingOptions(cmd: Command, lead = ''): Command {
  return cmd
    .addOption(new Option('--ep <ep>', `${lead}execution provider to train on`).choices([...EP_NAMES]).default('cpu'))
    .option('--epochs <n>', `${lead}passes over the training split`, '3')
    .option('--batch-size <n>', `${lead}samples per step`, '32')
    .option('--lr <x>', `${lead}learning rate (default 0.01 for sgd/momentum, 0.001 for adam/adamw)`)
    .addOption(new Option('--optimizer <name>', `${lead}optimizer (PyTorch formulas)`).choices([...OPTIMIZERS]).default('adam'))
    .addOption(webgpuAdapterOption(lead));
}

/** The training step and the validation session take turns: idle pools must sleep, not spin on each other's cores. */
function trainingRuntimeOptions(o: Pick<FinetuneCliOptions, 'threads' | 'webgpuAdapter'>): RuntimeOptions {
  return { ...parseThreads(o.threads), ...parseWebgpuAdapter(o.webgpuAdapter), spinning: false };
}

/** --bn: PyTorch's model.train() vs the exported (eval-mode) BatchNormalization; `lead` starts the help text. */
function bnOption(lead = ''): Option {
  return new Option(
    '--bn <mode>',
    `${lead}BatchNormalization: frozen (running statistics as exported) or train (batch statistics, running statistics updated as PyTorch does; layers whose scale and bias are all frozen stay frozen)`,
  )
    .choices([...BATCH_NORM_MODES])
    .default('frozen');
}

function addFinetuneOptions(cmd: Command): Command {
  return addTrainingOptions(
    addPreprocessOptions(
      addOwnSplitOptions(
        cmd.requiredOption(
          '--data <spec>',
          'labelled data: built-in mnist|iris|penguins|spam, or .npz (x, y), .npy, .csv, an image folder; split 80/10/10 into train/val/test unless --val-data or --test-data is given',
        ),
      ),
    ).option('-o, --output <file>', 'fine-tuned model (default: <name>.finetuned.onnx beside the input)'),
  )
    .option('--weight-decay <x>', 'L2 added to the gradient (sgd, momentum, adam) or decoupled (adamw; default 0.01 there, else 0)')
    .option('--momentum <x>', 'momentum for --optimizer momentum', '0.9')
    .addOption(threadsOption())
    .addOption(
      new Option('--schedule <name>', 'learning-rate schedule: constant, step (×gamma every --lr-step epochs), cosine (per step to 0)')
        .choices([...SCHEDULES])
        .default('constant'),
    )
    .option('--lr-step <n>', 'epochs between decays for --schedule step', '1')
    .option('--lr-gamma <x>', 'decay factor for --schedule step', '0.1')
    .option('--seed <n>', 'seed of the batch order', '0')
    .option('--no-shuffle', 'train on the samples in file order')
    .option('--freeze <pattern>', 'keep matching parameters fixed (initializer-name glob or /regex/; repeatable)', collect, [])
    .option('--train-only <pattern>', 'train only matching parameters (glob or /regex/; repeatable)', collect, [])
    .addOption(bnOption())
    .option('--patience <n>', 'stop after n epochs without a better validation score')
    .option('--max-steps <n>', 'at most n steps per epoch (quick runs)')
    .option('--resume [checkpoint]', 'continue the run saved in the checkpoint (default: <output>.ckpt)')
    .option('--checkpoint <file>', "where each epoch's checkpoint goes (default: <output>.ckpt)")
    .option('--log <file>', 'JSON log of the run (default: <output>.log.json)')
    .option('--force', 'overwrite an existing output, log and checkpoint')
    .option('--input <name>', 'model input that receives the data (default: the only one)')
    .option('--train-output <name>', 'model output the loss is computed on (default: the first)')
    .option(
      '--num-classes <n>',
      "replace the classifier head (the Gemm, or MatMul + Add, that makes the logits) with a fresh one of n outputs, initialised as PyTorch's nn.Linear from --seed: for a new label set",
    )
    .option('--dump-gradients <file.json>', "write the loss and every parameter's gradient on the first training batch, then stop");
}

/** --val-data and --test-data: the user's own splits; `lead` starts each help text. */
function addOwnSplitOptions(cmd: Command, lead = ''): Command {
  return cmd
    .option(
      '--val-data <spec>',
      `${lead}validation set of your own (same kinds as --data; .npy as x.npy with y.npy beside it): --data is then all training data, no split is made`,
    )
    .option('--test-data <spec>', `${lead}test set of your own, evaluated once at the end: --data is then all training data, no split is made`);
}

export interface FinetuneSplits {
  train: Dataset;
  val: Dataset;
  test?: Dataset;
}

interface LoadedSplits {
  splits: FinetuneSplits;
  sources: SplitSources;
  imageSize?: ImageSizeChoice;
}

/**
 * The training, validation and test sets: --data split 80/10/10, or --data whole with --val-data and/or
 * --test-data. Image folders are resized to --image-size, else the model input's static height and
 * width, else the first image's size.
 */
async function loadSplits(o: FinetuneCliOptions, model: ModelProto): Promise<LoadedSplits> {
  const own = o.valData !== undefined || o.testData !== undefined;
  if (!own && parseSpec(o.data).split)
    throw new UserError(
      `--data ${o.data}`,
      'fine-tuning splits the data itself (80% train, 10% validation, 10% test); give the set without :split, or give your own splits with --val-data / --test-data',
    );
  const dataOpts = dataOptions(o);
  const fromModel = dataOpts.imageSize ? undefined : modelImageSize(model, { input: o.input, layout: o.layout });
  const sets = await loadTrainingSets(
    {
      data: o.data,
      ...(o.valData !== undefined ? { val: o.valData } : {}),
      ...(o.testData !== undefined ? { test: o.testData } : {}),
      names: { val: '--val-data', test: '--test-data' },
    },
    { ...dataOpts, ...(fromModel?.size ? { imageSize: fromModel.size } : {}) },
    preprocessOptions(o),
  ).catch((e: unknown) => {
    throw withSizeOrigin(e, fromModel);
  });
  const { sources, ...splits } = sets;
  const asked =
    dataOpts.imageSize === undefined
      ? undefined
      : typeof dataOpts.imageSize === 'number'
        ? ([dataOpts.imageSize, dataOpts.imageSize] as [number, number])
        : dataOpts.imageSize;
  const imageSize = splits.train.resizedTo ? imageSizeChoice(splits.train.resizedTo, asked, fromModel) : undefined;
  return { splits, sources, ...(imageSize ? { imageSize } : {}) };
}

/** A new head for --num-classes: replaced before any data is loaded, checked against the data after. */
function newHead(o: FinetuneCliOptions, src: FinetuneRun, seed: number): { src: FinetuneRun; head?: HeadReplacement } {
  if (o.numClasses === undefined) return { src };
  const n = whole('--num-classes', o.numClasses, 2);
  if (n > MAX_HEAD_CLASSES) throw new UserError('--num-classes', `${n} is above ${MAX_HEAD_CLASSES}, the most classes supported`);
  try {
    const r = replaceHead(src.model, { numClasses: n, seed, ...(o.trainOutput !== undefined ? { output: o.trainOutput } : {}), file: src.file });
    return { src: { ...src, model: r.model }, head: r.report };
  } catch (e) {
    // the library's neutral subject, as the flag the user typed
    if (e instanceof UserError && e.subject === 'number of classes') throw new UserError('--num-classes', e.cause_);
    throw e;
  }
}

function checkHeadClasses(head: HeadReplacement, train: Dataset): void {
  if (train.task !== 'classification') throw new UserError('--num-classes', `replaces a classifier head, but the data is ${train.task}`);
  const k = train.classes?.length;
  if (k !== undefined && k !== head.newClasses) {
    throw new UserError(
      '--num-classes',
      `is ${head.newClasses}, but the training data has ${k} classes (${train.classes!.slice(0, 8).join(', ')}${k > 8 ? ', ...' : ''}); give --num-classes ${k}`,
    );
  }
}

/** What was decided before training, one line each: where the splits came from, the image size, a new head. */
function preparationLines(log: FinetuneLog): string[] {
  const d = log.data;
  return [
    ...(d.sources ? [`data: ${describeSources(d.sources)}`] : []),
    ...(d.imageSize ? [describeImageSize(d.imageSize, '--image-size')] : []),
    ...(log.head ? [headLine(log.head)] : []),
  ];
}

function headLine(h: HeadReplacement): string {
  const nodes = h.nodes.map((n) => `'${n}'`).join(' + ');
  return `classifier head replaced: ${h.form} ${nodes} (weight ${h.weight}${h.bias ? `, bias ${h.bias}` : ''}) from ${h.oldClasses} to ${h.newClasses} classes over ${h.features} features, initialised U(-${h.bound.toPrecision(4)}, ${h.bound.toPrecision(4)}) with seed ${h.seed}`;
}

/** One line per epoch on stderr; `task` undefined: no validation set (the epoch's score is its training loss). */
function epochLine(e: EpochRecord, epochs: number, task: Dataset['task'] | undefined): string {
  const v =
    task === 'classification'
      ? `val accuracy ${(100 * e.valMetric).toFixed(2)}%`
      : task === 'regression'
        ? `val mse ${e.valMetric.toPrecision(4)}`
        : 'no validation set';
  return `epoch ${e.epoch}/${epochs}  train loss ${e.trainLoss.toFixed(4)}  ${v}  lr ${e.lr.toPrecision(3)}  ${e.seconds.toFixed(1)} s`;
}

export interface FinetuneRun {
  model: ModelProto;
  sourceDir: string;
  file: string;
}

/**
 * The whole command after argument parsing; `prepare` lets the one-command convert flow turn the model it
 * read into the one to train (after every output was checked).
 */
async function runFinetune(input: string, o: FinetuneCliOptions, prepare?: (mf: ModelFile) => FinetuneRun): Promise<FinetuneLog | undefined> {
  if (!isEpName(o.ep)) throw new UserError('--ep', `unknown execution provider '${o.ep}' (known: ${EP_NAMES.join(', ')})`);
  const out = o.output ?? defaultFinetuneOutput(input);
  // --resume X reads X; checkpoints go to --checkpoint if given, else to X (continuing it), else beside the output.
  const checkpoint = o.checkpoint ?? (typeof o.resume === 'string' ? o.resume : `${out}.ckpt`);
  const resume = typeof o.resume === 'string' ? o.resume : o.resume === true;
  const logFile = o.log ?? `${out}.log.json`;
  const optimizer = o.optimizer;
  const lr = o.lr !== undefined ? num('--lr', o.lr) : DEFAULT_LR[optimizer];
  const weightDecay = o.weightDecay !== undefined ? num('--weight-decay', o.weightDecay) : optimizer === 'adamw' ? 0.01 : 0;
  const epochs = whole('--epochs', o.epochs, 1);
  const batchSize = whole('--batch-size', o.batchSize, 1);
  const seed = whole('--seed', o.seed, 0);
  const mf = await readModel(input);
  const data = [...dataInputs(o.data, o.labels), ...dataInputs(o.valData), ...dataInputs(o.testData)];
  // Every file this run writes is checked before the data is loaded or anything trained.
  if (o.dumpGradients) {
    const inputs: InputPath[] = [{ path: input, what: 'the input model' }, ...data, ...externalDataInputs(mf.model, mf.dir)];
    await checkOutputs([o.dumpGradients], { force: o.force, inputs });
  } else {
    await checkFinetuneFiles({ model: mf.model, sourceDir: mf.dir, file: input, out, checkpoint, log: logFile, resume, force: o.force, inputs: data });
  }
  const { src, head } = newHead(o, prepare ? prepare(mf) : { model: mf.model, sourceDir: mf.dir, file: input }, seed);
  const loaded = await loadSplits(o, src.model);
  const { splits } = loaded;
  if (head) checkHeadClasses(head, splits.train);

  if (o.dumpGradients) {
    await dumpGradients(o, src, splits.train, batchSize, seed, o.dumpGradients);
    return undefined;
  }

  const rt = await openRuntime(o.ep as EpName, trainingRuntimeOptions(o));
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    // First Ctrl-C: stop after the current step; a second one quits at once (still no partial files).
    if (++interrupts > 1) process.exit(130);
    controller.abort();
    if (!o.quiet) process.stderr.write('\ninterrupt: stopping after this step (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  const bar = process.stderr.isTTY && !o.quiet && !o.json ? progressBar() : undefined;
  try {
    const { log } = await finetune({
      model: src.model,
      sourceDir: src.sourceDir,
      file: src.file,
      ...splits,
      runtime: rt,
      epochs,
      batchSize,
      optimizer: { name: optimizer, weightDecay, momentum: num('--momentum', o.momentum ?? '0.9') },
      schedule: { name: o.schedule, lr, every: whole('--lr-step', o.lrStep ?? '1', 1), gamma: num('--lr-gamma', o.lrGamma ?? '0.1') },
      seed,
      shuffle: o.shuffle,
      freeze: o.freeze,
      trainOnly: o.trainOnly,
      batchNorm: o.bn,
      ...(o.patience !== undefined ? { patience: whole('--patience', o.patience, 1) } : {}),
      ...(o.maxSteps !== undefined ? { maxSteps: whole('--max-steps', o.maxSteps, 1) } : {}),
      input: o.input,
      output: o.trainOutput,
      out,
      force: o.force,
      checkpoint,
      log: logFile,
      resume,
      inputs: data,
      sources: loaded.sources,
      ...(head ? { head } : {}),
      ...(loaded.imageSize ? { imageSize: loaded.imageSize } : {}),
      signal: controller.signal,
      onProgress: bar ? (p) => bar.update(p.batch, p.batches, `epoch ${p.epoch}/${p.epochs}`, ` loss ${p.runningLoss.toFixed(4)}`) : undefined,
      onEpoch: (e) => {
        bar?.clear();
        if (!o.json) say(o, epochLine(e, epochs, splits.val.count ? splits.train.task : undefined));
      },
      say: (l) => {
        bar?.clear();
        if (!o.json) say(o, printable(l));
      },
    });
    bar?.clear();
    if (o.json) printJson(log);
    else printSummary(o, log);
    return log;
  } catch (e) {
    bar?.clear();
    if (e instanceof TrainingStopped && e.reason === 'interrupted') process.exitCode = 130;
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    await rt.close();
  }
}

function printSummary(o: FinetuneCliOptions, log: FinetuneLog): void {
  const cls = log.data.task === 'classification';
  const lines = [
    ...preparationLines(log),
    `loss: ${log.loss.note}`,
    ...(log.float32Master ? ['float16/bfloat16 parameters trained in float32 and rounded back to their own type in the written model'] : []),
    // raising the opset alone changes nothing a user sees; rewritten nodes are worth a line
    ...(log.opset.rewritten
      ? [
          `training graph at opset ${log.opset.training}: the model imports ${log.opset.model}, so ${log.opset.rewritten} node(s) were rewritten to that opset's form (same outputs; the written model keeps its own)`,
        ]
      : []),
    `trained ${log.parameters.trainable.length} parameter tensors (${log.parameters.values} values) on ${log.ep} (${log.threads} thread${log.threads === 1 ? '' : 's'})${log.deviceResident ? ', kept in device memory between steps' : ''}; batch ${log.batch.size}${log.batch.relaxed ? ` (the model's fixed batch ${log.batch.originalBatch} made symbolic for training)` : ''}`,
    ...(log.adapter
      ? [
          `WebGPU adapter: ${log.adapter.name} (${log.adapter.software ? 'software: on the CPU, not GPU speed' : 'hardware'}${log.adapter.fallback ? `; auto fell back: ${log.adapter.fallback}` : ''})`,
        ]
      : []),
    log.data.val === 0
      ? `no validation set: kept epoch ${log.best?.epoch} (lowest training loss, ${log.best?.value.toFixed(4)})`
      : cls
        ? `validation accuracy: ${pct(log.initial.accuracy)} before, ${pct(log.best?.value)} best (epoch ${log.best?.epoch})`
        : `validation mse: ${log.initial.mse} before, ${log.best?.value} best (epoch ${log.best?.epoch})`,
  ];
  if (log.test) lines.push(cls ? `test accuracy (best epoch): ${pct(log.test.accuracy)}` : `test mse (best epoch): ${log.test.mse}`);
  if (log.batchNorm.mode === 'train') {
    const kept = log.batchNorm.frozen.length
      ? `; ${log.batchNorm.frozen.length} kept frozen (${log.batchNorm.frozen[0]!.reason}${log.batchNorm.frozen.length > 1 ? ', ...' : ''})`
      : '';
    lines.push(`BatchNormalization: ${log.batchNorm.train.length} layer(s) trained with batch statistics, their running statistics updated${kept}`);
  }
  if (log.stopped === 'early-stopping') lines.push('stopped early: no better validation score for --patience epochs');
  lines.push(`wrote ${log.output}`);
  // each entry is one line; a path or name in it must not break it
  say(o, lines.map(printable).join('\n'));
}

async function dumpGradients(o: FinetuneCliOptions, src: FinetuneRun, train: Dataset, batchSize: number, seed: number, file: string): Promise<void> {
  const rt = await openRuntime(o.ep as EpName, trainingRuntimeOptions(o));
  try {
    const g = await firstBatchGradients(src.model, train, {
      runtime: rt,
      sourceDir: src.sourceDir,
      file: src.file,
      batchSize,
      seed,
      shuffle: o.shuffle,
      freeze: o.freeze,
      trainOnly: o.trainOnly,
      input: o.input,
      output: o.trainOutput,
      batchNorm: o.bn,
    });
    const dump = {
      model: src.file,
      batch: g.rows,
      loss: g.loss,
      lossKind: g.lossKind,
      gradients: Object.fromEntries(Object.entries(g.grads).map(([k, v]) => [k, { dims: v.dims, values: Array.from(v.data as Float32Array) }])),
    };
    await writeFileAtomic(file, JSON.stringify(dump) + '\n', { replace: o.force });
    if (o.json) printJson({ file, loss: g.loss, lossKind: g.lossKind, parameters: Object.keys(g.grads) });
    else say(o, `loss ${g.loss} (${g.lossKind}) on ${g.rows} samples; gradients of ${Object.keys(g.grads).length} parameters written to ${printable(file)}`);
  } finally {
    await rt.close();
  }
}

export function register(program: Command): void {
  addFinetuneOptions(program.command('finetune').argument('<model>', 'ONNX model to fine-tune (e.g. the converted *.alrelu.onnx)'))
    .description('fine-tune a model on labelled data with onnxruntime (any execution provider); writes the model with updated weights')
    .option('--json', 'print the run log as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(
        async (model: string, o: FinetuneCliOptions) => {
          await runFinetune(model, o);
        },
        { output: '--train-output' },
      ),
    );
}

/** What `alrelu-convert model.onnx --finetune --data <spec> ...` adds to the convert command. */
export interface ConvertThenFinetuneOptions
  extends ConvertCliOptions,
    Pick<
      FinetuneCliOptions,
      'bn' | 'ep' | 'epochs' | 'batchSize' | 'lr' | 'optimizer' | 'threads' | 'webgpuAdapter' | 'scale' | 'maxDataSize' | 'valData' | 'testData'
    > {
  finetune?: boolean;
  data?: string;
}

export function addConvertThenFinetuneOptions(cmd: Command): Command {
  return addTrainingOptions(
    addOwnSplitOptions(
      cmd
        .option('--finetune', 'fine-tune the converted model on --data before writing it (same as `finetune` on the result)')
        .option('--data <spec>', 'with --finetune: labelled data (built-in name or path), split 80/10/10 unless --val-data or --test-data is given'),
      'with --finetune: ',
    ),
    'with --finetune: ',
  )
    .option('--scale <k>', 'with --finetune: multiply the data by k first (e.g. 255 for 0..255 pixels)')
    .addOption(bnOption('with --finetune: '))
    .addOption(maxDataSizeOption('with --finetune: '));
}

/** Converts in memory, then fine-tunes; the output (-o, default <name>.alrelu.onnx) is the fine-tuned model. */
export async function convertThenFinetune(input: string, o: ConvertThenFinetuneOptions): Promise<void> {
  if (!o.data) throw new UserError('--finetune', 'needs --data <spec> (e.g. --data mnist)');
  if (o.dryRun || o.verify) throw new UserError('--finetune', `cannot be combined with ${o.dryRun ? '--dry-run' : '--verify'}`);
  const alpha = num('--alpha', o.alpha);
  checkSelection(o);
  const out = o.output ?? defaultOutput(input);
  const ops = parseOps(input, o.ops);
  const ft: FinetuneCliOptions = {
    data: o.data,
    valData: o.valData,
    testData: o.testData,
    output: out,
    ep: o.ep,
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    optimizer: o.optimizer,
    threads: o.threads,
    webgpuAdapter: o.webgpuAdapter,
    schedule: 'constant',
    seed: o.seed,
    shuffle: true,
    freeze: [],
    trainOnly: [],
    force: o.force,
    scale: o.scale,
    maxDataSize: o.maxDataSize,
    json: o.json,
    quiet: o.quiet,
    verbose: o.verbose,
    bn: o.bn,
  };
  await runFinetune(input, ft, (mf) => {
    const report = convert(mf.model, { alpha, form: o.form, ops, include: o.include, exclude: o.exclude, allRelus: o.allRelus, file: input });
    if (!o.json)
      say(
        o,
        `converted ${report.replaced} activation${report.replaced === 1 ? '' : 's'} to ALReLU (${report.form}); fine-tuning on ${printable(String(o.data))}`,
      );
    return { model: mf.model, sourceDir: mf.dir, file: input };
  });
}
