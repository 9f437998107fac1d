/**
 * What a gradient rule sees: a node builder with fresh names, constants in the right element type, the
 * static shapes known at build time, and runtime-shape helpers for the dims that are symbolic.
 */
import { DataType } from '../onnx/dtype.js';
import { intAttr, intsAttr, makeNode, tensorAttr } from '../onnx/attrs.js';
import type { AttributeProto, NodeProto, TensorProto } from '../onnx/types.js';
import { inferInto, type Shape, type StaticInfo } from '../onnx/shapes.js';
import { OpsetTooOldError, ShapeUnknownError } from './rules/errors.js';
import { makeTensor } from './tensors.js';
import { elementCount } from '../onnx/tensor.js';

/** Choices between equivalent gradient graphs. */
export interface GradOptions {
  /**
   * MaxPool: 'windows' (default) rebuilds each window with one-hot Convs and runs on every EP from opset 11;
   * 'indices' scatters at MaxPool's Indices output (opset 16; onnxruntime's WebGPU EP cannot produce Indices).
   */
  maxPool?: 'windows' | 'indices';
  /**
   * Conv's input gradient with stride 1: 'auto' (default) picks a Conv with flipped weights where it is
   * faster on onnxruntime CPU (16+ input channels, no fewer than the output's), else ConvTranspose; 'conv' and
   * 'convTranspose' force one form (tests check both at sizes finite differences resolve).
   */
  convInput?: 'auto' | 'conv' | 'convTranspose';
}

export class GradCtx {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly constCache = new Map<string, string>();
  private readonly shapeCache = new Map<string, string>();
  /** the node whose gradient is being emitted, for readable names */
  current = 'grad';

  constructor(
    readonly fresh: (base: string) => string,
    readonly info: StaticInfo,
    /** default-domain opset of the model being emitted */
    readonly opset: number,
    readonly options: GradOptions = {},
  ) {}

  /** Emits one node with one output; returns the output name. */
  op(opType: string, inputs: string[], attrs: AttributeProto[] = [], dtype?: number): string {
    return this.opN(opType, inputs, 1, attrs, dtype)[0]!;
  }

  /** Emits one node with `nOut` outputs (all of element type `dtype` when given). */
  opN(opType: string, inputs: string[], nOut: number, attrs: AttributeProto[] = [], dtype?: number, domain?: string): string[] {
    const base = `${this.current}/${opType}`;
    const outs = Array.from({ length: nOut }, () => this.fresh(base));
    const node = makeNode(opType, inputs, outs, this.fresh(base), attrs, domain);
    this.nodes.push(node);
    // an explicit dtype first; inferInto types the rest as the forward graph's nodes are typed
    if (dtype) for (const o of outs) this.info.types.set(o, dtype);
    // (a runtime Shape(v) used as a target shape carries v's dims, symbolic ones included, so the result
    // is shaped like v and later rules stay on their static paths)
    inferInto(this.info, node, this.opset);
    return outs;
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
    return s && s.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  }

  constValue(name: string): number[] | undefined {
    return this.info.consts.get(name);
  }

  /** An initializer (deduplicated by content). */
  constant(dataType: number, dims: number[], values: number[]): string {
    const key = `${dataType}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh(`grad_const/${dataType === DataType.INT64 ? 'i64' : 'f'}_${values.length <= 4 ? values.join('_') : 'tensor'}`);
    this.initializers.push(makeTensor(name, dataType, dims, values));
    this.info.types.set(name, dataType);
    this.info.shapes.set(name, dims);
    this.info.consts.set(name, values);
    this.constCache.set(key, name);
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

  /** A scalar constant of `like`'s element type. */
  scalar(value: number, like: string): string {
    return this.constant(this.dtype(like), [], [value]);
  }

  /** Shape(x) computed at runtime (one node per value). */
  shapeOf(x: string): string {
    const fixed = this.fixedShape(x);
    if (fixed) return this.ints(fixed);
    let s = this.shapeCache.get(x);
    if (!s) {
      s = this.op('Shape', [x]);
      this.info.shapes.set(s, [this.rank(x) ?? null]);
      this.shapeCache.set(x, s);
    }
    return s;
  }

  /** Dims [from, to) of Shape(x) as a 1-D int64 tensor. */
  dimsOf(x: string, from: number, to?: number): string {
    const fixed = this.fixedShape(x);
    if (fixed) return this.ints(fixed.slice(from, to));
    const inputs = [this.shapeOf(x), this.ints([from]), this.ints([to ?? Number.MAX_SAFE_INTEGER])];
    return this.op('Slice', inputs);
  }

  /** Zeros shaped like x. */
  zerosLike(x: string): string {
    return this.zerosOfShape(this.shapeOf(x), this.dtype(x));
  }

  zerosOfShape(shape: string, dataType: number): string {
    return this.op('ConstantOfShape', [shape], [tensorAttr('value', makeTensor('', dataType, [1], [0]))], dataType);
  }

  /** Number of elements of x as a scalar of `like`'s type. */
  countAs(x: string, like: string): string {
    const fixed = this.fixedShape(x);
    if (fixed) return this.scalar(elementCount(fixed), like);
    return this.op('Cast', [this.op('Size', [x])], [intAttr('to', this.dtype(like))], this.dtype(like));
  }

  /** [number of elements of x] as a 1-D int64 tensor (the shape of x flattened). */
  countShape(x: string): string {
    const fixed = this.fixedShape(x);
    if (fixed) return this.ints([elementCount(fixed)]);
    return this.unsqueeze(this.op('Size', [x]), [0]);
  }

  reshape(x: string, shape: string): string {
    return this.op('Reshape', [x, shape]);
  }

  /**
   * Sums a gradient `g` (shaped like the broadcast result) back to the shape of operand `x`: NumPy
   * broadcasting repeats x along the axes where it has size 1 or is missing, so its gradient is the sum
   * over them. Static axes when both shapes are known, else the axes are found at runtime.
   */
  unbroadcast(g: string, x: string): string {
    const gs = this.shape(g);
    const xs = this.shape(x);
    if (gs && xs && gs.length >= xs.length) {
      const lead = gs.length - xs.length;
      const axes: number[] = [];
      let unknown = false;
      for (let i = 0; i < gs.length; i++) {
        if (i < lead) { axes.push(i); continue; }
        const xd = xs[i - lead];
        const gd = gs[i];
        // summing over an axis where g already has size 1 is harmless, so size-1 axes of x always reduce
        if (xd === 1) { if (gd !== 1) axes.push(i); continue; }
        if (xd === gd || typeof xd === 'number') continue;
        unknown = true; // a symbolic dim of x that may be 1 at runtime
      }
      if (!unknown) {
        if (!axes.length) return g;
        const keep = axes.some((a) => a >= lead);
        const r = this.reduceSum(g, axes, keep);
        // keepdims=0 on only the leading axes already leaves x's rank and dims
        return keep && lead > 0 ? this.reshape(r, this.shapeOf(x)) : r;
      }
    }
    // runtime: pad Shape(x) with leading 1s to g's rank, reduce (keepdims) where it is 1, reshape to x
    this.need(13, 'a gradient through broadcasting with symbolic dims');
    const sg = this.shapeOf(g);
    const sx = this.shapeOf(x);
    const diff = this.op('Sub', [this.op('Size', [sg]), this.op('Size', [sx])]);
    const ones = this.op('ConstantOfShape', [this.unsqueeze(diff, [0])], [tensorAttr('value', makeTensor('', DataType.INT64, [1], [1]))], DataType.INT64);
    const padded = this.op('Concat', [ones, sx], [intAttr('axis', 0)]);
    const isOne = this.op('Equal', [padded, this.ints([1])]);
    const axes = this.op('Reshape', [this.op('NonZero', [isOne]), this.ints([-1])]);
    const r = this.op('ReduceSum', [g, axes], [intAttr('keepdims', 1), intAttr('noop_with_empty_axes', 1)]);
    return this.reshape(r, sx);
  }

  /** Throws when the model's opset is too old for what a rule must emit. */
  need(minOpset: number, what: string): void {
    if (this.opset < minOpset) throw new OpsetTooOldError(this.current, what, minOpset, this.opset);
  }

  /** Unsqueeze, with axes as an input from opset 13 and as an attribute before. */
  unsqueeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Unsqueeze', [x, this.ints(axes)]) : this.op('Unsqueeze', [x], [intsAttr('axes', axes)]);
  }

  squeeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Squeeze', [x, this.ints(axes)]) : this.op('Squeeze', [x], [intsAttr('axes', axes)]);
  }

  /** Slice along `axes` (opset 10+ form; step 1 unless given). */
  slice(x: string, starts: number[] | string, ends: number[] | string, axes: number[], steps?: number[]): string {
    this.need(10, 'Slice with inputs');
    const s = typeof starts === 'string' ? starts : this.ints(starts);
    const e = typeof ends === 'string' ? ends : this.ints(ends);
    const ins = [x, s, e, this.ints(axes)];
    if (steps) ins.push(this.ints(steps));
    return this.op('Slice', ins);
  }

  transpose(x: string, perm: number[]): string {
    if (perm.every((p, i) => p === i)) return x;
    return this.op('Transpose', [x], [intsAttr('perm', perm)]);
  }

  mul(a: string, b: string): string { return this.op('Mul', [a, b]); }
  add(a: string, b: string): string { return this.op('Add', [a, b]); }
  sub(a: string, b: string): string { return this.op('Sub', [a, b]); }
  div(a: string, b: string): string { return this.op('Div', [a, b]); }
  neg(a: string): string { return this.op('Neg', [a]); }

  /** x * c for a number c (skipped when c is 1). */
  scale(x: string, c: number): string {
    if (c === 1) return x;
    if (c === -1) return this.neg(x);
    return this.mul(x, this.scalar(c, x));
  }

  /** Cast(cond) to like's element type: 1 where it holds, 0 elsewhere. */
  mask(cond: string, like: string): string {
    const dt = this.dtype(like);
    return this.op('Cast', [cond], [intAttr('to', dt)], dt);
  }

  /**
   * cond ? a : b, as arithmetic on Cast(cond) where it can be: onnxruntime's Where with a broadcast scalar
   * is several times slower than Cast + Mul (measured on CPU, 1M floats). Unlike Where, an inf/NaN in `a`
   * spreads where cond is false (inf * 0); a gradient holding inf is already lost.
   */
  select(cond: string, a: number | string, b: number | string, like: string): string {
    if (b === 0) {
      const f = this.mask(cond, like);
      if (typeof a === 'string') return this.mul(a, f);
      return a === 1 ? f : this.scale(f, a);
    }
    if (typeof a === 'number' && typeof b === 'number') return this.add(this.scale(this.mask(cond, like), a - b), this.scalar(b, like));
    const v = (t: number | string) => (typeof t === 'number' ? this.scalar(t, like) : t);
    return this.op('Where', [cond, v(a), v(b)], [], this.dtype(like));
  }

  /** ReduceSum with axes as an input from opset 13, as an attribute before. */
  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    const keep = intAttr('keepdims', keepdims ? 1 : 0);
    return this.opset >= 13 ? this.op('ReduceSum', [x, this.ints(axes)], [keep]) : this.op('ReduceSum', [x], [intsAttr('axes', axes), keep]);
  }

  /** ReduceMean (axes as an input from opset 18, as an attribute before). */
  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    const keep = intAttr('keepdims', keepdims ? 1 : 0);
    return this.opset >= 18 ? this.op('ReduceMean', [x, this.ints(axes)], [keep]) : this.op('ReduceMean', [x], [intsAttr('axes', axes), keep]);
  }

  /** Static rank, or an error naming what needed it. */
  needRank(x: string, what: string): number {
    const r = this.rank(x);
    if (r === undefined) throw new ShapeUnknownError(this.current, `the rank of ${x} (${what})`);
    return r;
  }

  /** Static dims, or an error naming what needed them. */
  needShape(x: string, what: string): number[] {
    const s = this.fixedShape(x);
    if (!s) throw new ShapeUnknownError(this.current, `the shape of ${x} (${what})`);
    return s;
  }

  /** Static dims from `from` on (e.g. the spatial dims of an NCHW tensor with a symbolic batch). */
  needDims(x: string, from: number, what: string): number[] {
    const s = this.shape(x)?.slice(from);
    if (!s || !s.every((d) => typeof d === 'number')) throw new ShapeUnknownError(this.current, `dims ${from}.. of ${x} (${what})`);
    return s as number[];
  }
}
