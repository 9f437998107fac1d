/** ONNX element types (TensorProto.DataType): names, sizes, and the typed arrays that hold them. */

export const DataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
  FLOAT8E4M3FN: 17, FLOAT8E4M3FNUZ: 18, FLOAT8E5M2: 19, FLOAT8E5M2FNUZ: 20, UINT4: 21, INT4: 22,
  FLOAT4E2M1: 23, FLOAT8E8M0: 24, UINT2: 25, INT2: 26,
} as const;

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(DataType).map(([k, v]) => [v, k.toLowerCase()]),
);

export function dtypeName(t: number | undefined): string {
  return NAMES[t ?? 0] ?? `type#${t}`;
}

/** Bits per element; 0 for strings and undefined. */
export function dtypeBits(t: number): number {
  switch (t) {
    case DataType.DOUBLE: case DataType.INT64: case DataType.UINT64: case DataType.COMPLEX64: return 64;
    case DataType.COMPLEX128: return 128;
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 32;
    case DataType.FLOAT16: case DataType.BFLOAT16: case DataType.INT16: case DataType.UINT16: return 16;
    case DataType.UINT4: case DataType.INT4: case DataType.FLOAT4E2M1: return 4;
    case DataType.UINT2: case DataType.INT2: return 2;
    case DataType.STRING: case DataType.UNDEFINED: return 0;
    default: return 8;
  }
}

export function isFloatType(t: number | undefined): boolean {
  return t === DataType.FLOAT || t === DataType.FLOAT16 || t === DataType.DOUBLE || t === DataType.BFLOAT16;
}

/** onnxruntime-common's tensor type names. */
export function ortTypeName(t: number): string {
  const m: Record<number, string> = {
    [DataType.FLOAT]: 'float32', [DataType.DOUBLE]: 'float64', [DataType.FLOAT16]: 'float16',
    [DataType.INT8]: 'int8', [DataType.UINT8]: 'uint8', [DataType.INT16]: 'int16', [DataType.UINT16]: 'uint16',
    [DataType.INT32]: 'int32', [DataType.UINT32]: 'uint32', [DataType.INT64]: 'int64',
    [DataType.UINT64]: 'uint64', [DataType.BOOL]: 'bool', [DataType.STRING]: 'string',
  };
  const n = m[t];
  if (!n) throw new Error(`element type ${dtypeName(t)} has no onnxruntime JS tensor type`);
  return n;
}
