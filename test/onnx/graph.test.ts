/**
 * The graph layer: producers, consumers and use counts with subgraph captures at any depth, a stable
 * toposort that refuses cycles, cleanup, fresh names. Cleanup is also checked where it matters: real
 * models give bit-identical outputs on onnxruntime before and after.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { floatAttr, graphAttr, makeNode } from '../../src/onnx/attrs.js';
import { DataType } from '../../src/onnx/dtype.js';
import { captures, Graph, GraphCycleError } from '../../src/onnx/graph.js';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import type { GraphProto, ModelProto, NodeProto } from '../../src/onnx/types.js';
import { floatTensor, tensorInfo } from '../convert/build.js';
import { randomFeeds, runModel } from '../../src/convert/verify.js';
import { bytesOf, fixture, ROOT } from '../helpers.js';

const f32 = (name: string, dims: (number | string)[] = [2]) => tensorInfo(name, DataType.FLOAT, dims);
const node = (op: string, ins: string[], outs: string[], name = outs[0] ?? op) => makeNode(op, ins, outs, name);
const body = (nodes: NodeProto[], outputs: string[], inputs: string[] = []): GraphProto => ({
  name: 'body',
  node: nodes,
  input: inputs.map((i) => f32(i)),
  output: outputs.map((o) => f32(o)),
});
const names = (ns: readonly NodeProto[]) => ns.map((n) => n.name);

/**
 * x -> a = Relu(x) -> If(cond) { then: Abs(a) -> t; else: If { Neg(b) } (b captured two levels down) }
 * b = Sigmoid(x) is read only inside the nested else-branch; c = Exp(x) only as a body's output.
 */
function nested(): GraphProto {
  const inner = body([node('Neg', ['b'], ['nb'])], ['nb']);
  const elseBranch = body([makeNode('If', ['cond'], ['e'], 'inner_if', [graphAttr('then_branch', inner), graphAttr('else_branch', body([], ['c']))])], ['e']);
  const thenBranch = body([node('Abs', ['a'], ['t']), node('Add', ['t', 'a'], ['t2'])], ['t2']);
  return {
    name: 'g',
    node: [
      node('Relu', ['x'], ['a']),
      node('Sigmoid', ['x'], ['b']),
      node('Exp', ['x'], ['c']),
      makeNode('If', ['cond'], ['y'], 'outer_if', [graphAttr('then_branch', thenBranch), graphAttr('else_branch', elseBranch)]),
      node('Mul', ['y', 'a'], ['z']),
    ],
    input: [f32('x'), tensorInfo('cond', DataType.BOOL, [])],
    output: [f32('z'), f32('a')],
  };
}

describe('Graph: producers, consumers, uses', () => {
  it('counts captures at any depth, body outputs that name outer values, and graph outputs', () => {
    const g = Graph.of(nested());
    const outerIf = g.nodes[3]!;
    expect(g.producer('a')?.name).toBe('a');
    expect(g.producer('x')).toBeUndefined();
    // a: read twice in the then-branch, once by Mul, once as a graph output
    expect(g.uses('a')).toBe(4);
    expect(names(g.consumers('a'))).toEqual(['outer_if', 'z']);
    // b: read only by Neg, two Ifs down; c: only as the inner else-branch's output
    expect(g.uses('b')).toBe(1);
    expect(g.consumers('b')).toEqual([outerIf]);
    expect(g.uses('c')).toBe(1);
    expect(g.uses('cond')).toBe(2); // outer If's input and the inner If's capture
    expect(g.uses('t')).toBe(0); // defined and read inside the body only
    expect(g.uses('z')).toBe(1);
    expect(captures(outerIf).sort()).toEqual(['a', 'a', 'b', 'c', 'cond'].sort());
  });

  it('a body that defines a name itself does not capture the outer value of that name', () => {
    const shadow = body([node('Relu', ['a'], ['r'])], ['r'], ['a']); // a is the body's own input
    const g = Graph.of({
      node: [node('Relu', ['x'], ['a']), makeNode('Loop', ['', 'cond'], ['y'], 'loop', [graphAttr('body', shadow)])],
      input: [f32('x')],
      output: [f32('y')],
    });
    expect(g.uses('a')).toBe(0);
    expect(g.consumers('a')).toEqual([]);
  });

  it('rebuilds its indexes after changed() and after nodes are replaced', () => {
    const proto: GraphProto = { node: [node('Relu', ['x'], ['a']), node('Abs', ['a'], ['y'])], input: [f32('x')], output: [f32('y')] };
    const g = Graph.of(proto);
    expect(g.uses('x')).toBe(1);
    proto.node![1]!.input = ['x'];
    expect(g.uses('x')).toBe(1); // stale until told
    g.changed();
    expect(g.uses('x')).toBe(2);
    g.nodes = [node('Neg', ['x'], ['y'])];
    expect(g.producer('a')).toBeUndefined();
    expect(proto.node!.map((n) => n.opType)).toEqual(['Neg']);
  });

  it('fresh names avoid every name of the scope, subgraphs included, and each other', () => {
    const g = Graph.of(nested());
    expect(g.freshName('t')).toBe('t_1'); // t exists only inside the then-branch
    expect(g.freshName('t')).toBe('t_2');
    expect(g.freshName('inner_if')).toBe('inner_if_1');
    expect(g.freshName('new')).toBe('new');
  });
});

describe('Graph: hostile shapes', () => {
  it('an empty GraphProto, nodes without inputs or outputs, empty optional names, a GRAPHS attribute', () => {
    const empty = Graph.of({});
    expect([empty.uses('x'), empty.toposort(), empty.cleanup()]).toEqual([0, [], { nodes: 0, initializers: 0 }]);
    const proto: GraphProto = {
      node: [
        { opType: 'Relu' }, // no input, no output: nothing to drop it for
        makeNode('Dropout', ['x', '', ''], ['', ''], 'unnamed_outputs'), // outputs all absent: dead
        makeNode(
          'Custom',
          ['x'],
          ['c'],
          'graphs',
          [{ name: 'bodies', type: 10, graphs: [body([node('Neg', ['x'], ['n'])], ['n']), body([], ['x'])] }],
          'com.example',
        ),
      ],
      output: [f32('c')],
    };
    const g = Graph.of(proto);
    expect(g.uses('x')).toBe(4); // Dropout, Custom, and both bodies
    expect(g.uses('')).toBe(0);
    expect(g.cleanup()).toEqual({ nodes: 1, initializers: 0 });
    expect(proto.node!.map((n) => n.name)).toEqual([undefined, 'graphs']);
  });

  it('two nodes writing one value (an invalid graph) do not break the indexes or the sort', () => {
    const proto: GraphProto = { node: [node('Abs', ['v'], ['y']), node('Relu', ['x'], ['v'], 'r1'), node('Neg', ['x'], ['v'], 'r2')], output: [f32('y')] };
    const g = Graph.of(proto);
    expect(g.producer('v')?.name).toBe('r1');
    expect(names(g.toposort())).toEqual(['r1', 'y', 'r2']);
  });
});

describe('Graph.toposort', () => {
  it('leaves a sorted graph exactly as it is', () => {
    const proto = nested();
    const before = [...proto.node!];
    const g = Graph.of(proto);
    g.toposort();
    expect(proto.node).toHaveLength(before.length);
    proto.node!.forEach((n, i) => expect(n).toBe(before[i]));
  });

  it('moves only the nodes that read something later, keeping independent nodes in their order', () => {
    const proto: GraphProto = {
      node: [node('Abs', ['b'], ['y']), node('Relu', ['x'], ['p']), node('Neg', ['a'], ['b']), node('Exp', ['x'], ['a']), node('Sin', ['x'], ['q'])],
      input: [f32('x')],
      output: [f32('y'), f32('p'), f32('q')],
    };
    Graph.of(proto).toposort();
    expect(proto.node!.map((n) => n.opType)).toEqual(['Exp', 'Neg', 'Abs', 'Relu', 'Sin']);
  });

  it('orders a node after the producers of what its subgraphs capture', () => {
    const proto = nested();
    const [relu, sigmoid, exp, outerIf, mul] = proto.node!;
    proto.node = [mul!, outerIf!, exp!, sigmoid!, relu!];
    Graph.of(proto).toposort();
    const at = (n: NodeProto) => proto.node!.indexOf(n);
    for (const p of [relu!, sigmoid!, exp!]) expect(at(p)).toBeLessThan(at(outerIf!));
    expect(at(outerIf!)).toBeLessThan(at(mul!));
    expect(at(relu!)).toBeLessThan(at(mul!));
  });

  it('refuses a cycle, naming the nodes in it, and leaves the nodes as they were', () => {
    const proto: GraphProto = {
      node: [node('Relu', ['x'], ['a']), node('Add', ['a', 'c'], ['b']), node('Neg', ['b'], ['c']), node('Abs', ['c'], ['y'])],
      input: [f32('x')],
      output: [f32('y')],
    };
    const before = [...proto.node!];
    let err: unknown;
    try {
      Graph.of(proto).toposort();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GraphCycleError);
    expect((err as GraphCycleError).nodes.sort()).toEqual(['b', 'c']);
    expect(proto.node).toEqual(before);
    // a node reading its own output is a cycle of one
    expect(() => Graph.of({ node: [node('Neg', ['s'], ['s'])], output: [f32('s')] }).toposort()).toThrow(GraphCycleError);
  });

  it('sorts a long chain written backwards without deep recursion', () => {
    const n = 50_000;
    const chain = Array.from({ length: n }, (_, i) => node('Neg', [i === 0 ? 'x' : `v${i - 1}`], [`v${i}`]));
    const proto: GraphProto = { node: [...chain].reverse(), input: [f32('x')], output: [f32(`v${n - 1}`)] };
    Graph.of(proto).toposort();
    expect(proto.node!.every((m, i) => m === chain[i])).toBe(true);
  });
});

describe('Graph.cleanup', () => {
  it('drops dead branches and unused initializers, and keeps outputs, captures, inputs and effects', () => {
    const proto = nested();
    proto.node!.push(
      node('Exp', ['x'], ['dead1']),
      node('Mul', ['dead1', 'w_dead'], ['dead2']), // reads an initializer nothing else reads
      node('Abs', ['dead2'], ['dead3']),
      makeNode('Log', ['x'], ['custom'], 'custom_op', [], 'com.example'), // may have effects: stays
      makeNode('If', ['cond'], ['ifc'], 'if_with_custom', [
        graphAttr('then_branch', body([makeNode('Log', ['x'], ['l'], 'l', [], 'com.example')], ['l'])),
        graphAttr('else_branch', body([], ['x'])),
      ]),
    );
    proto.initializer = [floatTensor('w_dead', [2], [1, 2]), floatTensor('w_input', [2], [3, 4]), floatTensor('w_cap', [2], [5, 6])];
    proto.input!.push(f32('w_input')); // an initializer listed as an input: an overridable default
    proto.valueInfo = [f32('dead2'), f32('a')];
    // w_cap is read only inside a subgraph
    proto.node!.push(
      makeNode('If', ['cond'], ['out2'], 'cap_if', [
        graphAttr('then_branch', body([node('Abs', ['w_cap'], ['k'])], ['k'])),
        graphAttr('else_branch', body([], ['w_cap'])),
      ]),
    );
    proto.output!.push(f32('out2'));
    const g = Graph.of(proto);
    expect(g.cleanup()).toEqual({ nodes: 3, initializers: 1 });
    expect(names(proto.node!)).toEqual(['a', 'b', 'c', 'outer_if', 'z', 'custom_op', 'if_with_custom', 'cap_if']);
    expect(proto.initializer.map((t) => t.name)).toEqual(['w_input', 'w_cap']);
    expect(proto.valueInfo.map((v) => v.name)).toEqual(['a']);
    expect(g.producer('dead1')).toBeUndefined();
    expect(g.cleanup()).toEqual({ nodes: 0, initializers: 0 });
  });

  it('keeps a graph output that is also an initializer, and every output of a node one of whose outputs is used', () => {
    const proto: GraphProto = {
      node: [makeNode('MaxPool', ['x'], ['p', 'idx'], 'pool', [floatAttr('unused', 0)])],
      input: [f32('x', [1, 1, 2])],
      output: [f32('p'), f32('w')],
      initializer: [floatTensor('w', [1], [1])],
    };
    expect(Graph.of(proto).cleanup()).toEqual({ nodes: 0, initializers: 0 });
  });

  it('cleans a function body against the function outputs', () => {
    const model: ModelProto = {
      functions: [{ name: 'F', domain: 'd', input: ['X'], output: ['Y'], node: [node('Relu', ['X'], ['T']), node('Abs', ['X'], ['Y'])] }],
    };
    const fn = model.functions![0]!;
    expect(new Graph({ kind: 'function', fn, path: 'F' }).cleanup()).toEqual({ nodes: 1, initializers: 0 });
    expect(fn.node!.map((n) => n.opType)).toEqual(['Abs']);
  });
});

async function outputsOf(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Uint8Array[]> {
  const out = await runModel(bytes, feeds);
  return Object.keys(out)
    .sort()
    .map((k) => Uint8Array.from(bytesOf(out[k]!)));
}

const bool = (v: boolean) => new ort.Tensor('bool', Uint8Array.of(v ? 1 : 0), []);

describe('Graph.cleanup on real models (onnxruntime, before and after)', () => {
  it('mnist-cnn with a dead branch added: the branch goes, the outputs stay bit-identical', async () => {
    const original = readFileSync(`${ROOT}/models/mnist-cnn.onnx`);
    const model = decodeModel(original);
    const g = Graph.of(model.graph!);
    const mid = model.graph!.node![2]!.output![0]!; // an activation the model keeps using
    const w = model.graph!.initializer![0]!.name!;
    const dead = g.freshName('dead');
    model.graph!.node!.splice(3, 0, node('Relu', [mid], [dead]), node('Mul', [dead, dead], [g.freshName('dead')]));
    model.graph!.initializer!.push(floatTensor(g.freshName('unused_w'), [1], [7]));
    g.changed();
    const feeds = randomFeeds(model, { N: 2 }, 7, 'mnist-cnn');
    const withDead = encodeModel(model);
    expect(g.cleanup()).toEqual({ nodes: 2, initializers: 1 });
    expect(model.graph!.initializer!.some((t) => t.name === w)).toBe(true);
    const cleaned = encodeModel(model);
    const [a, b, c] = await Promise.all([outputsOf(original, feeds), outputsOf(withDead, feeds), outputsOf(cleaned, feeds)]);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect(encodeModel(model)).toEqual(encodeModel(decodeModel(original))); // exactly the original again
  });

  // both branches of the If, and a Loop that runs three times: the captured Relu is used in every run
  it.each([
    ['burn-onnx/subgraph/outer_scope_ref.onnx', { condition: bool(true) }],
    ['burn-onnx/subgraph/outer_scope_ref.onnx', { condition: bool(false) }],
    ['burn-onnx/subgraph/outer_scope_loop.onnx', { max_iter: new ort.Tensor('int64', BigInt64Array.of(3n), []), cond_init: bool(true) }],
  ])('%s: values read only by a subgraph stay', async (file, fixed) => {
    const original = readFileSync(fixture(file));
    const model = decodeModel(original);
    const count = model.graph!.node!.length;
    expect(Graph.of(model.graph!).cleanup()).toEqual({ nodes: 0, initializers: 0 });
    expect(model.graph!.node).toHaveLength(count);
    const feeds = { ...randomFeeds(model, {}, 7, file), ...fixed };
    expect(await outputsOf(encodeModel(model), feeds)).toEqual(await outputsOf(original, feeds));
  });
});
