/**
 * graphProblems: every structural problem named with its place, in the main graph, in If/Loop bodies and
 * in model-local functions. onnxruntime is the independent reference: every main-graph problem found here
 * makes it refuse the model too, and every oddity accepted here (unsorted nodes, captures, shadowing,
 * initializers listed as inputs) it loads. Every real model and every converted one passes.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/convert/convert.js';
import type { Form } from '../../src/convert/forms.js';
import { graphAttr, makeNode } from '../../src/onnx/attrs.js';
import { DataType } from '../../src/onnx/dtype.js';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import type { GraphProto, ModelProto, NodeProto, ValueInfo } from '../../src/onnx/types.js';
import { assertValidGraph, graphProblems } from '../../src/onnx/validate.js';
import { isUserError } from '../../src/errors.js';
import { allFixtureModels, FIXTURES, ROOT } from '../helpers.js';
import { buildModel, floatTensor, tensorInfo } from '../convert/build.js';

const vec = (n: string): ValueInfo => tensorInfo(n, DataType.FLOAT, [2]);
const cond = tensorInfo('c', DataType.BOOL, []);
const node = (op: string, ins: string[], outs: string[], name: string, attrs: NodeProto['attribute'] = []) => makeNode(op, ins, outs, name, attrs);
const W = floatTensor('w', [2], [1, 2]);

/** x (and w) -> nodes -> outputs, in the main graph. */
function main(nodes: NodeProto[], outputs: string[] = ['y'], inputs: ValueInfo[] = [vec('x')]): ModelProto {
  return buildModel({ nodes, inputs, outputs: outputs.map(vec), initializers: [W] });
}

/** The same body placed as the then-branch of an If in a valid main graph: `x` and `pre` are outer values, `w` its own. */
function inIf(nodes: NodeProto[], outputs: string[] = ['y'], inputs: ValueInfo[] = []): ModelProto {
  const body: GraphProto = { name: 'then', node: nodes, input: inputs, output: outputs.map(vec), initializer: [W] };
  const other: GraphProto = { name: 'else', node: [node('Identity', ['x'], ['e'], 'e')], input: [], output: [vec('e')] };
  return buildModel({
    nodes: [node('Relu', ['x'], ['pre'], 'pre'), node('If', ['c'], ['out'], 'branch', [graphAttr('then_branch', body), graphAttr('else_branch', other)])],
    inputs: [vec('x'), cond],
    outputs: [vec('out')],
    initializers: [W],
  });
}

/** The same body as a model-local function F(x) -> outputs called from a valid main graph. */
function inFunction(nodes: NodeProto[], outputs: string[] = ['y'], inputs: string[] = ['x']): ModelProto {
  const m = buildModel({ nodes: [makeNode('F', ['x'], ['out'], 'call', [], 'local')], inputs: [vec('x')], outputs: [vec('out')], initializers: [W] });
  m.opsetImport!.push({ domain: 'local', version: 1 });
  m.functions = [{ name: 'F', domain: 'local', input: inputs, output: outputs, node: nodes, opsetImport: [{ domain: '', version: 13 }] }];
  return m;
}

async function ortLoads(m: ModelProto): Promise<boolean> {
  try {
    const s = await ort.InferenceSession.create(encodeModel(m), { logSeverityLevel: 4 });
    await s.release();
    return true;
  } catch {
    return false;
  }
}

/** Each problem kind as a body, with the message expected in every place it can stand. */
interface Case {
  kind: string;
  nodes: NodeProto[];
  outputs?: string[];
  message: RegExp;
  ortRefuses: boolean;
  /** a function has no initializers: the body and message to use there */
  fn?: { nodes: NodeProto[]; message: RegExp };
}
const CASES: Case[] = [
  { kind: 'undefined input', nodes: [node('Add', ['x', 'x9'], ['y'], 'add1')], message: /node 'add1' \(Add\) input 'x9' is not defined/, ortRefuses: true },
  {
    kind: 'two nodes produce one value',
    nodes: [node('Relu', ['x'], ['y'], 'a'), node('Neg', ['x'], ['y'], 'b')],
    message: /node 'b' \(Neg\) output 'y' is also produced by node 'a' \(Relu\)/,
    ortRefuses: true,
  },
  {
    kind: 'one node lists an output twice',
    nodes: [node('Split', ['x'], ['y', 'y'], 's')],
    message: /node 's' \(Split\) lists output 'y' twice/,
    ortRefuses: true,
  },
  {
    kind: 'output redefines an initializer',
    nodes: [node('Relu', ['x'], ['w'], 'a'), node('Add', ['x', 'w'], ['y'], 'b')],
    message: /node 'a' \(Relu\) output 'w' redefines the initializer of that name/,
    ortRefuses: true,
    fn: {
      nodes: [node('Relu', ['x'], ['x'], 'a'), node('Neg', ['x'], ['y'], 'b')],
      message: /node 'a' \(Relu\) output 'x' redefines the function input of that name/,
    },
  },
  { kind: 'output listed twice', nodes: [node('Relu', ['x'], ['y'], 'a')], outputs: ['y', 'y'], message: /output 'y' is listed twice/, ortRefuses: false },
  {
    kind: 'output nothing produces',
    nodes: [node('Relu', ['x'], ['y'], 'a')],
    outputs: ['y', 'z'],
    message: /output 'z' is not produced by any node/,
    ortRefuses: true,
  },
  { kind: 'output without a name', nodes: [node('Relu', ['x'], ['y'], 'a')], outputs: ['y', ''], message: /output #1 has no name/, ortRefuses: true },
  {
    kind: 'two-node cycle',
    nodes: [node('Add', ['x', 'b'], ['a'], 'na'), node('Relu', ['a'], ['b'], 'nb'), node('Relu', ['a'], ['y'], 'ny')],
    message: /nodes 'na' -> 'nb' -> 'na' form a cycle/,
    ortRefuses: true,
  },
  { kind: 'self loop', nodes: [node('Add', ['x', 'y'], ['y'], 'acc')], message: /node 'acc' \(Add\) reads its own output/, ortRefuses: true },
];

describe('graphProblems: each kind, in each place', () => {
  for (const c of CASES) {
    it(`${c.kind}: main graph (onnxruntime ${c.ortRefuses ? 'refuses it too' : 'loads it; refused anyway'})`, async () => {
      const m = main(c.nodes, c.outputs);
      const problems = graphProblems(m);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(c.message);
      // The main graph's messages carry no scope prefix.
      expect(problems[0]).toMatch(/^(node|nodes|graph) /);
      if (c.ortRefuses) expect(await ortLoads(m)).toBe(false);
    });
    it(`${c.kind}: If branch, named by its path`, () => {
      const problems = graphProblems(inIf(c.nodes, c.outputs));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^main\/branch\.then_branch: /);
      expect(problems[0]).toMatch(c.message);
    });
    it(`${c.kind}: model-local function`, () => {
      const problems = graphProblems(inFunction(c.fn?.nodes ?? c.nodes, c.outputs));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^function local:F: /);
      expect(problems[0]).toMatch(c.fn?.message ?? c.message);
    });
  }

  it('graph inputs and initializers: listed twice, without a name, shadowed by a node output', async () => {
    const dupIn = main([node('Relu', ['x'], ['y'], 'a')], ['y'], [vec('x'), vec('x')]);
    expect(graphProblems(dupIn)).toEqual(["graph input 'x' is listed twice"]);
    expect(await ortLoads(dupIn)).toBe(false);
    const shadow = main([node('Relu', ['x'], ['x'], 'a'), node('Abs', ['x'], ['y'], 'b')]);
    expect(graphProblems(shadow)).toEqual(["node 'a' (Relu) output 'x' redefines the graph input of that name"]);
    expect(await ortLoads(shadow)).toBe(false);
    const dupInit = main([node('Add', ['x', 'w'], ['y'], 'a')]);
    dupInit.graph!.initializer!.push(floatTensor('w', [2], [5, 6]));
    expect(graphProblems(dupInit)).toEqual(["initializer 'w' is defined twice"]);
    const unnamed = main([node('Relu', ['x'], ['y'], 'a')]);
    unnamed.graph!.initializer!.push(floatTensor('', [2], [5, 6]));
    unnamed.graph!.input!.push({ type: vec('q').type });
    expect(graphProblems(unnamed)).toEqual(['graph input #1 has no name', 'initializer #1 has no name']);
    const fnDupIn = inFunction([node('Add', ['x', 'x'], ['y'], 'a')], ['y'], ['x', 'x']);
    expect(graphProblems(fnDupIn)).toEqual(["function local:F: function input 'x' is listed twice"]);
  });

  it('an initializer listed as a graph input must fit what the input declares; onnxruntime agrees on each case', async () => {
    const dim = (d: number | string) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d });
    const declared: [string, ValueInfo['type'], string | null][] = [
      [
        'other fixed dims',
        { tensorType: { elemType: DataType.FLOAT, shape: { dim: [dim(1)] } } },
        "graph input 'w' is declared [1] but its initializer is [2]",
      ],
      [
        'other rank',
        { tensorType: { elemType: DataType.FLOAT, shape: { dim: [dim(1), dim(2)] } } },
        "graph input 'w' is declared [1, 2] but its initializer is [2]",
      ],
      [
        'other element type',
        { tensorType: { elemType: DataType.DOUBLE, shape: { dim: [dim(2)] } } },
        "graph input 'w' is declared double but its initializer is float",
      ],
      ['symbolic dims', { tensorType: { elemType: DataType.FLOAT, shape: { dim: [dim('n')] } } }, null],
      ['no shape', { tensorType: { elemType: DataType.FLOAT } }, null],
      ['the same', { tensorType: { elemType: DataType.FLOAT, shape: { dim: [dim(2)] } } }, null],
    ];
    for (const [what, type, message] of declared) {
      const m = main([node('Add', ['x', 'w'], ['y'], 'a')], ['y'], [vec('x'), { name: 'w', type }]);
      expect(graphProblems(m), what).toEqual(message ? [message] : []);
      expect(await ortLoads(m), what).toBe(message === null);
    }
  });

  it("a function cannot read the main graph's values; a subgraph can, at any depth", () => {
    expect(graphProblems(inFunction([node('Add', ['x', 'w'], ['y'], 'a')]))).toEqual(["function local:F: node 'a' (Add) input 'w' is not defined"]);
    expect(graphProblems(inIf([node('Add', ['pre', 'w'], ['y'], 'a')]))).toEqual([]);
    // Two levels down: the inner If reads 'pre' and 'w' from the main graph, and 'y0' from the branch around it.
    const inner = node('If', ['c'], ['y'], 'inner', [
      graphAttr('then_branch', { name: 't', node: [node('Add', ['pre', 'y0'], ['t'], 'deep')], input: [], output: [vec('t')] }),
      graphAttr('else_branch', { name: 'e', node: [node('Mul', ['w', 'nope'], ['e2'], 'deep2')], input: [], output: [vec('e2')] }),
    ]);
    const m = inIf([node('Relu', ['x'], ['y0'], 'r'), inner]);
    expect(graphProblems(m)).toEqual(["main/branch.then_branch/inner.else_branch: node 'deep2' (Mul) input 'nope' is not defined"]);
  });

  it('a cycle through a subgraph capture: the If reads, inside its branch, a value computed from its own output', async () => {
    const body: GraphProto = { name: 't', node: [node('Identity', ['late'], ['t'], 'cap')], input: [], output: [vec('t')] };
    const m = buildModel({
      nodes: [
        node('If', ['c'], ['out'], 'branch', [graphAttr('then_branch', body), graphAttr('else_branch', { ...body, name: 'e' })]),
        node('Relu', ['out'], ['late'], 'after'),
      ],
      inputs: [vec('x'), cond],
      outputs: [vec('late')],
    });
    expect(graphProblems(m)).toEqual(["nodes 'branch' -> 'after' -> 'branch' form a cycle"]);
    expect(await ortLoads(m)).toBe(false);
    // The same capture without the back edge is fine, even when the producer is written after the If.
    m.graph!.node![1] = node('Relu', ['x'], ['late'], 'after');
    expect(graphProblems(m)).toEqual([]);
    expect(await ortLoads(m)).toBe(true);
  });

  it('lists every problem, in the order met, and the first is the one convert reports', () => {
    const m = main(
      [node('Add', ['x', 'u1'], ['a'], 'n1'), node('Relu', ['a'], ['a'], 'n2'), node('Neg', ['b'], ['b2'], 'n3'), node('Abs', ['b2'], ['b'], 'n4')],
      ['y'],
    );
    expect(graphProblems(m)).toEqual([
      "node 'n2' (Relu) output 'a' is also produced by node 'n1' (Add)",
      "node 'n1' (Add) input 'u1' is not defined",
      "graph output 'y' is not produced by any node",
      "nodes 'n3' -> 'n4' -> 'n3' form a cycle",
    ]);
    let message = '';
    try {
      assertValidGraph('m.onnx', m);
    } catch (e) {
      expect(isUserError(e)).toBe(true);
      message = (e as Error).message;
    }
    expect(message).toBe("m.onnx: invalid graph: node 'n2' (Relu) output 'a' is also produced by node 'n1' (Add) (and 3 more problems)");
  });
});

describe('names from the model', () => {
  it('are quoted with control characters escaped, so every message is one line that cannot drive a terminal', () => {
    const m = main([node('Relu', ['x\n\x1b[2J'], ['y'], 'r\rr')]);
    m.graph!.node![0]!.opType = 'Op\u202e';
    const problems = graphProblems(m);
    expect(problems).toEqual(["node 'r\\x0dr' (Op\\u{202e}) input 'x\\x0a\\x1b[2J' is not defined"]);
    expect(problems[0]).not.toMatch(/[\u0000-\u001f\u202e]/);
  });
});

describe('what is valid', () => {
  it('unsorted nodes, optional inputs and outputs left out (""), initializers listed as inputs, inputs passed through as outputs', async () => {
    const m = buildModel({
      nodes: [node('Relu', ['a'], ['y'], 'second'), node('Clip', ['x', '', 'w'], ['a'], 'first'), node('Dropout', ['x'], ['d', ''], 'drop')],
      inputs: [vec('x'), vec('w')],
      outputs: [vec('y'), vec('x'), vec('d')],
      initializers: [W],
    });
    expect(graphProblems(m)).toEqual([]);
    expect(await ortLoads(m)).toBe(true);
  });

  it('a Loop body whose inputs shadow outer names and which passes its own input through', async () => {
    const body: GraphProto = {
      name: 'body',
      node: [node('Add', ['x', 'pre'], ['x_next'], 'step'), node('Identity', ['cond'], ['cond_out'], 'keep')],
      input: [tensorInfo('i', DataType.INT64, []), tensorInfo('cond', DataType.BOOL, []), vec('x')],
      output: [tensorInfo('cond_out', DataType.BOOL, []), vec('x_next')],
    };
    body.output![0] = tensorInfo('cond', DataType.BOOL, []);
    body.node!.pop();
    const m = buildModel({
      nodes: [node('Relu', ['x'], ['pre'], 'pre'), node('Loop', ['n', '', 'x'], ['looped'], 'loop', [graphAttr('body', body)])],
      inputs: [vec('x'), tensorInfo('n', DataType.INT64, [])],
      outputs: [vec('looped')],
    });
    expect(graphProblems(m)).toEqual([]);
    expect(await ortLoads(m)).toBe(true);
  });

  it('but a branch may not return an outer value directly (onnxruntime refuses it too)', async () => {
    const passThrough = (name: string): GraphProto => ({ name, node: [], input: [], output: [vec('pre')] });
    const m = buildModel({
      nodes: [
        node('Relu', ['x'], ['pre'], 'pre'),
        node('If', ['c'], ['y'], 'pick', [graphAttr('then_branch', passThrough('t')), graphAttr('else_branch', passThrough('e'))]),
      ],
      inputs: [vec('x'), cond],
      outputs: [vec('y')],
    });
    expect(graphProblems(m)).toEqual([
      "main/pick.then_branch: subgraph output 'pre' is an outer-scope value returned directly (needs an Identity node)",
      "main/pick.else_branch: subgraph output 'pre' is an outer-scope value returned directly (needs an Identity node)",
    ]);
    expect(await ortLoads(m)).toBe(false);
  });

  const models = [...allFixtureModels(), join(ROOT, 'models/mnist-cnn.onnx'), join(ROOT, 'models/iris-mlp.onnx')];
  it(`every real model (${models.length}: fixtures and models/), and each converted in every form`, () => {
    for (const file of models) {
      const name = file.startsWith(FIXTURES) ? relative(FIXTURES, file) : relative(ROOT, file);
      expect(graphProblems(decodeModel(readFileSync(file))), name).toEqual([]);
      for (const form of ['subgraph', 'fused', 'function'] as Form[]) {
        const m = decodeModel(readFileSync(file));
        if (convert(m, { form }).replaced) expect(graphProblems(m), `${name} ${form}`).toEqual([]);
      }
    }
  });
});

describe('hostile sizes: linear cost, bounded output', () => {
  it('a 100,000-node chain, a 100,000-node cycle and 100,000 undefined inputs: each checked in linear time', () => {
    const n = 100_000;
    const chain = Array.from({ length: n }, (_, i) => node('Relu', [i ? `v${i - 1}` : 'x'], [i === n - 1 ? 'y' : `v${i}`], `r${i}`));
    let t = performance.now();
    expect(graphProblems(main(chain))).toEqual([]);
    expect(performance.now() - t).toBeLessThan(5000);

    // The same chain closed into a ring: one message, its middle elided.
    const ring = chain.map((nd, i) => (i === 0 ? node('Add', ['x', 'y'], ['v0'], 'r0') : nd));
    t = performance.now();
    const cyc = graphProblems(main(ring));
    expect(performance.now() - t).toBeLessThan(5000);
    expect(cyc).toEqual([`nodes 'r0' -> 'r1' -> 'r2' -> ... (${n - 5} more) -> 'r99998' -> 'r99999' -> 'r0' form a cycle`]);

    const dangling = Array.from({ length: n }, (_, i) => node('Relu', [`u${i}`], [i === n - 1 ? 'y' : `v${i}`], `d${i}`));
    t = performance.now();
    const many = graphProblems(main(dangling));
    expect(performance.now() - t).toBeLessThan(5000);
    expect(many).toHaveLength(201);
    expect(many[0]).toBe("node 'd0' (Relu) input 'u0' is not defined");
    expect(many[200]).toBe(`... and ${n - 200} more problems`);
  });

  it('If nested 500 deep, each level reading the main graph: valid, and a problem at the bottom is found with its path', () => {
    let body: GraphProto = { name: 'leaf', node: [node('Add', ['x', 'w'], ['leaf'], 'leaf')], input: [], output: [vec('leaf')] };
    const other = (d: number): GraphProto => ({ name: `e${d}`, node: [node('Neg', ['x'], [`e${d}`], `neg${d}`)], input: [], output: [vec(`e${d}`)] });
    for (let d = 0; d < 500; d++) {
      body = {
        name: `g${d}`,
        node: [node('If', ['c'], [`o${d}`], `if${d}`, [graphAttr('then_branch', body), graphAttr('else_branch', other(d))])],
        input: [],
        output: [vec(`o${d}`)],
      };
    }
    const m = buildModel({ nodes: body.node!, inputs: [vec('x'), cond], outputs: [vec('o499')], initializers: [W] });
    expect(graphProblems(m)).toEqual([]);
    let leaf: GraphProto = m.graph!;
    while (leaf.node![0]!.opType === 'If') leaf = leaf.node![0]!.attribute![0]!.g!;
    leaf.node![0]!.input = ['x', 'gone'];
    const problems = graphProblems(m);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^main\/if499\.then_branch\/if498\.then_branch\/.*\/if0\.then_branch: node 'leaf' \(Add\) input 'gone' is not defined$/);
  });
});
