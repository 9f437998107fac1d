/**
 * What a gradient rule sees: the graph layer's Builder (fresh names, constants deduplicated by content, the
 * static shapes known at build time) plus the helpers only gradients need (runtime shapes for the dims that
 * are symbolic, broadcasting undone, masks).
 */
import { DataType } from '../onnx/dtype.js';
import { intAttr, tensorAttr } from '../onnx/attrs.js';
import { Builder } from '../onnx/builder.js';
import type { StaticInfo } from '../onnx/shapes.js';
import { OpsetTooOldError, ShapeUnknownError } from './rules/errors.js';
import { elementCount, makeTensor } from '../onnx/tensor.js';

/** Choices between equivalent gradient graphs. */
export interface GradOptions {
  /**
   * MaxPool: 'windows' (default) rebuilds each window with one-hot Convs and runs on every EP from opset 11;
   * 'indices' scatters at MaxPool's Indices output (opset 16; onnxruntime's WebGPU EP cannot produce Indices),
   * which the step graph takes on onnxruntime's CPU kernels: no K-fold window copies, about 3x faster there.
   */
  maxPool?: 'windows' | 'indices';
  /**
   * Conv's input gradient with stride 1: 'auto' (default) picks a Conv with flipped weights where it is
   * faster on onnxruntime CPU (16+ input channels, no fewer than the output's), else ConvTranspose; 'conv' and
   * 'convTranspose' force one form (tests check both at sizes finite differences resolve).
   */
  convInput?: 'auto' | 'conv' | 'convTranspose';
  /**
   * A depthwise Conv's weight gradient (2-D, one output channel per group): 'patches' (default) builds each
   * channel's windows with one-hot Convs and MatMuls; 'correlation' is one depthwise Conv over batch x
   * channels with dY as the kernels, where the batch is static. onnxruntime CPU's blocked kernels run that
   * 5-25x faster than patches (nchwc.ts moves it there); other EPs' plain Conv kernels, with a kernel the
   * size of the image, would not.
   */
  depthwiseWeight?: 'patches' | 'correlation';
  /** 'correlation' only where batch x channels is a multiple of this: the blocked kernels take whole blocks */
  channelBlock?: number;
}

/**
 * The Builder (src/onnx/builder.ts) with what only gradients need: runtime-shape helpers, broadcasting
 * undone, select/mask arithmetic, and errors naming the node being differentiated (its `prefix`).
 */
export class GradCtx extends Builder {
  private readonly shapeCache = new Map<string, string>();

  constructor(
    fresh: (base: string) => string,
    info: StaticInfo,
    /** default-domain opset of the model being emitted */
    opset: number,
    readonly options: GradOptions = {},
  ) {
    super(fresh, { opset, info, prefix: 'grad' });
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
    return this.op('ConstantOfShape', [shape], [tensorAttr('value', makeTensor('', dataType, [1], [0]))], { dtype: dataType });
  }

  /** Number of elements of x as a scalar of `like`'s type. */
  countAs(x: string, like: string): string {
    const fixed = this.fixedShape(x);
    if (fixed) return this.scalar(elementCount(fixed), like);
    return this.op('Cast', [this.op('Size', [x])], [intAttr('to', this.dtype(like))], { dtype: this.dtype(like) });
  }

  /** [number of elements of x] as a 1-D int64 tensor (the shape of x flattened). */
  countShape(x: string): string {
    const fixed = this.fixedShape(x);
    if (fixed) return this.ints([elementCount(fixed)]);
    return this.unsqueeze(this.op('Size', [x]), [0]);
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
        if (i < lead) {
          axes.push(i);
          continue;
        }
        const xd = xs[i - lead];
        const gd = gs[i];
        // summing over an axis where g already has size 1 is harmless, so size-1 axes of x always reduce
        if (xd === 1) {
          if (gd !== 1) axes.push(i);
          continue;
        }
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
    const ones = this.op('ConstantOfShape', [this.unsqueeze(diff, [0])], [tensorAttr('value', makeTensor('', DataType.INT64, [1], [1]))], {
      dtype: DataType.INT64,
    });
    const padded = this.op('Concat', [ones, sx], [intAttr('axis', 0)]);
    const isOne = this.op('Equal', [padded, this.ints([1])]);
    const axes = this.op('Reshape', [this.op('NonZero', [isOne]), this.ints([-1])]);
    const r = this.op('ReduceSum', [g, axes], [intAttr('keepdims', 1), intAttr('noop_with_empty_axes', 1)]);
    return this.reshape(r, sx);
  }

  /** Throws when the model's opset is too old for what a rule must emit. */
  need(minOpset: number, what: string): void {
    if (this.opset < minOpset) throw new OpsetTooOldError(this.prefix, what, minOpset, this.opset);
  }

  override slice(x: string, starts: number[] | string, ends: number[] | string, axes: number[], steps?: number[]): string {
    this.need(10, 'Slice with inputs');
    return super.slice(x, starts, ends, axes, steps);
  }

  /** x * c for a number c (skipped when c is 1). */
  scale(x: string, c: number): string {
    if (c === 1) return x;
    if (c === -1) return this.neg(x);
    return this.mul(x, this.scalar(c, x));
  }

  /** Cast(cond) to like's element type: 1 where it holds, 0 elsewhere. */
  mask(cond: string, like: string): string {
    const dt = this.dtype(like);
    return this.op('Cast', [cond], [intAttr('to', dt)], { dtype: dt });
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
    return this.op('Where', [cond, v(a), v(b)], [], { dtype: this.dtype(like) });
  }

  /** Static rank, or an error naming what needed it. */
  needRank(x: string, what: string): number {
    const r = this.rank(x);
    if (r === undefined) throw new ShapeUnknownError(this.prefix, `the rank of ${x} (${what})`);
    return r;
  }

  /** Static dims, or an error naming what needed them. */
  needShape(x: string, what: string): number[] {
    const s = this.fixedShape(x);
    if (!s) throw new ShapeUnknownError(this.prefix, `the shape of ${x} (${what})`);
    return s;
  }

  /** Static dims from `from` on (e.g. the spatial dims of an NCHW tensor with a symbolic batch). */
  needDims(x: string, from: number, what: string): number[] {
    const s = this.shape(x)?.slice(from);
    if (!s?.every((d) => typeof d === 'number')) throw new ShapeUnknownError(this.prefix, `dims ${from}.. of ${x} (${what})`);
    return s as number[];
  }
}
