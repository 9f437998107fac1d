/**
 * --verify: runs the original and converted models on onnxruntime-node CPU with seeded random inputs.
 * (a) Converted with alpha = 0, every rewritten Relu is Relu again, so outputs must match bit for bit;
 * (b) the real conversion must load and run.
 */
import '../runtime/telemetry.js';
import * as ort from 'onnxruntime-node';
import { mulberry32 } from '../data/prng.js';
import { DataType, dtypeName } from '../onnx/dtype.js';
import { valueTypeOf } from '../onnx/shapes.js';
import { elementCount, floatToHalf } from '../onnx/tensor.js';
import type { ModelProto } from '../onnx/types.js';
import { ortMessage } from '../runtime/ort.js';
import { threadCount } from '../runtime/threads.js';
import { UserError } from '../errors.js';

export interface VerifyResult {
  ok: boolean;
  /** how many Relu nodes the alpha = 0 check covered */
  checkedRelus: number;
  equivalence: 'identical' | 'different' | 'not-run';
  /** intra-op threads of the check's sessions */
  threads: number;
  runs: boolean;
  detail: string;
  inputs: Record<string, number[]>;
}

/** Random inputs are a check, not a workload: 2^26 values (256 MB of float32) is far above any real model's. */
const MAX_VERIFY_VALUES = 2 ** 26;

/** Random feeds that honour each input's declared element type and shape; symbolic dims from `dims` (default 1). */
export function randomFeeds(model: ModelProto, dims: Record<string, number>, seed: number, file: string): Record<string, ort.Tensor> {
  const rand = mulberry32(seed);
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of model.graph?.input ?? []) {
    if (!input.name || inits.has(input.name)) continue;
    const vt = valueTypeOf(input.type);
    if (!vt) throw new UserError(file, `input '${input.name}' is not a tensor: --verify cannot make data for it`);
    const shape = (vt.shape ?? []).map((d) => {
      if (typeof d === 'number') return d;
      if (typeof d === 'string' && d in dims) return dims[d]!;
      return 1;
    });
    const n = elementCount(shape);
    // Declared by the model or given by the user: either way, refused before allocating.
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 0) || n > MAX_VERIFY_VALUES) {
      throw new UserError(
        file,
        `input '${input.name}' of shape [${shape.join(', ')}] is too large for --verify (at most ${MAX_VERIFY_VALUES} values; give symbolic dims smaller values with --dim)`,
      );
    }
    const normal = () => (rand() + rand() + rand() - 1.5) * 2;
    switch (vt.elemType) {
      case DataType.FLOAT:
        feeds[input.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, normal), shape);
        break;
      case DataType.DOUBLE:
        feeds[input.name] = new ort.Tensor('float64', Float64Array.from({ length: n }, normal), shape);
        break;
      case DataType.FLOAT16: {
        const f = Float32Array.from({ length: n }, normal);
        feeds[input.name] = new ort.Tensor('float16', Uint16Array.from(f, floatToHalf), shape);
        break;
      }
      case DataType.INT64:
        feeds[input.name] = new ort.Tensor(
          'int64',
          BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 2))),
          shape,
        );
        break;
      case DataType.INT32:
        feeds[input.name] = new ort.Tensor(
          'int32',
          Int32Array.from({ length: n }, () => Math.floor(rand() * 2)),
          shape,
        );
        break;
      case DataType.BOOL:
        feeds[input.name] = new ort.Tensor(
          'bool',
          Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0)),
          shape,
        );
        break;
      case DataType.UINT8:
        feeds[input.name] = new ort.Tensor(
          'uint8',
          Uint8Array.from({ length: n }, () => Math.floor(rand() * 256)),
          shape,
        );
        break;
      default:
        throw new UserError(file, `input '${input.name}' has element type ${dtypeName(vt.elemType)}: --verify cannot make data for it`);
    }
  }
  return feeds;
}

// fatal only: a failure comes back as an exception, worded below; logged too, it would be a second line on stderr
const SESSION: ort.InferenceSession.SessionOptions = { logSeverityLevel: 4, graphOptimizationLevel: 'disabled' };

export async function runModel(bytes: Uint8Array, feeds: Record<string, ort.Tensor>, options = SESSION): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes, options);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

function bitsEqual(a: ort.Tensor, b: ort.Tensor): boolean {
  if (a.type !== b.type || a.dims.join() !== b.dims.join()) return false;
  const x = a.data as ArrayLike<unknown> & { buffer?: ArrayBuffer; byteOffset?: number; byteLength?: number };
  const y = b.data as typeof x;
  if (x.buffer && y.buffer) {
    const bx = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    const by = new Uint8Array(y.buffer, y.byteOffset, y.byteLength);
    return bx.length === by.length && bx.every((v, i) => v === by[i]);
  }
  return Array.from(x).every((v, i) => v === y[i]);
}

export interface VerifyInputs {
  original: Uint8Array;
  /** converted with alpha = 0, Relu nodes only */
  zeroAlpha: Uint8Array;
  zeroAlphaRelus: number;
  converted: Uint8Array;
  model: ModelProto;
  dims: Record<string, number>;
  seed: number;
  file: string;
  /** intra-op threads of the sessions; default all cores */
  threads?: number;
}

export async function verify(v: VerifyInputs): Promise<VerifyResult> {
  const feeds = randomFeeds(v.model, v.dims, v.seed, v.file);
  const intraOpNumThreads = threadCount(v.threads);
  const result: VerifyResult = {
    ok: false,
    checkedRelus: v.zeroAlphaRelus,
    equivalence: 'not-run',
    threads: intraOpNumThreads,
    runs: false,
    detail: '',
    inputs: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [...t.dims]])),
  };
  let reference: Record<string, ort.Tensor>;
  try {
    reference = await runModel(v.original, feeds, { ...SESSION, intraOpNumThreads });
  } catch (e) {
    throw new UserError(v.file, `the original model does not run on onnxruntime-node CPU: ${ortMessage(e)}`);
  }
  if (v.zeroAlphaRelus > 0) {
    const zero = await runModel(v.zeroAlpha, feeds, { ...SESSION, intraOpNumThreads }).catch((e: unknown) => {
      result.detail = `alpha=0 model failed to run: ${ortMessage(e)}`;
      return undefined;
    });
    if (zero) {
      const differing = Object.keys(reference).filter((k) => !zero[k] || !bitsEqual(reference[k]!, zero[k]));
      result.equivalence = differing.length ? 'different' : 'identical';
      if (differing.length) result.detail = `alpha=0 outputs differ from the original: ${differing.join(', ')}`;
    } else {
      result.equivalence = 'different';
    }
  }
  try {
    await runModel(v.converted, feeds, { logSeverityLevel: 4, intraOpNumThreads });
    result.runs = true;
  } catch (e) {
    result.detail ||= `converted model fails on onnxruntime-node CPU: ${ortMessage(e)}`;
  }
  result.ok = result.runs && result.equivalence !== 'different';
  return result;
}
