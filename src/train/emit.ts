/**
 * A minimal node emitter for the parts of the training graph that are not gradients (loss, optimizer):
 * fresh names, deduplicated scalar constants, nodes appended in order.
 */
import { DataType } from '../onnx/dtype.js';
import { makeNode } from '../onnx/attrs.js';
import { scalarTensor } from '../onnx/tensor.js';
import { makeTensor } from './tensors.js';
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

  /** A 1-D int64 constant. */
  ints(values: number[]): string {
    return this.constant(makeTensor('', DataType.INT64, [values.length], values), `i64_${values.join('_')}`, `i64[${values.length}]:${values.join(',')}`);
  }

  /** A 0-D int64 constant. */
  int0(value: number): string {
    return this.constant(makeTensor('', DataType.INT64, [], [value]), `i64_${value}`, `i64[]:${value}`);
  }

  /** An initializer holding `t`'s values under a fresh name from `base`; one per `key` (type, dims and values). */
  constant(t: TensorProto, base: string, key?: string): string {
    let name = key ? this.consts.get(key) : undefined;
    if (!name) {
      name = this.fresh(`${this.prefix}/${base}`);
      this.initializers.push({ ...t, name });
      if (key) this.consts.set(key, name);
    }
    return name;
  }

  /** A float scalar (0-D) constant of the given element type (float, double, float16 or bfloat16). */
  scalar(value: number, dataType: number = DataType.FLOAT): string {
    const key = `${dataType}:${value}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(`${this.prefix}/const_${value}`);
      this.initializers.push(scalarTensor(name, dataType, value));
      this.consts.set(key, name);
    }
    return name;
  }
}
