/**
 * Writing a model: atomic (temporary file, then rename), external data kept, moved out or inlined,
 * and never a protobuf over 2 GB (the format's hard limit).
 */
import { constants, promises as fs } from 'node:fs';
import { basename, dirname, relative, resolve } from 'node:path';
import { commitFiles, pathExists } from '../atomic.js';
import { UserError } from '../errors.js';
import { externalRef, isExternal, readExternalBytes, resolveLocation, setExternal } from './external.js';
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

export async function writeModel(model: ModelProto, out: string, opts: WriteOptions = {}): Promise<WriteResult> {
  const path = resolve(out);
  const outDir = dirname(path);
  const sourceDir = opts.sourceDir ? resolve(opts.sourceDir) : outDir;
  const warnings: string[] = [];
  await checkWritable(out, path, opts.force ?? false);

  const tensors = allTensors(model);
  let mode = opts.externalData ?? 'keep';
  const edits = new TensorEdits();
  const edit = (t: TensorProto) => edits.save(t);
  const restore = () => edits.restore();

  try {
    if (mode === 'inline') inlineExternal(tensors, sourceDir, edits);
    let encoded = encodeModelParts(model);
    const limit = opts.protobufLimit ?? PROTOBUF_LIMIT;
    if (encoded.length > limit && mode !== 'all') {
      restore();
      warnings.push(`the model is ${(encoded.length / 2 ** 30).toFixed(2)} GiB inline, over protobuf's 2 GiB limit: weights written as external data`);
      mode = 'all';
    }
    const dataFiles: string[] = [];
    const targets = [path];
    const copies: { from: string; to: string }[] = [];
    const moved: { t: TensorProto; bytes: Uint8Array | (() => Uint8Array) }[] = [];
    let location = '';

    if (mode === 'keep' && sourceDir !== outDir) {
      for (const loc of new Set(tensors.filter(isExternal).map((t) => externalRef(t).location))) {
        const from = resolveLocation(sourceDir, loc);
        const to = resolveLocation(outDir, loc);
        copies.push({ from, to });
      }
    } else if (mode === 'all') {
      location = opts.dataLocation ?? `${basename(path)}.data`;
      const threshold = opts.sizeThreshold ?? 1024;
      let offset = 0;
      for (const t of tensors) {
        const size = isExternal(t) ? (externalRef(t).length ?? -1) : (t.rawData?.length ?? 0);
        if (!isExternal(t) && size < threshold) continue;
        const bytes: Uint8Array | (() => Uint8Array) = isExternal(t) ? () => readExternalBytes(sourceDir, t) : t.rawData!;
        const length = typeof bytes === 'function' ? bytes().length : bytes.length;
        offset = Math.ceil(offset / ALIGN) * ALIGN;
        edit(t);
        moved.push({ t, bytes });
        setExternal(t, location, offset, length);
        offset += length;
      }
      if (moved.length) targets.push(resolveLocation(outDir, location));
      encoded = encodeModelParts(model);
    }
    for (const c of copies) {
      if (!opts.force && (await pathExists(c.to))) {
        throw new UserError(out, `external data file '${relative(outDir, c.to)}' already exists beside the output (use --force to overwrite)`);
      }
      targets.push(c.to);
    }
    for (const t of targets.slice(1)) {
      if (t !== path && !opts.force && copies.every((c) => c.to !== t) && (await pathExists(t))) {
        throw new UserError(out, `external data file '${relative(outDir, t)}' already exists (use --force to overwrite)`);
      }
    }
    if (encoded.length > limit) throw new UserError(out, 'the model is over 2 GiB even with its weights stored externally');

    await commitFiles(targets, async (temps) => {
      await writeParts(temps[0]!, encoded);
      let next = 1;
      if (moved.length) {
        const fh = await fs.open(temps[next++]!, 'w');
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
      for (const c of copies) {
        await fs.mkdir(dirname(c.to), { recursive: true });
        await fs.copyFile(c.from, temps[next++]!);
      }
    });
    dataFiles.push(...targets.slice(1));
    return { path, bytes: encoded.length, dataFiles, warnings };
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EROFS' || code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UserError(out, `cannot write: ${code === 'ENOENT' ? 'folder does not exist' : (e as Error).message}`);
    }
    throw e;
  } finally {
    restore();
  }
}

/** Writes the pieces in order; the weights go from the model's own arrays to the kernel, uncopied. */
async function writeParts(file: string, encoded: EncodedModel): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    // writev takes at most IOV_MAX (1024 on Linux) buffers per call.
    for (let i = 0; i < encoded.parts.length; i += 512) {
      const batch = encoded.parts.slice(i, i + 512);
      const want = batch.reduce((n, b) => n + b.length, 0);
      const { bytesWritten } = await fh.writev(batch);
      if (bytesWritten !== want) throw new Error(`short write (${bytesWritten} of ${want} bytes)`);
    }
  } finally {
    await fh.close();
  }
}


async function checkWritable(out: string, path: string, force: boolean): Promise<void> {
  const dir = dirname(path);
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st) throw new UserError(out, `cannot write: folder '${dir}' does not exist`);
  if (!st.isDirectory()) throw new UserError(out, `cannot write: '${dir}' is not a folder`);
  try {
    await fs.access(dir, constants.W_OK);
  } catch {
    throw new UserError(out, `cannot write: folder '${dir}' is not writable`);
  }
  const existing = await fs.stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new UserError(out, 'is a directory');
  if (existing && !force) throw new UserError(out, 'already exists (use --force to overwrite)');
}

/** Remembers tensors' data fields before an edit, so the caller's model is unchanged after writing. */
class TensorEdits {
  private saved: { t: TensorProto; fields: Partial<TensorProto> }[] = [];
  save(t: TensorProto): void {
    const own = (k: keyof TensorProto) => (Object.prototype.hasOwnProperty.call(t, k) ? t[k] : undefined);
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
