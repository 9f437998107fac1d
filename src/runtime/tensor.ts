/**
 * HostTensor plumbing shared by every backend: TensorProto -> HostTensor (for reference data) and element
 * values as float64. Typed arrays per element type and the tensor bundle live in page/bundle.ts, which the
 * browser page imports too; they are re-exported here for Node callers.
 */
import { DataType } from '../onnx/dtype.js';
import { int, type TensorProto } from '../onnx/types.js';
import type { HostTensor, TensorType, TypedArray } from './types.js';
import { elementCount, halfToFloat } from '../onnx/tensor.js';
import { ARRAYS, typedFromBytes } from './page/bundle.js';

export { ARRAYS, align8, bytesOf, isTensorType, packTensors, typedFromBytes, unpackTensors, type BundleEntry, type Packable } from './page/bundle.js';

/** Typed array of any onnxruntime tensor data into the HostTensor convention (Float16Array -> Uint16Array bits). */
export function hostData(type: TensorType, data: unknown): TypedArray {
  if (!ArrayBuffer.isView(data)) throw new Error(`tensor data of type ${type} is not a typed array`);
  const Ctor = ARRAYS[type];
  if (data instanceof Ctor) return data as TypedArray;
  return typedFromBytes(type, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

const PROTO_TYPES: Partial<Record<number, TensorType>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.FLOAT16]: 'float16',
  [DataType.INT8]: 'int8',
  [DataType.UINT8]: 'uint8',
  [DataType.INT16]: 'int16',
  [DataType.UINT16]: 'uint16',
  [DataType.INT32]: 'int32',
  [DataType.UINT32]: 'uint32',
  [DataType.INT64]: 'int64',
  [DataType.UINT64]: 'uint64',
  [DataType.BOOL]: 'bool',
};

/** A decoded TensorProto (raw_data little-endian, or the typed repeated fields) as a HostTensor. */
export function tensorFromProto(t: TensorProto): HostTensor {
  const type = PROTO_TYPES[t.dataType ?? 0];
  if (!type) throw new Error(`tensor '${t.name ?? ''}' has unsupported element type ${t.dataType}`);
  // A lone .pb has no folder of its own to hold external data to; model initializers arrive here inlined.
  if (t.dataLocation === 1) throw new Error(`tensor '${t.name ?? ''}' keeps its data in an external file, which is not supported here`);
  const dims = (t.dims ?? []).map((d) => int(d));
  const n = elementCount(dims);
  let data: TypedArray;
  if (t.rawData && t.rawData.byteLength > 0) {
    data = typedFromBytes(type, t.rawData);
  } else {
    const Ctor = ARRAYS[type];
    // int8/16, uint8/16, bool and float16 bits all live in int32_data per the ONNX spec.
    const src: ArrayLike<number | bigint> =
      type === 'float32'
        ? (t.floatData ?? [])
        : type === 'float64'
          ? (t.doubleData ?? [])
          : type === 'int64'
            ? (t.int64Data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString()))
            : type === 'uint64'
              ? (t.uint64Data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString()))
              : type === 'uint32'
                ? (t.uint64Data ?? []).map((v) => int(v))
                : (t.int32Data ?? []);
    // a short field would otherwise leave zeros where values are missing
    if (src.length !== n) throw new Error(`tensor '${t.name ?? ''}' has ${src.length} elements, dims say ${n}`);
    // allocated only now: dims alone (a few bytes in a .pb) must not size a buffer
    data = new Ctor(new ArrayBuffer(n * Ctor.BYTES_PER_ELEMENT), 0, n);
    for (let i = 0; i < n; i++) (data as unknown as (number | bigint)[])[i] = src[i]!;
  }
  if (data.length !== n) throw new Error(`tensor '${t.name ?? ''}' has ${data.length} elements, dims say ${n}`);
  return { type, data, dims };
}

/**
 * Element values as float64, so metrics never care which element type a model emits: widest common
 * type, so comparing float64 references loses nothing.
 * float16 tensors travel as raw Uint16Array bits (see runtime/types.ts).
 */
export function toFloat64(t: HostTensor): Float64Array {
  const n = t.data.length;
  const out = new Float64Array(n);
  if (t.type === 'float16') {
    const bits = t.data as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = halfToFloat(bits[i]!);
  } else if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = Number(t.data[i]!);
  } else {
    const d = t.data as Exclude<HostTensor['data'], BigInt64Array | BigUint64Array>;
    for (let i = 0; i < n; i++) out[i] = d[i]!;
  }
  return out;
}

/** A shape as messages print it: [1,3,224,224]. */
export function shapeText(dims: readonly (number | string)[]): string {
  return `[${dims.join(',')}]`;
}
