/**
 * Ops that move elements without computing on them: the gradient moves them back (reshape to the input's
 * shape, the inverse permutation, slices of a concatenation, zeros around a slice).
 */
import { attr, attrFloat, attrInt, attrInts, attrString, intAttr, intsAttr } from '../../onnx/attrs.js';
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
  // every tile's gradient adds up: dY viewed as (r0, d0, r1, d1, ...) summed over the r axes
  Tile: rule([0], ({ node, x, dy, ctx }) => {
    const reps = ctx.constValue(x[1]!);
    if (!reps) throw new UnsupportedGradientError('Tile', node.name ?? '', 'repeats that are not constant');
    const dims = ctx.shape(x[0]!);
    if (!dims || dims.filter((d) => typeof d !== 'number').length > 1) throw new ShapeUnknownError(ctx.current, `the shape of ${x[0]} (Tile gradient; one symbolic dim at most)`);
    if (reps.every((r) => r === 1)) return [dy[0]!];
    const view = dims.flatMap((d, i) => [reps[i]!, typeof d === 'number' ? d : -1]);
    return [ctx.reduceSum(ctx.reshape(dy[0]!, ctx.ints(view)), reps.map((_, i) => 2 * i), false)];
  }),
  // a permutation within each sequence's length, its own inverse
  ReverseSequence: rule([0], ({ node, x, dy, ctx }) => [ctx.op('ReverseSequence', [dy[0]!, x[1]!], node.attribute ?? [])]),
  Resize: rule([0], (a) => [resizeGrad(a)]),
  Upsample: rule([0], (a) => [resizeGrad(a)]),
  Pad: rule([0], (a) => {
    const { node, x, dy, ctx } = a;
    const mode = attrString(node, 'mode', 'constant');
    if (mode !== 'constant') return [foldPads(a, mode)];
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

/**
 * Resize (and Upsample) is linear in X and separable by axis: Y = A_0 x_0 A_1 x_1 ... X, with A_i the
 * (out x in) interpolation matrix of axis i. The gradient applies each A_i transposed: a MatMul per
 * resized axis with A_i computed here the way onnxruntime computes its indices and weights (float32
 * coordinate transforms; nearest rounding; linear weights with edge clamping; cubic taps). Nearest upsampling by
 * whole factors, where output i reads input floor(i / s), is a block copy: its gradient is a cheaper
 * Reshape + ReduceSum. Antialiasing, tf_crop_and_resize and Resize-18's `axes` have no rule.
 */
function resizeGrad({ node, x, y, dy, ctx }: RuleArgs): string {
  const op = node.opType ?? '';
  const name = node.name ?? '';
  const mode = attrString(node, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear' && mode !== 'cubic') throw new UnsupportedGradientError(op, name, `mode ${mode}`);
  const cubic = { a: attrFloat(node, 'cubic_coeff_a', -0.75), excludeOutside: attrInt(node, 'exclude_outside', 0) === 1 };
  const modern = op === 'Resize' && ctx.opset >= 11;
  const coord = modern ? attrString(node, 'coordinate_transformation_mode', 'half_pixel') : 'asymmetric';
  if (coord === 'tf_crop_and_resize') throw new UnsupportedGradientError(op, name, 'coordinate_transformation_mode tf_crop_and_resize');
  if (attrInt(node, 'antialias', 0) !== 0 || attr(node, 'axes')) throw new UnsupportedGradientError(op, name, 'antialias or axes');
  const xs = ctx.shape(x[0]!);
  const ys = ctx.shape(y[0]!);
  if (!xs || !ys || xs.length !== ys.length) throw new ShapeUnknownError(ctx.current, `the shapes of ${x[0]} and ${y[0]} (${op} gradient)`);
  // the scale the coordinate transform divides by: the scales input where given, else out / in
  const given = op === 'Upsample' && ctx.opset < 9 ? attr(node, 'scales')?.floats : ctx.constValue(x[modern ? 2 : 1] ?? '');
  const resized: { axis: number; A: number[][] }[] = [];
  for (let i = 0; i < xs.length; i++) {
    const [din, dout] = [xs[i], ys[i]];
    if (din === dout && (given?.[i] ?? 1) === 1) continue; // untouched axis (the batch may be symbolic)
    if (typeof din !== 'number' || typeof dout !== 'number') throw new ShapeUnknownError(ctx.current, `dim ${i} of ${x[0]} and ${y[0]} (${op} gradient)`);
    const scale = Math.fround(given?.length === xs.length ? given[i]! : dout / din);
    const rounding = modern ? attrString(node, 'nearest_mode', 'round_prefer_floor') : scale < 1 ? 'ceil' : 'floor';
    resized.push({ axis: i, A: interpolation(mode, coord, rounding, din, dout, scale, cubic) });
  }
  if (!resized.length) return dy[0]!;
  const block = (A: number[][]) => A.length % A[0]!.length === 0 && A.every((row, o) => row[Math.floor(o / (A.length / A[0]!.length))] === 1);
  if (mode === 'nearest' && resized.every((r) => block(r.A)) && xs.slice(1).every((d) => typeof d === 'number')) {
    // the batch may stay symbolic: Reshape's 0 keeps it
    const factor = new Map(resized.map((r) => [r.axis, r.A.length / r.A[0]!.length]));
    const view = xs.flatMap((d, i) => (factor.has(i) ? [d as number, factor.get(i)!] : [typeof d === 'number' ? d : 0]));
    const sAxes = resized.map((r) => r.axis + 1 + resized.filter((q) => q.axis < r.axis).length);
    return ctx.reduceSum(ctx.reshape(dy[0]!, ctx.ints(view)), sAxes, false);
  }
  const rank = xs.length;
  let g = dy[0]!;
  for (const { axis, A } of resized) {
    const [out, inn] = [A.length, A[0]!.length];
    if (axis === rank - 1) g = ctx.op('MatMul', [g, ctx.constant(ctx.dtype(g), [out, inn], A.flat())]); // (.., out) x (out, in)
    else if (axis === rank - 2) g = ctx.op('MatMul', [ctx.constant(ctx.dtype(g), [inn, out], transposed(A).flat()), g]); // (in, out) x (.., out, w)
    else {
      const perm = Array.from({ length: rank }, (_, k) => k);
      [perm[axis], perm[rank - 1]] = [perm[rank - 1]!, perm[axis]!];
      g = ctx.transpose(ctx.op('MatMul', [ctx.transpose(g, perm), ctx.constant(ctx.dtype(g), [out, inn], A.flat())]), perm);
    }
  }
  return g;
}

const transposed = (A: number[][]): number[][] => A[0]!.map((_, j) => A.map((row) => row[j]!));

/**
 * The (out x in) matrix of one axis as onnxruntime resizes it: the output coordinate mapped back in
 * float32 arithmetic; nearest takes one input by `rounding` (clamped to the axis); linear weighs the two
 * neighbours of the clamped coordinate (both halves on the last element at the edge).
 */
function interpolation(mode: string, coord: string, rounding: string, len: number, out: number, scale: number, cubic: { a: number; excludeOutside: boolean }): number[][] {
  const f = Math.fround;
  const A = Array.from({ length: out }, () => new Array<number>(len).fill(0));
  for (let o = 0; o < out; o++) {
    let v: number;
    if (coord === 'half_pixel') v = f(f(f(o + 0.5) / scale) - 0.5);
    else if (coord === 'pytorch_half_pixel') v = out > 1 ? f(f(f(o + 0.5) / scale) - 0.5) : 0;
    else if (coord === 'asymmetric') v = f(o / scale);
    else if (coord === 'tf_half_pixel_for_nn') v = f(f(o + 0.5) / scale);
    else if (coord === 'align_corners') v = out === 1 ? 0 : f(f(o * (len - 1)) / (out - 1));
    else if (coord === 'half_pixel_symmetric') {
      const adjustment = f(out / f(scale * len));
      const offset = f(f(len / 2) * f(1 - adjustment));
      v = f(offset + f(f(f(o + 0.5) / scale) - 0.5));
    } else throw new Error(`coordinate_transformation_mode ${coord}`);
    if (mode === 'nearest') {
      let k: number;
      if (rounding === 'floor') k = Math.floor(v);
      else if (rounding === 'ceil') k = Math.ceil(v);
      else if (v === Math.trunc(v) + 0.5) k = rounding === 'round_prefer_ceil' ? Math.ceil(v) : Math.floor(v);
      else k = Math.sign(v) * Math.round(Math.abs(v)); // C's round: halves away from zero
      A[o]![Math.min(Math.max(k, 0), len - 1)] += 1;
    } else if (mode === 'cubic') {
      // Keys' kernel over the 4 neighbours floor(v) - 1 .. floor(v) + 2 (not clamped first): taps past the
      // ends read the edge element, or with exclude_outside drop out and the rest are renormalized
      const x0 = Math.floor(v);
      const w = cubicWeights(f(v - x0), cubic.a);
      const taps = w.map((wk, k) => ({ at: x0 - 1 + k, wk }));
      const inside = cubic.excludeOutside ? taps.filter((tp) => tp.at >= 0 && tp.at < len) : taps;
      const sum = cubic.excludeOutside ? inside.reduce((acc, tp) => acc + tp.wk, 0) : 1;
      for (const tp of inside) A[o]![Math.min(Math.max(tp.at, 0), len - 1)] += tp.wk / sum;
    } else {
      const c = Math.max(0, Math.min(v, len - 1));
      const x1 = Math.min(Math.trunc(c), len - 1);
      const x2 = Math.min(x1 + 1, len - 1);
      let [d1, d2] = [Math.abs(f(c - x1)), Math.abs(f(c - x2))];
      if (x1 === x2) [d1, d2] = [0.5, 0.5];
      A[o]![x1] += d2;
      A[o]![x2] += d1;
    }
  }
  return A;
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
    if (typeof d !== 'number') throw new ShapeUnknownError(ctx.current, `dim ${axis} of ${X} (Pad gradient in ${mode} mode)`);
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

/** The cubic convolution weights of the 4 taps around a point at fraction s past its left neighbour. */
function cubicWeights(s: number, a: number): number[] {
  const k = (x: number) => {
    const t = Math.abs(x);
    return t <= 1 ? ((a + 2) * t - (a + 3)) * t * t + 1 : t < 2 ? ((a * t - 5 * a) * t + 8 * a) * t - 4 * a : 0;
  };
  return [k(s + 1), k(s), k(1 - s), k(2 - s)];
}
