/** Reductions: the gradient is broadcast back over the reduced axes (and scaled, or masked, per op). */
import { attrInt, attrInts } from '../../onnx/attrs.js';
import { UnsupportedGradientError } from './errors.js';
import { normAxis, rule, type GradRule, type RuleArgs } from './types.js';
import { elementCount } from '../../onnx/tensor.js';

/** Which axes a reduce node reduces: a list, 'all', or 'none' (noop_with_empty_axes on empty axes). */
function reducedAxes({ node, x, ctx }: RuleArgs): number[] | 'all' | 'none' {
  const op = node.opType ?? '';
  const axesAsInput = op === 'ReduceSum' ? ctx.opset >= 13 : ctx.opset >= 18;
  let axes: number[] | undefined;
  if (axesAsInput) {
    if (x[1]) {
      axes = ctx.constValue(x[1]);
      if (!axes) throw new UnsupportedGradientError(op, node.name ?? '', 'axes computed at runtime');
    }
  } else axes = attrInts(node, 'axes');
  if (!axes?.length) return attrInt(node, 'noop_with_empty_axes', 0) && axesAsInput ? 'none' : 'all';
  const rank = ctx.needRank(x[0]!, `${op} axes`);
  return axes.map((a) => normAxis(a, rank));
}

/** dy brought back to X's shape: unsqueeze the dropped axes (keepdims=0), then Expand. */
function spread(a: RuleArgs, g: string, axes: number[] | 'all'): string {
  const { node, x, ctx } = a;
  let t = g;
  if (!attrInt(node, 'keepdims', 1) && axes !== 'all')
    t = ctx.unsqueeze(
      t,
      [...axes].sort((p, q) => p - q),
    );
  return ctx.op('Expand', [t, ctx.shapeOf(x[0]!)]);
}

/** 1 / (number of elements reduced into each output) as a scalar of X's type. */
function inverseCount(a: RuleArgs, axes: number[] | 'all'): string {
  const { x, y, ctx } = a;
  const s = ctx.shape(x[0]!);
  const dims = s && (axes === 'all' ? s : axes.map((i) => s[i]));
  if (dims?.every((d) => typeof d === 'number')) return ctx.scalar(1 / elementCount(dims as number[]), x[0]!);
  return ctx.div(ctx.countAs(y[0]!, x[0]!), ctx.countAs(x[0]!, x[0]!));
}

function reduceRule(kind: 'sum' | 'mean' | 'sumsq' | 'extreme' | 'lse' | 'l1' | 'l2'): GradRule {
  return rule([0], (a) => {
    const { x, y, dy, ctx } = a;
    const axes = reducedAxes(a);
    if (axes === 'none') return [dy[0]!];
    let g = dy[0]!;
    if (kind === 'mean') g = ctx.mul(g, inverseCount(a, axes));
    const G = spread(a, g, axes);
    if (kind === 'sum' || kind === 'mean') return [G];
    const Y = spread(a, y[0]!, axes);
    if (kind === 'sumsq') return [ctx.mul(G, ctx.scale(x[0]!, 2))];
    if (kind === 'l1') return [ctx.mul(G, ctx.op('Sign', [x[0]!]))];
    // x / ||x||, and 0 where the whole norm is 0 (as PyTorch): divide by 1 there instead
    if (kind === 'l2') return [ctx.mul(G, ctx.div(x[0]!, ctx.add(Y, ctx.mask(ctx.op('Equal', [Y, ctx.scalar(0, Y)]), Y))))];
    // d logsumexp = softmax over the reduced axes = exp(x - y)
    if (kind === 'lse') return [ctx.mul(G, ctx.op('Exp', [ctx.sub(x[0]!, Y)]))];
    // max/min: to every element equal to the extreme (ties each get the full gradient)
    return [ctx.select(ctx.op('Equal', [x[0]!, Y]), G, 0, G)];
  });
}

export const REDUCE: Record<string, GradRule> = {
  ReduceSum: reduceRule('sum'),
  ReduceMean: reduceRule('mean'),
  ReduceSumSquare: reduceRule('sumsq'),
  ReduceL1: reduceRule('l1'),
  ReduceL2: reduceRule('l2'),
  ReduceLogSumExp: reduceRule('lse'),
  ReduceMax: reduceRule('extreme'),
  ReduceMin: reduceRule('extreme'),
};
