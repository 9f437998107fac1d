/**
 * Ops that move or copy elements without computing on them: the gradient moves them back (reshape to the
 * input's shape, the inverse permutation, slices of a concatenation, zeros around a slice) and adds up
 * the copies (tiles, padded borders).
 */
import { attrInt, attrInts, attrString, intAttr, intsAttr } from '../../onnx/attrs.js';
import { concat } from '../../onnx/concat.js';
import { DataType } from '../../onnx/dtype.js';
import { ShapeUnknownError, UnsupportedGradientError } from './errors.js';
import { dyOr0, normAxis, rule, type GradRule, type RuleArgs } from './types.js';

const reshapeBack = rule([0], ({ x, dy, ctx }) => [ctx.reshape(dy[0]!, ctx.shapeOf(x[0]!))]);

export const SHAPE: Record<string, GradRule> = {
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: rule([0], ({ node, dy, ctx }) => {
    const perm = attrInts(node, 'perm');
    // no perm: the reversal, its own inverse
    if (!perm) return [ctx.op('Transpose', [dy[0]!])];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => {
      inv[p] = i;
    });
    return [ctx.transpose(dy[0]!, inv)];
  }),
  Concat: rule('all', ({ node, x, dy, need, ctx }) => {
    const g = dy[0]!;
    const rank = ctx.needRank(x[0]!, 'Concat axis');
    const axis = normAxis(attrInt(node, 'axis', 0), rank);
    const sizes = x.map((v) => ctx.shape(v)?.[axis]);
    if (sizes.every((d) => typeof d === 'number')) {
      let at = 0;
      return x.map((_, i) => {
        const d = sizes[i] as number;
        const out = need[i] ? ctx.slice(g, [at], [at + d], [axis]) : undefined;
        at += d;
        return out;
      });
    }
    // runtime offsets: running sum of the inputs' sizes along the axis
    let at = ctx.ints([0]);
    return x.map((v, i) => {
      const end = ctx.add(at, ctx.dimsOf(v, axis, axis + 1));
      const out = need[i] ? ctx.slice(g, at, end, [axis]) : undefined;
      at = end;
      return out;
    });
  }),
  Split: rule([0], (a) => {
    const { node, x, y, ctx } = a;
    const axis = attrInt(node, 'axis', 0);
    return [
      concat(
        ctx,
        y.map((_, i) => dyOr0(a, i)),
        axis,
        { dtype: ctx.dtype(x[0]!) },
      ),
    ];
  }),
  Slice: rule([0], (a) => [sliceGrad(a)]),
  // every tile's gradient adds up: dY viewed as (r0, d0, r1, d1, ...) summed over the r axes
  Tile: rule([0], ({ node, x, dy, ctx }) => {
    const reps = ctx.constValue(x[1]!);
    if (!reps) throw new UnsupportedGradientError('Tile', node.name ?? '', 'repeats that are not constant');
    const dims = ctx.shape(x[0]!);
    if (!dims || dims.filter((d) => typeof d !== 'number').length > 1)
      throw new ShapeUnknownError(ctx.prefix, `the shape of ${x[0]} (Tile gradient; one symbolic dim at most)`);
    if (reps.every((r) => r === 1)) return [dy[0]!];
    const view = dims.flatMap((d, i) => [reps[i]!, typeof d === 'number' ? d : -1]);
    return [
      ctx.reduceSum(
        ctx.reshape(dy[0]!, ctx.ints(view)),
        reps.map((_, i) => 2 * i),
        false,
      ),
    ];
  }),
  // a permutation within each sequence's length, its own inverse
  ReverseSequence: rule([0], ({ node, x, dy, ctx }) => [ctx.op('ReverseSequence', [dy[0]!, x[1]!], node.attribute ?? [])]),
  Pad: rule([0], (a) => {
    const { node, x, dy, ctx } = a;
    const mode = attrString(node, 'mode', 'constant');
    if (mode !== 'constant') return [foldPads(a, mode)];
    // the input sits inside the output: the gradient is the output gradient cropped by the pads, i.e. Pad with -pads
    if (ctx.opset < 11) {
      const pads = attrInts(node, 'pads') ?? [];
      return [
        ctx.op(
          'Pad',
          [dy[0]!],
          [
            intsAttr(
              'pads',
              pads.map((p) => -p),
            ),
          ],
        ),
      ];
    }
    const pads = ctx.constValue(x[1]!);
    const neg = pads ? ctx.ints(pads.map((p) => -p)) : ctx.neg(x[1]!);
    const ins = [dy[0]!, neg];
    if (x[3]) ins.push('', x[3]);
    return [ctx.op('Pad', ins)];
  }),
};

/**
 * Slice: the gradient is zero outside the slice. Unit steps on static shapes: one Pad. Otherwise, per
 * sliced axis, ScatterElements puts the gradient at the positions Slice(Range(0, dim)) picked.
 */
function sliceGrad({ node, x, dy, ctx }: RuleArgs): string {
  const X = x[0]!;
  const name = node.name ?? '';
  const rank = ctx.needRank(X, 'Slice');
  let starts: number[] | string, ends: number[] | string, axes: number[], steps: number[] | string | undefined;
  if (ctx.opset < 10) {
    starts = attrInts(node, 'starts') ?? [];
    ends = attrInts(node, 'ends') ?? [];
    axes = attrInts(node, 'axes') ?? starts.map((_, i) => i);
    steps = undefined;
  } else {
    starts = ctx.constValue(x[1]!) ?? x[1]!;
    ends = ctx.constValue(x[2]!) ?? x[2]!;
    const ax = x[3] ? ctx.constValue(x[3]) : undefined;
    if (x[3] && !ax) throw new UnsupportedGradientError('Slice', name, 'axes computed at runtime');
    const n = typeof starts === 'string' ? ctx.shape(starts)?.[0] : starts.length;
    if (typeof n !== 'number') throw new ShapeUnknownError(name, 'the number of sliced axes');
    axes = ax ?? Array.from({ length: n }, (_, i) => i);
    steps = x[4] ? (ctx.constValue(x[4]) ?? x[4]) : undefined;
  }
  axes = axes.map((a) => normAxis(a, rank));
  const g = dy[0]!;
  const xs = ctx.shape(X);
  const unit = steps === undefined || (Array.isArray(steps) && steps.every((s) => s === 1));
  if (unit && Array.isArray(starts) && Array.isArray(ends) && xs && axes.every((a) => typeof xs[a] === 'number')) {
    const pads = new Array<number>(2 * rank).fill(0);
    axes.forEach((a, j) => {
      const d = xs[a] as number;
      const clamp = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
      const s = clamp((starts as number[])[j]!);
      const e = Math.max(s, clamp((ends as number[])[j]!));
      pads[a] = s;
      pads[a + rank] = d - e;
    });
    if (pads.every((p) => p === 0)) return g;
    return ctx.opset >= 11 ? ctx.op('Pad', [g, ctx.ints(pads)]) : ctx.op('Pad', [g], [intsAttr('pads', pads)]);
  }
  ctx.need(11, 'the gradient of a strided or runtime-bounded Slice (ScatterElements, Range)');
  const pick = (v: number[] | string, j: number) => (typeof v === 'string' ? ctx.slice(v, [j], [j + 1], [0]) : ctx.ints([v[j]!]));
  let t = g;
  axes.forEach((a, j) => {
    const dim = ctx.dimsOf(X, a, a + 1);
    const range = ctx.op('Range', [ctx.int0(0), ctx.squeeze(dim, [0]), ctx.int0(1)], [], { dtype: DataType.INT64 });
    const sliceIns = [range, pick(starts, j), pick(ends, j), ctx.ints([0])];
    if (steps !== undefined) sliceIns.push(pick(steps, j));
    const idx = ctx.op('Slice', sliceIns, [], { dtype: DataType.INT64 });
    // indices shaped [1, .., n, .., 1], broadcast to t's shape
    const bshape = Array.from({ length: rank }, (_, i) => (i === a ? -1 : 1));
    const tshape = ctx.shapeOf(t);
    const full = ctx.op('Expand', [ctx.reshape(idx, ctx.ints(bshape)), tshape], [], { dtype: DataType.INT64 });
    // zeros: t's shape with axis a as in X
    const zshape = ctx.op('Concat', [ctx.dimsOf(t, 0, a), dim, ctx.dimsOf(t, a + 1)], [intAttr('axis', 0)], { dtype: DataType.INT64 });
    const zeros = ctx.zerosOfShape(zshape, ctx.dtype(g));
    t = ctx.op('ScatterElements', [zeros, full, t], [intAttr('axis', a)]);
  });
  return t;
}

/**
 * Pad in edge, reflect or wrap mode copies input elements into the border, so the border's gradient
 * goes back onto the elements it copied, axis by axis (these paddings are separable): edge adds each
 * border's sum onto the first or last element, reflect adds the border mirrored onto the elements next
 * to the edge, wrap adds it onto the other end. Static pads and padded dims, pads >= 0.
 */
function foldPads({ node, x, dy, ctx }: RuleArgs, mode: string): string {
  const name = node.name ?? '';
  if (mode !== 'edge' && mode !== 'reflect' && mode !== 'wrap') throw new UnsupportedGradientError('Pad', name, `mode '${mode}'`);
  ctx.need(11, `the Pad gradient in ${mode} mode (pads as an input)`);
  const X = x[0]!;
  const rank = ctx.needRank(X, 'Pad gradient');
  const pads = ctx.constValue(x[1]!);
  if (!pads) throw new UnsupportedGradientError('Pad', name, `mode '${mode}' with pads that are not constant`);
  const axes = x[3] ? ctx.constValue(x[3])?.map((v) => normAxis(v, rank)) : Array.from({ length: rank }, (_, i) => i);
  if (!axes) throw new UnsupportedGradientError('Pad', name, 'axes that are not constant');
  if (pads.some((p) => p < 0)) throw new UnsupportedGradientError('Pad', name, `mode '${mode}' with negative pads`);
  const zeroPad = (t: string, axis: number, begin: number, end: number) => {
    const v = new Array<number>(2 * rank).fill(0);
    v[axis] = begin;
    v[axis + rank] = end;
    return ctx.op('Pad', [t, ctx.ints(v)]);
  };
  let g = dy[0]!;
  axes.forEach((axis, i) => {
    const [pb, pe] = [pads[i]!, pads[i + axes.length]!];
    if (pb === 0 && pe === 0) return;
    const d = ctx.shape(X)?.[axis];
    if (typeof d !== 'number') throw new ShapeUnknownError(ctx.prefix, `dim ${axis} of ${X} (Pad gradient in ${mode} mode)`);
    const parts = [ctx.slice(g, [pb], [pb + d], [axis])];
    const front = pb ? ctx.slice(g, [0], [pb], [axis]) : undefined;
    const back = pe ? ctx.slice(g, [pb + d], [pb + d + pe], [axis]) : undefined;
    const reversed = (t: string) => ctx.slice(t, [-1], [-(2 ** 62)], [axis], [-1]);
    if (mode === 'edge') {
      if (front) parts.push(zeroPad(ctx.reduceSum(front, [axis], true), axis, 0, d - 1));
      if (back) parts.push(zeroPad(ctx.reduceSum(back, [axis], true), axis, d - 1, 0));
    } else if (mode === 'reflect') {
      if (front) parts.push(zeroPad(reversed(front), axis, 1, d - 1 - pb));
      if (back) parts.push(zeroPad(reversed(back), axis, d - 1 - pe, 1));
    } else {
      if (front) parts.push(zeroPad(front, axis, d - pb, 0));
      if (back) parts.push(zeroPad(back, axis, 0, d - pe));
    }
    g = parts.length === 1 ? parts[0]! : ctx.op('Sum', parts);
  });
  return g;
}
