/** Option parsers, and the data and preprocessing flags that eval, serve and finetune share. */
import { statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { InputPath, InputSource } from '../atomic.js';
import { parseSpec } from '../data/index.js';
import { readModel } from '../onnx/read.js';
import { externalDataInputs } from '../onnx/write.js';
import type { Channels } from '../data/images.js';
import { DEFAULT_MAX_DATA_BYTES, formatBytes, type LoadDataOptions, type PreprocessOptions } from '../data/index.js';
import { UserError } from '../errors.js';
import { defaultThreads } from '../runtime/threads.js';
import { WEBGPU_ADAPTERS, type WebGpuAdapterChoice } from '../runtime/types.js';

/** `<folder of input>/<input name without .onnx><suffix>`: where a command's output goes by default. */
export function outputBeside(input: string, suffix: string): string {
  return join(dirname(resolve(input)), `${basename(input).replace(/\.onnx$/i, '')}${suffix}`);
}

/** The models a command reads, and (looked up only where an output already exists) their external data files. */
export function modelInputs(models: string[]): InputSource[] {
  return [
    ...models.map((path) => ({ path, what: 'the input model' })),
    async () => {
      const out: InputPath[] = [];
      for (const m of models) {
        const mf = await readModel(m).catch(() => undefined);
        if (mf) out.push(...externalDataInputs(mf.model, mf.dir));
      }
      return out;
    },
  ];
}

/** Files of a data folder that some loader reads (images, tensors, arrays, tables). */
const DATA_FILES = /\.(png|jpe?g|pb|npy|npz|csv)$/i;

/** The files and folders a --data spec (and --labels) reads; built-in sets read none of the user's. */
export function dataInputs(spec: string | undefined, labels?: string): InputPath[] {
  const out: InputPath[] = [];
  if (spec !== undefined) {
    const path = parseSpec(spec).name;
    const st = statSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory()) out.push({ path, what: 'the data folder', contents: DATA_FILES });
    else if (st) {
      out.push({ path, what: 'the data file' });
      if (basename(path).toLowerCase() === 'x.npy') out.push({ path: join(dirname(path), 'y.npy'), what: 'the labels file' });
    }
  }
  if (labels !== undefined) out.push({ path: labels, what: 'the labels file' });
  return out;
}

export const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function parseNumber(flag: string, s: string): number {
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v)) throw new UserError(flag, `expected a number, found '${s}'`);
  return v;
}

export function parseInteger(flag: string, s: string, min: number): number {
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

/** `4G`, `512M`, `1.5GiB`, `100000000`: a byte count, K/M/G/T as powers of 1024. */
export function parseByteSize(flag: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  const bytes = m ? Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (!(bytes >= 1 && Number.isSafeInteger(Math.floor(bytes))))
    throw new UserError(flag, `expected a size such as 4G, 512M or a number of bytes, found '${s}'`);
  return Math.floor(bytes);
}

/** The data size limit's flag, for every command that loads data. */
export function maxDataSizeOption(lead = ''): Option {
  return new Option(
    '--max-data-size <size>',
    `${lead}data size limit: the most memory a data set's decoded contents may take, checked against file headers before loading (e.g. 8G; default ${formatBytes(DEFAULT_MAX_DATA_BYTES)}); raise it only for files you trust`,
  );
}

/** A CSV label column given as a number is an index, otherwise a header name. */
function parseColumn(s: string): string | number {
  return /^-?\d+$/.test(s.trim()) ? Number(s) : s;
}

export interface PreprocessCliOptions {
  scale?: string;
  mean?: string;
  std?: string;
  layout?: 'nchw' | 'nhwc';
  task?: 'classification' | 'regression';
  labelColumn?: string;
  labels?: string;
  imageSize?: string;
  channels?: Channels;
  maxDataSize?: string;
}

/** How user data is read and turned into model input: the same flags wherever data goes in. */
export function addPreprocessOptions(cmd: Command): Command {
  return cmd
    .option('--scale <k>', 'multiply the data by k first (e.g. 255 for models trained on raw 0..255 pixels)')
    .option('--mean <list>', 'subtract per-channel (or one) mean after scaling, e.g. 0.1307 or 0.485,0.456,0.406')
    .option('--std <list>', 'then divide by per-channel (or one) standard deviation')
    .addOption(new Option('--layout <layout>', 'image layout the model expects').choices(['nchw', 'nhwc']))
    .addOption(new Option('--task <task>', 'what the labels are, for user files').choices(['classification', 'regression']))
    .option('--label-column <col>', 'CSV label column: header name or 0-based index (default: "label", else the last)')
    .option('--labels <file>', '.npy labels file, when the samples file is not x.npy with y.npy beside it')
    .option(
      '--image-size <HxW>',
      "resize images of an image folder to this size (default: the height and width the model's input declares, read per --layout; where they are symbolic, the first image's size)",
    )
    .addOption(new Option('--channels <c>', 'image channels').choices(['rgb', 'gray']))
    .addOption(maxDataSizeOption());
}

export function preprocessOptions(o: PreprocessCliOptions): PreprocessOptions {
  return {
    ...(o.scale !== undefined ? { scale: parseNumber('--scale', o.scale) } : {}),
    ...(o.mean !== undefined ? { mean: parseList('--mean', o.mean) } : {}),
    ...(o.std !== undefined ? { std: parseList('--std', o.std) } : {}),
    ...(o.layout !== undefined ? { layout: o.layout } : {}),
  };
}

export function dataOptions(o: PreprocessCliOptions): Omit<LoadDataOptions, 'split' | 'seed'> {
  return {
    ...(o.task ? { task: o.task } : {}),
    ...(o.labelColumn !== undefined ? { labelColumn: parseColumn(o.labelColumn) } : {}),
    ...(o.labels !== undefined ? { labels: o.labels } : {}),
    ...(o.imageSize !== undefined ? { imageSize: parseSize(o.imageSize) } : {}),
    ...(o.channels !== undefined ? { channels: o.channels } : {}),
    ...(o.maxDataSize !== undefined ? { maxDataBytes: parseByteSize('--max-data-size', o.maxDataSize) } : {}),
  };
}

export interface EvalDataCliOptions extends PreprocessCliOptions {
  data: string;
  split?: string;
  seed?: string;
  limit?: string;
  batchSize?: string;
  input?: string;
  output?: string;
  warmup?: string;
  tolerance?: string;
  threads?: string;
  webgpuAdapter?: string;
}

/** The data flags of the evaluating commands (eval, serve). */
export function addEvalDataOptions(cmd: Command): Command {
  cmd
    .requiredOption(
      '--data <spec>',
      'built-in mnist|iris|penguins|spam (optionally name:split), or a path: .npz, .npy, .csv, an image folder, a test_data_set folder or a model folder holding them',
    )
    .addOption(new Option('--split <split>', 'part of a labelled set (seeded 80/10/10); default all').choices(['train', 'val', 'test', 'all']))
    .option('--seed <n>', 'seed of the train/val/test split (default 0)')
    .option('--limit <n>', 'evaluate n samples spread evenly over the set (or the first n reference cases)')
    .option('--batch-size <n>', 'samples per run when the model has a symbolic batch dimension (default 32)')
    .option('--input <name>', 'model input that receives the data (default: the only one, or the one whose shape fits)')
    .option('--output <name>', 'model output that is scored (default: the first whose size fits the labels)');
  return addPreprocessOptions(cmd)
    .option('--warmup <n>', 'untimed runs before timing (default 2)')
    .option('--tolerance <t>', 'absolute and relative tolerance against test_data_set references (default 1e-4)')
    .addOption(threadsOption())
    .addOption(webgpuAdapterOption());
}

/** `--threads N` for every command that runs onnxruntime: one wording, one parser. */
export function threadsOption(lead = ''): Option {
  return new Option(
    '--threads <n>',
    `${lead}threads per session: onnxruntime's intra-op pool (cpu, cuda, webgpu) and wasm workers (default: all ${defaultThreads()} cores)`,
  );
}

export function parseThreads(s: string | undefined): { threads?: number } {
  return s === undefined ? {} : { threads: parseInteger('--threads', s, 1) };
}

/** `--webgpu-adapter` for every command that can run webgpu or browser-webgpu. */
export function webgpuAdapterOption(lead = ''): Option {
  return new Option(
    '--webgpu-adapter <adapter>',
    `${lead}WebGPU adapter of webgpu and browser-webgpu: auto (the GPU where there is one, else SwiftShader on the CPU; reported), gpu (the GPU, or an error), swiftshader`,
  )
    .choices([...WEBGPU_ADAPTERS])
    .default('auto');
}

export function parseWebgpuAdapter(s: string | undefined): { webgpuAdapter?: WebGpuAdapterChoice } {
  if (s === undefined) return {};
  if (!(WEBGPU_ADAPTERS as readonly string[]).includes(s))
    throw new UserError('--webgpu-adapter', `expected one of ${WEBGPU_ADAPTERS.join(', ')}, found '${s}'`);
  return { webgpuAdapter: s as WebGpuAdapterChoice };
}
