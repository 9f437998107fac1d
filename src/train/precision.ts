/**
 * Fine-tuning models stored in float16 or bfloat16 with float32 "master weights": the forward graph's
 * half-precision types become float (initializers, constants, Cast targets, declared types), so the
 * forward, the gradients and the optimizer all run in float32, and the fine-tuned values are rounded
 * back to each initializer's own type when the model is written. Gradients in half precision would
 * underflow without loss scaling (float16 flushes below 6e-8); float32 needs none.
 */
import { DataType } from '../onnx/dtype.js';
import { elementCount, floatToBf16, floatToHalf, makeTensor, tensorValues } from '../onnx/tensor.js';
import { int, type AttributeProto, type GraphProto, type TensorProto, type TypeProto } from '../onnx/types.js';
import { subgraphsOf } from '../onnx/walk.js';
import type { HostTensor } from '../runtime/types.js';

export const isHalf = (t: number | undefined): boolean => t === DataType.FLOAT16 || t === DataType.BFLOAT16;

/** A float16/bfloat16 tensor as float32 (other tensors unchanged). */
export function promoteTensor(t: TensorProto): TensorProto {
  if (!isHalf(t.dataType)) return t;
  const values = tensorValues(t, Infinity);
  if (!values) throw new Error(`tensor '${t.name ?? ''}' has no readable values`);
  return makeTensor(t.name ?? '', DataType.FLOAT, (t.dims ?? []).map(int), values);
}

/** The graph (and its subgraphs) with every float16/bfloat16 type and value made float32, in place. */
export function promoteGraph(graph: GraphProto): void {
  graph.initializer = (graph.initializer ?? []).map(promoteTensor);
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) promoteType(v.type);
  for (const n of graph.node ?? []) {
    for (const a of n.attribute ?? []) promoteAttribute(a);
    for (const s of subgraphsOf(n)) promoteGraph(s.graph);
  }
}

/** Cast's `to`, the random ops' and EyeLike's `dtype`, Constant's and ConstantOfShape's `value`. */
function promoteAttribute(a: AttributeProto): void {
  if ((a.name === 'to' || a.name === 'dtype') && isHalf(int(a.i ?? 0))) a.i = DataType.FLOAT;
  if (a.t) a.t = promoteTensor(a.t);
  if (a.tensors) a.tensors = a.tensors.map(promoteTensor);
}

function promoteType(t: TypeProto | undefined): void {
  if (!t) return;
  if (t.tensorType && isHalf(t.tensorType.elemType)) t.tensorType.elemType = DataType.FLOAT;
  promoteType(t.sequenceType?.elemType);
  promoteType(t.optionalType?.elemType);
}

/** A trained float32 value rounded back to the float16/bfloat16 initializer it came from, as raw bytes. */
export function demoteData(dataType: number | undefined, v: HostTensor): Uint8Array | undefined {
  if (!isHalf(dataType) || v.type !== 'float32') return undefined;
  const src = v.data as Float32Array;
  const bits = new Uint16Array(elementCount(v.dims));
  const round = dataType === DataType.FLOAT16 ? floatToHalf : floatToBf16;
  for (let i = 0; i < bits.length; i++) bits[i] = round(src[i]!);
  return new Uint8Array(bits.buffer);
}
