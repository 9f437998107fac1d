/**
 * Ops that move elements without computing on them: the gradient moves them back (reshape to the input's
 * shape, the inverse permutation, slices of a concatenation, zeros around a slice).
 */
import { attrInt, attrInts, attrString, intAttr, intsAttr } from '../../onnx/attrs.js';
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
    perm.forEach((p, i) => { inv[p] = i; });
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
    return [ctx.op('Concat', y.map((_, i) => dyOr0(a, i)), [intAttr('axis', axis)], ctx.dtype(x[0]!))];
  }),
  Slice: rule([0], (a) => [sliceGrad(a)]),
  Pad: rule([0], ({ node, x, dy, ctx }) => {
    const mode = attrString(node, 'mode', 'constant');
    if (mode !== 'constant') throw new UnsupportedGradientError('Pad', node.name ?? '', `mode '${mode}' (only 'constant' has a rule)`);
    // the input sits inside the output: the gradient is the output gradient cropped by the pads, i.e. Pad with -pads
    if (ctx.opset < 11) {
      const pads = attrInts(node, 'pads') ?? [];
      return [ctx.op('Pad', [dy[0]!], [intsAttr('pads', pads.map((p) => -p))])];
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
    steps = x[4] ? ctx.constValue(x[4]) ?? x[4] : undefined;
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
    const range = ctx.op('Range', [ctx.int0(0), ctx.squeeze(dim, [0]), ctx.int0(1)], [], DataType.INT64);
    const sliceIns = [range, pick(starts, j), pick(ends, j), ctx.ints([0])];
    if (steps !== undefined) sliceIns.push(pick(steps, j));
    const idx = ctx.op('Slice', sliceIns, [], DataType.INT64);
    // indices shaped [1, .., n, .., 1], broadcast to t's shape
    const bshape = Array.from({ length: rank }, (_, i) => (i === a ? -1 : 1));
    const tshape = ctx.shapeOf(t);
    const full = ctx.op('Expand', [ctx.reshape(idx, ctx.ints(bshape)), tshape], [], DataType.INT64);
    // zeros: t's shape with axis a as in X
    const zshape = ctx.op('Concat', [ctx.dimsOf(t, 0, a), dim, ctx.dimsOf(t, a + 1)], [intAttr('axis', 0)], DataType.INT64);
    const zeros = ctx.zerosOfShape(zshape, ctx.dtype(g));
    t = ctx.op('ScatterElements', [zeros, full, t], [intAttr('axis', a)]);
  });
  return t;
}
