/**
 * Reverse-mode differentiation of an ONNX graph into more ONNX nodes (standard ai.onnx ops only).
 *
 * Walks the forward nodes backwards from the loss, asking each node's rule (src/train/rules) for the
 * gradients of its inputs given those of its outputs; a value used by several nodes gets the Sum of their
 * contributions. Only nodes on a path from a `wrt` value to the loss are differentiated, and only through
 * differentiable inputs of float type, so shape computations, indices and constants never get a gradient.
 */
import { tensorAttr } from '../onnx/attrs.js';
import { isFloatType } from '../onnx/dtype.js';
import { captures, Graph } from '../onnx/graph.js';
import type { GraphProto, NodeProto, TensorProto } from '../onnx/types.js';
import { isAlrelu } from '../convert/forms.js';
import { GradCtx, type GradOptions } from './ctx.js';
import { NoGradientRuleError } from './rules/errors.js';
import { alreluGrad } from './rules/activations.js';
import { ruleFor } from './rules/index.js';
import { inferGraph } from '../onnx/shapes.js';
import { elementCount, makeTensor } from '../onnx/tensor.js';

export { NoGradientRuleError, OpsetTooOldError, ShapeUnknownError, UnsupportedGradientError } from './rules/errors.js';
export { opsWithRules } from './rules/index.js';
export { trainingOpset } from './rules/opset.js';
export type { GradOptions } from './ctx.js';

export interface BackwardOptions {
  /** value names (parameters) to differentiate w.r.t. */
  wrt: string[];
  /** scalar value in the graph */
  loss: string;
}

export interface BackwardResult {
  /** gradient nodes, to append after the forward nodes */
  nodes: NodeProto[];
  /** constants the gradient nodes use */
  initializers: TensorProto[];
  /** param -> name of its gradient value (same shape and element type as the param) */
  grads: Map<string, string>;
  /**
   * wrt values that get no gradient: not on a path to the loss, or reaching it only through inputs
   * that carry none (BatchNormalization's running statistics, Gather's indices). Not in `grads`.
   */
  noGrad: string[];
}

/** Differentiable input positions of a node (all, for ops without a rule: they can only fail later). */
function diffInputs(n: NodeProto): number[] {
  const ins = n.input ?? [];
  const rule = ruleFor(n);
  if (!rule || rule.diff === 'all') return ins.map((_, i) => i);
  return rule.diff;
}

/**
 * The values that depend differentiably on `sources`, in one forward sweep.
 * `isFloat` excludes integer/bool values (shapes, indices, masks), which carry no gradient.
 */
function forwardReach(nodes: NodeProto[], sources: Iterable<string>, isFloat: (v: string) => boolean): Set<string> {
  const active = new Set(sources);
  for (const n of nodes) {
    const ins = n.input ?? [];
    const hit = diffInputs(n).some((i) => ins[i] && active.has(ins[i])) || captures(n).some((x) => active.has(x));
    if (hit) for (const o of n.output ?? []) if (o && isFloat(o)) active.add(o);
  }
  return active;
}

/**
 * Returns the gradient nodes to add after the forward nodes of `graph` (which must already contain the
 * loss computation, in any order without cycles: a GraphCycleError otherwise). Appends nothing to `graph`.
 * Uses `fresh` for unique names.
 * `opset` is the default-domain opset the training model will declare (see trainingOpset).
 */
export function backward(graph: GraphProto, opts: BackwardOptions & GradOptions & { opset: number; fresh?: (base: string) => string }): BackwardResult {
  // a sorted copy: ONNX requires producers first, but some exporters write nodes out of order (onnxruntime accepts it)
  const sorted: GraphProto = { ...graph, node: [...(graph.node ?? [])] };
  const g = Graph.of(sorted, opts.fresh);
  const nodes = g.toposort();
  const info = inferGraph(sorted, opts.opset);
  const { wrt: _wrt, loss: _loss, opset: _opset, fresh: _fresh, ...forms } = opts;
  const ctx = new GradCtx(g.freshName, info, opts.opset, forms);
  const isFloat = (v: string) => {
    const t = info.types.get(v);
    return t === undefined || isFloatType(t);
  };
  const active = forwardReach(nodes, opts.wrt, isFloat);

  // contributions to each value's gradient, summed when first read
  const parts = new Map<string, string[]>();
  const total = new Map<string, string>();
  const contribute = (v: string, g: string) => {
    const list = parts.get(v);
    if (list) list.push(g);
    else parts.set(v, [g]);
  };
  const gradOf = (v: string): string | undefined => {
    const hit = total.get(v);
    if (hit) return hit;
    const list = parts.get(v);
    if (!list) return undefined;
    ctx.prefix = `grad/${v}`;
    const g = list.length === 1 ? list[0]! : ctx.op('Sum', list);
    total.set(v, g);
    return g;
  };

  if (active.has(opts.loss)) {
    ctx.prefix = `grad/${opts.loss}`;
    const dt = ctx.dtype(opts.loss);
    const fixed = ctx.fixedShape(opts.loss);
    const seed = fixed
      ? ctx.constant(dt, fixed, new Array<number>(elementCount(fixed)).fill(1))
      : ctx.op('ConstantOfShape', [ctx.shapeOf(opts.loss)], [tensorAttr('value', makeTensor('', dt, [1], [1]))], { dtype: dt });
    contribute(opts.loss, seed);
  }

  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    const outs = n.output ?? [];
    if (!outs.some((o) => o && parts.has(o))) continue;
    const ins = n.input ?? [];
    const diff = new Set(diffInputs(n));
    const need = ins.map((v, i) => !!v && diff.has(i) && active.has(v));
    if (!need.some((b) => b)) continue;
    const fused = isAlrelu(g, n);
    if (fused?.form === 'subgraph' && active.has(fused.x)) {
      // Abs(LeakyRelu(x)) as one ALReLU: one mask product instead of Sign, Where and two products
      ctx.prefix = n.name || `ALReLU_${k}`;
      contribute(fused.x, alreluGrad(ctx, fused.x, gradOf(outs[0]!)!, fused.alpha));
      continue;
    }
    const rule = ruleFor(n);
    const op = n.opType ?? '';
    if (!rule) throw new NoGradientRuleError(n.domain ? `${n.domain}:${op}` : op, n.name ?? '', reachingParams(nodes, opts.wrt, n, isFloat));
    const dy = outs.map((o) => (o ? gradOf(o) : undefined));
    ctx.prefix = n.name || `${op}_${k}`;
    const dx = rule.grad({ node: n, x: ins, y: outs, dy, need, ctx });
    ins.forEach((v, i) => {
      const g = dx[i];
      if (need[i] && g) contribute(v, g);
    });
  }

  const grads = new Map<string, string>();
  const noGrad: string[] = [];
  const given = new Set<string>();
  for (const w of opts.wrt) {
    let g = gradOf(w);
    if (!g) {
      noGrad.push(w);
      continue;
    }
    const produced = ctx.info.consts.has(g) ? false : ctx.nodes.some((x) => x.output?.includes(g!));
    // each gradient its own node output (not a constant, not shared), so callers can wire or rename it freely
    if (!produced || given.has(g)) {
      ctx.prefix = `grad/${w}`;
      g = ctx.op('Identity', [g]);
    }
    given.add(g);
    grads.set(w, g);
  }
  // constants some rule made but did not end up using (e.g. a static shape it replaced by a better one)
  const used = new Set(ctx.nodes.flatMap((x) => x.input ?? []));
  const initializers = ctx.initializers.filter((t) => used.has(t.name!));
  return { nodes: ctx.nodes, initializers, grads, noGrad };
}

/** The wrt values whose gradient would flow through node `n` (for the error message). */
function reachingParams(nodes: NodeProto[], wrt: string[], n: NodeProto, isFloat: (v: string) => boolean): string[] {
  const before = nodes.slice(0, nodes.indexOf(n));
  const ins = new Set(n.input ?? []);
  const out: string[] = [];
  for (const w of wrt) {
    const reach = forwardReach(before, [w], isFloat);
    if ([...ins].some((x) => reach.has(x))) out.push(w);
    if (out.length > 3) break;
  }
  return out;
}
