/**
 * HostTensor plumbing shared by every backend: typed arrays per element type, TensorProto -> HostTensor
 * (for reference data), and a compact binary bundle used to move tensors across the browser boundary.
 */
import { DataType } from '../onnx/dtype.js';
import { int, type TensorProto } from '../onnx/types.js';
import type { HostTensor, TensorType, TypedArray } from './types.js';
import { elementCount, halfToFloat } from '../onnx/tensor.js';

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

/** float16 travels as raw Uint16Array bits and bool as Uint8Array, as onnxruntime's JS APIs accept them. */
const ARRAYS: Record<TensorType, ArrayCtor> = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array,
  uint64: BigUint64Array, bool: Uint8Array,
};

export function isTensorType(t: string): t is TensorType {
  return Object.hasOwn(ARRAYS, t);
}

/** A typed array of `type` viewing (a copy of, when misaligned) `bytes`. */
export function typedFromBytes(type: TensorType, bytes: Uint8Array): TypedArray {
  const Ctor = ARRAYS[type];
  const n = bytes.byteLength / Ctor.BYTES_PER_ELEMENT;
  if (!Number.isInteger(n)) throw new Error(`${bytes.byteLength} bytes is not a whole number of ${type} elements`);
  // Typed array views need an aligned offset; copying is cheaper than reasoning about callers' buffers.
  // (new Uint8Array(x) copies; Buffer#slice would not.)
  const own = bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 ? bytes : new Uint8Array(bytes);
  return new Ctor(own.buffer as ArrayBuffer, own.byteOffset, n);
}

export function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Typed array of any onnxruntime tensor data into the HostTensor convention (Float16Array -> Uint16Array bits). */
export function hostData(type: TensorType, data: unknown): TypedArray {
  if (!ArrayBuffer.isView(data)) throw new Error(`tensor data of type ${type} is not a typed array`);
  const Ctor = ARRAYS[type];
  if (data instanceof Ctor) return data as TypedArray;
  return typedFromBytes(type, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

const PROTO_TYPES: Partial<Record<number, TensorType>> = {
  [DataType.FLOAT]: 'float32', [DataType.DOUBLE]: 'float64', [DataType.FLOAT16]: 'float16', [DataType.INT8]: 'int8',
  [DataType.UINT8]: 'uint8', [DataType.INT16]: 'int16', [DataType.UINT16]: 'uint16', [DataType.INT32]: 'int32',
  [DataType.UINT32]: 'uint32', [DataType.INT64]: 'int64', [DataType.UINT64]: 'uint64', [DataType.BOOL]: 'bool',
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
      type === 'float32' ? (t.floatData ?? []) :
      type === 'float64' ? (t.doubleData ?? []) :
      type === 'int64' ? (t.int64Data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString())) :
      type === 'uint64' ? (t.uint64Data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString())) :
      type === 'uint32' ? (t.uint64Data ?? []).map((v) => int(v)) :
      (t.int32Data ?? []);
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
 * Bundle format (also written and read by the page script in page.ts, keep the two in step):
 * u32 LE header length | JSON header [{name, type, dims, offset, length}] | zero padding to 8 | data.
 * Every tensor's data starts on an 8-byte boundary so the reader can view it without copying.
 */
export interface BundleEntry {
  name: string;
  type: TensorType;
  dims: number[];
  offset: number;
  length: number;
}

export const align8 = (n: number): number => Math.ceil(n / 8) * 8;

export function packTensors(tensors: Record<string, HostTensor>): Uint8Array {
  const entries: BundleEntry[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    entries.push({ name, type: t.type, dims: t.dims, offset, length: t.data.byteLength });
    offset = align8(offset + t.data.byteLength);
  }
  const header = new TextEncoder().encode(JSON.stringify(entries));
  const base = align8(4 + header.byteLength);
  const out = new Uint8Array(base + offset);
  new DataView(out.buffer).setUint32(0, header.byteLength, true);
  out.set(header, 4);
  for (const e of entries) out.set(bytesOf(tensors[e.name]!.data), base + e.offset);
  return out;
}

export function unpackTensors(bytes: Uint8Array): Record<string, HostTensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true);
  const entries = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as BundleEntry[];
  const base = align8(4 + headerLength);
  const out: Record<string, HostTensor> = {};
  for (const e of entries) {
    if (!isTensorType(e.type)) throw new Error(`tensor '${e.name}' has unsupported type ${e.type}`);
    const start = base + e.offset;
    out[e.name] = { type: e.type, dims: e.dims, data: typedFromBytes(e.type, bytes.subarray(start, start + e.length)) };
  }
  return out;
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
