/**
 * Train / validation / test splits, the same scheme for every data set (built-in or user's):
 *
 * - the full set's rows 0..n-1 are permuted with `permutation(n, seed)` (Fisher–Yates driven by
 *   mulberry32(seed); default seed 0);
 * - the first floor(0.8·n) permuted rows are `train`, the next floor(0.1·n) are `val`, the rest `test`;
 * - within each split rows are put back in ascending original order, so a split's content depends only
 *   on (n, seed) and its order is the file's order;
 * - `all` is every row in the original order, no shuffling.
 *
 * Not stratified: class balance within a split follows from the shuffle. For MNIST (n = 10,000) this is
 * 8,000 / 1,000 / 1,000.
 */
import { UserError } from '../errors.js';
import { permutation } from './prng.js';
import { SPLITS, type Dataset, type Split } from './types.js';
import { elementCount } from '../onnx/tensor.js';

export const DEFAULT_SEED = 0;
const TRAIN_FRACTION = 0.8;
const VAL_FRACTION = 0.1;

function splitSizes(n: number): { train: number; val: number; test: number } {
  const train = Math.floor(TRAIN_FRACTION * n);
  const val = Math.floor(VAL_FRACTION * n);
  return { train, val, test: n - train - val };
}

/** Rows of the full set that belong to `split`, ascending. */
function splitIndices(n: number, split: Split, seed = DEFAULT_SEED): Int32Array {
  if (split === 'all') {
    const all = new Int32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    return all;
  }
  const { train, val } = splitSizes(n);
  const perm = permutation(n, seed);
  const [from, to] = split === 'train' ? [0, train] : split === 'val' ? [train, train + val] : [train + val, n];
  return perm.slice(from, to).sort();
}

export function checkSplit(split: string): Split {
  if ((SPLITS as readonly string[]).includes(split)) return split as Split;
  throw new UserError(`split ${JSON.stringify(split)}`, `unknown split; expected one of ${SPLITS.join(', ')}`);
}

export function checkSeed(seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new UserError(`seed ${seed}`, 'expected an integer from 0 to 4294967295');
  }
  return seed;
}

/** Values per sample in `y`. */
function targetSizeOf(ds: Pick<Dataset, 'targetSize' | 'task'>): number {
  return ds.task === 'classification' ? 1 : (ds.targetSize ?? 1);
}

/** A new data set holding copies of the given rows, in the given order. `indices` map back to the full set. */
export function select(ds: Dataset, rows: ArrayLike<number>): Dataset {
  const size = elementCount(ds.sampleShape);
  const ts = targetSizeOf(ds);
  const n = rows.length;
  const x = new Float32Array(n * size);
  const y = ds.y instanceof Int32Array ? new Int32Array(n * ts) : new Float32Array(n * ts);
  const indices = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const r = rows[k]!;
    if (!Number.isInteger(r) || r < 0 || r >= ds.count) throw new RangeError(`row ${r} outside 0..${ds.count - 1}`);
    x.set(ds.x.subarray(r * size, (r + 1) * size), k * size);
    y.set(ds.y.subarray(r * ts, (r + 1) * ts), k * ts);
    indices[k] = ds.indices ? ds.indices[r]! : r;
  }
  return { ...ds, x, y, count: n, indices };
}

/** The `split` part of a full data set (always a copy, so callers may modify it freely). */
export function applySplit(ds: Dataset, split: Split = 'all', seed = DEFAULT_SEED): Dataset {
  const part = select(ds, splitIndices(ds.count, split, seed));
  return { ...part, split };
}
