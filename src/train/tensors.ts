/** Small constant tensors: reading the values of initializers/Constant nodes, and making new ones. */
import { DataType } from '../onnx/dtype.js';
import { int, type TensorProto } from '../onnx/types.js';

/** Values of a small numeric tensor held in the model (not external data); undefined otherwise. */
export function constValues(t: TensorProto | undefined, limit = 1 << 16): number[] | undefined {
  if (!t || t.dataLocation === 1) return undefined;
  const count = (t.dims ?? []).map(int).reduce((a, b) => a * b, 1);
  if (count > limit) return undefined;
  const raw = t.rawData;
  if (raw && raw.length) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      switch (t.dataType) {
        case DataType.FLOAT: out.push(dv.getFloat32(i * 4, true)); break;
        case DataType.DOUBLE: out.push(dv.getFloat64(i * 8, true)); break;
        case DataType.INT64: out.push(Number(dv.getBigInt64(i * 8, true))); break;
        case DataType.INT32: out.push(dv.getInt32(i * 4, true)); break;
        case DataType.INT8: out.push(dv.getInt8(i)); break;
        case DataType.UINT8: case DataType.BOOL: out.push(dv.getUint8(i)); break;
        default: return undefined;
      }
    }
    return out;
  }
  switch (t.dataType) {
    case DataType.FLOAT: return t.floatData ?? [];
    case DataType.DOUBLE: return t.doubleData ?? [];
    case DataType.INT64: return (t.int64Data ?? []).map(int);
    case DataType.INT32: case DataType.INT8: case DataType.UINT8: case DataType.BOOL: return t.int32Data ?? [];
    default: return undefined;
  }
}

/** A tensor of `dataType` (float, double or int64) holding `values`, stored as raw little-endian bytes. */
export function makeTensor(name: string, dataType: number, dims: number[], values: ArrayLike<number>): TensorProto {
  let raw: Uint8Array;
  if (dataType === DataType.FLOAT) raw = new Uint8Array(Float32Array.from(values).buffer);
  else if (dataType === DataType.DOUBLE) raw = new Uint8Array(Float64Array.from(values).buffer);
  else if (dataType === DataType.INT64) raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
  else if (dataType === DataType.FLOAT16) raw = new Uint8Array(Uint16Array.from(Array.from(values, toHalf)).buffer);
  else throw new Error(`makeTensor: unsupported element type ${dataType}`);
  return { name, dataType, dims, rawData: raw };
}

/** IEEE half from a JS number (round to nearest even), enough for constants such as 0.5 or 1e-3. */
function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign | Math.round((mant | 0x800000) / 2 ** (14 - exp));
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | Math.round(mant / 8192);
}
