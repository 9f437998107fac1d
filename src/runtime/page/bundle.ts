/**
 * Typed arrays per element type and the tensor bundle that carries tensors across the browser boundary.
 * Browser code as well as Node code: the page (runner.ts) and Node (tensor.ts, browser.ts) import this one
 * module, so the two ends of a bundle cannot drift apart. It imports nothing at run time and uses no Node
 * API; the layer check (.dependency-cruiser.cjs) keeps the page folder that way.
 *
 * Bundle layout: u32 LE header length | JSON header [{name, type, dims, offset, length}] | zero padding
 * to 8 | data. Every tensor's data starts on an 8-byte boundary so the reader can view it without copying.
 */
import type { HostTensor, TensorType, TypedArray } from '../types.js';

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

/** float16 travels as raw Uint16Array bits and bool as Uint8Array, as onnxruntime's JS APIs accept them. */
export const ARRAYS: Readonly<Record<TensorType, ArrayCtor>> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
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

/** The bytes of any typed array (onnxruntime-web may hand float16 out as a Float16Array). */
export function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface BundleEntry {
  name: string;
  type: TensorType;
  dims: number[];
  offset: number;
  length: number;
}

/** What a bundle carries: a HostTensor, or an onnxruntime tensor (its type is checked when packed). */
export interface Packable {
  type: string;
  dims: readonly number[];
  data: ArrayBufferView;
}

export const align8 = (n: number): number => Math.ceil(n / 8) * 8;

export function packTensors(tensors: Readonly<Record<string, Packable>>): Uint8Array {
  const entries: BundleEntry[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (!isTensorType(t.type)) throw new Error(`tensor '${name}' has unsupported type ${t.type}`);
    entries.push({ name, type: t.type, dims: Array.from(t.dims), offset, length: t.data.byteLength });
    parts.push(bytesOf(t.data));
    offset = align8(offset + t.data.byteLength);
  }
  const header = new TextEncoder().encode(JSON.stringify(entries));
  const base = align8(4 + header.byteLength);
  const out = new Uint8Array(base + offset);
  new DataView(out.buffer).setUint32(0, header.byteLength, true);
  out.set(header, 4);
  entries.forEach((e, i) => out.set(parts[i]!, base + e.offset));
  return out;
}

export function unpackTensors(bytes: Uint8Array): Record<string, HostTensor> {
  if (bytes.byteLength < 4) throw new Error(`a tensor bundle of ${bytes.byteLength} bytes has no header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true);
  const base = align8(4 + headerLength);
  if (base > bytes.byteLength) throw new Error(`a tensor bundle of ${bytes.byteLength} bytes is shorter than its header`);
  const entries = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as BundleEntry[];
  const out: Record<string, HostTensor> = {};
  for (const e of entries) {
    if (!isTensorType(e.type)) throw new Error(`tensor '${e.name}' has unsupported type ${e.type}`);
    const start = base + e.offset;
    if (start + e.length > bytes.byteLength) throw new Error(`tensor '${e.name}' runs past the end of its bundle`);
    out[e.name] = { type: e.type, dims: e.dims, data: typedFromBytes(e.type, bytes.subarray(start, start + e.length)) };
  }
  return out;
}
