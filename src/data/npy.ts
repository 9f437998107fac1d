/**
 * Reading NumPy .npy arrays (format versions 1.0, 2.0 and 3.0, as written by numpy.save). Supported
 * element types: <f4 <f8 <f2 <i8 <i4 <i2 |i1 <u8 <u4 <u2 |u1 |b1 (little-endian, or single-byte); C
 * order only. The reader assumes a little-endian host, as every platform Node supports is.
 */
import { halfToFloat } from '../onnx/tensor.js';
import { UserError } from '../errors.js';
import { printable } from '../printable.js';
import { quoted } from './text.js';
import { formatBytes, shapeText, type DataBudget } from './limits.js';

export type NpyData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint32Array
  | BigUint64Array;

export interface NpyArray {
  /** the descr string from the header, e.g. '<f4' */
  dtype: string;
  shape: number[];
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export interface Kind {
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

/** What a .npy header declares, checked: the data that must follow it, and where it starts. */
export interface NpyHeader {
  dtype: string;
  shape: number[];
  /** byte offset of the data from the start of the file */
  dataOffset: number;
  /** shape product × item size: exactly the bytes that must follow the header */
  dataBytes: number;
  kind: Kind;
}

/** Longest header read: numpy's own default max_header_size, which it refuses beyond too. */
export const MAX_HEADER_BYTES = 10000;
/** Bytes to read from the start of a file to be sure of holding its whole header. */
export const HEADER_PREFIX_BYTES = 12 + MAX_HEADER_BYTES;

/**
 * Parses the preamble and header at the start of `bytes` (the whole file, or at least its first
 * HEADER_PREFIX_BYTES); nothing about the data is allocated. `subject` names the file in errors.
 */
export function parseNpyHeader(bytes: Uint8Array, subject: string): NpyHeader {
  const fail = (cause: string): never => {
    throw new UserError(subject, `not a valid .npy array: ${cause}`);
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail(`expected the magic bytes \\x93NUMPY at the start, found ${quoted(Buffer.from(bytes.subarray(0, 6)).toString('latin1'))}`);
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
  if (headerLen > MAX_HEADER_BYTES) fail(`header is ${headerLen} bytes, above the ${MAX_HEADER_BYTES} that numpy itself reads (damaged or hostile?)`);
  if (start + headerLen > bytes.length) fail(`header says ${headerLen} bytes but the file has only ${bytes.length - start} after the preamble (truncated?)`);
  const header = Buffer.from(bytes.subarray(start, start + headerLen)).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  if (descr === undefined) {
    if (/['"]descr['"]\s*:\s*\[/.test(header)) fail('structured (record) arrays are not supported; save plain numeric arrays');
    fail(`no descr in header ${quoted(header.trim())}`);
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  if (fortran === undefined) fail(`no fortran_order in header ${quoted(header.trim())}`);
  if (fortran === 'True') fail('array is in Fortran order; save it with numpy.ascontiguousarray(a) (C order)');
  const shapeSrc = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeSrc === undefined) return fail(`no shape in header ${quoted(header.trim())}`);
  const dims = shapeSrc
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (dims.some((d) => !/^\d+L?$/.test(d))) fail(`bad shape ${quoted(`(${shapeSrc})`)}: expected non-negative integer dimensions`);
  const shape = dims.map((d) => Number(d.replace(/L$/, '')));

  const order = descr![0];
  const shownDescr = printable(descr!);
  const kind = KINDS[descr!.slice(1)];
  if (!kind || !(order === '<' || order === '|' || (order === '=' && kind.bytes === 1))) {
    if (order === '>' && kind && kind.bytes > 1) fail(`big-endian dtype ${shownDescr} is not supported; save with a.astype(a.dtype.newbyteorder('<'))`);
    fail(`dtype ${shownDescr} is not supported (expected one of <f4 <f8 <i8 <i4 |u1 |b1, or <f2 <i2 |i1 <u2 <u4 <u8)`);
  }
  // The product is checked as it grows: a shape whose size cannot be counted exactly is refused,
  // not rounded (2^53 elements would pass a float comparison with the file size by accident).
  let dataBytes = kind!.bytes;
  for (const d of shape) {
    dataBytes *= d;
    if (!Number.isSafeInteger(dataBytes)) fail(`shape (${shape.join(', ')}) of ${descr} declares more data than can be counted`);
  }
  return { dtype: descr!, shape, dataOffset: start + headerLen, dataBytes, kind: kind! };
}

/** The array over `data` (exactly the header's dataBytes): the buffer itself if `data` is all of it, else a copy. */
export function npyFromData(h: NpyHeader, data: Uint8Array): NpyArray {
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  if (whole) return { dtype: h.dtype, shape: h.shape, data: h.kind.make(data.buffer as ArrayBuffer) };
  // Not Buffer#slice, which would share the (possibly pooled, unaligned) memory.
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return { dtype: h.dtype, shape: h.shape, data: h.kind.make(copy.buffer) };
}

/** "declares 4 GiB of data (shape 1000000x1000 <f4)": what a header claims, for the data size limit. */
export function declaredData(h: NpyHeader): string {
  return `declares ${formatBytes(h.dataBytes)} of data (shape ${shapeText(h.shape)} ${h.dtype})`;
}

/** Checks that `have` bytes of data follow the header, as it declares; before anything is allocated. */
export function checkDataLength(h: NpyHeader, have: number, subject: string): void {
  if (have === h.dataBytes) return;
  const cause = have < h.dataBytes ? 'truncated?' : 'trailing garbage?';
  throw new UserError(subject, `not a valid .npy array: shape (${h.shape.join(', ')}) of ${h.dtype} needs ${h.dataBytes} data bytes, found ${have} (${cause})`);
}

/**
 * Parses one .npy file's bytes. `subject` names the file (or zip member) in errors. The copy made
 * (so the typed array is aligned whatever the file buffer's offset) is charged to `budget` first.
 */
export function parseNpy(bytes: Uint8Array, subject: string, budget?: DataBudget): NpyArray {
  const h = parseNpyHeader(bytes, subject);
  checkDataLength(h, bytes.length - h.dataOffset, subject);
  budget?.take(subject, h.dataBytes, declaredData(h));
  return npyFromData(h, bytes.subarray(h.dataOffset, h.dataOffset + h.dataBytes));
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
