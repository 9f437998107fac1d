/**
 * External tensor data (TensorProto.data_location = EXTERNAL): weights stored in files beside the model,
 * addressed by location/offset/length relative to the model's folder.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { isAbsolute, normalize, resolve, sep } from 'node:path';
import { UserError } from '../errors.js';
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

/** Resolves a location inside `dir`; refuses absolute paths and anything that escapes the folder. */
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

/** Checks every external tensor's file and range; throws a UserError naming the model file. */
export function validateExternal(modelFile: string, dir: string, tensors: TensorProto[]): void {
  const sizes = new Map<string, number>();
  for (const t of tensors) {
    if (!isExternal(t)) continue;
    try {
      const ref = externalRef(t);
      const file = resolveLocation(dir, ref.location);
      let size = sizes.get(file);
      if (size === undefined) {
        let st;
        try {
          st = statSync(file);
        } catch {
          throw new Error(`external data file '${ref.location}' for tensor '${t.name ?? ''}' is missing`);
        }
        if (!st.isFile()) throw new Error(`external data '${ref.location}' is not a file`);
        size = st.size;
        sizes.set(file, size);
      }
      const end = ref.offset + (ref.length ?? size - ref.offset);
      if (ref.offset > size || end > size) {
        throw new Error(`external data for tensor '${t.name ?? ''}' needs bytes ${ref.offset}..${end} of '${ref.location}', which has ${size}`);
      }
    } catch (e) {
      throw new UserError(modelFile, (e as Error).message);
    }
  }
}

/** Reads an external tensor's bytes (only when a caller needs the values, e.g. training or inlining). */
export function readExternalBytes(dir: string, t: TensorProto): Uint8Array {
  const ref = externalRef(t);
  const file = resolveLocation(dir, ref.location);
  const fd = openSync(file, 'r');
  try {
    const length = ref.length ?? statSync(file).size - ref.offset;
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, ref.offset + done);
      if (n === 0) throw new Error(`external data '${ref.location}' ends early`);
      done += n;
    }
    return buf;
  } finally {
    closeSync(fd);
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
