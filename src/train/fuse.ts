/**
 * ALReLU as one LeakyRelu(x, -|a|) in the graphs training runs (the step and validation forwards; the
 * model written at the end keeps the user's form). The converter's subgraph form Abs(LeakyRelu(x, a))
 * and its ai.alrelu:ALReLU function are the same function (|a x| = -|a| x exactly for x < 0), but cost
 * two full passes over the activation where one does. Their gradient reads only x (backward.ts, through
 * alreluPair below, and the function's rule), so the rewrite is done after backward, on the finished graph, and
 * keeps PyTorch's abs'(0) = 0 convention that a plain LeakyRelu rule would not.
 */
import { isAlreluCall } from '../convert/forms.js';
import { attrFloat, floatAttr, isDefaultDomain } from '../onnx/attrs.js';
import type { GraphProto, NodeProto } from '../onnx/types.js';
import { subgraphsOf } from '../onnx/walk.js';

const std = (m: NodeProto) => isDefaultDomain(m.domain);

/** Rewrites the top-level ALReLUs of `graph` in place; returns how many. */
export function fuseAlrelu(graph: GraphProto): number {
  const nodes = graph.node ?? [];
  const uses = new Map<string, number>();
  const count = (v: string | undefined | null) => { if (v) uses.set(v, (uses.get(v) ?? 0) + 1); };
  const visit = (g: GraphProto) => {
    for (const m of g.node ?? []) {
      for (const i of m.input ?? []) count(i);
      for (const s of subgraphsOf(m)) visit(s.graph);
    }
    for (const o of g.output ?? []) count(o.name);
  };
  visit(graph);
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) if (o) producer.set(o, n);

  const dropped = new Set<NodeProto>();
  let fused = 0;
  const becomeLeaky = (n: NodeProto, x: string, alpha: number) => {
    n.opType = 'LeakyRelu';
    n.domain = '';
    n.input = [x];
    n.attribute = [floatAttr('alpha', -Math.abs(alpha))];
    fused++;
  };
  for (const n of nodes) {
    if (n.opType === 'Abs' && std(n)) {
      const pair = alreluPair(n, producer, uses);
      if (!pair || dropped.has(pair.leaky)) continue;
      becomeLeaky(n, pair.x, pair.alpha);
      dropped.add(pair.leaky);
    } else if (isAlreluCall(n) && n.input?.[0]) {
      becomeLeaky(n, n.input[0], attrFloat(n, 'alpha', 0.01));
    }
  }
  if (dropped.size) graph.node = nodes.filter((n) => !dropped.has(n));
  return fused;
}

/** An Abs whose input is a LeakyRelu used only by it: the converter's subgraph form of ALReLU. */
export function alreluPair(n: NodeProto, producer: Map<string, NodeProto>, uses: Map<string, number>): { x: string; alpha: number; leaky: NodeProto } | undefined {
  if (n.opType !== 'Abs' || !std(n)) return undefined;
  const t = n.input?.[0];
  const p = t ? producer.get(t) : undefined;
  if (!p || p.opType !== 'LeakyRelu' || !std(p) || uses.get(t!) !== 1 || !p.input?.[0]) return undefined;
  return { x: p.input[0], alpha: attrFloat(p, 'alpha', 0.01), leaky: p };
}
