/**
 * Resize and Upsample: their gradient is the transpose of the interpolation they apply (see resizeGrad).
 */
import { attr, attrFloat, attrInt, attrString } from '../../onnx/attrs.js';
import { ShapeUnknownError, UnsupportedGradientError } from './errors.js';
import { rule, type GradRule, type RuleArgs } from './types.js';

export const RESIZE: Record<string, GradRule> = {
  Resize: rule([0], (a) => [resizeGrad(a)]),
  Upsample: rule([0], (a) => [resizeGrad(a)]),
};

/**
 * Resize (and Upsample) is linear in X and separable by axis: Y = A_0 x_0 A_1 x_1 ... X, with A_i the
 * (out x in) interpolation matrix of axis i. The gradient applies each A_i transposed: a MatMul per
 * resized axis with A_i computed here the way onnxruntime computes its indices and weights (float32
 * coordinate transforms; nearest rounding; linear weights with edge clamping; cubic taps). Nearest
 * upsampling by whole factors, where output i reads input floor(i / s), is a block copy: its gradient
 * is a cheaper Reshape + ReduceSum. Antialiasing, tf_crop_and_resize and Resize-18's `axes` have no rule.
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
  if (!xs || !ys || xs.length !== ys.length) throw new ShapeUnknownError(ctx.prefix, `the shapes of ${x[0]} and ${y[0]} (${op} gradient)`);
  // the scale the coordinate transform divides by: the scales input where given, else out / in
  const given = op === 'Upsample' && ctx.opset < 9 ? attr(node, 'scales')?.floats : ctx.constValue(x[modern ? 2 : 1] ?? '');
  const resized: { axis: number; A: number[][] }[] = [];
  for (let i = 0; i < xs.length; i++) {
    const [din, dout] = [xs[i], ys[i]];
    if (din === dout && (given?.[i] ?? 1) === 1) continue; // untouched axis (the batch may be symbolic)
    if (typeof din !== 'number' || typeof dout !== 'number') throw new ShapeUnknownError(ctx.prefix, `dim ${i} of ${x[0]} and ${y[0]} (${op} gradient)`);
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
    if (axis === rank - 1)
      g = ctx.op('MatMul', [g, ctx.constant(ctx.dtype(g), [out, inn], A.flat())]); // (.., out) x (out, in)
    else if (axis === rank - 2)
      g = ctx.op('MatMul', [ctx.constant(ctx.dtype(g), [inn, out], transposed(A).flat()), g]); // (in, out) x (.., out, w)
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
 * neighbours of the clamped coordinate (both halves on the last element at the edge); cubic weighs four
 * taps with Keys' kernel.
 */
function interpolation(
  mode: string,
  coord: string,
  rounding: string,
  len: number,
  out: number,
  scale: number,
  cubic: { a: number; excludeOutside: boolean },
): number[][] {
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
      A[o]![Math.min(Math.max(k, 0), len - 1)]! += 1;
    } else if (mode === 'cubic') {
      // Keys' kernel over the 4 neighbours floor(v) - 1 .. floor(v) + 2 (not clamped first): taps past the
      // ends read the edge element, or with exclude_outside drop out and the rest are renormalized
      const x0 = Math.floor(v);
      const w = cubicWeights(f(v - x0), cubic.a);
      const taps = w.map((wk, k) => ({ at: x0 - 1 + k, wk }));
      const inside = cubic.excludeOutside ? taps.filter((tp) => tp.at >= 0 && tp.at < len) : taps;
      const sum = cubic.excludeOutside ? inside.reduce((acc, tp) => acc + tp.wk, 0) : 1;
      for (const tp of inside) A[o]![Math.min(Math.max(tp.at, 0), len - 1)]! += tp.wk / sum;
    } else {
      const c = Math.max(0, Math.min(v, len - 1));
      const x1 = Math.min(Math.trunc(c), len - 1);
      const x2 = Math.min(x1 + 1, len - 1);
      let [d1, d2] = [Math.abs(f(c - x1)), Math.abs(f(c - x2))];
      if (x1 === x2) [d1, d2] = [0.5, 0.5];
      A[o]![x1]! += d2;
      A[o]![x2]! += d1;
    }
  }
  return A;
}

/** The cubic convolution weights of the 4 taps around a point at fraction s past its left neighbour. */
function cubicWeights(s: number, a: number): number[] {
  const k = (x: number) => {
    const t = Math.abs(x);
    return t <= 1 ? ((a + 2) * t - (a + 3)) * t * t + 1 : t < 2 ? ((a * t - 5 * a) * t + 8 * a) * t - 4 * a : 0;
  };
  return [k(s + 1), k(s), k(1 - s), k(2 - s)];
}
