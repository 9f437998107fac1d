/** Arithmetic with NumPy broadcasting: each operand's gradient is summed back over the axes it was broadcast along. */
import { attrInt, intAttr } from '../../onnx/attrs.js';
import { isFloatType } from '../../onnx/dtype.js';
import { dyOr0, rule, type GradRule, type Grads, type RuleArgs } from './types.js';

export const ELEMENTWISE: Record<string, GradRule> = {
  Add: rule('all', ({ x, dy, need, ctx }) => {
    const g = dy[0]!;
    return [need[0] ? ctx.unbroadcast(g, x[0]!) : undefined, need[1] ? ctx.unbroadcast(g, x[1]!) : undefined];
  }),
  Sub: rule('all', ({ x, dy, need, ctx }) => {
    const g = dy[0]!;
    // negate after the reduction: fewer elements
    return [need[0] ? ctx.unbroadcast(g, x[0]!) : undefined, need[1] ? ctx.neg(ctx.unbroadcast(g, x[1]!)) : undefined];
  }),
  Mul: rule('all', ({ x, dy, need, ctx }) => {
    const g = dy[0]!;
    return [need[0] ? ctx.unbroadcast(ctx.mul(g, x[1]!), x[0]!) : undefined, need[1] ? ctx.unbroadcast(ctx.mul(g, x[0]!), x[1]!) : undefined];
  }),
  // y = a / b: da = g / b, db = -g * y / b
  Div: rule('all', ({ x, y, dy, need, ctx }) => {
    const g = dy[0]!;
    const gb = ctx.div(g, x[1]!);
    return [need[0] ? ctx.unbroadcast(gb, x[0]!) : undefined, need[1] ? ctx.neg(ctx.unbroadcast(ctx.mul(gb, y[0]!), x[1]!)) : undefined];
  }),
  Neg: rule('all', ({ dy, ctx }) => [ctx.neg(dy[0]!)]),
  Sum: rule('all', ({ x, dy, need, ctx }) => x.map((xi, i) => (need[i] ? ctx.unbroadcast(dy[0]!, xi) : undefined))),
  Mean: rule('all', ({ x, dy, need, ctx }) => {
    const g = ctx.scale(dy[0]!, 1 / x.length);
    return x.map((xi, i) => (need[i] ? ctx.unbroadcast(g, xi) : undefined));
  }),
  Expand: rule([0], ({ x, dy, ctx }) => [ctx.unbroadcast(dy[0]!, x[0]!)]),
  // Where(c, a, b): the gradient goes to a where c holds, to b elsewhere
  Where: rule([1, 2], ({ x, dy, need, ctx }) => {
    const g = dy[0]!;
    const zero = ctx.scalar(0, g);
    return [
      undefined,
      need[1] ? ctx.unbroadcast(ctx.op('Where', [x[0]!, g, zero]), x[1]!) : undefined,
      need[2] ? ctx.unbroadcast(ctx.op('Where', [x[0]!, zero, g]), x[2]!) : undefined,
    ];
  }),
  // Max/Min: the gradient goes to the operand that won (PyTorch splits ties evenly; we give ties to each)
  Max: rule('all', (a) => minMax(a)),
  Min: rule('all', (a) => minMax(a)),
  Exp: rule('all', ({ y, dy, ctx }) => [ctx.mul(dy[0]!, y[0]!)]),
  Log: rule('all', ({ x, dy, ctx }) => [ctx.div(dy[0]!, x[0]!)]),
  // d sqrt(x) = 1 / (2 sqrt(x))
  Sqrt: rule('all', ({ y, dy, ctx }) => [ctx.div(ctx.scale(dy[0]!, 0.5), y[0]!)]),
  // d (1/x) = -1/x^2 = -y^2
  Reciprocal: rule('all', ({ y, dy, ctx }) => [ctx.neg(ctx.mul(dy[0]!, ctx.mul(y[0]!, y[0]!)))]),
  // y = a^b: da = g b a^(b-1) = g b y / a is wrong at a = 0, so use Pow; db = g y ln a
  Pow: rule('all', ({ x, y, dy, need, ctx }) => {
    const g = dy[0]!;
    const [a, b] = [x[0]!, x[1]!];
    const bl = ctx.dtype(b) === ctx.dtype(a) ? b : ctx.op('Cast', [b], [intAttrTo(ctx.dtype(a))], { dtype: ctx.dtype(a) });
    const da = need[0] ? ctx.unbroadcast(ctx.mul(g, ctx.mul(bl, ctx.op('Pow', [a, ctx.sub(bl, ctx.scalar(1, a))]))), a) : undefined;
    const db = need[1] ? ctx.unbroadcast(ctx.mul(g, ctx.mul(y[0]!, ctx.op('Log', [a]))), b) : undefined;
    return [da, db];
  }),
  Identity: rule('all', ({ dy }) => [dy[0]!]),
  // Dropout runs in inference mode in the training graph (as it is in the model): the identity
  Dropout: rule([0], ({ dy }) => [dy[0]!]),
  // a float-to-float Cast: cast the gradient back; casts from integers never carry one (not differentiable)
  Cast: rule([0], ({ x, dy, ctx, node }) => {
    const from = ctx.dtype(x[0]!);
    if (!isFloatType(from) || !isFloatType(attrInt(node, 'to', 0))) return [undefined];
    return [from === ctx.dtype(dy[0]!) ? dy[0]! : ctx.op('Cast', [dy[0]!], [intAttrTo(from)], { dtype: from })];
  }),
  CastLike: rule([0], ({ x, dy, ctx }) => {
    const from = ctx.dtype(x[0]!);
    if (!isFloatType(from)) return [undefined];
    return [from === ctx.dtype(dy[0]!) ? dy[0]! : ctx.op('Cast', [dy[0]!], [intAttrTo(from)], { dtype: from })];
  }),
};

function intAttrTo(t: number) {
  return intAttr('to', t);
}

function minMax(a: RuleArgs): Grads {
  const { x, y, need, ctx } = a;
  const g = dyOr0(a);
  const zero = ctx.scalar(0, g);
  return x.map((xi, i) => (need[i] ? ctx.unbroadcast(ctx.op('Where', [ctx.op('Equal', [xi, y[0]!]), g, zero]), xi) : undefined));
}
