/**
 * ALReLU as one LeakyRelu(x, -|a|) in the graphs training runs (the step and validation forwards; the
 * model written at the end keeps the user's form). The converter's subgraph form Abs(LeakyRelu(x, a))
 * and its ai.alrelu:ALReLU function are the same function (|a x| = -|a| x exactly for x < 0), but cost
 * two full passes over the activation where one does. Their gradient reads only x (backward.ts, through
 * isAlrelu, and the function's rule), so the rewrite is done after backward, on the finished graph, and
 * keeps PyTorch's abs'(0) = 0 convention that a plain LeakyRelu rule would not.
 */
import { isAlrelu } from '../convert/forms.js';
import { floatAttr } from '../onnx/attrs.js';
import { Graph } from '../onnx/graph.js';
import type { GraphProto, NodeProto } from '../onnx/types.js';

/** Rewrites the top-level ALReLUs of `graph` in place; returns how many. */
export function fuseAlrelu(graph: GraphProto): number {
  const g = Graph.of(graph);
  const dropped = new Set<NodeProto>();
  let fused = 0;
  for (const n of g.nodes) {
    const m = isAlrelu(g, n);
    if (!m || m.form === 'fused') continue;
    n.opType = 'LeakyRelu';
    n.domain = '';
    n.input = [m.x];
    n.attribute = [floatAttr('alpha', -Math.abs(m.alpha))];
    if (m.leaky) dropped.add(m.leaky);
    fused++;
  }
  if (dropped.size) g.nodes = g.nodes.filter((n) => !dropped.has(n));
  return fused;
}

/**
 * Each fused ALReLU's output recomputed, for the backward's readers (the next conv's weight gradient), from
 * its input, which the backward keeps anyway (ALReLU's gradient reads x): y is then freed after its forward
 * readers, where it used to live through the forward beside x, as PyTorch keeps one of the two for a ReLU
 * (ResNet-18's step at batch 8 peaked about 25 MB lower).
 * The copy is Abs(LeakyRelu(x, |a|)), the same values bit for bit in another form, so that onnxruntime's
 * common-subexpression elimination does not merge it back into the forward's; it is placed before its
 * first reader, where onnxruntime's order computes it. Returns how many outputs are recomputed.
 */
export function recomputeAlrelu(graph: GraphProto, forward: ReadonlySet<NodeProto>): number {
  const g = Graph.of(graph);
  const copies = new Map<NodeProto, NodeProto[]>(); // first backward reader -> the nodes to put before it
  for (const n of g.nodes) {
    const m = forward.has(n) ? isAlrelu(g, n) : undefined;
    if (m?.form !== 'fused') continue;
    const y = n.output![0]!;
    const later = g.consumers(y).filter((c) => !forward.has(c));
    // (a reader through a subgraph's capture keeps y)
    if (!later.length || !later.every((c) => c.input!.includes(y)) || !g.consumers(m.x).some((c) => !forward.has(c))) continue;
    const [t, y2] = [g.freshName(`${y}/recomputed/leaky`), g.freshName(`${y}/recomputed`)];
    const first = g.nodes.find((c) => later.includes(c))!;
    copies.set(first, [
      ...(copies.get(first) ?? []),
      { opType: 'LeakyRelu', input: [m.x], output: [t], attribute: [floatAttr('alpha', m.alpha)], name: g.freshName(`${n.name ?? y}/recompute`) },
      { opType: 'Abs', input: [t], output: [y2], name: g.freshName(`${n.name ?? y}/recompute/abs`) },
    ]);
    for (const c of later) c.input = c.input!.map((v) => (v === y ? y2 : v));
  }
  if (!copies.size) return 0;
  g.nodes = g.nodes.flatMap((n) => [...(copies.get(n) ?? []), n]);
  return [...copies.values()].reduce((k, v) => k + v.length / 2, 0);
}
