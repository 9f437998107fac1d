/**
 * A minimal node emitter for the parts of the training graph that are not gradients (loss, optimizer):
 * fresh names, deduplicated scalar constants, nodes appended in order.
 */
import { DataType } from '../onnx/dtype.js';
import { makeNode } from '../onnx/attrs.js';
import type { AttributeProto, NodeProto, TensorProto } from '../onnx/types.js';

export class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly consts = new Map<string, string>();

  constructor(readonly fresh: (base: string) => string, readonly prefix: string) {}

  op(opType: string, inputs: string[], attrs: AttributeProto[] = [], base?: string): string {
    const out = this.fresh(`${this.prefix}/${base ?? opType}`);
    this.nodes.push(makeNode(opType, inputs, [out], this.fresh(`${this.prefix}/${opType}`), attrs));
    return out;
  }

  /** A float scalar (0-D) constant of the given element type (float, double or float16). */
  scalar(value: number, dataType: number = DataType.FLOAT): string {
    const key = `${dataType}:${value}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(`${this.prefix}/const_${value}`);
      this.initializers.push(scalarProto(name, dataType, value));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A 1-D int64 constant. */
  ints(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(`${this.prefix}/ints_${values.join('_')}`);
      this.initializers.push({ name, dataType: DataType.INT64, dims: [values.length], rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
      this.consts.set(key, name);
    }
    return name;
  }
}

function scalarProto(name: string, dataType: number, value: number): TensorProto {
  if (dataType === DataType.DOUBLE) return { name, dataType, dims: [], rawData: new Uint8Array(new Float64Array([value]).buffer) };
  if (dataType !== DataType.FLOAT) throw new Error(`optimizer constants for element type ${dataType} are not supported`);
  return { name, dataType, dims: [], rawData: new Uint8Array(new Float32Array([value]).buffer) };
}
