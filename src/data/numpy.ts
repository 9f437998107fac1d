/**
 * User data in NumPy files: an .npz holding arrays `x` and `y` (numpy.savez(path, x=..., y=...), either
 * compressed or not), or a pair of .npy files — `x.npy` with `y.npy` beside it, or any .npy with a
 * labels file given by the `labels` option.
 */
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { openRegular, readAt, readWhole } from './files.js';
import { datasetFromArrays, type Task } from './labels.js';
import { DataBudget, formatBytes } from './limits.js';
import { checkDataLength, declaredData, HEADER_PREFIX_BYTES, npyFromData, parseNpy, parseNpyHeader, toFloat32, valueAt, type NpyArray } from './npy.js';
import type { Dataset } from './types.js';
import { ZipReader } from './zip.js';

/**
 * A .npy file read in two steps: its header first, so the declared data is checked against the file's
 * size and charged to the budget before the data buffer is allocated.
 */
async function readNpyFile(file: string, budget: DataBudget): Promise<NpyArray> {
  const f = await openRegular(file);
  try {
    const head = await readAt(file, f, 0, Math.min(f.size, HEADER_PREFIX_BYTES));
    const h = parseNpyHeader(head, file);
    checkDataLength(h, f.size - h.dataOffset, file);
    budget.take(file, h.dataBytes, declaredData(h));
    return npyFromData(h, await readAt(file, f, h.dataOffset, h.dataBytes));
  } finally {
    await f.handle.close();
  }
}

function labelValues(a: NpyArray): number[] {
  const out = new Array<number>(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = valueAt(a, i);
  return out;
}

/**
 * Samples become float32 and labels plain numbers: copies that are charged before they are made
 * (labels: a number array of 8 bytes a value, then 4-byte typed labels).
 */
function fromNpy(subject: string, x: NpyArray, y: NpyArray, task: Task | undefined, budget: DataBudget): Dataset {
  if (!(x.data instanceof Float32Array)) budget.take(subject, x.data.length * 4, `needs ${formatBytes(x.data.length * 4)} for its samples as float32`);
  budget.take(subject, y.data.length * 12, `needs ${formatBytes(y.data.length * 12)} for its labels`);
  return datasetFromArrays(subject, basename(subject), { x: toFloat32(x), xShape: x.shape, y: labelValues(y), yShape: y.shape }, task);
}

/** Arrays in an .npz, by name without the `.npy` suffix. */
export function readNpzArrays(bytes: Uint8Array, subject: string, budget?: DataBudget): Map<string, () => NpyArray> {
  const zip = new ZipReader(bytes, subject, budget);
  const out = new Map<string, () => NpyArray>();
  for (const name of zip.names()) {
    if (name.endsWith('/')) continue;
    out.set(name.replace(/\.npy$/, ''), () => parseNpy(zip.read(name), `${subject} (array ${name})`, budget));
  }
  return out;
}

export async function loadNpz(file: string, task?: Task, budget = new DataBudget()): Promise<Dataset> {
  const arrays = readNpzArrays(await readWhole(file, budget), file, budget);
  const missing = ['x', 'y'].filter((k) => !arrays.has(k));
  if (missing.length) {
    const found = [...arrays.keys()];
    throw new UserError(
      file,
      `missing array ${missing.join(' and ')}; expected arrays named x and y (numpy.savez(path, x=..., y=...)), found ${found.length ? found.join(', ') : 'no arrays'}`,
    );
  }
  return fromNpy(file, arrays.get('x')!(), arrays.get('y')!(), task, budget);
}

/** `file` is the samples; labels come from `labels`, or from y.npy beside a file named x.npy. */
export async function loadNpyPair(file: string, labels: string | undefined, task?: Task, budget = new DataBudget()): Promise<Dataset> {
  let yFile = labels;
  if (!yFile) {
    if (basename(file) !== 'x.npy') {
      throw new UserError(
        file,
        'missing array y: a single .npy holds only samples; name it x.npy with y.npy beside it, give the labels file (labels option), or use an .npz with arrays x and y',
      );
    }
    yFile = join(dirname(file), 'y.npy');
    try {
      await fs.access(yFile);
    } catch {
      throw new UserError(file, `missing array y: expected the labels in ${yFile}`);
    }
  }
  const x = await readNpyFile(file, budget);
  const y = await readNpyFile(yFile, budget);
  return fromNpy(file, x, y, task, budget);
}
