/** The ONNX protobuf schema, loaded once from proto/onnx.proto, and raw encode/decode of ModelProto. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { ModelProto, TensorProto } from './types.js';
import { allTensors } from './walk.js';

/** proto/ sits at the package root; this module runs from src/ (tests) or dist/src/ (built). */
function findProto(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto', 'onnx.proto');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('proto/onnx.proto not found next to the alrelu package');
}

let root: protobuf.Root | undefined;
function schema(): protobuf.Root {
  root ??= protobuf.loadSync(findProto());
  return root;
}

export const messageType = (name: string): protobuf.Type => schema().lookupType(`onnx.${name}`);

export function decodeModel(bytes: Uint8Array): ModelProto {
  return messageType('ModelProto').decode(bytes) as unknown as ModelProto;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return encodeModelWriter(model).finish(true);
}

/** Tensors whose raw_data is at least this big are sized by hand rather than encoded twice. */
const SIZED_RAW = 4096;
/** Per sized tensor: its tag and length varint, and growth of the length prefixes around it. */
const SLACK_PER_TENSOR = 32;
const NO_BYTES = new Uint8Array(0);

/**
 * The model encoded into a Writer whose buffer was allocated at (about) its final size up front;
 * `finish(true)` then returns the bytes without another copy. Why: protobufjs 8's Writer grows by
 * doubling (each growth copies everything written so far) and a plain finish() copies once more, so
 * a 100 MB model held about 3x its size while being encoded, on top of the weights themselves.
 * The size comes from encoding the model with its big raw_data fields set aside (cheap) plus their
 * lengths and a little slack; a low guess would only cost a regrowth, never correctness.
 */
export function encodeModelWriter(model: ModelProto): protobuf.Writer {
  const type = messageType('ModelProto');
  const big = allTensors(model).filter((t) => (t.rawData?.length ?? 0) >= SIZED_RAW);
  let raw = 0;
  const saved = big.map((t) => {
    const data = t.rawData!;
    raw += data.length + SLACK_PER_TENSOR;
    t.rawData = NO_BYTES; // assigned, not deleted: the object keeps its key order
    return data;
  });
  let skeleton: number;
  try {
    skeleton = type.encode(model as unknown as protobuf.Message).len;
  } finally {
    big.forEach((t, i) => { t.rawData = saved[i]!; });
  }
  const writer = protobuf.Writer.create();
  if (big.length) {
    writer.buf = Buffer.allocUnsafe(skeleton + raw + 1024);
  }
  return type.encode(model as unknown as protobuf.Message, writer);
}

export function decodeTensor(bytes: Uint8Array): TensorProto {
  return messageType('TensorProto').decode(bytes) as unknown as TensorProto;
}

export function encodeTensor(t: TensorProto): Uint8Array {
  return messageType('TensorProto').encode(t as unknown as protobuf.Message).finish();
}

/** Wire types of ModelProto's top-level fields, to tell a ModelProto from other protobufs before decoding. */
const MODEL_WIRE: Record<number, number> = { 1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2 };

/**
 * Scans the top level of a protobuf without decoding it. Returns a reason when the bytes cannot be a
 * ModelProto (a known field with the wrong wire type, a length running past the end), or undefined.
 */
export function modelShapeProblem(buf: Uint8Array): string | undefined {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint longer than 10 bytes');
    }
  };
  try {
    let sawGraph = false;
    while (pos < buf.length) {
      const key = varint();
      const field = Math.floor(key / 8);
      const wire = key % 8;
      if (field === 0) return 'field number 0 at byte ' + (pos - 1);
      const expected = MODEL_WIRE[field];
      if (expected !== undefined && expected !== wire) return `field ${field} has wire type ${wire}, expected ${expected}`;
      if (field === 7) sawGraph = true;
      switch (wire) {
        case 0: varint(); break;
        case 1: pos += 8; break;
        case 2: { const n = varint(); pos += n; break; }
        case 5: pos += 4; break;
        default: return `unsupported wire type ${wire} at byte ${pos}`;
      }
      if (pos > buf.length) return 'a length field runs past the end of the file (truncated?)';
    }
    if (!sawGraph) return 'no graph';
    return undefined;
  } catch (e) {
    return (e as Error).message + ' (truncated?)';
  }
}
