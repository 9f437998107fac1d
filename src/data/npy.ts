/**
 * Reading NumPy .npy arrays (format versions 1.0, 2.0 and 3.0, as written by numpy.save). Supported
 * element types: <f4 <f8 <f2 <i8 <i4 <i2 |i1 <u8 <u4 <u2 |u1 |b1 (little-endian, or single-byte); C
 * order only. The reader assumes a little-endian host, as every platform Node supports is.
 */
import { elementCount, halfToFloat } from '../onnx/tensor.js';
import { UserError } from '../errors.js';

export type NpyData =
  | Float32Array | Float64Array | Uint16Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint32Array | BigUint64Array;

export interface NpyArray {
  /** the descr string from the header, e.g. '<f4' */
  dtype: string;
  shape: number[];
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

interface Kind {
  bytes: number;
  make(buf: ArrayBuffer): NpyData;
}

/** Keyed by descr without its byte-order character. f2 stays as raw Uint16 bits (converted by toFloat32). */
const KINDS: Record<string, Kind> = {
  f4: { bytes: 4, make: (b) => new Float32Array(b) },
  f8: { bytes: 8, make: (b) => new Float64Array(b) },
  f2: { bytes: 2, make: (b) => new Uint16Array(b) },
  i8: { bytes: 8, make: (b) => new BigInt64Array(b) },
  i4: { bytes: 4, make: (b) => new Int32Array(b) },
  i2: { bytes: 2, make: (b) => new Int16Array(b) },
  i1: { bytes: 1, make: (b) => new Int8Array(b) },
  u8: { bytes: 8, make: (b) => new BigUint64Array(b) },
  u4: { bytes: 4, make: (b) => new Uint32Array(b) },
  u2: { bytes: 2, make: (b) => new Uint16Array(b) },
  u1: { bytes: 1, make: (b) => new Uint8Array(b) },
  b1: { bytes: 1, make: (b) => new Uint8Array(b) },
};

/** Parses one .npy file's bytes. `subject` names the file (or zip member) in errors. */
export function parseNpy(bytes: Uint8Array, subject: string): NpyArray {
  const fail = (cause: string): never => {
    throw new UserError(subject, `not a valid .npy array: ${cause}`);
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail(`expected the magic bytes \\x93NUMPY at the start, found ${JSON.stringify(Buffer.from(bytes.subarray(0, 6)).toString('latin1'))}`);
  }
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail('truncated header');
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else {
    return fail(`format version ${major}.${bytes[7]} is not supported (expected 1.0, 2.0 or 3.0)`);
  }
  if (start + headerLen > bytes.length) fail(`header says ${headerLen} bytes but the file has only ${bytes.length - start} after the preamble (truncated?)`);
  const header = Buffer.from(bytes.subarray(start, start + headerLen)).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  if (descr === undefined) {
    if (/['"]descr['"]\s*:\s*\[/.test(header)) fail('structured (record) arrays are not supported; save plain numeric arrays');
    fail(`no descr in header ${JSON.stringify(header.trim())}`);
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  if (fortran === undefined) fail(`no fortran_order in header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') fail('array is in Fortran order; save it with numpy.ascontiguousarray(a) (C order)');
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) return fail(`no shape in header ${JSON.stringify(header.trim())}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`bad shape (${shapeText})`);

  const order = descr![0];
  const kind = KINDS[descr!.slice(1)];
  if (!kind || !(order === '<' || order === '|' || (order === '=' && kind.bytes === 1))) {
    if (order === '>' && kind && kind.bytes > 1) fail(`big-endian dtype ${descr} is not supported; save with a.astype(a.dtype.newbyteorder('<'))`);
    fail(`dtype ${descr} is not supported (expected one of <f4 <f8 <i8 <i4 |u1 |b1, or <f2 <i2 |i1 <u2 <u4 <u8)`);
  }
  const count = elementCount(shape);
  const offset = start + headerLen;
  const want = count * kind!.bytes;
  const have = bytes.length - offset;
  if (have < want) fail(`shape (${shape.join(', ')}) of ${descr} needs ${want} data bytes, found ${have} (truncated?)`);
  if (have > want) fail(`shape (${shape.join(', ')}) of ${descr} needs ${want} data bytes, found ${have} (trailing garbage?)`);
  // Copy so the typed array is aligned to its element size whatever the file buffer's offset.
  const copy = new Uint8Array(want);
  copy.set(bytes.subarray(offset, offset + want));
  return { dtype: descr!, shape, data: kind!.make(copy.buffer) };
}

/** Bytes of a .npy file holding `data` (version 1.0); used by tests and by anyone exporting data. */
export function encodeNpy(dtype: string, shape: number[], data: NpyData): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so data starts on a 64-byte boundary, header ends with '\n' (as numpy does).
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

/** The array's values as numbers (int64 beyond 2^53 lose precision, which labels and pixels never reach). */
export function valueAt(a: NpyArray, i: number): number {
  const v = a.data[i]!;
  if (typeof v === 'bigint') return Number(v);
  return a.dtype.endsWith('f2') ? halfToFloat(v) : v;
}

export function toFloat32(a: NpyArray): Float32Array {
  if (a.data instanceof Float32Array) return a.data;
  const out = new Float32Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = valueAt(a, i);
  return out;
}
