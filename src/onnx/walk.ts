/**
 * Traversal of every graph in a model: the main graph, If/Loop/Scan bodies at any depth, model-local
 * functions, and training-info graphs. Each scope gets a readable path such as `main/If_0.then_branch`.
 */
import type { AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto } from './types.js';

/** Where nodes live: a graph or a function body. Both hold `node`. */
export type Scope =
  | { kind: 'graph'; graph: GraphProto; path: string; parent?: Scope }
  | { kind: 'function'; fn: FunctionProto; path: string; parent?: undefined };

export function scopeNodes(s: Scope): NodeProto[] {
  if (s.kind === 'graph') return (s.graph.node ??= []);
  return (s.fn.node ??= []);
}

export function nodeLabel(n: NodeProto, index: number): string {
  return n.name ? n.name : `${n.opType ?? '?'}#${index}`;
}

/** Subgraphs held by one node's attributes, with the attribute name. */
export function subgraphsOf(n: NodeProto): { attr: AttributeProto; graph: GraphProto }[] {
  const out: { attr: AttributeProto; graph: GraphProto }[] = [];
  for (const a of n.attribute ?? []) {
    if (a.g) out.push({ attr: a, graph: a.g });
    for (const g of a.graphs ?? []) out.push({ attr: a, graph: g });
  }
  return out;
}

/** All scopes, parents before children. */
export function scopes(model: ModelProto): Scope[] {
  const out: Scope[] = [];
  const visitGraph = (graph: GraphProto, path: string, parent?: Scope) => {
    const s: Scope = { kind: 'graph', graph, path, parent };
    out.push(s);
    visitNodes(graph.node ?? [], path, s);
  };
  const visitNodes = (nodes: NodeProto[], path: string, parent: Scope) => {
    nodes.forEach((n, i) => {
      for (const { attr, graph } of subgraphsOf(n)) {
        visitGraph(graph, `${path}/${nodeLabel(n, i)}.${attr.name ?? '?'}`, parent);
      }
    });
  };
  if (model.graph) visitGraph(model.graph, 'main');
  for (const fn of model.functions ?? []) {
    const s: Scope = { kind: 'function', fn, path: `function ${fn.domain ?? ''}:${fn.name ?? '?'}` };
    out.push(s);
    visitNodes(fn.node ?? [], s.path, s);
  }
  (model.trainingInfo ?? []).forEach((t, i) => {
    if (t.initialization) visitGraph(t.initialization, `training_info[${i}].initialization`);
    if (t.algorithm) visitGraph(t.algorithm, `training_info[${i}].algorithm`);
  });
  return out;
}

/** Every TensorProto in the model: initializers, sparse parts, and tensors inside attributes. */
export function allTensors(model: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const fromAttr = (a: AttributeProto) => {
    if (a.t) out.push(a.t);
    for (const t of a.tensors ?? []) out.push(t);
    for (const s of [a.sparseTensor, ...(a.sparseTensors ?? [])]) {
      if (s?.values) out.push(s.values);
      if (s?.indices) out.push(s.indices);
    }
  };
  for (const s of scopes(model)) {
    if (s.kind === 'graph') {
      out.push(...(s.graph.initializer ?? []));
      for (const sp of s.graph.sparseInitializer ?? []) {
        if (sp.values) out.push(sp.values);
        if (sp.indices) out.push(sp.indices);
      }
    } else {
      for (const a of s.fn.attributeProto ?? []) fromAttr(a);
    }
    for (const n of scopeNodes(s)) for (const a of n.attribute ?? []) fromAttr(a);
  }
  return out;
}

/** Every name defined anywhere in the model (values, initializers, node names), for unique new names. */
export function allNames(model: ModelProto): Set<string> {
  const names = new Set<string>();
  for (const s of scopes(model)) {
    if (s.kind === 'graph') {
      const g = s.graph;
      for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) if (v.name) names.add(v.name);
      for (const t of g.initializer ?? []) if (t.name) names.add(t.name);
      for (const t of g.sparseInitializer ?? []) if (t.values?.name) names.add(t.values.name);
    } else {
      for (const x of [...(s.fn.input ?? []), ...(s.fn.output ?? [])]) names.add(x);
    }
    for (const n of scopeNodes(s)) {
      if (n.name) names.add(n.name);
      for (const x of [...(n.input ?? []), ...(n.output ?? [])]) if (x) names.add(x);
    }
  }
  return names;
}

/** Makes names that collide with nothing in the model, nor with each other. */
export function nameFactory(taken: Set<string>): (base: string) => string {
  return (base: string) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
}
