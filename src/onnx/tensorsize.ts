/**
 * Whether a tensor's data holds as many values as its dims say. Checked when a model is read, so every
 * command refuses a lying tensor before anything allocates from its dims or hands it to a runtime. Only
 * lengths are compared: nothing is copied or decoded, so the cost is one look per tensor.
 */
import { UserError } from '../errors.js';
import { DataType, dtypeName } from './dtype.js';
import type { Int64, TensorProto } from './types.js';

/** Bits per element of each element type; string has none (one string_data entry per element). */
const BITS: Partial<Record<number, number>> = {
  [DataType.FLOAT]: 32,
  [DataType.UINT8]: 8,
  [DataType.INT8]: 8,
  [DataType.UINT16]: 16,
  [DataType.INT16]: 16,
  [DataType.INT32]: 32,
  [DataType.INT64]: 64,
  [DataType.BOOL]: 8,
  [DataType.FLOAT16]: 16,
  [DataType.DOUBLE]: 64,
  [DataType.UINT32]: 32,
  [DataType.UINT64]: 64,
  [DataType.COMPLEX64]: 64,
  [DataType.COMPLEX128]: 128,
  [DataType.BFLOAT16]: 16,
  [DataType.FLOAT8E4M3FN]: 8,
  [DataType.FLOAT8E4M3FNUZ]: 8,
  [DataType.FLOAT8E5M2]: 8,
  [DataType.FLOAT8E5M2FNUZ]: 8,
  [DataType.UINT4]: 4,
  [DataType.INT4]: 4,
  [DataType.FLOAT4E2M1]: 4,
  [DataType.FLOAT8E8M0]: 8,
  [DataType.UINT2]: 2,
  [DataType.INT2]: 2,
};

const label = (t: TensorProto) => (t.name ? `tensor '${t.name}'` : 'an unnamed tensor');
const MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** A dim as an exact integer: int64 fields decode as Long, whose toNumber() would round large values. */
const dimValue = (d: Int64): bigint => (typeof d === 'number' ? (Number.isInteger(d) ? BigInt(d) : -1n) : BigInt(d.toString()));

/** The element count the dims declare, or the reason they declare none. */
export function declaredCount(t: TensorProto): number | string {
  let n = 1n;
  let zero = false;
  for (const d of t.dims ?? []) {
    const v = dimValue(d);
    if (v < 0n) return `${label(t)} has a negative dimension (${v})`;
    if (v > MAX) return `${label(t)} has a dimension of ${v}, beyond 2^53`;
    if (v === 0n) zero = true;
    // Once past 2^53 the product only grows (unless a later dim is 0), so stop multiplying huge numbers.
    else if (n <= MAX) n *= v;
  }
  if (zero) return 0;
  if (n > MAX) return `${label(t)} has dims [${(t.dims ?? []).map(dimValue).join(', ')}] whose product is beyond 2^53 elements`;
  return Number(n);
}

const dimsText = (t: TensorProto) => `[${(t.dims ?? []).map(dimValue).join(', ')}]`;

/** Bytes the dims need in raw_data or external data; undefined for types without a fixed width. */
export function expectedBytes(t: TensorProto, count: number): number | undefined {
  const bits = BITS[t.dataType ?? 0];
  return bits === undefined ? undefined : Math.ceil((count * bits) / 8);
}

/**
 * Why `length` bytes (of raw_data, or of external data named by `source`) cannot be the data of `t`;
 * undefined when they fit, or when the element type has no fixed width to check against.
 */
export function byteCountProblem(t: TensorProto, length: number, source = 'raw data'): string | undefined {
  const count = declaredCount(t);
  if (typeof count === 'string') return count;
  const want = expectedBytes(t, count);
  if (want === undefined || want === length) return undefined;
  return `${label(t)} has ${length} bytes of ${source}, but dims ${dimsText(t)} of ${dtypeName(t.dataType)} need ${want}`;
}

/** The typed field that holds `t`'s values when raw_data is absent, and how many entries each element takes. */
function typedField(t: TensorProto): { name: string; length: number; perElement: number } | undefined {
  switch (t.dataType) {
    case DataType.FLOAT:
      return { name: 'float_data', length: t.floatData?.length ?? 0, perElement: 1 };
    case DataType.COMPLEX64:
      return { name: 'float_data', length: t.floatData?.length ?? 0, perElement: 2 };
    case DataType.DOUBLE:
      return { name: 'double_data', length: t.doubleData?.length ?? 0, perElement: 1 };
    case DataType.COMPLEX128:
      return { name: 'double_data', length: t.doubleData?.length ?? 0, perElement: 2 };
    case DataType.INT64:
      return { name: 'int64_data', length: t.int64Data?.length ?? 0, perElement: 1 };
    case DataType.UINT32:
    case DataType.UINT64:
      return { name: 'uint64_data', length: t.uint64Data?.length ?? 0, perElement: 1 };
    case DataType.STRING:
      return { name: 'string_data', length: t.stringData?.length ?? 0, perElement: 1 };
    default:
      return BITS[t.dataType ?? 0] === undefined ? undefined : { name: 'int32_data', length: t.int32Data?.length ?? 0, perElement: 1 };
  }
}

/** Why the data stored inside `t` (raw or typed) disagrees with its dims; external tensors are checked by
 * validateExternal, which knows the file's size. */
export function tensorDataProblem(t: TensorProto): string | undefined {
  // external data is checked where its file's size is known; a segment holds a slice of a split tensor
  if (t.dataLocation === 1 || t.segment) return undefined;
  const count = declaredCount(t);
  if (typeof count === 'string') return count;
  const raw = t.rawData?.length ?? 0;
  if (raw > 0) return byteCountProblem(t, raw);
  const field = typedField(t);
  if (!field) return undefined;
  if (field.length === count * field.perElement) return undefined;
  // Sub-byte types may pack their values into int32_data by byte, as onnx's helpers do.
  const bits = BITS[t.dataType ?? 0] ?? 8;
  if (bits < 8 && field.length === Math.ceil((count * bits) / 8)) return undefined;
  return field.length === 0
    ? `${label(t)} has no data, but dims ${dimsText(t)} declare ${count} element${count === 1 ? '' : 's'}`
    : `${label(t)} has ${field.length} values in ${field.name}, but dims ${dimsText(t)} declare ${count * field.perElement}`;
}

/** Refuses the first tensor whose stored data disagrees with its dims, naming `file`. */
export function checkTensorData(file: string, tensors: TensorProto[]): void {
  for (const t of tensors) {
    const problem = tensorDataProblem(t);
    if (problem) throw new UserError(file, problem);
  }
}
