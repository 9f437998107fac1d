/**
 * BatchNormalization in inference mode, as it runs in the training graph: the running statistics are
 * frozen constants, so y = x * k + (B - mean * k) with k = scale / sqrt(var + eps) per channel (axis 1).
 * dX = dY * k, dScale = sum(dY * (x - mean) / sqrt(var + eps)), dB = sum(dY) over all axes but 1.
 */
import { attrFloat, attrInt } from '../../onnx/attrs.js';
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
    const col = (v: string) => (rank > 2 ? ctx.unsqueeze(v, others.slice(1).map((a) => a - 1)) : v);
    const invStd = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.add(variance, ctx.scalar(attrFloat(node, 'epsilon', 1e-5), variance))])]);
    const dX = need[0] ? ctx.mul(g, col(ctx.mul(scale, invStd))) : undefined;
    const dScale = need[1] ? ctx.reduceSum(ctx.mul(g, ctx.mul(ctx.sub(X, col(mean)), col(invStd))), others, false) : undefined;
    const dB = need[2] ? ctx.reduceSum(g, others, false) : undefined;
    return [dX, dScale, dB];
  }),
};
