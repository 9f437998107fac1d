/** Small constant tensors: reading the values of initializers/Constant nodes, and making new ones. */
import { DataType } from '../onnx/dtype.js';
import { floatToHalf, tensorValues } from '../onnx/tensor.js';
import type { TensorProto } from '../onnx/types.js';

/** Element types whose values the gradient rules read; others stay unknown. */
const READ = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.INT64, DataType.INT32, DataType.INT8, DataType.UINT8, DataType.BOOL]);

/** Values of a small numeric tensor held in the model (not external data); undefined otherwise. */
export function constValues(t: TensorProto | undefined, limit = 1 << 16): number[] | undefined {
  if (!t || !READ.has(t.dataType ?? 0)) return undefined;
  return tensorValues(t, limit);
}

/** A tensor of `dataType` (float, double, int64 or float16) holding `values`, stored as raw little-endian bytes. */
export function makeTensor(name: string, dataType: number, dims: number[], values: ArrayLike<number>): TensorProto {
  let raw: Uint8Array;
  if (dataType === DataType.FLOAT) raw = new Uint8Array(Float32Array.from(values).buffer);
  else if (dataType === DataType.DOUBLE) raw = new Uint8Array(Float64Array.from(values).buffer);
  else if (dataType === DataType.INT64) raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
  else if (dataType === DataType.FLOAT16) raw = new Uint8Array(Uint16Array.from(Array.from(values, floatToHalf)).buffer);
  else throw new Error(`makeTensor: unsupported element type ${dataType}`);
  return { name, dataType, dims, rawData: raw };
}
