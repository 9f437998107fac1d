/**
 * Training checkpoints: everything a run needs to continue exactly where an epoch ended (parameters,
 * optimizer state, the best parameters so far, counters and history), in one file written atomically,
 * with the identity of the run it belongs to (model hash and settings) and a checksum of all of it.
 *
 * Format 2:
 *   `ALRCKPT2` | u32 LE n | n bytes of JSON metadata | zero padding to 8 | tensor data | sha256 (32 bytes)
 * The metadata lists every tensor ({name, type, dims, offset, length}, offsets from the start of the data,
 * each on an 8-byte boundary); names are `param/<name>`, `state/<slot>:<param>` and `best/<name>`. The
 * sha256 covers every byte before it, so truncation, appended bytes and flipped bits are all refused
 * before anything is parsed; the parser still checks every length and offset against the file, since a
 * checksum is no defence against a file made to pass it.
 * Format 1 (`ALRCKPT1`, no checksum, no settings) is refused with a clear message.
 */
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { writeFileAtomic, type CommitOptions } from '../atomic.js';
import { UserError } from '../errors.js';
import { align8, bytesOf, isTensorType, typedFromBytes, type BundleEntry } from '../runtime/tensor.js';
import type { HostTensor, TensorType } from '../runtime/types.js';

const MAGIC = 'ALRCKPT2';
const OLD_MAGIC = 'ALRCKPT1';
const DIGEST = 32;
const HEAD = MAGIC.length + 4;
const VERSION = 2;

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  /** validation score used to pick the best epoch (accuracy, or mse for regression) */
  valMetric: number;
  val: Record<string, number | null>;
  lr: number;
  seconds: number;
  steps: number;
}

/** What makes two runs the same run: a checkpoint is only continued with the settings it was made with. */
export interface RunSettings {
  /** the data set's name, its split sizes and a sha256 of the training and validation samples and labels */
  data: { name: string; train: number; val: number; sha256: string; sources?: string };
  /** classes of a classifier head replaced before training (absent: the model's own head) */
  numClasses?: number;
  batchSize: number;
  optimizer: { name: string; weightDecay: number; momentum: number; beta1: number; beta2: number; eps: number };
  schedule: { name: string; lr: number; every: number; gamma: number };
  /** epochs of the run where the schedule depends on them (cosine spans the whole run), else null */
  scheduleEpochs: number | null;
  seed: number;
  shuffle: boolean;
  freeze: string[];
  trainOnly: string[];
  /** the model input fed with the data and the output the loss is computed on */
  input: string;
  output: string;
  maxSteps: number | null;
  /** BatchNormalization mode (absent in checkpoints made before it existed: 'frozen') */
  batchNorm?: 'frozen' | 'train';
}

export interface CheckpointMeta {
  version: 2;
  /** sha256 of the model being fine-tuned, so a checkpoint is never resumed onto another model */
  modelHash: string;
  settings: RunSettings;
  params: string[];
  /** epochs completed (1-based count) */
  epoch: number;
  globalStep: number;
  /** best validation score so far (accuracy or mse) and, for classification, its loss (the tie-breaker) */
  best: { epoch: number; value: number; loss?: number } | null;
  sinceBest: number;
  history: EpochRecord[];
}

export interface Checkpoint {
  meta: CheckpointMeta;
  params: Record<string, HostTensor>;
  state: Record<string, HostTensor>;
  best: Record<string, HostTensor>;
}

/** A tensor's place in the file, as in a tensor bundle. */
type TensorEntry = BundleEntry;
const PARTS = { param: 'params', state: 'state', best: 'best' } as const;

/**
 * Written piece by piece, the tensors straight from their arrays: a whole-file buffer (ResNet-18 with Adam:
 * 180 MB) was the fine-tune's peak memory, on top of the step's
 */
export async function writeCheckpoint(path: string, c: Checkpoint, o: CommitOptions = {}): Promise<void> {
  await writeFileAtomic(path, checkpointChunks(c), o);
}

/** The file's bytes in one array (the checkpoint as writeCheckpoint writes it). */
export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  return Buffer.concat([...checkpointChunks(c)]);
}

/** The file in order: magic, metadata length and metadata, then each tensor on an 8-byte boundary, then the digest of all of it. */
function* checkpointChunks(c: Checkpoint): Generator<Uint8Array> {
  const named: [string, HostTensor][] = [];
  for (const [prefix, part] of Object.entries(PARTS)) for (const [k, v] of Object.entries(c[part])) named.push([`${prefix}/${k}`, v]);
  const tensors: TensorEntry[] = [];
  let offset = 0;
  for (const [name, t] of named) {
    tensors.push({ name, type: t.type, dims: t.dims, offset, length: t.data.byteLength });
    offset = align8(offset + t.data.byteLength);
  }
  const meta = new TextEncoder().encode(JSON.stringify({ ...c.meta, tensors }));
  const head = new Uint8Array(align8(HEAD + meta.length));
  head.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(head.buffer).setUint32(MAGIC.length, meta.length, true);
  head.set(meta, HEAD);
  const hash = createHash('sha256');
  const emit = (b: Uint8Array) => (hash.update(b), b);
  yield emit(head);
  const zeros = new Uint8Array(8);
  for (const [, t] of named) {
    yield emit(bytesOf(t.data));
    const pad = align8(t.data.byteLength) - t.data.byteLength;
    if (pad) yield emit(zeros.subarray(0, pad));
  }
  yield hash.digest();
}

export async function readCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  let fh: fs.FileHandle | undefined;
  try {
    // Non-blocking, then checked on the open file: a FIFO or device put in its place is refused, not read.
    fh = await fs.open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    if (!(await fh.stat()).isFile()) throw new UserError(path, 'is not a regular file; expected a checkpoint');
    bytes = await fh.readFile();
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, code === 'ENOENT' ? 'no such checkpoint (nothing to --resume)' : `cannot read: ${(e as Error).message}`);
  } finally {
    await fh?.close();
  }
  return decodeCheckpoint(path, bytes);
}

/** Verifies and parses a checkpoint's bytes; `path` names the file in errors. */
export function decodeCheckpoint(path: string, bytes: Uint8Array): Checkpoint {
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic === OLD_MAGIC) {
    throw new UserError(
      path,
      "is a checkpoint of an older version (format 1, without a checksum or the run's settings) and cannot be verified; start the run over",
    );
  }
  if (magic !== MAGIC) throw new UserError(path, 'not an alrelu checkpoint');
  const corrupt = (why: string) => new UserError(path, `corrupt checkpoint: ${why}`);
  if (bytes.length < HEAD + DIGEST) throw corrupt(`truncated (${bytes.length} bytes)`);
  const body = bytes.subarray(0, bytes.length - DIGEST);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(bytes.subarray(bytes.length - DIGEST))) {
    throw corrupt('its sha256 does not match its content (truncated, appended to or altered)');
  }

  const metaLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length, true);
  if (metaLength > body.length - HEAD) throw corrupt(`metadata length ${metaLength} runs past the end of the file`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(HEAD, HEAD + metaLength)));
  } catch (e) {
    throw corrupt(`metadata is not JSON (${(e as Error).message})`);
  }
  const { tensors, ...meta } = checkMeta(raw, corrupt);
  const base = align8(HEAD + metaLength);
  const dataLength = body.length - base;
  if (dataLength < 0) throw corrupt('no tensor data');

  const c: Checkpoint = { meta, params: {}, state: {}, best: {} };
  const spans: [number, number][] = [];
  for (const e of tensors) {
    const slash = e.name.indexOf('/');
    const prefix = e.name.slice(0, slash);
    const name = e.name.slice(slash + 1);
    // `__proto__` would set the object's prototype instead of adding a tensor.
    if (slash < 1 || !name || name === '__proto__' || !Object.hasOwn(PARTS, prefix)) throw corrupt(`unexpected tensor name '${e.name}'`);
    const part = c[PARTS[prefix as keyof typeof PARTS]];
    if (Object.hasOwn(part, name)) throw corrupt(`tensor '${e.name}' appears twice`);
    const size = e.dims.reduce((n, d) => n * d, 1) * bytesPerElement(e.type);
    if (size !== e.length) throw corrupt(`tensor '${e.name}' has ${e.length} bytes, its type and dims [${e.dims.join(', ')}] need ${size}`);
    if (e.offset % 8 !== 0 || e.offset + e.length > dataLength) throw corrupt(`tensor '${e.name}' lies outside the file`);
    spans.push([e.offset, e.offset + e.length]);
    // A view of the file's bytes (a copy of the tensor's own where misaligned): nothing allocated beyond the file.
    part[name] = { type: e.type, dims: e.dims, data: typedFromBytes(e.type, body.subarray(base + e.offset, base + e.offset + e.length)) };
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) if (spans[i]![0] < spans[i - 1]![1]) throw corrupt('two tensors overlap');
  return c;
}

function bytesPerElement(type: TensorType): number {
  return type === 'float64' || type === 'int64' || type === 'uint64'
    ? 8
    : type === 'float32' || type === 'int32' || type === 'uint32'
      ? 4
      : type === 'float16' || type === 'int16' || type === 'uint16'
        ? 2
        : 1;
}

// ---- metadata validation: every field the loop relies on, with its type ----------------------------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isNum = (v: unknown): v is number => typeof v === 'number';
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function checkMeta(raw: unknown, corrupt: (why: string) => UserError): CheckpointMeta & { tensors: TensorEntry[] } {
  if (!isObj(raw)) throw corrupt('metadata is not an object');
  if (raw.version !== VERSION) throw corrupt(`format version ${JSON.stringify(raw.version)}, expected ${VERSION}`);
  const need = (ok: boolean, field: string) => {
    if (!ok) throw corrupt(`metadata field '${field}' is missing or malformed`);
  };
  need(typeof raw.modelHash === 'string' && /^[0-9a-f]{64}$/.test(raw.modelHash), 'modelHash');
  need(isStrings(raw.params), 'params');
  need(isCount(raw.epoch), 'epoch');
  need(isCount(raw.globalStep), 'globalStep');
  need(isCount(raw.sinceBest), 'sinceBest');
  need(
    raw.best === null || (isObj(raw.best) && isCount(raw.best.epoch) && isNum(raw.best.value) && (raw.best.loss === undefined || isNum(raw.best.loss))),
    'best',
  );
  need(
    Array.isArray(raw.history) &&
      raw.history.length === raw.epoch &&
      raw.history.every((h) => isObj(h) && isCount(h.epoch) && isNum(h.trainLoss) && isNum(h.valMetric) && isNum(h.lr) && isObj(h.val)),
    'history',
  );
  need(checkSettings(raw.settings), 'settings');
  need(Array.isArray(raw.tensors), 'tensors');
  for (const e of raw.tensors as unknown[]) {
    const ok =
      isObj(e) &&
      typeof e.name === 'string' &&
      typeof e.type === 'string' &&
      isTensorType(e.type) &&
      Array.isArray(e.dims) &&
      e.dims.length <= 32 &&
      e.dims.every(isCount) &&
      isCount(e.offset) &&
      isCount(e.length);
    need(ok, 'tensors');
  }
  return raw as unknown as CheckpointMeta & { tensors: TensorEntry[] };
}

function checkSettings(s: unknown): boolean {
  if (!isObj(s)) return false;
  const { data, optimizer, schedule } = s;
  return (
    isObj(data) &&
    typeof data.name === 'string' &&
    isCount(data.train) &&
    isCount(data.val) &&
    typeof data.sha256 === 'string' &&
    isCount(s.batchSize) &&
    isObj(optimizer) &&
    typeof optimizer.name === 'string' &&
    ['weightDecay', 'momentum', 'beta1', 'beta2', 'eps'].every((k) => isNum(optimizer[k])) &&
    isObj(schedule) &&
    typeof schedule.name === 'string' &&
    ['lr', 'every', 'gamma'].every((k) => isNum(schedule[k])) &&
    (s.scheduleEpochs === null || isCount(s.scheduleEpochs)) &&
    isCount(s.seed) &&
    typeof s.shuffle === 'boolean' &&
    isStrings(s.freeze) &&
    isStrings(s.trainOnly) &&
    typeof s.input === 'string' &&
    typeof s.output === 'string' &&
    (s.maxSteps === null || isCount(s.maxSteps)) &&
    (data.sources === undefined || typeof data.sources === 'string') &&
    (s.numClasses === undefined || isCount(s.numClasses)) &&
    (s.batchNorm === undefined || s.batchNorm === 'frozen' || s.batchNorm === 'train')
  );
}

// ---- settings ---------------------------------------------------------------------------------------

/** One phrase per setting that differs: "batch size 32, this run has 16". */
export function settingsDifferences(was: RunSettings, now: RunSettings): string[] {
  const out: string[] = [];
  const list = (v: string[]) => (v.length ? v.join(' ') : 'none');
  const diff = (label: string, a: string | number | boolean | null, b: string | number | boolean | null) => {
    if (a !== b) out.push(`${label} ${a ?? 'none'}, this run has ${b ?? 'none'}`);
  };
  if (was.data.sha256 !== now.data.sha256 || was.data.train !== now.data.train || was.data.val !== now.data.val) {
    out.push(
      `data ${was.data.name} (${was.data.train} training, ${was.data.val} validation samples, sha256 ${was.data.sha256.slice(0, 12)}), this run has ${now.data.name} (${now.data.train}, ${now.data.val}, sha256 ${now.data.sha256.slice(0, 12)})`,
    );
  }
  diff('data splits', was.data.sources ?? 'one set split 80/10/10', now.data.sources ?? 'one set split 80/10/10');
  diff('classes of a new head', was.numClasses ?? "the model's own head", now.numClasses ?? "the model's own head");
  diff('batch size', was.batchSize, now.batchSize);
  diff('optimizer', was.optimizer.name, now.optimizer.name);
  diff('weight decay', was.optimizer.weightDecay, now.optimizer.weightDecay);
  if (was.optimizer.name === 'momentum' && now.optimizer.name === 'momentum') diff('momentum', was.optimizer.momentum, now.optimizer.momentum);
  diff('beta1', was.optimizer.beta1, now.optimizer.beta1);
  diff('beta2', was.optimizer.beta2, now.optimizer.beta2);
  diff('eps', was.optimizer.eps, now.optimizer.eps);
  diff('learning rate', was.schedule.lr, now.schedule.lr);
  diff('schedule', was.schedule.name, now.schedule.name);
  if (was.schedule.name === 'step' && now.schedule.name === 'step') {
    diff('schedule step', was.schedule.every, now.schedule.every);
    diff('schedule gamma', was.schedule.gamma, now.schedule.gamma);
  }
  diff('epochs (the cosine schedule spans the whole run)', was.scheduleEpochs, now.scheduleEpochs);
  diff('seed', was.seed, now.seed);
  diff('shuffle', was.shuffle, now.shuffle);
  diff('freeze', list(was.freeze), list(now.freeze));
  diff('train-only', list(was.trainOnly), list(now.trainOnly));
  diff('input', was.input, now.input);
  diff('output', was.output, now.output);
  diff('max steps per epoch', was.maxSteps, now.maxSteps);
  diff('BatchNormalization mode', was.batchNorm ?? 'frozen', now.batchNorm ?? 'frozen');
  return out;
}
