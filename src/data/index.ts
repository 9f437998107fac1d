/**
 * One entry point from a data spec (what the user typed after --data) to data in memory.
 *
 * A spec is, in this order:
 * - a built-in name, optionally with a split: `mnist`, `iris:test`, `spam:train` (see builtins.ts);
 * - a path to a file: `.npz` (arrays x and y), `.npy` (x.npy with y.npy beside it, or `labels`),
 *   `.csv` / `.tsv` (a label column);
 * - a path to a folder: a `test_data_set_N` folder, or a model folder holding several (reference
 *   cases: inputs and the outputs to compare against); a folder with x.npy; otherwise an image
 *   folder with one subfolder per class.
 * Labelled sets can be split (`--split` or `:split`) with the seeded scheme of split.ts; without one,
 * the whole set is used.
 */
import { promises as fs } from 'node:fs';
import { extname, join } from 'node:path';
import { UserError } from '../errors.js';
import { BUILTIN_NAMES, isBuiltin, loadBuiltin } from './builtins.js';
import { loadCsv } from './csv.js';
import type { ImageFolderOptions } from './imageFolder.js';
import { loadImageFolder } from './imageFolder.js';
import type { Task } from './labels.js';
import { DataBudget } from './limits.js';
import { loadNpyPair, loadNpz } from './numpy.js';
import { loadReferenceCases } from './reference.js';
import type { TermValues } from './hashing.js';
import { applySplit, checkSeed, checkSplit, DEFAULT_SEED } from './split.js';
import { SPLITS, type Dataset, type ReferenceCase, type Split } from './types.js';

export { preprocess, hasPreprocessing, type PreprocessOptions } from './preprocess.js';
export { BUILTIN_NAMES } from './builtins.js';
export { DataBudget, DEFAULT_MAX_DATA_BYTES, formatBytes } from './limits.js';
export type { Dataset, ReferenceCase, Split } from './types.js';

export interface LoadDataOptions {
  /** which part of a labelled set; default: the split in the spec, else 'all' */
  split?: Split;
  seed?: number;
  /** classification (default) or regression, for user files */
  task?: Task;
  /** CSV: label column by header name or 0-based index (negative from the end) */
  labelColumn?: string | number;
  /** .npy: the labels file when the samples file is not x.npy */
  labels?: string;
  /** image folders: [height, width] or one side */
  imageSize?: ImageFolderOptions['size'];
  channels?: ImageFolderOptions['channels'];
  /** built-in spam: hashing buckets and term values */
  buckets?: number;
  termValues?: TermValues;
  /**
   * The data size limit, in bytes: what the decoded contents of user files may take, checked against
   * their headers before anything is allocated (default DEFAULT_MAX_DATA_BYTES).
   */
  maxDataBytes?: number;
  /**
   * A budget shared with other loads, when several files make one data set (train, validation and test
   * files): they count against one limit together. Takes the place of maxDataBytes.
   */
  budget?: DataBudget;
}

export type LoadedData = Dataset | ReferenceCase[];

export function isReference(d: LoadedData): d is ReferenceCase[] {
  return Array.isArray(d);
}

/** `name:split` for built-ins (a path may contain ':' too, so only a known name before it counts). */
export function parseSpec(spec: string): { name: string; split?: Split } {
  const i = spec.lastIndexOf(':');
  if (i > 0) {
    const name = spec.slice(0, i);
    const split = spec.slice(i + 1);
    if (isBuiltin(name)) return { name, split: checkSplit(split) };
    if ((SPLITS as readonly string[]).includes(split)) return { name, split: split as Split };
  }
  return { name: spec };
}

async function statOf(path: string) {
  try {
    return await fs.stat(path);
  } catch {
    return undefined;
  }
}

function unknownSpec(spec: string): UserError {
  return new UserError(
    `data=${spec}`,
    `no such file or folder, and not a built-in data set; the built-in data sets are ${BUILTIN_NAMES.join(', ')} (optionally name:split, split one of ${SPLITS.join(', ')}), or give a path to .npz, .npy, .csv, an image folder or a test_data_set folder`,
  );
}

async function loadFile(path: string, o: LoadDataOptions, budget: DataBudget): Promise<Dataset> {
  const ext = extname(path).toLowerCase();
  switch (ext) {
    case '.npz':
      return loadNpz(path, o.task, budget);
    case '.npy':
      return loadNpyPair(path, o.labels, o.task, budget);
    case '.csv':
    case '.tsv':
    case '.txt':
      return loadCsv(path, { labelColumn: o.labelColumn, task: o.task, budget });
    case '.pb':
      throw new UserError(path, 'a single .pb file is one tensor; give the test_data_set_N folder that holds input_K.pb and output_K.pb');
    default:
      throw new UserError(path, `unknown data file type '${ext || '(none)'}'; expected .npz, .npy, .csv or .tsv, or a folder`);
  }
}

async function loadFolder(path: string, o: LoadDataOptions, budget: DataBudget): Promise<LoadedData> {
  const cases = await loadReferenceCases(path); // [] when the folder is neither a set nor holds any
  if (cases.length > 0) return cases;
  if (await statOf(join(path, 'x.npy'))) return loadNpyPair(join(path, 'x.npy'), o.labels, o.task, budget);
  return loadImageFolder(path, { size: o.imageSize, channels: o.channels, budget });
}

/**
 * The data a spec names: a labelled Dataset (split applied, always a fresh copy) or the reference
 * cases of test_data_set folders. Every problem with the spec or the files is a UserError.
 */
export async function loadData(spec: string, o: LoadDataOptions = {}): Promise<LoadedData> {
  if (spec.trim() === '') throw new UserError('data', 'expected a data set name or path, found an empty string');
  const parsed = parseSpec(spec);
  if (parsed.split && o.split && parsed.split !== o.split) {
    throw new UserError('split', `conflicts with the split in --data ${spec} (${o.split} vs ${parsed.split}); give one`);
  }
  const split = parsed.split ?? o.split;
  const seed = o.seed === undefined ? DEFAULT_SEED : checkSeed(o.seed);
  const budget = o.budget ?? new DataBudget(o.maxDataBytes);

  let ds: Dataset;
  const st = await statOf(parsed.name);
  if (st?.isDirectory()) {
    const loaded = await loadFolder(parsed.name, o, budget);
    if (isReference(loaded)) {
      if (split && split !== 'all')
        throw new UserError('split', `does not apply to reference data (${parsed.name} holds test_data_set folders, not labelled samples)`);
      if (loaded.length === 0) throw new UserError(parsed.name, 'holds no test_data_set_N folders');
      return loaded;
    }
    ds = loaded;
  } else if (st?.isFile()) {
    ds = await loadFile(parsed.name, o, budget);
  } else if (isBuiltin(parsed.name)) {
    ds = await loadBuiltin(parsed.name, { buckets: o.buckets, values: o.termValues });
  } else {
    throw unknownSpec(spec);
  }
  return applySplit(ds, split ?? 'all', seed);
}
