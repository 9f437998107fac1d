/**
 * `alrelu-convert pipeline <model.onnx> --data <spec>`: convert, evaluate, fine-tune, evaluate on every
 * usable provider, and write report.html, all in one command (`npm start` runs it on models/mnist-cnn.onnx).
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type Command, Option } from 'commander';
import type { Form } from '../convert/forms.js';
import { UserError } from '../errors.js';
import { PIPELINE_DEFAULTS, runPipeline, SOFTWARE_SAMPLES, type PipelineReport } from '../pipeline/pipeline.js';
import { formatPipelineSummary } from '../pipeline/report.js';
import { parseEpList } from '../runtime/index.js';
import { EP_NAMES, type EpName } from '../runtime/types.js';
import { OPTIMIZERS, type OptimizerName } from '../train/optim.js';
import {
  addPreprocessOptions,
  dataInputs,
  dataOptions,
  parseInteger,
  parseNumber,
  parseThreads,
  parseWebgpuAdapter,
  preprocessOptions,
  threadsOption,
  webgpuAdapterOption,
  type PreprocessCliOptions,
} from './options.js';
import { action, printJson, progressBar, say, type GlobalOptions } from './run.js';

export interface PipelineCliOptions extends GlobalOptions, PreprocessCliOptions {
  data: string;
  ep?: string;
  trainEp: EpName;
  epochs: string;
  maxSteps?: string;
  batchSize: string;
  lr?: string;
  optimizer: OptimizerName;
  seed: string;
  alpha?: string;
  form?: Form;
  limit?: string;
  softwareLimit: string;
  threads?: string;
  webgpuAdapter?: string;
  outDir?: string;
  force?: boolean;
}

/** `alrelu-out/<model>-<UTC time>`: a fresh folder per run, so running twice never needs --force. */
export function defaultOutDir(model: string, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/:/g, '-');
  const base = join('alrelu-out', `${basename(model).replace(/\.onnx$/i, '')}-${stamp}`);
  let dir = base;
  for (let k = 2; existsSync(dir); k++) dir = `${base}-${k}`;
  return dir;
}

export function register(program: Command): void {
  const cmd = program
    .command('pipeline')
    .description(
      'the whole job: convert a model, evaluate it against the original, fine-tune it, evaluate all three on every usable execution provider, and write report.html',
    )
    .argument('<model>', 'ONNX model with Relu/LeakyRelu activations')
    .requiredOption(
      '--data <spec>',
      'labelled data: built-in mnist|iris|penguins|spam, or .npz (x, y), .npy, .csv, an image folder; split 80/10/10 into train (fine-tuning), validation and test (evaluation)',
    )
    .option('--ep <list>', 'providers to evaluate on, comma-separated (default: every usable one; one that cannot run is an error)')
    .addOption(new Option('--train-ep <ep>', 'provider to fine-tune on').choices([...EP_NAMES]).default(PIPELINE_DEFAULTS.trainEp))
    .option('--epochs <n>', 'fine-tuning epochs', String(PIPELINE_DEFAULTS.epochs))
    .option('--max-steps <n>', 'at most n fine-tuning steps per epoch (quick runs)')
    .option('--batch-size <n>', 'samples per fine-tuning step', String(PIPELINE_DEFAULTS.batchSize))
    .option('--lr <x>', `learning rate (default ${PIPELINE_DEFAULTS.lr})`)
    .addOption(new Option('--optimizer <name>', 'optimizer (PyTorch formulas)').choices([...OPTIMIZERS]).default(PIPELINE_DEFAULTS.optimizer))
    .option('--seed <n>', 'seed of the batch order', String(PIPELINE_DEFAULTS.seed))
    .option('--alpha <a>', 'ALReLU slope for Relu nodes (default 0.01)')
    .addOption(new Option('--form <form>', 'what each activation becomes').choices(['subgraph', 'fused', 'function']))
    .option('--limit <n>', 'evaluate n test samples spread evenly over the split (default all)')
    .option(
      '--software-limit <n>',
      `test samples on providers with a software WebGPU adapter (SwiftShader takes seconds per batch); 0: as many as the others`,
      String(SOFTWARE_SAMPLES),
    );
  addPreprocessOptions(cmd)
    .addOption(threadsOption())
    .addOption(webgpuAdapterOption())
    .option('-o, --out-dir <folder>', 'where the models, report.html and pipeline.json go (default: a new alrelu-out/<model>-<time>/)')
    .option('--force', "write into a folder that holds files, replacing an earlier run's")
    .option('--json', 'print the whole record (pipeline.json) on stdout')
    .option('--quiet', 'print nothing but errors')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(async (model: string, o: PipelineCliOptions) => {
        await runPipelineCli(model, o);
      }),
    );
}

async function runPipelineCli(model: string, o: PipelineCliOptions): Promise<void> {
  const eps = o.ep !== undefined ? [...new Set(parseEpList(o.ep))] : undefined;
  const outDir = o.outDir ?? defaultOutDir(model);
  const tty = process.stderr.isTTY && !o.quiet;
  const bar = tty ? progressBar() : undefined;
  const talk = (line: string) => {
    bar?.clear();
    if (!o.json) say(o, line);
  };
  // Ctrl-C: stop at the next step and remove what the run wrote; a second one quits at once
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    bar?.clear();
    process.stderr.write('stopping (Ctrl-C again to quit at once)...\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  let report: PipelineReport;
  try {
    report = await runPipeline({
      model,
      data: o.data,
      outDir,
      ...(eps ? { eps } : {}),
      trainEp: o.trainEp,
      epochs: parseInteger('--epochs', o.epochs, 1),
      batchSize: parseInteger('--batch-size', o.batchSize, 1),
      optimizer: o.optimizer,
      seed: parseInteger('--seed', o.seed, 0),
      ...(o.maxSteps !== undefined ? { maxSteps: parseInteger('--max-steps', o.maxSteps, 1) } : {}),
      ...(o.lr !== undefined ? { lr: positive('--lr', o.lr) } : {}),
      ...(o.alpha !== undefined ? { alpha: parseNumber('--alpha', o.alpha) } : {}),
      ...(o.form ? { form: o.form } : {}),
      ...(o.limit !== undefined ? { limit: parseInteger('--limit', o.limit, 1) } : {}),
      softwareLimit: parseInteger('--software-limit', o.softwareLimit, 0),
      ...parseThreads(o.threads),
      ...parseWebgpuAdapter(o.webgpuAdapter),
      preprocess: preprocessOptions(o),
      dataOptions: dataOptions(o),
      force: o.force,
      inputs: dataInputs(o.data, o.labels),
      say: talk,
      signal: controller.signal,
      ...(bar
        ? {
            onProgress: (p) => {
              if (p.stage === 'providers') talk(`checking ${p.eps ? p.eps.join(', ') : 'every execution provider (about half a minute)'}...`);
              else if (p.stage === 'evaluate') bar.update(p.eval.done, p.eval.total, `evaluating ${basename(p.eval.model)} on ${p.eval.ep}`);
              else bar.update(p.step.batch, p.step.batches, `fine-tuning epoch ${p.step.epoch}/${p.step.epochs}`, `  loss ${p.step.runningLoss.toFixed(4)}`);
            },
          }
        : {}),
    });
  } finally {
    bar?.clear();
    process.off('SIGINT', onSigint);
  }
  if (o.json) printJson(report);
  else say(o, formatPipelineSummary(report));
  const failed = report.summary.filter((s) => s.errors.length);
  if (failed.length)
    throw new UserError(
      failed[0]!.ep,
      `${failed[0]!.errors[0]}${failed.length > 1 ? ` (and failures on ${failed.length - 1} more provider(s), listed above)` : ''}`,
    );
}

function positive(flag: string, s: string): number {
  const v = parseNumber(flag, s);
  if (!(v > 0)) throw new UserError(flag, `expected a number > 0, found '${s}'`);
  return v;
}
