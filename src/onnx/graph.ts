/**
 * The graph layer every pass shares, in the spirit of onnx-graphsurgeon: a thin wrapper over one scope (a
 * GraphProto or a function body) that knows each value's producer, consumers and use count, sorts and
 * cleans the nodes, and makes fresh names. The protos stay the source of truth; the indexes are rebuilt
 * lazily after any edit made through the wrapper, and after `changed()` for edits made to nodes directly.
 *
 * A value is used by every node of the scope that reads it, whether as a listed input or as a capture: a
 * read inside an If/Loop/Scan body (at any depth) of a name the body does not define itself. Scope
 * outputs count as uses too, so a graph output is never "unused".
 */
import { isDefaultDomain } from './attrs.js';
import type { GraphProto, NodeProto } from './types.js';
import { allNames, nameFactory, nodeLabel, scopeNodes, subgraphsOf, type Scope } from './walk.js';

/** Raised by toposort() when nodes depend on each other in a cycle (validate.ts reports those in models). */
export class GraphCycleError extends Error {
  constructor(readonly nodes: string[]) {
    super(`nodes depend on each other in a cycle: ${nodes.join(' -> ')}`);
    this.name = 'GraphCycleError';
  }
}

/** Outer-scope names read by a node's subgraphs at any depth (each read once), including subgraph outputs that name them. */
export function captures(n: NodeProto): string[] {
  const out: string[] = [];
  const visit = (g: GraphProto, outer: ReadonlySet<string>) => {
    const local = new Set(outer);
    for (const v of g.input ?? []) if (v.name) local.add(v.name);
    for (const t of g.initializer ?? []) if (t.name) local.add(t.name);
    for (const t of g.sparseInitializer ?? []) if (t.values?.name) local.add(t.values.name);
    for (const m of g.node ?? []) for (const o of m.output ?? []) if (o) local.add(o);
    for (const m of g.node ?? []) {
      for (const x of m.input ?? []) if (x && !local.has(x)) out.push(x);
      for (const s of subgraphsOf(m)) visit(s.graph, local);
    }
    for (const o of g.output ?? []) if (o.name && !local.has(o.name)) out.push(o.name);
  };
  for (const s of subgraphsOf(n)) visit(s.graph, new Set());
  return out;
}

/** Every value a node reads: its inputs (absent optional ones left out), then its captures. */
export function reads(n: NodeProto): string[] {
  return [...(n.input ?? []).filter((x) => x), ...captures(n)];
}

/** Standard-domain ops compute only their outputs; another domain's op may do more (log, hold state). */
function pure(n: NodeProto): boolean {
  if (!isDefaultDomain(n.domain) && n.domain !== 'ai.onnx.ml') return false;
  return subgraphsOf(n).every(({ graph }) => (graph.node ?? []).every(pure));
}

interface Index {
  producer: Map<string, NodeProto>;
  consumers: Map<string, NodeProto[]>;
  uses: Map<string, number>;
}

export class Graph {
  private index: Index | undefined;
  private names: ((base: string) => string) | undefined;

  /**
   * `fresh` shares one name set between several wrappers of the same model; without it, names are taken
   * (on first use) from this scope and every subgraph inside it.
   */
  constructor(
    readonly scope: Scope,
    fresh?: (base: string) => string,
  ) {
    this.names = fresh;
  }

  /** A name no value, initializer or node of the model has, nor any earlier fresh name. */
  readonly freshName = (base: string): string => {
    const s = this.scope;
    this.names ??= nameFactory(allNames(s.kind === 'graph' ? { graph: s.graph } : { functions: [s.fn] }));
    return this.names(base);
  };

  /** A standalone graph (the main graph of a model, or any GraphProto). */
  static of(graph: GraphProto, fresh?: (base: string) => string): Graph {
    return new Graph({ kind: 'graph', graph, path: graph.name ?? 'main' }, fresh);
  }

  get nodes(): NodeProto[] {
    return scopeNodes(this.scope);
  }

  set nodes(nodes: NodeProto[]) {
    if (this.scope.kind === 'graph') this.scope.graph.node = nodes;
    else this.scope.fn.node = nodes;
    this.changed();
  }

  /** The names the scope returns (graph outputs, or a function's outputs). */
  get outputs(): string[] {
    return this.scope.kind === 'graph' ? (this.scope.graph.output ?? []).map((o) => o.name ?? '').filter((o) => o) : (this.scope.fn.output ?? []);
  }

  /** Call after editing nodes' inputs, outputs or subgraphs in place, so the indexes are rebuilt. */
  changed(): void {
    this.index = undefined;
  }

  /** The node of this scope that writes `v`; undefined for inputs, initializers and outer-scope values. */
  producer(v: string): NodeProto | undefined {
    return this.indexed().producer.get(v);
  }

  /** Nodes of this scope that read `v`, directly or through a subgraph, each once, in node order. */
  consumers(v: string): readonly NodeProto[] {
    return this.indexed().consumers.get(v) ?? [];
  }

  /** How many reads `v` has: node inputs, captures at any depth, and scope outputs. */
  uses(v: string): number {
    return this.indexed().uses.get(v) ?? 0;
  }

  /**
   * Orders the nodes so every value is produced before it is read (captures included), in place. Stable:
   * a node moves only when something it reads comes later, so an already sorted graph keeps its order.
   */
  toposort(): NodeProto[] {
    const nodes = this.nodes;
    const at = new Map<string, number>();
    nodes.forEach((n, i) => {
      for (const o of n.output ?? []) if (o && !at.has(o)) at.set(o, i);
    }); // the first writer, as producer()
    const deps = nodes.map((n) =>
      reads(n).flatMap((x) => {
        const j = at.get(x);
        return j === undefined ? [] : [j];
      }),
    );
    const state = new Uint8Array(nodes.length); // 0 unvisited, 1 on the stack, 2 placed
    const order: number[] = [];
    for (let i = 0; i < nodes.length; i++) {
      if (state[i]) continue;
      // iterative depth-first search: producers are placed before their readers, in first-read order
      const stack: [number, number][] = [[i, 0]];
      state[i] = 1;
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        const d = deps[top[0]]!;
        if (top[1] < d.length) {
          const j = d[top[1]++]!;
          if (state[j] === 0) {
            state[j] = 1;
            stack.push([j, 0]);
          } else if (state[j] === 1) {
            const from = stack.findIndex(([k]) => k === j);
            throw new GraphCycleError(stack.slice(from).map(([k]) => nodeLabel(nodes[k]!, k)));
          }
        } else {
          state[top[0]] = 2;
          order.push(top[0]);
          stack.pop();
        }
      }
    }
    if (order.some((k, i) => k !== i)) this.nodes = order.map((k) => nodes[k]!);
    return this.nodes;
  }

  /**
   * Drops what nothing reads, in place: nodes none of whose outputs are used (repeatedly, so whole dead
   * branches go), then initializers no node, capture or output reads, and their value_info. Scope outputs
   * are never dropped, nor initializers the graph lists as inputs (dropping one would make it a required
   * feed), nor nodes that may have effects beyond their outputs: other domains' ops, and nodes whose
   * subgraphs hold one. Returns how many nodes and initializers went.
   */
  cleanup(): { nodes: number; initializers: number } {
    const nodes = this.nodes;
    const uses = new Map<string, number>();
    const bump = (x: string, by: number) => uses.set(x, (uses.get(x) ?? 0) + by);
    const readsOf = nodes.map(reads);
    readsOf.forEach((r) => r.forEach((x) => bump(x, 1)));
    for (const o of this.outputs) bump(o, 1);
    const dead = new Set<number>();
    const unused = (n: NodeProto) => (n.output ?? []).every((o) => !o || !uses.get(o));
    // reverse order first reaches a dead branch's end, so one pass usually suffices; loop until stable
    for (let again = true; again; ) {
      again = false;
      for (let i = nodes.length - 1; i >= 0; i--) {
        const n = nodes[i]!;
        if (dead.has(i) || !(n.output ?? []).length || !pure(n) || !unused(n)) continue;
        dead.add(i);
        readsOf[i]!.forEach((x) => bump(x, -1));
        again = true;
      }
    }
    const gone = new Set<string>();
    for (const i of dead) for (const o of nodes[i]!.output ?? []) gone.add(o);
    if (dead.size) this.nodes = nodes.filter((_, i) => !dead.has(i));
    let initializers = 0;
    if (this.scope.kind === 'graph') {
      const g = this.scope.graph;
      const inputs = new Set((g.input ?? []).map((v) => v.name));
      const drop = (name: string | undefined) => {
        if (!name || inputs.has(name) || uses.get(name)) return false;
        gone.add(name);
        return true;
      };
      const before = (g.initializer ?? []).length + (g.sparseInitializer ?? []).length;
      if (g.initializer) g.initializer = g.initializer.filter((t) => !drop(t.name));
      if (g.sparseInitializer) g.sparseInitializer = g.sparseInitializer.filter((t) => !drop(t.values?.name));
      initializers = before - (g.initializer ?? []).length - (g.sparseInitializer ?? []).length;
      if (g.valueInfo && gone.size) g.valueInfo = g.valueInfo.filter((v) => !gone.has(v.name ?? ''));
    }
    return { nodes: dead.size, initializers };
  }

  private indexed(): Index {
    if (this.index) return this.index;
    const producer = new Map<string, NodeProto>();
    const consumers = new Map<string, NodeProto[]>();
    const uses = new Map<string, number>();
    for (const n of this.nodes) {
      for (const o of n.output ?? []) if (o && !producer.has(o)) producer.set(o, n);
      for (const x of reads(n)) {
        uses.set(x, (uses.get(x) ?? 0) + 1);
        const list = consumers.get(x);
        if (!list) consumers.set(x, [n]);
        else if (list[list.length - 1] !== n) list.push(n);
      }
    }
    for (const o of this.outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
    return (this.index = { producer, consumers, uses });
  }
}
