/**
 * Pointwise activations and the softmax family. Conventions at the kinks follow PyTorch (the gradient
 * oracles come from it): Relu'(0) = 0, LeakyRelu'(0) = alpha, Abs'(0) = 0, Clip passes the gradient on
 * the open interval (min, max), as ReLU6 and Hardtanh (the usual sources of Clip) do.
 */
import { attr, attrFloat, attrInt, attrString, floatAttr, intAttr } from '../../onnx/attrs.js';
import { DataType } from '../../onnx/dtype.js';
import { UnsupportedGradientError } from './errors.js';
import { normAxis, rule, type GradRule, type RuleArgs } from './types.js';

export const ACTIVATIONS: Record<string, GradRule> = {
  Relu: rule('all', ({ x, dy, ctx }) => [ctx.select(ctx.op('Greater', [x[0]!, ctx.scalar(0, x[0]!)]), dy[0]!, 0, dy[0]!)]),
  // slope 1 above 0, alpha elsewhere: g * (alpha + (1 - alpha) [x > 0])
  LeakyRelu: rule('all', ({ node, x, dy, ctx }) => {
    const alpha = attrFloat(node, 'alpha', 0.01);
    const X = x[0]!;
    // 0 < alpha <= 1: Clip(x * s * s, alpha, 1) is exactly 1 above 0 and alpha at or below it (see
    // saturate); four ops instead of five, 1.18 vs 1.45 ms on 8x32x64x64 floats
    const big = alpha > 0 && alpha <= 1 ? saturate(ctx, X) : undefined;
    if (big) return [ctx.mul(dy[0]!, ctx.op('Clip', [big, ctx.scalar(alpha, X), ctx.scalar(1, X)]))];
    return [ctx.mul(dy[0]!, ctx.select(ctx.op('Greater', [X, ctx.scalar(0, X)]), 1, alpha, X))];
  }),
  Abs: rule('all', ({ x, dy, ctx }) => [ctx.mul(dy[0]!, ctx.op('Sign', [x[0]!]))]),
  // the converter's model-local function |LeakyRelu(x, alpha)|: slope 1 above 0, -|alpha| below, 0 at 0
  'ai.alrelu:ALReLU': rule('all', ({ node, x, dy, ctx }) => [alreluGrad(ctx, x[0]!, dy[0]!, attrFloat(node, 'alpha', 0.01))]),
  // y = x above 0, slope * x elsewhere (slope broadcast from the right, per channel usually)
  PRelu: rule('all', ({ x, dy, need, ctx }) => {
    const [X, S] = [x[0]!, x[1]!];
    const g = dy[0]!;
    const pos = ctx.op('Greater', [X, ctx.scalar(0, X)]);
    const neg = ctx.op('Not', [pos]);
    const dX = need[0] ? ctx.mul(g, ctx.add(ctx.mask(pos, X), ctx.mul(ctx.mask(neg, X), S))) : undefined;
    const dS = need[1] ? ctx.unbroadcast(ctx.mul(g, ctx.mul(X, ctx.mask(neg, X))), S) : undefined;
    return [dX, dS];
  }),
  // x * HardSigmoid(x, 1/6, 1/2): slope 0 below -3, x/3 + 1/2 up to 3 (included, as PyTorch), 1 above
  HardSwish: rule('all', ({ x, dy, ctx }) => {
    const X = x[0]!;
    const mid = ctx.add(ctx.scale(X, 1 / 3), ctx.scalar(0.5, X));
    const upper = ctx.op('Where', [ctx.op('Greater', [X, ctx.scalar(3, X)]), ctx.scalar(1, X), mid]);
    return [ctx.mul(dy[0]!, ctx.op('Where', [ctx.op('Less', [X, ctx.scalar(-3, X)]), ctx.scalar(0, X), upper]))];
  }),
  // gamma above 0, gamma * alpha * e^x = y + gamma * alpha at or below it
  Selu: rule('all', ({ node, x, y, dy, ctx }) => {
    // the exact values of onnx's float32 defaults, written out in full
    // biome-ignore lint/correctness/noPrecisionLoss: each is exactly a float32, so exactly a double too
    const alpha = attrFloat(node, 'alpha', 1.67326319217681884765625);
    // biome-ignore lint/correctness/noPrecisionLoss: as alpha
    const gamma = attrFloat(node, 'gamma', 1.05070102214813232421875);
    const pos = ctx.op('Greater', [x[0]!, ctx.scalar(0, x[0]!)]);
    return [ctx.mul(dy[0]!, ctx.op('Where', [pos, ctx.scalar(gamma, x[0]!), ctx.add(y[0]!, ctx.scalar(gamma * alpha, x[0]!))]))];
  }),
  // 1 above 0, e^(x / alpha) at or below it
  Celu: rule('all', ({ node, x, dy, ctx }) => {
    const X = x[0]!;
    const pos = ctx.op('Greater', [X, ctx.scalar(0, X)]);
    return [ctx.mul(dy[0]!, ctx.op('Where', [pos, ctx.scalar(1, X), ctx.op('Exp', [ctx.scale(X, 1 / attrFloat(node, 'alpha', 1))])]))];
  }),
  // x / (1 + |x|): 1 / (1 + |x|)^2
  Softsign: rule('all', ({ x, dy, ctx }) => {
    const d = ctx.add(ctx.op('Abs', [x[0]!]), ctx.scalar(1, x[0]!));
    return [ctx.div(dy[0]!, ctx.mul(d, d))];
  }),
  // x above alpha, else 0
  ThresholdedRelu: rule('all', ({ node, x, dy, ctx }) => [
    ctx.select(ctx.op('Greater', [x[0]!, ctx.scalar(attrFloat(node, 'alpha', 1), x[0]!)]), dy[0]!, 0, dy[0]!),
  ]),
  // x tanh(softplus(x)): t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x))
  Mish: rule('all', ({ x, dy, ctx }) => {
    const X = x[0]!;
    const t = ctx.op('Tanh', [ctx.op('Softplus', [X])]);
    const sech2 = ctx.sub(ctx.scalar(1, X), ctx.mul(t, t));
    return [ctx.mul(dy[0]!, ctx.add(t, ctx.mul(ctx.mul(X, ctx.op('Sigmoid', [X])), sech2)))];
  }),
  // opset 20. exact: Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi);
  // approximate='tanh': 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2), t = tanh(k (x + c x^3)), k = sqrt(2 / pi)
  Gelu: rule('all', ({ node, x, dy, ctx }) => {
    const X = x[0]!;
    const one = ctx.scalar(1, X);
    const x2 = ctx.mul(X, X);
    if (attrString(node, 'approximate', 'none') === 'tanh') {
      const k = Math.sqrt(2 / Math.PI);
      const c = 0.044715;
      const t = ctx.op('Tanh', [ctx.scale(ctx.add(X, ctx.scale(ctx.mul(x2, X), c)), k)]);
      const inner = ctx.scale(ctx.add(one, ctx.scale(x2, 3 * c)), k);
      const d = ctx.add(ctx.scale(ctx.add(one, t), 0.5), ctx.mul(ctx.scale(X, 0.5), ctx.mul(ctx.sub(one, ctx.mul(t, t)), inner)));
      return [ctx.mul(dy[0]!, d)];
    }
    const cdf = ctx.scale(ctx.add(one, ctx.op('Erf', [ctx.scale(X, Math.SQRT1_2)])), 0.5);
    const pdf = ctx.scale(ctx.op('Exp', [ctx.scale(x2, -0.5)]), 1 / Math.sqrt(2 * Math.PI));
    return [ctx.mul(dy[0]!, ctx.add(cdf, ctx.mul(X, pdf)))];
  }),
  // erf' = 2/sqrt(pi) exp(-x^2)
  Erf: rule('all', ({ x, dy, ctx }) => [ctx.mul(dy[0]!, ctx.scale(ctx.op('Exp', [ctx.neg(ctx.mul(x[0]!, x[0]!))]), 2 / Math.sqrt(Math.PI)))]),
  // max(0, min(1, alpha x + beta)): alpha inside the linear part
  HardSigmoid: rule('all', ({ node, x, dy, ctx }) => {
    const alpha = attrFloat(node, 'alpha', 0.2);
    const beta = attrFloat(node, 'beta', 0.5);
    const X = x[0]!;
    const lo = ctx.scalar(-beta / alpha, X);
    const hi = ctx.scalar((1 - beta) / alpha, X);
    const [a, b] = alpha > 0 ? [lo, hi] : [hi, lo];
    const inside = ctx.op('And', [ctx.op('Greater', [X, a]), ctx.op('Less', [X, b])]);
    return [ctx.scale(ctx.select(inside, dy[0]!, 0, X), alpha)];
  }),
  Sigmoid: rule('all', ({ y, dy, ctx }) => [ctx.mul(dy[0]!, ctx.mul(y[0]!, ctx.sub(ctx.scalar(1, y[0]!), y[0]!)))]),
  Tanh: rule('all', ({ y, dy, ctx }) => [ctx.mul(dy[0]!, ctx.sub(ctx.scalar(1, y[0]!), ctx.mul(y[0]!, y[0]!)))]),
  // softplus' = sigmoid
  Softplus: rule('all', ({ x, dy, ctx }) => [ctx.mul(dy[0]!, ctx.op('Sigmoid', [x[0]!]))]),
  // elu' = 1 above 0, y + alpha below
  Elu: rule('all', ({ node, x, y, dy, ctx }) => {
    const alpha = attrFloat(node, 'alpha', 1);
    const pos = ctx.op('Greater', [x[0]!, ctx.scalar(0, x[0]!)]);
    return [ctx.op('Where', [pos, dy[0]!, ctx.mul(dy[0]!, ctx.add(y[0]!, ctx.scalar(alpha, y[0]!)))])];
  }),
  // passes the gradient strictly inside (min, max), read off the output y as PyTorch's ReLU6 and Hardtanh do,
  // so the input need not be kept for the backward (MobileNetV2's 35 ReLU6 inputs: its step's peak at batch
  // 8 about 110 MB lower)
  Clip: rule([0], ({ node, x, y, dy, ctx }) => {
    const Y = y[0]!;
    const [lo, hi] =
      ctx.opset < 11
        ? [attr(node, 'min') ? ctx.scalar(attrFloat(node, 'min', 0), Y) : undefined, attr(node, 'max') ? ctx.scalar(attrFloat(node, 'max', 0), Y) : undefined]
        : [x[1] || undefined, x[2] || undefined];
    const conds: string[] = [];
    if (lo) conds.push(ctx.op('Greater', [Y, lo]));
    if (hi) conds.push(ctx.op('Less', [Y, hi]));
    if (!conds.length) return [dy[0]!];
    const inside = conds.length === 2 ? ctx.op('And', conds) : conds[0]!;
    return [ctx.select(inside, dy[0]!, 0, dy[0]!)];
  }),
  // dx = y * (g - sum(g * y))
  Softmax: rule('all', (a) => softmaxFamily(a, false)),
  // dx = g - exp(y) * sum(g)
  LogSoftmax: rule('all', (a) => softmaxFamily(a, true)),
};

/**
 * d|LeakyRelu(x, alpha)|/dx: 1 above 0, -|alpha| below (whatever alpha's sign), 0 at 0 as PyTorch's
 * abs'(0) = 0 gives: g * ([x > 0] - |alpha| [x < 0]).
 */
export function alreluGrad(ctx: RuleArgs['ctx'], x: string, g: string, alpha: number): string {
  // Clip(LeakyRelu(x * s * s, |alpha|), -|alpha|, 1) with s large enough that the smallest subnormal
  // times s^2 reaches 1 and s itself is finite: exactly 1, -|alpha| or 0 in five vectorized ops, where
  // the masks below take seven (Greater, Less and Casts are slow on onnxruntime CPU: 1.35 vs 2.5 ms
  // on 8x32x64x64 floats)
  // (alpha 0 would turn x * s * s = -inf into -inf * 0 = NaN)
  const big = alpha !== 0 ? saturate(ctx, x) : undefined;
  if (big) {
    const leaky = ctx.op('LeakyRelu', [big], [floatAttr('alpha', Math.abs(alpha))]);
    return ctx.mul(g, ctx.op('Clip', [leaky, ctx.scalar(-Math.abs(alpha), x), ctx.scalar(1, x)]));
  }
  const zero = ctx.scalar(0, x);
  const pos = ctx.mask(ctx.op('Greater', [x, zero]), x);
  const neg = ctx.mask(ctx.op('Less', [x, zero]), x);
  return ctx.mul(g, ctx.sub(pos, ctx.scale(neg, Math.abs(alpha))));
}

/**
 * x * s * s with s the largest power of two that is finite in x's type squared past its smallest
 * subnormal: every nonzero x lands at or beyond +-1 (or +-inf), zero stays zero, so a Clip of it is an
 * exact step function. Undefined for types without such a constant here, or opsets whose Clip lacks
 * min/max inputs (11; 12 for double).
 */
function saturate(ctx: RuleArgs['ctx'], x: string): string | undefined {
  const dt = ctx.dtype(x);
  const s = dt === DataType.FLOAT ? 2 ** 100 : dt === DataType.DOUBLE ? 2 ** 600 : dt === DataType.FLOAT16 ? 2 ** 15 : 0;
  if (!s || ctx.opset < (dt === DataType.DOUBLE ? 12 : 11)) return undefined;
  return ctx.mul(ctx.mul(x, ctx.scalar(s, x)), ctx.scalar(s, x));
}

function softmaxFamily({ node, x, y, dy, ctx }: RuleArgs, log: boolean): [string] {
  const g = dy[0]!;
  const Y = y[0]!;
  const op = node.opType ?? '';
  const rank = ctx.rank(x[0]!);
  // before opset 13 the op flattens to 2-D at `axis` and normalizes over all trailing dims together
  const old = ctx.opset < 13;
  const axis = attrInt(node, 'axis', old ? 1 : -1);
  let axes: number[] | undefined;
  if (!old) axes = [axis];
  else if (rank !== undefined) axes = Array.from({ length: rank - normAxis(axis, rank) }, (_, i) => normAxis(axis, rank) + i);
  if (!axes) {
    if (old) {
      // rank unknown: work on Flatten(axis) views and restore the shape
      const f = (v: string) => ctx.op('Flatten', [v], [intAttr('axis', axis)]);
      const inner = body(ctx, f(g), f(Y), [1], log);
      return [ctx.reshape(inner, ctx.shapeOf(x[0]!))];
    }
    throw new UnsupportedGradientError(op, node.name ?? '', 'an unknown rank');
  }
  return [body(ctx, g, Y, axes, log)];
}

function body(ctx: RuleArgs['ctx'], g: string, Y: string, axes: number[], log: boolean): string {
  if (log) return ctx.sub(g, ctx.mul(ctx.op('Exp', [Y]), ctx.reduceSum(g, axes, true)));
  return ctx.mul(Y, ctx.sub(g, ctx.reduceSum(ctx.mul(g, Y), axes, true)));
}
