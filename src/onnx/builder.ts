/**
 * The one node and constant emitter every pass uses (gradient rules, loss, optimizer, batch-norm training,
 * recurrent unrolling, the converter's forms): nodes with fresh names, appended in order, their outputs'
 * types and shapes inferred as they are added (./shapes.ts), and initializers deduplicated by content
 * (element type, dims and bytes: two constants share a name only when they are the same tensor).
 */
import { intAttr, intsAttr, makeNode } from './attrs.js';
import { DataType } from './dtype.js';
import { emptyInfo, inferInto, record, tensorFacts, type Shape, type StaticInfo } from './shapes.js';
import { makeTensor } from './tensor.js';
import type { AttributeProto, NodeProto, TensorProto } from './types.js';

export interface OpOptions {
  /** base of the outputs' names, after the prefix (default: the op type) */
  base?: string;
  /** element type of the outputs where inference cannot tell */
  dtype?: number;
  domain?: string;
}

export interface BuilderOptions {
  /** default-domain opset of the graph the nodes go into */
  opset: number;
  /** what is known of the values the nodes read (default: nothing) */
  info?: StaticInfo;
  /** start of every name made here (`prefix/base`) */
  prefix?: string;
}

/** The identity of a tensor's content: element type, dims and data. */
function contentKey(t: TensorProto): string {
  const data = t.rawData?.length
    ? Buffer.from(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength).toString('base64')
    : JSON.stringify([t.floatData, t.int32Data, t.int64Data?.map(String), t.doubleData, t.uint64Data?.map(String)]);
  return `${t.dataType ?? 0}|${(t.dims ?? []).join(',')}|${data}`;
}

export class Builder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly info: StaticInfo;
  readonly opset: number;
  /** start of every name made from here on (gradient rules set it to the node being differentiated) */
  prefix: string;
  private readonly consts = new Map<string, string>();

  constructor(
    readonly fresh: (base: string) => string,
    opts: BuilderOptions,
  ) {
    this.opset = opts.opset;
    this.info = opts.info ?? emptyInfo();
    this.prefix = opts.prefix ?? 'node';
  }

  /** Emits one node with one output; returns the output's name. */
  op(opType: string, inputs: string[], attrs: AttributeProto[] = [], o: OpOptions = {}): string {
    return this.opN(opType, inputs, 1, attrs, o)[0]!;
  }

  /** Emits one node with `nOut` outputs. */
  opN(opType: string, inputs: string[], nOut: number, attrs: AttributeProto[] = [], o: OpOptions = {}): string[] {
    const base = `${this.prefix}/${o.base ?? opType}`;
    const outs = Array.from({ length: nOut }, () => this.fresh(base));
    this.emit(makeNode(opType, inputs, outs, this.fresh(`${this.prefix}/${opType}`), attrs, o.domain), o.dtype);
    return outs;
  }

  /**
   * Emits a node whose outputs the caller names (an original output kept, a graph's declared output); the
   * node is unnamed unless `o.name` is given.
   */
  node(opType: string, inputs: string[], outputs: string[], attrs: AttributeProto[] = [], o: { name?: string; domain?: string } = {}): NodeProto {
    const n = makeNode(opType, inputs, outputs, o.name ?? '', attrs, o.domain);
    if (o.name === undefined) delete n.name;
    return this.emit(n);
  }

  /** Appends a node made elsewhere (outputs named by the caller, e.g. an original output kept) and infers its outputs. */
  emit(node: NodeProto, dtype?: number): NodeProto {
    this.nodes.push(node);
    // an explicit type first; inference types the rest
    if (dtype) for (const o of node.output ?? []) if (o) this.info.types.set(o, dtype);
    inferInto(this.info, node, this.opset);
    return node;
  }

  /** An initializer holding `t`'s content (its name is ignored); one per content, named from `base`. */
  tensor(t: TensorProto, base = 'const'): string {
    const key = contentKey(t);
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(`${this.prefix}/${base}`);
      const c = { ...t, name };
      this.initializers.push(c);
      record(this.info, name, tensorFacts(c));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A constant of `dataType` (float, double, float16, bfloat16 or int64) with these dims and values. */
  constant(dataType: number, dims: number[], values: number[]): string {
    const short = values.length <= 4 ? values.join('_') : 'tensor';
    const name = this.tensor(makeTensor('', dataType, dims, values), `${dataType === DataType.INT64 ? 'i64' : 'f'}_${short}`);
    // values as given, for rules that read constants back (tensorFacts reads only some types)
    record(this.info, name, { value: values });
    return name;
  }

  /** A 1-D int64 constant (axes, shapes, starts...). */
  ints(values: number[]): string {
    return this.constant(DataType.INT64, [values.length], values);
  }

  /** A 0-D int64 constant. */
  int0(value: number): string {
    return this.constant(DataType.INT64, [], [value]);
  }

  /** A scalar (0-D) of an element type, given as a type number or as a value whose type to take. */
  scalar(value: number, type: number | string): string {
    return this.constant(typeof type === 'number' ? type : this.dtype(type), [], [value]);
  }

  /** Element type of a value; float when nothing says otherwise. */
  dtype(name: string): number {
    return this.info.types.get(name) ?? DataType.FLOAT;
  }

  shape(name: string): Shape | undefined {
    return this.info.shapes.get(name);
  }

  rank(name: string): number | undefined {
    return this.info.shapes.get(name)?.length;
  }

  /** Static shape when every dim is a number. */
  fixedShape(name: string): number[] | undefined {
    const s = this.info.shapes.get(name);
    return s?.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  }

  /** The values of a small constant, when known. */
  constValue(name: string): number[] | undefined {
    return this.info.consts.get(name);
  }

  reshape(x: string, shape: string): string {
    return this.op('Reshape', [x, shape]);
  }

  /** Transpose (x itself for the identity permutation). */
  transpose(x: string, perm: number[]): string {
    if (perm.every((p, i) => p === i)) return x;
    return this.op('Transpose', [x], [intsAttr('perm', perm)]);
  }

  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  neg(a: string): string {
    return this.op('Neg', [a]);
  }

  /** Unsqueeze, with axes as an input from opset 13 and as an attribute before. */
  unsqueeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Unsqueeze', [x, this.ints(axes)]) : this.op('Unsqueeze', [x], [intsAttr('axes', axes)]);
  }

  squeeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Squeeze', [x, this.ints(axes)]) : this.op('Squeeze', [x], [intsAttr('axes', axes)]);
  }

  /** Slice along `axes` (the opset 10+ form; step 1 unless given). */
  slice(x: string, starts: number[] | string, ends: number[] | string, axes: number[], steps?: number[]): string {
    const s = typeof starts === 'string' ? starts : this.ints(starts);
    const e = typeof ends === 'string' ? ends : this.ints(ends);
    const ins = [x, s, e, this.ints(axes)];
    if (steps) ins.push(this.ints(steps));
    return this.op('Slice', ins);
  }

  /** ReduceSum, with axes as an input from opset 13 and as an attribute before. */
  reduceSum(x: string, axes: number[], keepdims: boolean, o: OpOptions = {}): string {
    const keep = intAttr('keepdims', keepdims ? 1 : 0);
    return this.opset >= 13 ? this.op('ReduceSum', [x, this.ints(axes)], [keep], o) : this.op('ReduceSum', [x], [intsAttr('axes', axes), keep], o);
  }

  /** ReduceMean, with axes as an input from opset 18 and as an attribute before. */
  reduceMean(x: string, axes: number[], keepdims: boolean, o: OpOptions = {}): string {
    const keep = intAttr('keepdims', keepdims ? 1 : 0);
    return this.opset >= 18 ? this.op('ReduceMean', [x, this.ints(axes)], [keep], o) : this.op('ReduceMean', [x], [intsAttr('axes', axes), keep], o);
  }
}
