/** Small constant tensors: reading the values of initializers/Constant nodes, and making new ones. */
import { DataType } from '../onnx/dtype.js';
import { floatToHalf } from '../onnx/tensor.js';
import type { TensorProto } from '../onnx/types.js';

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
