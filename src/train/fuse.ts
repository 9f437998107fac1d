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
