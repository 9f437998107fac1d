/**
 * User data in NumPy files: an .npz holding arrays `x` and `y` (numpy.savez(path, x=..., y=...), either
 * compressed or not), or a pair of .npy files — `x.npy` with `y.npy` beside it, or any .npy with a
 * labels file given by the `labels` option.
 */
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { datasetFromArrays, type Task } from './labels.js';
import { parseNpy, toFloat32, valueAt, type NpyArray } from './npy.js';
import type { Dataset } from './types.js';
import { ZipReader } from './zip.js';

async function readBytes(file: string): Promise<Uint8Array> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(file, code === 'ENOENT' ? 'no such file' : `cannot read: ${(e as Error).message}`);
  }
}

function labelValues(a: NpyArray): number[] {
  const out = new Array<number>(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = valueAt(a, i);
  return out;
}

function fromNpy(subject: string, x: NpyArray, y: NpyArray, task: Task | undefined): Dataset {
  return datasetFromArrays(subject, basename(subject), { x: toFloat32(x), xShape: x.shape, y: labelValues(y), yShape: y.shape }, task);
}

/** Arrays in an .npz, by name without the `.npy` suffix. */
export function readNpzArrays(bytes: Uint8Array, subject: string): Map<string, () => NpyArray> {
  const zip = new ZipReader(bytes, subject);
  const out = new Map<string, () => NpyArray>();
  for (const name of zip.names()) {
    if (name.endsWith('/')) continue;
    out.set(name.replace(/\.npy$/, ''), () => parseNpy(zip.read(name), `${subject} (array ${name})`));
  }
  return out;
}

export async function loadNpz(file: string, task?: Task): Promise<Dataset> {
  const arrays = readNpzArrays(await readBytes(file), file);
  const missing = ['x', 'y'].filter((k) => !arrays.has(k));
  if (missing.length) {
    const found = [...arrays.keys()];
    throw new UserError(file, `missing array ${missing.join(' and ')}; expected arrays named x and y (numpy.savez(path, x=..., y=...)), found ${found.length ? found.join(', ') : 'no arrays'}`);
  }
  return fromNpy(file, arrays.get('x')!(), arrays.get('y')!(), task);
}

/** `file` is the samples; labels come from `labels`, or from y.npy beside a file named x.npy. */
export async function loadNpyPair(file: string, labels: string | undefined, task?: Task): Promise<Dataset> {
  let yFile = labels;
  if (!yFile) {
    if (basename(file) !== 'x.npy') {
      throw new UserError(file, 'missing array y: a single .npy holds only samples; name it x.npy with y.npy beside it, give the labels file (labels option), or use an .npz with arrays x and y');
    }
    yFile = join(dirname(file), 'y.npy');
    try {
      await fs.access(yFile);
    } catch {
      throw new UserError(file, `missing array y: expected the labels in ${yFile}`);
    }
  }
  const x = parseNpy(await readBytes(file), file);
  const y = parseNpy(await readBytes(yFile), yFile);
  return fromNpy(file, x, y, task);
}
