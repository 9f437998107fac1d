/**
 * A user's own train / validation / test files, held to one standard: the same task, the same sample
 * shape (and the same feature columns, where the files name them), the same targets per sample, and
 * classes that the training data knows. Classes are matched by name (class folders, CSV label strings,
 * or '0'..'k' for numeric labels), so a validation folder without one of the classes, or whose folders
 * sort differently, still gets the training data's label numbers; a class the training data lacks is
 * refused.
 */
import { UserError } from '../errors.js';
import { isReference, loadData, preprocess, type LoadDataOptions, type PreprocessOptions } from './index.js';
import { DataBudget } from './limits.js';
import { select } from './split.js';
import { printable } from '../printable.js';
import type { Dataset, Split } from './types.js';

export type SplitRole = 'validation' | 'test';

/** Where one split came from: a data spec, and which part of it ('all': the whole set, no split made). */
export interface SplitSource {
  spec: string;
  part: Split;
  /** samples */
  count: number;
}

export interface SplitSources {
  train: SplitSource;
  val: SplitSource | null;
  test: SplitSource | null;
}

const PART_TEXT: Record<Exclude<Split, 'all'>, string> = { train: '80%', val: '10%', test: '10%' };

function sourceText(s: SplitSource | null): string {
  if (!s) return 'none';
  const set = s.spec.endsWith(`:${s.part}`) ? s.spec.slice(0, -s.part.length - 1) : s.spec;
  const what = s.part === 'all' ? `all of ${s.spec}` : `${PART_TEXT[s.part]} of ${set} (its seeded '${s.part}' split)`;
  return `${what}, ${s.count} sample${s.count === 1 ? '' : 's'}`;
}

/** "train: all of a.csv, 120 samples; validation: all of b.csv, 30 samples; test: none". */
export function describeSources(s: SplitSources): string {
  return `train: ${sourceText(s.train)}; validation: ${sourceText(s.val)}; test: ${sourceText(s.test)}`;
}

/**
 * The sources as one comparable string, for a run's identity; undefined for the seeded 80/10/10 of one
 * set (which runs from before own splits existed also had).
 */
export function sourcesKey(s: SplitSources): string | undefined {
  const one = (x: SplitSource | null) => (x ? `${x.part}:${x.spec}` : 'none');
  const { train, val, test } = s;
  if (train.part === 'train' && val?.part === 'val' && test?.part === 'test' && val.spec === train.spec && test.spec === train.spec) return undefined;
  return `train=${one(train)} val=${one(val)} test=${one(test)}`;
}

const list = (names: string[], max = 6) => names.slice(0, max).map(printable).join(', ') + (names.length > max ? `, ... (${names.length} in all)` : '');
const dims = (s: number[]) => s.join('x');

/**
 * `other` checked against `train` and returned with the training data's classes: its labels renumbered
 * by class name where the names sit at other positions. `subject` names the file in errors.
 */
export function alignSplit(train: Dataset, other: Dataset, role: SplitRole, subject: string): Dataset {
  const ref = `the training data's`;
  if (other.task !== train.task) throw new UserError(subject, `holds ${other.task} data for the ${role} set; the training data is ${train.task}`);
  if (dims(other.sampleShape) !== dims(train.sampleShape)) {
    throw new UserError(
      subject,
      `its samples are ${dims(other.sampleShape)}, ${ref} are ${dims(train.sampleShape)}; the ${role} set must match the training set`,
    );
  }
  if (train.featureNames && other.featureNames && train.featureNames.join('\n') !== other.featureNames.join('\n')) {
    throw new UserError(
      subject,
      `its feature columns are ${list(other.featureNames)}, ${ref} are ${list(train.featureNames)}; the ${role} set must have the same columns in the same order`,
    );
  }
  if (train.task === 'regression') {
    if ((other.targetSize ?? 1) !== (train.targetSize ?? 1)) {
      throw new UserError(subject, `has ${other.targetSize ?? 1} target values per sample, ${ref} ${train.targetSize ?? 1}`);
    }
    return other;
  }
  const classes = train.classes ?? [];
  const theirs = other.classes ?? [];
  const index = new Map(classes.map((c, k) => [c, k]));
  const unknown = theirs.filter((c) => !index.has(c));
  if (unknown.length) {
    throw new UserError(
      subject,
      `the ${role} set has class${unknown.length === 1 ? '' : 'es'} ${list(unknown)}, which the training data (${list(classes)}) does not have`,
    );
  }
  if (theirs.every((c, k) => index.get(c) === k)) return { ...other, classes };
  const map = theirs.map((c) => index.get(c)!);
  const y = Int32Array.from(other.y.subarray(0, other.count), (v) => map[v]!);
  return { ...other, y, classes };
}

/** The sets to train on: `data` alone (split 80/10/10), or with the user's own validation and/or test files. */
export interface TrainingSetSpecs {
  data: string;
  val?: string;
  test?: string;
  /**
   * What the validation and test specs are called where a message is about the spec itself (a missing
   * file, an empty name); loadData calls every spec --data.
   */
  names?: { val?: string; test?: string };
}

export interface TrainingSets {
  train: Dataset;
  /** empty (count 0) when there is none: a test file given without a validation file */
  val: Dataset;
  test?: Dataset;
  sources: SplitSources;
}

async function labelled(spec: string, o: LoadDataOptions): Promise<Dataset> {
  const d = await loadData(spec, o);
  if (isReference(d)) throw new UserError(spec, 'holds reference cases (test_data_set folders), not labelled samples to train on');
  return d;
}

const sourceOf = (spec: string, d: Dataset): SplitSource => ({ spec, part: d.split ?? 'all', count: d.count });

/**
 * Loads the sets a run trains, validates and tests on. Without `val` and `test`: the seeded 80/10/10 split
 * of `data`. With either: `data` is all training data (or the split its spec names, e.g. `mnist:train`),
 * the given files are the validation and test sets, no split is made, and a part not given is none.
 * Own files count against one data size limit together, are loaded at the training images' size, are
 * checked against the training set (alignSplit), then preprocessed alike.
 */
export async function loadTrainingSets(
  specs: TrainingSetSpecs,
  o: Omit<LoadDataOptions, 'split' | 'budget'> = {},
  pre: PreprocessOptions = {},
): Promise<TrainingSets> {
  if (specs.val === undefined && specs.test === undefined) {
    // one after the other: each load holds the whole set for a moment
    const train = await labelled(specs.data, { ...o, split: 'train' });
    const val = await labelled(specs.data, { ...o, split: 'val' });
    const test = await labelled(specs.data, { ...o, split: 'test' });
    return {
      train: preprocess(train, pre),
      val: preprocess(val, pre),
      test: preprocess(test, pre),
      sources: { train: sourceOf(specs.data, train), val: sourceOf(specs.data, val), test: sourceOf(specs.data, test) },
    };
  }
  const budget = new DataBudget(o.maxDataBytes);
  const train = await labelled(specs.data, { ...o, budget });
  // every image folder at the training images' size, whatever decided it
  // (a labels file belongs to the training samples: own .npy sets are x.npy with y.npy beside it)
  const { labels: _labels, ...rest } = o;
  const same = { ...rest, budget, ...(train.resizedTo ? { imageSize: train.resizedTo } : {}) };
  const own = async (spec: string | undefined, role: SplitRole, name: string | undefined) => {
    if (spec === undefined) return undefined;
    let d: Dataset;
    try {
      d = await labelled(spec, same);
    } catch (e) {
      if (name !== undefined && e instanceof UserError && /^data(=|$)/.test(e.subject))
        throw new UserError(
          e.subject.replace(/^data=?/, (d) => (d === 'data=' ? `${name} ` : name)),
          e.cause_,
        );
      throw e;
    }
    return alignSplit(train, d, role, spec);
  };
  const val = await own(specs.val, 'validation', specs.names?.val);
  const test = await own(specs.test, 'test', specs.names?.test);
  const none = { ...select(train, []), split: 'val' as const };
  return {
    train: preprocess(train, pre),
    val: preprocess(val ?? none, pre),
    ...(test ? { test: preprocess(test, pre) } : {}),
    sources: { train: sourceOf(specs.data, train), val: val ? sourceOf(specs.val!, val) : null, test: test ? sourceOf(specs.test!, test) : null },
  };
}
