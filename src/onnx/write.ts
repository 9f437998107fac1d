/**
 * Writing a model: atomic (temporary file, then rename), external data kept, moved out or inlined,
 * and never a protobuf over 2 GB (the format's hard limit).
 */
import { promises as fs, realpathSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { checkOutputs, commitFiles, writeFailure, type InputPath, type InputSource } from '../atomic.js';
import { UserError } from '../errors.js';
import { copyExternalFile, externalRef, isExternal, readExternalBytes, resolveLocation, setExternal } from './external.js';
import { encodeModel, encodeModelParts, type EncodedModel } from './schema.js';
import type { ModelProto, TensorProto } from './types.js';
import { allTensors } from './walk.js';

export type ExternalDataMode = 'keep' | 'all' | 'inline';

export interface WriteOptions {
  /** folder of the model that was read: existing external locations are relative to it */
  sourceDir?: string;
  /** keep: as read (data files copied beside the output when it moves); all: every tensor of at least
   * `sizeThreshold` bytes goes to one data file; inline: all data inside the .onnx */
  externalData?: ExternalDataMode;
  /** data file name for `all` (default `<output>.data`) */
  dataLocation?: string;
  sizeThreshold?: number;
  /** overwrite existing output and data files */
  force?: boolean;
  /** files the command read (the model file, data): never replaced; the model's external data is added here */
  inputs?: InputSource[];
  /** @internal protobuf's size limit; tests lower it to exercise the >2 GiB path without 2 GiB of weights */
  protobufLimit?: number;
}

export interface WriteResult {
  path: string;
  bytes: number;
  dataFiles: string[];
  warnings: string[];
}

const PROTOBUF_LIMIT = 2 ** 31 - 1;
const ALIGN = 64;

/** Whether two folders are one (by real path; a folder that does not exist is its own). */
function sameFolder(a: string, b: string): boolean {
  const real = (d: string) => {
    try {
      return realpathSync(d);
    } catch {
      return d;
    }
  };
  return a === b || real(a) === real(b);
}

/** A tensor's external data file, resolved; undefined where the location is not usable (reading refused it). */
function dataFileOf(dir: string, t: TensorProto): string | undefined {
  try {
    return resolveLocation(dir, externalRef(t).location);
  } catch {
    return undefined;
  }
}

/** The external data files a model read from `sourceDir` references: inputs no output may replace. */
export function externalDataInputs(model: ModelProto, sourceDir: string): InputPath[] {
  const files = new Set<string>();
  for (const t of allTensors(model)) {
    const f = isExternal(t) ? dataFileOf(sourceDir, t) : undefined;
    if (f) files.add(f);
  }
  return [...files].map((path) => ({ path, what: 'external data of the input model' }));
}

/**
 * Every file writeModel(model, out, opts) will write, known before any work: the model, then its data
 * files (a model over protobuf's limit may add `<out>.data`, which writeModel checks when it finds out).
 */
export function modelOutputFiles(model: ModelProto, out: string, opts: WriteOptions = {}): string[] {
  const path = resolve(out);
  const outDir = dirname(path);
  const sourceDir = opts.sourceDir ? resolve(opts.sourceDir) : outDir;
  const mode = opts.externalData ?? 'keep';
  const tensors = allTensors(model);
  if (mode === 'keep' && !sameFolder(sourceDir, outDir)) {
    const locs = new Set(tensors.filter(isExternal).map((t) => externalRef(t).location));
    return [path, ...[...locs].map((loc) => resolveLocation(outDir, loc))];
  }
  if (mode === 'all') {
    const threshold = opts.sizeThreshold ?? 1024;
    const any = tensors.some((t) => isExternal(t) || (t.rawData?.length ?? 0) >= threshold);
    return any ? [path, resolveLocation(outDir, opts.dataLocation ?? `${basename(path)}.data`)] : [path];
  }
  return [path];
}

/** Checks `targets` (the model first, then its data files) under the rules of every output (src/atomic.ts). */
async function checkTargets(model: ModelProto, out: string, targets: string[], opts: WriteOptions): Promise<void> {
  const sourceDir = resolve(opts.sourceDir ?? dirname(resolve(out)));
  const inputs: InputSource[] = [...(opts.inputs ?? []), async () => externalDataInputs(model, sourceDir)];
  await checkOutputs([out, ...targets.slice(1).map((path) => ({ path, createFolders: true }))], { force: opts.force, inputs });
}

/** What writeModel checks first, for callers that check every output before any work. */
export async function checkModelOutput(model: ModelProto, out: string, opts: WriteOptions = {}): Promise<void> {
  await checkTargets(model, out, modelOutputFiles(model, out, opts), opts);
}

export async function writeModel(model: ModelProto, out: string, opts: WriteOptions = {}): Promise<WriteResult> {
  const path = resolve(out);
  const outDir = dirname(path);
  const sourceDir = opts.sourceDir ? resolve(opts.sourceDir) : outDir;
  const warnings: string[] = [];
  await checkModelOutput(model, out, opts);

  const tensors = allTensors(model);
  let mode = opts.externalData ?? 'keep';
  const edits = new TensorEdits();
  try {
    if (mode === 'inline') inlineExternal(tensors, sourceDir, edits);
    let encoded = encodeModelParts(model);
    const limit = opts.protobufLimit ?? PROTOBUF_LIMIT;
    if (encoded.length > limit && mode !== 'all') {
      edits.restore();
      warnings.push(`the model is ${(encoded.length / 2 ** 30).toFixed(2)} GiB inline, over protobuf's 2 GiB limit: weights written as external data`);
      mode = 'all';
    }
    const copies = mode === 'keep' && !sameFolder(sourceDir, outDir) ? externalCopies(tensors, outDir) : [];
    const location = opts.dataLocation ?? `${basename(path)}.data`;
    const moved = mode === 'all' ? moveToDataFile(tensors, sourceDir, location, opts.sizeThreshold ?? 1024, edits) : [];
    if (mode === 'all') encoded = encodeModelParts(model);
    const targets = [path, ...(moved.length ? [resolveLocation(outDir, location)] : []), ...copies.map((c) => c.to)];
    // Known only now where the model went over protobuf's limit; otherwise the same files as checked above.
    await checkTargets(model, out, targets, opts);
    if (encoded.length > limit) throw new UserError(out, 'the model is over 2 GiB even with its weights stored externally');

    for (const c of copies) await fs.mkdir(dirname(c.to), { recursive: true });
    await commitFiles(targets, (temps) => writeTargets(temps, encoded, moved, copies, sourceDir), { replace: opts.force ?? false });
    return { path, bytes: encoded.length, dataFiles: targets.slice(1), warnings };
  } catch (e) {
    throw writeFailure(e, out);
  } finally {
    edits.restore();
  }
}

type Moved = { t: TensorProto; bytes: Uint8Array | (() => Uint8Array) };

/** 'keep' into another folder: each external data file the model names is copied beside the output. */
function externalCopies(tensors: TensorProto[], outDir: string): { from: string; to: string }[] {
  // read by copyExternalFile: by real path, inside sourceDir, regular files only
  return [...new Set(tensors.filter(isExternal).map((t) => externalRef(t).location))].map((loc) => ({ from: loc, to: resolveLocation(outDir, loc) }));
}

/**
 * 'all': every external tensor, and every inline one of `threshold` bytes or more, is pointed at its
 * aligned place in the one data file `location` (edits recorded in `edits`, so the caller's model is restored).
 */
function moveToDataFile(tensors: TensorProto[], sourceDir: string, location: string, threshold: number, edits: TensorEdits): Moved[] {
  const moved: Moved[] = [];
  let offset = 0;
  for (const t of tensors) {
    const size = isExternal(t) ? (externalRef(t).length ?? -1) : (t.rawData?.length ?? 0);
    if (!isExternal(t) && size < threshold) continue;
    const bytes: Uint8Array | (() => Uint8Array) = isExternal(t) ? () => readExternalBytes(sourceDir, t) : t.rawData!;
    const length = typeof bytes === 'function' ? bytes().length : bytes.length;
    offset = Math.ceil(offset / ALIGN) * ALIGN;
    edits.save(t);
    moved.push({ t, bytes });
    setExternal(t, location, offset, length);
    offset += length;
  }
  return moved;
}

/** The temporary files, in the order of the targets: the model, the data file (when tensors moved), the copies. */
async function writeTargets(temps: string[], encoded: EncodedModel, moved: Moved[], copies: { from: string }[], sourceDir: string): Promise<void> {
  await writeParts(temps[0]!, encoded);
  let next = 1;
  if (moved.length) {
    const fh = await fs.open(temps[next++]!, 'wx');
    try {
      for (const m of moved) {
        const ref = externalRef(m.t);
        const data = typeof m.bytes === 'function' ? m.bytes() : m.bytes;
        await fh.write(data, 0, data.length, ref.offset);
      }
    } finally {
      await fh.close();
    }
  }
  for (const c of copies) await copyExternalFile(sourceDir, c.from, temps[next++]!);
}

/** Writes the pieces in order; the weights go from the model's own arrays to the kernel, uncopied. */
async function writeParts(file: string, encoded: EncodedModel): Promise<void> {
  const fh = await fs.open(file, 'wx');
  try {
    // writev takes at most IOV_MAX (1024 on Linux) buffers per call.
    for (let i = 0; i < encoded.parts.length; i += 512) {
      let batch = encoded.parts.slice(i, i + 512);
      // a short write (a disk filling up) goes on where it stopped: the next call fails with the cause
      while (batch.length) {
        const { bytesWritten } = await fh.writev(batch);
        if (bytesWritten === 0) throw new Error(`writing ${file}: no progress`);
        batch = after(batch, bytesWritten);
      }
    }
  } finally {
    await fh.close();
  }
}

/** `parts` less their first `n` bytes (views, no copies) */
function after(parts: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length;
  const rest = parts.slice(i);
  if (rest.length && n) rest[0] = rest[0]!.subarray(n);
  return rest;
}

/** Remembers tensors' data fields before an edit, so the caller's model is unchanged after writing. */
class TensorEdits {
  private saved: { t: TensorProto; fields: Partial<TensorProto> }[] = [];
  save(t: TensorProto): void {
    const own = (k: keyof TensorProto) => (Object.hasOwn(t, k) ? t[k] : undefined);
    this.saved.push({ t, fields: { rawData: own('rawData'), dataLocation: own('dataLocation'), externalData: own('externalData') } as Partial<TensorProto> });
  }
  restore(): void {
    for (const { t, fields } of this.saved.reverse()) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) delete (t as Record<string, unknown>)[k];
        else (t as Record<string, unknown>)[k] = v;
      }
    }
    this.saved = [];
  }
}

function inlineExternal(tensors: TensorProto[], sourceDir: string, edits: TensorEdits): void {
  for (const t of tensors) {
    if (!isExternal(t)) continue;
    edits.save(t);
    t.rawData = readExternalBytes(sourceDir, t);
    delete t.dataLocation;
    delete t.externalData;
  }
}

/** The model as one self-contained protobuf (external data read in), for an in-memory session. */
export function encodeInline(model: ModelProto, sourceDir: string): Uint8Array {
  const edits = new TensorEdits();
  try {
    inlineExternal(allTensors(model), sourceDir, edits);
    return encodeModel(model);
  } finally {
    edits.restore();
  }
}
