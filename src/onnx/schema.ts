/** The ONNX protobuf schema, loaded once from proto/onnx.proto, and raw encode/decode of ModelProto. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { ModelProto, TensorProto } from './types.js';

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

/** The whole model as one buffer, allocated once at its exact size (see encodeModelParts). */
export function encodeModel(model: ModelProto): Uint8Array {
  const { parts, length } = encodeModelParts(model);
  if (parts.length === 1) return parts[0]!;
  const out = Buffer.allocUnsafe(length);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export interface EncodedModel {
  /** consecutive pieces of the protobuf; big raw_data pieces are the model's own arrays, not copies */
  parts: Uint8Array[];
  /** total bytes */
  length: number;
}

/** Initializers whose raw_data is at least this big are passed through by reference. */
const BIG_RAW = 4096;
// Field numbers (official onnx.proto) the encoder splits around.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;
const LEN = 2; // wire type of length-delimited fields

/**
 * The model's protobuf as a list of pieces whose concatenation is byte for byte what protobufjs
 * encodes (fields in field-number order), but in which each big initializer's raw_data is the
 * model's own Uint8Array (usually a view into the file that was read) rather than a copy.
 * Why: protobufjs 8's Writer grows by doubling, copying everything at each growth, and finish()
 * copies once more, so writing a 100 MB model held about 3x its size on top of the weights and
 * took longer than reading it. Pieces let writeModel hand the weights to the kernel as they are.
 * Only main-graph initializers are split out (where weights live in practice); big tensors elsewhere
 * (Constant attributes, subgraphs) are encoded normally, which is correct, just not copy-free.
 */
export function encodeModelParts(model: ModelProto): EncodedModel {
  const out = new Parts();
  const graph = model.graph;
  if (!graph || !(graph.initializer ?? []).some(isBig)) {
    out.push(encode('ModelProto', model));
    return out.done();
  }
  const [before, after] = splitAt('ModelProto', model, MODEL_GRAPH);
  out.push(encode('ModelProto', before));
  const g = graphParts(graph);
  out.push(fieldHeader(MODEL_GRAPH, g.length));
  out.append(g);
  out.push(encode('ModelProto', after));
  return out.done();
}

function graphParts(graph: NonNullable<ModelProto['graph']>): EncodedModel {
  const out = new Parts();
  const [before, after] = splitAt('GraphProto', graph, GRAPH_INITIALIZER);
  out.push(encode('GraphProto', before));
  // Runs of small initializers are encoded together (a GraphProto holding only them is exactly
  // their field-5 entries); big ones are framed by hand around their raw_data.
  let small: TensorProto[] = [];
  const flush = () => {
    if (small.length) out.push(encode('GraphProto', { initializer: small }));
    small = [];
  };
  for (const t of graph.initializer ?? []) {
    if (!isBig(t)) {
      small.push(t);
      continue;
    }
    flush();
    const [tb, ta] = splitAt('TensorProto', t, TENSOR_RAW_DATA);
    const head = encode('TensorProto', tb);
    const rawHeader = fieldHeader(TENSOR_RAW_DATA, t.rawData!.length);
    const tail = encode('TensorProto', ta);
    out.push(fieldHeader(GRAPH_INITIALIZER, head.length + rawHeader.length + t.rawData!.length + tail.length));
    out.push(head);
    out.push(rawHeader);
    out.push(t.rawData!);
    out.push(tail);
  }
  flush();
  out.push(encode('GraphProto', after));
  return out.done();
}

const isBig = (t: TensorProto) => (t.rawData?.length ?? 0) >= BIG_RAW;

class Parts {
  private parts: Uint8Array[] = [];
  private length = 0;
  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.parts.push(b);
    this.length += b.length;
  }
  append(p: EncodedModel): void {
    for (const b of p.parts) this.push(b);
  }
  done(): EncodedModel {
    return { parts: this.parts, length: this.length };
  }
}

function encode(type: string, message: object): Uint8Array {
  return messageType(type)
    .encode(message as protobuf.Message)
    .finish();
}

/** Two shallow copies of a message: its set fields numbered below `field`, and those above it. */
function splitAt(type: string, message: object, field: number): [Record<string, unknown>, Record<string, unknown>] {
  const fields = messageType(type).fields;
  const below: Record<string, unknown> = {};
  const above: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(message)) {
    const f = fields[k];
    if (!f || f.id === field) continue;
    (f.id < field ? below : above)[k] = v;
  }
  return [below, above];
}

/** Tag and length of a length-delimited field. */
function fieldHeader(field: number, length: number): Uint8Array {
  const bytes: number[] = [];
  pushVarint(bytes, field * 8 + LEN);
  pushVarint(bytes, length);
  return Uint8Array.from(bytes);
}

/** Base-128 varint, low groups first (lengths can pass 2^31, so no bitwise ops). */
function pushVarint(bytes: number[], v: number): void {
  for (; v >= 128; v = Math.floor(v / 128)) bytes.push((v % 128) | 128);
  bytes.push(v);
}

export function decodeTensor(bytes: Uint8Array): TensorProto {
  return messageType('TensorProto').decode(bytes) as unknown as TensorProto;
}

export function encodeTensor(t: TensorProto): Uint8Array {
  return messageType('TensorProto')
    .encode(t as unknown as protobuf.Message)
    .finish();
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
        case 0:
          varint();
          break;
        case 1:
          pos += 8;
          break;
        case 2: {
          const n = varint();
          pos += n;
          break;
        }
        case 5:
          pos += 4;
          break;
        default:
          return `unsupported wire type ${wire} at byte ${pos}`;
      }
      if (pos > buf.length) return 'a length field runs past the end of the file (truncated?)';
    }
    if (!sawGraph) return 'no graph';
    return undefined;
  } catch (e) {
    return (e as Error).message + ' (truncated?)';
  }
}
