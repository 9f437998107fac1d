/**
 * Structural validity of a model's graphs: every value a node reads is defined, every value is defined
 * once, graph outputs exist, and no node depends on its own output. The main graph, If/Loop/Scan bodies at
 * any depth (which may read outer-scope values) and model-local functions (which may not) are checked.
 *
 * Node order alone is not a problem: onnxruntime sorts graphs itself and real exporters write unsorted
 * ones. A name bound in a subgraph may shadow an outer one (onnxruntime resolves the inner one first).
 * Training-info graphs are not checked: nothing here runs them.
 *
 * One pass over the model, linear in its size: names are resolved through one map from each name to its
 * innermost binding (bound on entering a scope, restored to the outer one on leaving), and cycles are found by one depth-first search per scope
 * in which a node that holds subgraphs also depends on every outer value they read. At most MAX_LISTED
 * messages are built (a cycle's costs its length); the rest are counted.
 */
import { UserError } from '../errors.js';
import { printable } from '../printable.js';
import { dtypeName } from './dtype.js';
import { int, type GraphProto, type ModelProto, type NodeProto, type TypeProto } from './types.js';
import { nodeLabel, subgraphsOf } from './walk.js';

/** A scope's body as the checks see it: graph and function bodies differ only in where names come from. */
interface Body {
  /** prefix of messages: '' for the main graph, else the scope's path and ': ' */
  where: string;
  nodes: NodeProto[];
  inputs: string[];
  initializers: string[];
  outputs: string[];
  /** 'graph' or 'function', for messages */
  kind: string;
  /** declared types of `inputs` and what `initializers` hold, index for index (graphs only) */
  inputTypes?: (TypeProto | undefined)[];
  initializerTypes?: { dataType: number; dims: number[] }[];
}

/** Where a name is bound: the scope's depth and its producer's index there (or INPUT, INITIALIZER). */
interface Def {
  depth: number;
  node: number;
  /** the binding of the same name in an outer scope, which this one shadows */
  outer: Def | undefined;
}
const INPUT = -1;
const INITIALIZER = -2;

/** The scopes being walked, outermost first: each one's dependency edges and the node being visited. */
interface Frame {
  /** deps[i]: indices of the nodes (of this scope) whose outputs node i reads, itself or through its subgraphs */
  deps: number[][];
  current: number;
}

/** Messages beyond this many are counted, not kept: a hostile model may hold millions of problems. */
const MAX_LISTED = 200;

class Problems {
  readonly list: string[] = [];
  more = 0;
  get full(): boolean {
    return this.list.length >= MAX_LISTED;
  }
  /** `message` is a thunk where building it costs more than O(1). */
  add(message: string | (() => string)): void {
    if (this.full) this.more++;
    else this.list.push(typeof message === 'string' ? message : message());
  }
}

/** A name quoted, its control characters escaped: names come from the model, and a message stays one line. */
const q = (s: string) => `'${printable(s)}'`;
const nodeText = (n: NodeProto, i: number) => `node ${q(nodeLabel(n, i))} (${printable(n.opType ?? '?')})`;

/**
 * Every structural problem of the model, in the order found (the first is the one to report); empty for a
 * valid model. Each message names the value or node and, outside the main graph, the scope it lives in.
 */
export function graphProblems(model: ModelProto): string[] {
  const problems = new Problems();
  const bound = new Map<string, Def>();
  if (model.graph) checkScope(graphBody(model.graph, '', 'graph'), [], bound, problems);
  for (const fn of model.functions ?? []) {
    const where = `function ${printable(`${fn.domain ? `${fn.domain}:` : ''}${fn.name ?? '?'}`)}: `;
    checkScope({ where, nodes: fn.node ?? [], inputs: fn.input ?? [], initializers: [], outputs: fn.output ?? [], kind: 'function' }, [], bound, problems);
  }
  if (problems.more) problems.list.push(`... and ${problems.more} more problems`);
  return problems.list;
}

/** Refuses a model with structural problems: a UserError about `file` naming the first one. */
export function assertValidGraph(file: string, model: ModelProto): void {
  const problems = graphProblems(model);
  if (problems.length === 0) return;
  const rest = problems.length - 1;
  throw new UserError(
    file,
    `invalid graph: ${problems[0]}${rest ? ` (and ${rest > MAX_LISTED ? 'more than ' + MAX_LISTED : rest} more problem${rest > 1 ? 's' : ''})` : ''}`,
  );
}

function graphBody(g: GraphProto, where: string, kind: string): Body {
  return {
    where,
    nodes: g.node ?? [],
    inputs: (g.input ?? []).map((v) => v.name ?? ''),
    initializers: [...(g.initializer ?? []).map((t) => t.name ?? ''), ...(g.sparseInitializer ?? []).map((s) => s.values?.name ?? '')],
    outputs: (g.output ?? []).map((v) => v.name ?? ''),
    kind,
    inputTypes: (g.input ?? []).map((v) => v.type),
    initializerTypes: [
      ...(g.initializer ?? []).map((t) => ({ dataType: t.dataType ?? 0, dims: (t.dims ?? []).map(int) })),
      ...(g.sparseInitializer ?? []).map((sp) => ({ dataType: sp.values?.dataType ?? 0, dims: (sp.dims ?? []).map(int) })),
    ],
  };
}

/**
 * Why an initializer cannot be the default of the graph input of its name (onnxruntime refuses the model:
 * "Shape of initializer does not match"), or undefined. Symbolic and unknown dims match anything.
 */
function defaultMismatch(declared: TypeProto | undefined, init: { dataType: number; dims: number[] }): string | undefined {
  const t = declared?.tensorType;
  if (!t) return undefined;
  if (t.elemType && init.dataType && t.elemType !== init.dataType)
    return `is declared ${dtypeName(t.elemType)} but its initializer is ${dtypeName(init.dataType)}`;
  const dims = t.shape?.dim;
  if (!dims) return undefined;
  const fits = dims.length === init.dims.length && dims.every((d, k) => d.dimValue === undefined || d.dimValue === null || int(d.dimValue) === init.dims[k]);
  const text = (ds: (number | string)[]) => `[${ds.join(', ')}]`;
  return fits
    ? undefined
    : `is declared ${text(dims.map((d) => (d.dimValue !== undefined && d.dimValue !== null ? int(d.dimValue) : d.dimParam || '?')))} but its initializer is ${text(init.dims)}`;
}

function checkScope(body: Body, frames: Frame[], bound: Map<string, Def>, problems: Problems): void {
  const depth = frames.length;
  const { where, nodes, kind } = body;
  const frame: Frame = { deps: nodes.map(() => []), current: -1 };
  frames.push(frame);

  // Bind every name the scope defines before reading any: node order does not matter, only cycles do.
  const names: string[] = [];
  /** Binds `name` in this scope; returns the binding it collides with there, if any. */
  const bind = (name: string, node: number): Def | undefined => {
    const top = bound.get(name);
    if (top?.depth === depth) return top;
    bound.set(name, { depth, node, outer: top });
    names.push(name);
    return undefined;
  };
  const inputIndex = new Map<string, number>();
  body.inputs.forEach((name, k) => {
    if (name === '') problems.add(`${where}${kind} input #${k} has no name`);
    else if (bind(name, INPUT)) problems.add(`${where}${kind} input ${q(name)} is listed twice`);
    else inputIndex.set(name, k);
  });
  body.initializers.forEach((name, k) => {
    if (name === '') return problems.add(`${where}initializer #${k} has no name`);
    const prior = bind(name, INITIALIZER)?.node;
    if (prior === INITIALIZER) return problems.add(`${where}initializer ${q(name)} is defined twice`);
    // An initializer may also be listed as a graph input: it is that input's default value, so it must fit it.
    const why = prior === INPUT ? defaultMismatch(body.inputTypes?.[inputIndex.get(name)!], body.initializerTypes![k]!) : undefined;
    if (why) problems.add(`${where}${kind} input ${q(name)} ${why}`);
  });
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) {
      if (o === '') continue; // an optional output left out
      const prior = bind(o, i)?.node;
      if (prior === undefined) continue;
      if (prior === i) problems.add(`${where}${nodeText(n, i)} lists output ${q(o)} twice`);
      else if (prior >= 0) problems.add(`${where}${nodeText(n, i)} output ${q(o)} is also produced by ${nodeText(nodes[prior]!, prior)}`);
      else problems.add(`${where}${nodeText(n, i)} output ${q(o)} redefines the ${prior === INITIALIZER ? 'initializer' : `${kind} input`} of that name`);
    }
  });

  /** Resolves a name read by the current node: a dependency on its producer, wherever that lives. */
  const read = (name: string): boolean => {
    const def = bound.get(name);
    if (!def) return false;
    // A read from an outer scope makes the node holding this subgraph there depend on the value's producer.
    const f = frames[def.depth]!;
    if (def.node >= 0) f.deps[f.current]!.push(def.node);
    return true;
  };
  nodes.forEach((n, i) => {
    frame.current = i;
    for (const x of n.input ?? []) {
      if (x !== '' && !read(x)) problems.add(`${where}${nodeText(n, i)} input ${q(x)} is not defined`);
    }
    for (const { attr, graph } of subgraphsOf(n)) {
      const path = `${where ? where.slice(0, -2) : 'main'}/${printable(`${nodeLabel(n, i)}.${attr.name ?? '?'}`)}`;
      checkScope(graphBody(graph, `${path}: `, 'subgraph'), frames, bound, problems);
    }
  });
  frame.current = -1;

  const outputs = new Set<string>();
  body.outputs.forEach((name, k) => {
    if (name === '') problems.add(`${where}${kind} output #${k} has no name`);
    else if (outputs.has(name)) problems.add(`${where}${kind} output ${q(name)} is listed twice`);
    else {
      outputs.add(name);
      const def = bound.get(name);
      if (!def) problems.add(`${where}${kind} output ${q(name)} is not produced by any node`);
      // onnxruntime refuses this ("outer scope value being returned directly"); an Identity node fixes it.
      else if (def.depth < depth) problems.add(`${where}${kind} output ${q(name)} is an outer-scope value returned directly (needs an Identity node)`);
    }
  });

  for (const name of names) {
    const outer = bound.get(name)!.outer;
    if (outer) bound.set(name, outer);
    else bound.delete(name);
  }
  frames.pop();
  cycles(frame.deps, (stack, from, to) => problems.add(() => `${where}${cycleText(nodes, cycleOrder(stack, from, to))}`));
}

/**
 * Calls `found` once per back edge of an iterative depth-first search over `deps`: `stack[from..to]` is then
 * a cycle, each node depending on the next and the last on the first. Linear: every node and edge once.
 */
function cycles(deps: number[][], found: (stack: number[], from: number, to: number) => void): void {
  // A node reading one value twice, or a subgraph reading it in many places, is one edge.
  const seen = new Int32Array(deps.length).fill(-1);
  const edges = deps.map((d, v) => d.filter((w) => (seen[w] === v ? false : ((seen[w] = v), true))));
  const state = new Uint8Array(deps.length); // 0 unvisited, 1 on the stack, 2 done
  const pos = new Int32Array(deps.length);
  const stack: number[] = [];
  const next: number[] = [];
  const enter = (v: number) => {
    state[v] = 1;
    pos[v] = stack.length;
    stack.push(v);
    next.push(0);
  };
  for (let root = 0; root < edges.length; root++) {
    if (state[root]) continue;
    enter(root);
    while (stack.length) {
      const top = stack.length - 1;
      const d = edges[stack[top]!]!;
      if (next[top]! < d.length) {
        const w = d[next[top]!++]!;
        if (state[w] === 0) enter(w);
        else if (state[w] === 1) found(stack, pos[w]!, top);
      } else {
        state[stack[top]!] = 2;
        stack.pop();
        next.pop();
      }
    }
  }
}

/** The cycle `stack[from..to]` in data-flow order (producer first), starting at the node written first. */
function cycleOrder(stack: number[], from: number, to: number): number[] {
  const flow = stack.slice(from, to + 1).reverse();
  let first = 0;
  for (let k = 1; k < flow.length; k++) if (flow[k]! < flow[first]!) first = k;
  return [...flow.slice(first), ...flow.slice(0, first)];
}

function cycleText(nodes: NodeProto[], cycle: number[]): string {
  if (cycle.length === 1) return `${nodeText(nodes[cycle[0]!]!, cycle[0]!)} reads its own output`;
  const name = (i: number) => q(nodeLabel(nodes[i]!, i));
  // A long cycle shows its ends: the names say where it is, the count how long it is.
  const shown = cycle.length <= 8 ? cycle.map(name) : [...cycle.slice(0, 3).map(name), `... (${cycle.length - 5} more)`, ...cycle.slice(-2).map(name)];
  return `nodes ${[...shown, name(cycle[0]!)].join(' -> ')} form a cycle`;
}
