/**
 * BatchNormalization in inference mode, as it runs in the training graph: the running statistics are
 * frozen constants, so y = x * k + (B - mean * k) with k = scale / sqrt(var + eps) per channel (axis 1).
 * dX = dY * k, dScale = sum(dY * (x - mean) / sqrt(var + eps)), dB = sum(dY) over all axes but 1.
 */
import { attrFloat, attrInt, intsAttr } from '../../onnx/attrs.js';
import { elementCount } from '../../onnx/tensor.js';
import type { GradCtx } from '../ctx.js';
import { UnsupportedGradientError } from './errors.js';
import { rule, type GradRule } from './types.js';

export const NORM: Record<string, GradRule> = {
  BatchNormalization: rule([0, 1, 2], ({ node, x, y, dy, need, ctx }) => {
    const name = node.name ?? '';
    if (attrInt(node, 'training_mode', 0) === 1 || y.filter((o) => o).length > 1) {
      throw new UnsupportedGradientError('BatchNormalization', name, 'training_mode (the training graph keeps running statistics frozen)');
    }
    if (attrInt(node, 'spatial', 1) === 0) throw new UnsupportedGradientError('BatchNormalization', name, 'spatial=0');
    const [X, scale, , mean, variance] = x as [string, string, string, string, string];
    const g = dy[0]!;
    const rank = ctx.needRank(X, 'BatchNormalization');
    const others = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    // per-channel vectors as (C, 1, ...) to broadcast against (N, C, ...)
    const col = (v: string) =>
      rank > 2
        ? ctx.unsqueeze(
            v,
            others.slice(1).map((a) => a - 1),
          )
        : v;
    const invStd = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.add(variance, ctx.scalar(attrFloat(node, 'epsilon', 1e-5), variance))])]);
    const dX = need[0] ? ctx.mul(g, col(ctx.mul(scale, invStd))) : undefined;
    const dScale = need[1] ? ctx.reduceSum(ctx.mul(g, ctx.mul(ctx.sub(X, col(mean)), col(invStd))), others, false) : undefined;
    const dB = need[2] ? ctx.reduceSum(g, others, false) : undefined;
    return [dX, dScale, dB];
  }),
  /*
   * LRN: y = x s^-beta with s = bias + alpha/size * (sum of x^2 over a window of channels
   * [c - floor((size-1)/2), c + ceil((size-1)/2)]). dX = g s^-beta - (2 alpha beta / size) x W'(g y / s),
   * where W' sums over the mirrored window (the channels whose window holds c). The window sums are a
   * Conv with a ones kernel along the channel axis, on the input viewed as (N, 1, C, rest).
   */
  LRN: rule([0], ({ node, x, y, dy, ctx }) => {
    const X = x[0]!;
    const size = attrInt(node, 'size', 1);
    const alpha = attrFloat(node, 'alpha', 1e-4);
    const beta = attrFloat(node, 'beta', 0.75);
    const bias = attrFloat(node, 'bias', 1);
    const [c, ...rest] = ctx.needDims(X, 1, 'LRN gradient');
    const before = Math.floor((size - 1) / 2);
    const after = size - 1 - before;
    const view = ctx.ints([0, 1, c!, elementCount(rest)]);
    const ones = ctx.constant(ctx.dtype(X), [1, 1, size, 1], new Array<number>(size).fill(1));
    const windowSum = (t: string, lo: number, hi: number) =>
      ctx.reshape(ctx.op('Conv', [ctx.reshape(t, view), ones], [intsAttr('kernel_shape', [size, 1]), intsAttr('pads', [lo, 0, hi, 0])]), ctx.shapeOf(X));
    const s = ctx.add(ctx.scale(windowSum(ctx.mul(X, X), before, after), alpha / size), ctx.scalar(bias, X));
    const g = dy[0]!;
    const direct = ctx.mul(g, ctx.op('Pow', [s, ctx.scalar(-beta, X)]));
    const through = ctx.mul(X, windowSum(ctx.div(ctx.mul(g, y[0]!), s), after, before));
    return [ctx.sub(direct, ctx.scale(through, (2 * alpha * beta) / size))];
  }),
  /*
   * LayerNormalization over axes [axis, rank): with xhat = (x - mean) * rstd and h = dY * scale,
   * dX = rstd * (h - mean(h) - xhat * mean(h * xhat)), dScale and dB sum dY * xhat and dY over the leading axes.
   * mean and rstd are recomputed (the optional Mean/InvStdDev outputs are rarely exported).
   */
  LayerNormalization: rule([0, 1, 2], ({ node, x, y, dy, need, ctx }) => {
    if (y.slice(1).some((o) => o)) throw new UnsupportedGradientError('LayerNormalization', node.name ?? '', 'its Mean/InvStdDev outputs used');
    const [X, scale, B] = [x[0]!, x[1]!, x[2]];
    const g = dy[0]!;
    const rank = ctx.needRank(X, 'LayerNormalization');
    const axis = attrInt(node, 'axis', -1);
    const a0 = axis < 0 ? axis + rank : axis;
    const norm = Array.from({ length: rank - a0 }, (_, i) => a0 + i);
    const lead = Array.from({ length: a0 }, (_, i) => i);
    const { rstd, xhat } = normalized(ctx, X, norm, attrFloat(node, 'epsilon', 1e-5));
    const sumLead = (v: string, like: string) => ctx.reshape(lead.length ? ctx.reduceSum(v, lead, false) : v, ctx.shapeOf(like));
    const dX = need[0] ? normalizedInputGrad(ctx, ctx.mul(g, scale), rstd, xhat, norm) : undefined;
    const dScale = need[1] ? sumLead(ctx.mul(g, xhat), scale) : undefined;
    const dB = need[2] && B ? sumLead(g, B) : undefined;
    return [dX, dScale, dB];
  }),
  // per (sample, channel) over the spatial axes; scale and bias per channel: the LayerNormalization algebra
  InstanceNormalization: rule([0, 1, 2], ({ node, x, dy, need, ctx }) => {
    const [X, scale] = [x[0]!, x[1]!];
    const g = dy[0]!;
    const rank = ctx.needRank(X, 'InstanceNormalization');
    const sp = Array.from({ length: rank - 2 }, (_, i) => i + 2);
    const col = (v: string) =>
      ctx.unsqueeze(
        v,
        sp.map((a) => a - 1),
      );
    const { rstd, xhat } = normalized(ctx, X, sp, attrFloat(node, 'epsilon', 1e-5));
    const dX = need[0] ? normalizedInputGrad(ctx, ctx.mul(g, col(scale)), rstd, xhat, sp) : undefined;
    const dScale = need[1] ? ctx.reduceSum(ctx.mul(g, xhat), [0, ...sp], false) : undefined;
    const dB = need[2] ? ctx.reduceSum(g, [0, ...sp], false) : undefined;
    return [dX, dScale, dB];
  }),
};

/** X normalized over `axes` with statistics recomputed from it: rstd = 1 / sqrt(var + eps), xhat = (X - mean) * rstd. */
function normalized(ctx: GradCtx, X: string, axes: number[], eps: number): { rstd: string; xhat: string } {
  const centered = ctx.sub(X, ctx.reduceMean(X, axes, true));
  const variance = ctx.reduceMean(ctx.mul(centered, centered), axes, true);
  const rstd = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.add(variance, ctx.scalar(eps, X))])]);
  return { rstd, xhat: ctx.mul(centered, rstd) };
}

/** dX of a normalization over `axes`, with h = dY * scale: rstd * (h - mean(h) - xhat * mean(h * xhat)). */
function normalizedInputGrad(ctx: GradCtx, h: string, rstd: string, xhat: string, axes: number[]): string {
  return ctx.mul(rstd, ctx.sub(ctx.sub(h, ctx.reduceMean(h, axes, true)), ctx.mul(xhat, ctx.reduceMean(ctx.mul(h, xhat), axes, true))));
}
