/**
 * External tensor data (TensorProto.data_location = EXTERNAL): weights stored in files beside the model,
 * addressed by location/offset/length relative to the model's folder.
 */
import { isAbsolute, normalize, resolve, sep } from 'node:path';
import { UserError } from '../errors.js';
import { copyInside, readInside, RefusedFile, statInside, type Reference } from '../fsguard.js';
import { byteCountProblem } from './tensorsize.js';
import type { TensorProto } from './types.js';

const EXTERNAL = 1;

export interface ExternalRef {
  location: string;
  offset: number;
  /** undefined: to the end of the file */
  length: number | undefined;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === EXTERNAL;
}

export function externalRef(t: TensorProto): ExternalRef {
  const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const num = (k: string) => {
    const v = kv.get(k);
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`external data ${k} '${v}' is not a non-negative integer`);
    return n;
  };
  return { location: kv.get('location') ?? '', offset: num('offset') ?? 0, length: num('length') };
}

/**
 * Where a location points inside `dir` by its text alone: for naming files to write. Files to read go
 * through statInside/readInside, which also follow links to their real path.
 */
export function resolveLocation(dir: string, location: string): string {
  if (!location) throw new Error('external data has no location');
  if (isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location) || location.startsWith('\\')) {
    throw new Error(`external data location '${location}' is absolute; only paths inside the model's folder are allowed`);
  }
  const norm = normalize(location.replace(/\\/g, '/'));
  if (norm === '..' || norm.startsWith('..' + sep) || norm.startsWith('../')) {
    throw new Error(`external data location '${location}' escapes the model's folder`);
  }
  return resolve(dir, norm);
}

/** How a refusal names an external tensor's data. */
function reference(t: TensorProto, location: string): Reference {
  return { what: `external data '${location}' for tensor '${t.name ?? ''}'`, folder: "the model's folder" };
}

/**
 * Checks every external tensor's file (inside the model's folder by real path, a regular file) and range,
 * and that the range holds as many bytes as the tensor's dims say; throws a UserError naming the model file.
 */
export function validateExternal(modelFile: string, dir: string, tensors: TensorProto[]): void {
  const sizes = new Map<string, number>();
  for (const t of tensors) {
    if (!isExternal(t)) continue;
    try {
      const ref = externalRef(t);
      let size = sizes.get(ref.location);
      if (size === undefined) {
        size = statInside(dir, ref.location, reference(t, ref.location)).size;
        sizes.set(ref.location, size);
      }
      const length = ref.length ?? size - ref.offset;
      const end = ref.offset + length;
      if (ref.offset > size || end > size) {
        throw new Error(`external data for tensor '${t.name ?? ''}' needs bytes ${ref.offset}..${end} of '${ref.location}', which has ${size}`);
      }
      const problem = byteCountProblem(t, length, `external data '${ref.location}'`);
      if (problem) throw new Error(problem);
    } catch (e) {
      throw new UserError(modelFile, (e as Error).message);
    }
  }
}

/**
 * Reads an external tensor's bytes (only when a caller needs the values, e.g. training or inlining), under
 * the same rules as validateExternal: the real path inside `dir`, a regular file.
 */
export function readExternalBytes(dir: string, t: TensorProto): Uint8Array {
  const ref = externalRef(t);
  try {
    return readInside(dir, ref.location, reference(t, ref.location), ref.offset, ref.length);
  } catch (e) {
    if (e instanceof RefusedFile) throw new UserError(dir, e.message);
    throw e;
  }
}

/** Copies an external data file whole to `dest`, under the same rules as readExternalBytes. */
export async function copyExternalFile(dir: string, location: string, dest: string): Promise<void> {
  try {
    await copyInside(dir, location, { what: `external data '${location}'`, folder: "the model's folder" }, dest);
  } catch (e) {
    if (e instanceof RefusedFile) throw new UserError(dir, e.message);
    throw e;
  }
}

export function setExternal(t: TensorProto, location: string, offset: number, length: number): void {
  t.dataLocation = EXTERNAL;
  t.externalData = [
    { key: 'location', value: location },
    { key: 'offset', value: String(offset) },
    { key: 'length', value: String(length) },
  ];
  delete t.rawData;
}
