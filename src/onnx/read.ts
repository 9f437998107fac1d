/** Reading a model file: clear errors for every way a file can fail to be an ONNX model. */
import { promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { kindProblem } from '../fsguard.js';
import { isDefaultDomain } from './attrs.js';
import { validateExternal } from './external.js';
import { decodeModel, modelShapeProblem } from './schema.js';
import { checkTensorData } from './tensorsize.js';
import { int, type ModelProto } from './types.js';
import { allTensors } from './walk.js';

/** What onnxruntime 1.30 understands. */
export const MAX_IR_VERSION = 13;
export const MAX_OPSET = 26;

export interface ModelFile {
  model: ModelProto;
  /** absolute path of the .onnx file */
  path: string;
  /** its folder: external data locations are relative to it */
  dir: string;
  size: number;
  /** the file as read (the decoded model's raw_data are views into it, so keeping it costs nothing) */
  bytes: Uint8Array;
}

/** Opset version the model imports for a domain ('' and 'ai.onnx' are the same); 0 when not imported. */
export function opsetVersion(model: ModelProto, domain = ''): number {
  const want = isDefaultDomain(domain);
  for (const o of model.opsetImport ?? []) {
    if (want ? isDefaultDomain(o.domain) : o.domain === domain) return int(o.version);
  }
  // IR < 3 had no opset_import: those models are opset 1.
  return want && (model.opsetImport ?? []).length === 0 ? 1 : 0;
}

export async function readModel(file: string): Promise<ModelFile> {
  const path = resolve(file);
  let bytes: Buffer;
  try {
    const st = await fs.stat(path);
    if (st.isDirectory()) throw new UserError(file, 'is a directory, not an .onnx file');
    // a FIFO or a device would block or never end; their size (0) would only say "empty"
    const kind = kindProblem(st);
    if (kind) throw new UserError(file, kind);
    if (st.size === 0) throw new UserError(file, 'is empty');
    bytes = await readWhole(path, st.size);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(file, 'no such file');
    if (code === 'EACCES') throw new UserError(file, 'permission denied');
    throw new UserError(file, `cannot read: ${(e as Error).message}`);
  }
  const model = decodeModelBytes(file, bytes);
  // external files are checked here, where the model's folder is known; inline data in decodeModelBytes
  validateExternal(file, dirname(path), allTensors(model));
  return { model, path, dir: dirname(path), size: bytes.length, bytes };
}

/**
 * The file in one read call into a buffer of its size: fs.readFile reads in 512 KiB chunks, which costs
 * a quarter more on a 100 MB model.
 */
async function readWhole(path: string, size: number): Promise<Buffer> {
  const h = await fs.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await h.read(buf, done, size - done, done);
      if (bytesRead === 0) break; // the file shrank while being read
      done += bytesRead;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    await h.close();
  }
}

/** Decodes and sanity-checks a ModelProto; every failure is a UserError about `file`. */
export function decodeModelBytes(file: string, bytes: Uint8Array): ModelProto {
  const problem = modelShapeProblem(bytes);
  if (problem) throw new UserError(file, `not an ONNX model (${problem})`);
  let model: ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (e) {
    throw new UserError(file, `not an ONNX model (corrupt or truncated protobuf: ${(e as Error).message})`);
  }
  checkModel(file, model);
  return model;
}

function checkModel(file: string, model: ModelProto): void {
  const ir = int(model.irVersion);
  if (ir < 1) throw new UserError(file, 'not an ONNX model (no ir_version)');
  if (ir > MAX_IR_VERSION) {
    throw new UserError(file, `IR version ${ir} is newer than onnxruntime 1.30 supports (at most ${MAX_IR_VERSION})`);
  }
  if (!model.graph) throw new UserError(file, 'not an ONNX model (no graph)');
  for (const o of model.opsetImport ?? []) {
    const v = int(o.version);
    if (v < 1 && (o.domain ?? '') === '') throw new UserError(file, `opset_import for the default domain has version ${v}`);
  }
  const opset = opsetVersion(model);
  if (opset > MAX_OPSET) {
    throw new UserError(file, `opset ${opset} is newer than onnxruntime 1.30 supports (at most ${MAX_OPSET})`);
  }
  for (const n of model.graph.node ?? []) {
    if (!n.opType) throw new UserError(file, `not a valid ONNX model (a node in the main graph has no op_type)`);
  }
  checkTensorData(file, allTensors(model));
}
