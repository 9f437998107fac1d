/** Reading small tensor values (constants, scalars) and making new constant tensors. */
import { DataType } from './dtype.js';
import { int, type TensorProto } from './types.js';

/** Number of elements of a tensor with these dims (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Values of a small numeric tensor as JS numbers; undefined for external, string or huge tensors. */
export function tensorValues(t: TensorProto, limit = 1 << 16): number[] | undefined {
  if (t.dataLocation === 1) return undefined;
  const count = elementCount((t.dims ?? []).map(int));
  if (count > limit) return undefined;
  const raw = t.rawData;
  if (raw?.length) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const read = (i: number): number => {
      switch (t.dataType) {
        case DataType.FLOAT:
          return dv.getFloat32(i * 4, true);
        case DataType.DOUBLE:
          return dv.getFloat64(i * 8, true);
        case DataType.INT64:
          return Number(dv.getBigInt64(i * 8, true));
        case DataType.UINT64:
          return Number(dv.getBigUint64(i * 8, true));
        case DataType.INT32:
          return dv.getInt32(i * 4, true);
        case DataType.UINT32:
          return dv.getUint32(i * 4, true);
        case DataType.INT16:
          return dv.getInt16(i * 2, true);
        case DataType.UINT16:
          return dv.getUint16(i * 2, true);
        case DataType.INT8:
          return dv.getInt8(i);
        case DataType.UINT8:
        case DataType.BOOL:
          return dv.getUint8(i);
        case DataType.FLOAT16:
          return halfToFloat(dv.getUint16(i * 2, true));
        case DataType.BFLOAT16:
          return bf16ToFloat(dv.getUint16(i * 2, true));
        default:
          return NaN;
      }
    };
    return Array.from({ length: count }, (_, i) => read(i));
  }
  switch (t.dataType) {
    case DataType.FLOAT:
      return t.floatData ?? [];
    case DataType.DOUBLE:
      return t.doubleData ?? [];
    case DataType.INT64:
      return (t.int64Data ?? []).map(int);
    case DataType.UINT64:
    case DataType.UINT32:
      return (t.uint64Data ?? []).map(int);
    case DataType.FLOAT16:
      return (t.int32Data ?? []).map(halfToFloat);
    case DataType.BFLOAT16:
      return (t.int32Data ?? []).map(bf16ToFloat);
    default:
      return t.int32Data ?? [];
  }
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

export function floatToHalf(v: number): number {
  const f32 = new Float32Array([v]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function bf16ToFloat(b: number): number {
  return new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
}

export function floatToBf16(v: number): number {
  const x = new Uint32Array(new Float32Array([v]).buffer)[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A tensor of `dataType` (float, double, float16, bfloat16 or int64) holding `values`, stored as raw little-endian bytes. */
export function makeTensor(name: string, dataType: number, dims: number[], values: ArrayLike<number>): TensorProto {
  let raw: Uint8Array;
  if (dataType === DataType.FLOAT) raw = new Uint8Array(Float32Array.from(values).buffer);
  else if (dataType === DataType.DOUBLE) raw = new Uint8Array(Float64Array.from(values).buffer);
  else if (dataType === DataType.INT64) raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
  else if (dataType === DataType.FLOAT16) raw = new Uint8Array(Uint16Array.from(Array.from(values, floatToHalf)).buffer);
  else if (dataType === DataType.BFLOAT16) raw = new Uint8Array(Uint16Array.from(Array.from(values, floatToBf16)).buffer);
  else throw new Error(`makeTensor: unsupported element type ${dataType}`);
  return { name, dataType, dims, rawData: raw };
}
