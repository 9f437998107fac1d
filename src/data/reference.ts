/**
 * ONNX reference data: a `test_data_set_N` folder holds `input_K.pb` and `output_K.pb`, each one
 * serialized TensorProto. K orders them (numerically, so input_10 comes after input_9); a tensor's
 * `name` field, when set, is the model input or output it belongs to. A model folder holding several
 * test_data_set_N folders yields one case per folder, in N order.
 */
import { promises as fs } from 'node:fs';
import { basename, join } from 'node:path';
import { UserError, messageOf } from '../errors.js';
import { readInside, RefusedFile } from '../fsguard.js';
import { decodeTensor } from '../onnx/schema.js';
import { tensorFromProto } from '../runtime/tensor.js';
import type { HostTensor } from '../runtime/types.js';
import type { ReferenceCase } from './types.js';

const SET_DIR = /^test_data_set_(\d+)$/;
const PB_FILE = /^(input|output)_(\d+)\.pb$/;

/** Whether `dir` is itself a test_data_set folder (by name or by holding input_K.pb files). */
async function isReferenceSet(dir: string): Promise<boolean> {
  if (SET_DIR.test(basename(dir))) return true;
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return names.some((n) => /^input_\d+\.pb$/.test(n));
}

/** test_data_set_N subfolders of a model folder, in N order. */
async function referenceSetsIn(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && SET_DIR.test(e.name))
    .map((e) => ({ name: e.name, n: Number(SET_DIR.exec(e.name)![1]) }))
    .sort((a, b) => a.n - b.n)
    .map((e) => join(dir, e.name));
}

/**
 * One .pb file as a HostTensor; anything unreadable is a UserError naming the file. `root` is the folder
 * the user named: a downloaded test set may hold links, and one leading out of it (or to a FIFO or a
 * device) is refused, as for a model's external data.
 */
async function readTensorFile(root: string, location: string): Promise<{ name: string; tensor: HostTensor }> {
  const file = join(root, location);
  let bytes: Uint8Array;
  try {
    bytes = readInside(root, location, { what: 'the tensor file', folder: `the reference data's folder '${root}'` });
  } catch (e) {
    throw new UserError(file, e instanceof RefusedFile ? e.message : `cannot read: ${messageOf(e)}`);
  }
  let proto;
  try {
    proto = decodeTensor(bytes);
  } catch (e) {
    throw new UserError(file, `is not a serialized ONNX TensorProto (${messageOf(e)})`);
  }
  try {
    const tensor = tensorFromProto(proto);
    return { name: proto.name ?? '', tensor };
  } catch (e) {
    throw new UserError(file, `is not a usable ONNX TensorProto: ${messageOf(e)}`);
  }
}

/** The tensors of one kind in a set folder, keyed by their stored name or, lacking one, `input_K`. */
async function readKind(root: string, set: string, names: string[], kind: 'input' | 'output'): Promise<Record<string, HostTensor>> {
  const files = names
    .map((n) => PB_FILE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === kind)
    .sort((a, b) => Number(a[2]) - Number(b[2]));
  const out: Record<string, HostTensor> = {};
  for (const m of files) {
    const { name, tensor } = await readTensorFile(root, set ? `${set}/${m[0]}` : m[0]);
    const key = name && !Object.hasOwn(out, name) ? name : `${kind}_${m[2]}`;
    out[key] = tensor;
  }
  return out;
}

/** The set `set` (a subfolder's name, or '' for `root` itself) of the folder the user named. */
async function loadReferenceSet(root: string, set: string): Promise<ReferenceCase> {
  const dir = set ? join(root, set) : root;
  const names = await fs.readdir(dir);
  const inputs = await readKind(root, set, names, 'input');
  const outputs = await readKind(root, set, names, 'output');
  if (Object.keys(inputs).length === 0) throw new UserError(dir, 'has no input_K.pb files; expected a test_data_set folder with input_0.pb and output_0.pb');
  if (Object.keys(outputs).length === 0) throw new UserError(dir, 'has no output_K.pb files; expected reference outputs to compare against');
  return { name: basename(dir), inputs, outputs };
}

/** Every reference case of `dir`: the folder itself if it is a set, else its test_data_set_N subfolders. */
export async function loadReferenceCases(dir: string): Promise<ReferenceCase[]> {
  if (await isReferenceSet(dir)) return [await loadReferenceSet(dir, '')];
  const sets = await referenceSetsIn(dir);
  const cases: ReferenceCase[] = [];
  for (const s of sets) cases.push(await loadReferenceSet(dir, basename(s)));
  return cases;
}
