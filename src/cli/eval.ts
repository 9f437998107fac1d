/** `alrelu-convert eval <model.onnx...> --data <spec> --ep <list>`: accuracy, agreement and latency per provider. */
import { promises as fs } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { writeFileAtomic } from '../atomic.js';
import type { Channels } from '../data/images.js';
import type { PreprocessOptions } from '../data/preprocess.js';
import { checkSplit } from '../data/split.js';
import { UserError } from '../errors.js';
import { evaluate, failuresOf } from '../eval/evaluate.js';
import { formatSummary, renderHtml } from '../eval/report.js';
import type { EvalProgress, EvalReport, EvaluateOptions, RunFailed } from '../eval/types.js';
import { parseEpList } from '../runtime/index.js';
import { action, printJson, say, type GlobalOptions } from './run.js';

export interface EvalCliOptions extends GlobalOptions {
  data: string;
  ep: string;
  split?: string;
  seed?: string;
  limit?: string;
  batchSize?: string;
  input?: string;
  output?: string;
  scale?: string;
  mean?: string;
  std?: string;
  layout?: 'nchw' | 'nhwc';
  labelColumn?: string;
  labels?: string;
  task?: 'classification' | 'regression';
  imageSize?: string;
  channels?: Channels;
  warmup?: string;
  tolerance?: string;
  report?: string;
}

function parseNumber(flag: string, s: string): number {
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v)) throw new UserError(flag, `expected a number, found '${s}'`);
  return v;
}

function parseInteger(flag: string, s: string, min: number): number {
  const v = parseNumber(flag, s);
  if (!Number.isInteger(v) || v < min) throw new UserError(flag, `expected an integer >= ${min}, found '${s}'`);
  return v;
}

function parseList(flag: string, s: string): number[] {
  return s.split(',').map((x) => parseNumber(flag, x.trim()));
}

/** `28` or `224x224` as [height, width]. */
function parseSize(s: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(s.trim());
  if (!m) throw new UserError('--image-size', `expected N or HxW (e.g. 224 or 224x224), found '${s}'`);
  const h = Number(m[1]);
  const w = m[2] === undefined ? h : Number(m[2]);
  if (h < 1 || w < 1) throw new UserError('--image-size', `expected positive sizes, found '${s}'`);
  return [h, w];
}

/** A CSV label column given as a number is an index, otherwise a header name. */
function parseColumn(s: string): string | number {
  return /^-?\d+$/.test(s.trim()) ? Number(s) : s;
}

export function evaluateOptions(models: string[], o: EvalCliOptions): EvaluateOptions {
  const preprocess: PreprocessOptions = {
    ...(o.scale !== undefined ? { scale: parseNumber('--scale', o.scale) } : {}),
    ...(o.mean !== undefined ? { mean: parseList('--mean', o.mean) } : {}),
    ...(o.std !== undefined ? { std: parseList('--std', o.std) } : {}),
    ...(o.layout !== undefined ? { layout: o.layout } : {}),
  };
  return {
    models,
    data: o.data,
    eps: [...new Set(parseEpList(o.ep))],
    ...(o.split !== undefined ? { split: checkSplit(o.split) } : {}),
    ...(o.seed !== undefined ? { seed: parseInteger('--seed', o.seed, 0) } : {}),
    ...(o.limit !== undefined ? { maxSamples: parseInteger('--limit', o.limit, 1) } : {}),
    ...(o.batchSize !== undefined ? { batchSize: parseInteger('--batch-size', o.batchSize, 1) } : {}),
    ...(o.warmup !== undefined ? { warmup: parseInteger('--warmup', o.warmup, 0) } : {}),
    ...(o.tolerance !== undefined ? { tolerance: parseNumber('--tolerance', o.tolerance) } : {}),
    ...(o.input !== undefined ? { input: o.input } : {}),
    ...(o.output !== undefined ? { output: o.output } : {}),
    preprocess,
    dataOptions: {
      ...(o.task ? { task: o.task } : {}),
      ...(o.labelColumn !== undefined ? { labelColumn: parseColumn(o.labelColumn) } : {}),
      ...(o.labels !== undefined ? { labels: o.labels } : {}),
      ...(o.imageSize !== undefined ? { imageSize: parseSize(o.imageSize) } : {}),
      ...(o.channels !== undefined ? { channels: o.channels } : {}),
    },
  };
}

/** A one-line bar redrawn in place on stderr; only ever created for a terminal. */
function progressBar(): { update(p: EvalProgress): void; clear(): void } {
  let last = '';
  let lastAt = 0;
  const width = 24;
  return {
    update(p) {
      const now = Date.now();
      // Redrawing costs more than a small model's run; a few frames a second is enough to show life.
      if (p.done !== p.total && now - lastAt < 100) return;
      lastAt = now;
      const frac = p.total ? p.done / p.total : 1;
      const fill = Math.round(frac * width);
      const line = `${basename(p.model)} on ${p.ep} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${p.done}/${p.total}`;
      if (line === last) return;
      last = line;
      process.stderr.write(`\r\x1b[2K${line}`);
    },
    clear() {
      if (last) process.stderr.write('\r\x1b[2K');
    },
  };
}

/** The one `error:` line for failed runs: the first failure, and how many more the table shows. */
export function failureLine(failed: RunFailed[]): string {
  const f = failed[0]!;
  // Provider failures already start with the EP's name; a data mismatch is about the model, not the EP.
  const head = f.stage === 'open' ? f.error : f.stage === 'data' ? `${f.model}: ${f.error}` : `${f.ep} on ${f.model}: ${f.error}`;
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more failed run${failed.length > 2 ? 's' : ''}, listed above)` : '';
  return head + more;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('evaluate models on data across execution providers: accuracy, agreement between providers, latency')
    .argument('<models...>', 'ONNX models; the first is the baseline the others are compared with (e.g. original then converted)')
    .requiredOption('--data <spec>', 'built-in mnist|iris|penguins|spam (optionally name:split), or a path: .npz, .npy, .csv, an image folder, a test_data_set folder or a model folder holding them')
    .option('--ep <list>', 'execution providers, comma-separated: cpu,cuda,webgpu,wasm,browser-webgpu,browser-wasm', 'cpu')
    .addOption(new Option('--split <split>', 'part of a labelled set (seeded 80/10/10); default all').choices(['train', 'val', 'test', 'all']))
    .option('--seed <n>', 'seed of the train/val/test split (default 0)')
    .option('--limit <n>', 'evaluate n samples spread evenly over the set (or the first n reference cases)')
    .option('--batch-size <n>', 'samples per run when the model has a symbolic batch dimension (default 32)')
    .option('--input <name>', 'model input that receives the data (default: the only one, or the one whose shape fits)')
    .option('--output <name>', 'model output that is scored (default: the first whose size fits the labels)')
    .option('--scale <k>', 'multiply the data by k first (e.g. 255 for models trained on raw 0..255 pixels)')
    .option('--mean <list>', 'subtract per-channel (or one) mean after scaling, e.g. 0.1307 or 0.485,0.456,0.406')
    .option('--std <list>', 'then divide by per-channel (or one) standard deviation')
    .addOption(new Option('--layout <layout>', 'image layout the model expects').choices(['nchw', 'nhwc']))
    .addOption(new Option('--task <task>', 'what the labels are, for user files').choices(['classification', 'regression']))
    .option('--label-column <col>', 'CSV label column: header name or 0-based index (default: "label", else the last)')
    .option('--labels <file>', '.npy labels file, when the samples file is not x.npy with y.npy beside it')
    .option('--image-size <HxW>', 'resize images of an image folder to this size (default: the first image\'s)')
    .addOption(new Option('--channels <c>', 'image channels').choices(['rgb', 'gray']))
    .option('--warmup <n>', 'untimed runs before timing (default 2)')
    .option('--tolerance <t>', 'absolute and relative tolerance against test_data_set references (default 1e-4)')
    .option('--report <file>', 'also write a self-contained HTML report with charts')
    .option('--json', 'print the full report as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(async (models: string[], o: EvalCliOptions) => {
        const opts = evaluateOptions(models, o);
        if (o.report) await checkReportTarget(o.report);
        const bar = process.stderr.isTTY && !o.quiet ? progressBar() : undefined;
        let report: EvalReport;
        try {
          report = await evaluate({ ...opts, ...(bar ? { onProgress: (p) => bar.update(p) } : {}) });
        } finally {
          bar?.clear();
        }
        if (o.json) printJson(report);
        else say(o, formatSummary(report));
        if (o.report) {
          await writeFileAtomic(o.report, renderHtml(report));
          say(o, `report: ${o.report}`);
        }
        const failed = failuresOf(report);
        if (failed.length) throw new UserError('', failureLine(failed));
      }),
    );
}

/** Checked before evaluating, so a long run does not end in an unwritable path. */
async function checkReportTarget(file: string): Promise<void> {
  const st = await fs.stat(file).catch(() => undefined);
  if (st?.isDirectory()) throw new UserError(`--report ${file}`, 'is a folder; expected an .html file path');
  const dir = await fs.stat(dirname(resolve(file))).catch(() => undefined);
  if (!dir?.isDirectory()) throw new UserError(`--report ${file}`, `folder ${dirname(resolve(file))} does not exist`);
}
