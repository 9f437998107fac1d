/**
 * The inference engine, op by op (shapes.cases.ts), against onnxruntime's real output dims and types on a
 * one-node model per case; hostile nodes; whole graphs with constant folding; and every real model.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { floatAttr, intAttr, intsAttr, makeNode, stringAttr, tensorAttr } from '../../src/onnx/attrs.js';
import { DataType, dtypeName } from '../../src/onnx/dtype.js';
import { opsetVersion } from '../../src/onnx/read.js';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import { FUNCTION_DOMAIN } from '../../src/convert/forms.js';
import { inferGraph, inferNode, inferScope, OPS, valueTypeOf, type Facts, type StaticInfo } from '../../src/onnx/shapes.js';
import type { AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfo } from '../../src/onnx/types.js';
import { scopes, type Scope } from '../../src/onnx/walk.js';
import { allFixtureModels, FIXTURES, ROOT, session } from '../helpers.js';
import { CASES, type Case, type In } from './shapes.cases.js';

const label = (c: Case) => `${c.op}${c.opset ? `-${c.opset}` : ''}${c.what ? `: ${c.what}` : ''}`;
const outNames = (c: Case) => c.out.map((_, k) => `y${k}`);
const inNames = (c: Case) => c.in.map((x, k) => (x.kind === 'absent' ? '' : `x${k}`));
const nodeOf = (c: Case): NodeProto => makeNode(c.op, inNames(c), outNames(c), 'n', c.attrs ?? [], c.domain);

function factsOf(x: In): Facts | undefined {
  if (x.kind === 'absent') return undefined;
  if (x.kind === 'input') return { elemType: x.elemType, shape: x.dims };
  return { elemType: x.elemType, shape: x.dims, value: x.values };
}

/** The engine's answer, with only the fields a case compares. */
function inferred(c: Case): Facts[] {
  return inferNode(nodeOf(c), c.in.map(factsOf), c.opset ?? 13).map((got, k) => {
    const out: Facts = {};
    if (got.elemType !== undefined) out.elemType = got.elemType;
    if (got.shape !== undefined) out.shape = got.shape;
    if ('value' in c.out[k]!) out.value = got.value;
    return out;
  });
}

describe('inference, op by op', () => {
  it.each(CASES.map((c) => [label(c), c] as const))('%s', (_, c) => {
    expect(inferred(c)).toEqual(c.out);
  });

  it('every op in the table has a case', () => {
    const covered = new Set(CASES.filter((c) => !c.domain).map((c) => c.op));
    expect(Object.keys(OPS).filter((op) => !covered.has(op))).toEqual([]);
  });

  it("the ALReLU entry follows the converter's domain", () => {
    expect(CASES.some((c) => c.domain === FUNCTION_DOMAIN && c.op === 'ALReLU')).toBe(true);
  });
});

// ---- onnxruntime as the reference ----

const ORT_TYPE: Record<number, ort.Tensor.Type> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.INT64]: 'int64',
  [DataType.INT32]: 'int32',
  [DataType.BOOL]: 'bool',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
};

function tensorOf(name: string, elemType: number, dims: number[], values: number[]): TensorProto {
  const raw = (() => {
    switch (elemType) {
      case DataType.FLOAT:
        return new Uint8Array(Float32Array.from(values).buffer);
      case DataType.DOUBLE:
        return new Uint8Array(Float64Array.from(values).buffer);
      case DataType.INT64:
        return new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
      case DataType.INT32:
        return new Uint8Array(Int32Array.from(values).buffer);
      case DataType.INT8:
        return new Uint8Array(Int8Array.from(values).buffer);
      default:
        return Uint8Array.from(values);
    }
  })();
  return { name, dataType: elemType, dims, rawData: raw };
}

const vi = (name: string, elemType: number, dims?: number[]): ValueInfo => ({
  name,
  type: { tensorType: { elemType, ...(dims ? { shape: { dim: dims.map((d) => ({ dimValue: d })) } } : {}) } },
});

/** A one-node model of the case: runtime inputs as graph inputs, constants as initializers, outputs untyped in shape. */
function caseModel(c: Case): ModelProto {
  const opset = c.opset ?? 13;
  const names = inNames(c);
  const inputs: ValueInfo[] = [];
  const initializer: TensorProto[] = [];
  c.in.forEach((x, k) => {
    if (x.kind === 'input') inputs.push(vi(names[k]!, x.elemType, x.dims as number[]));
    if (x.kind === 'const') initializer.push(tensorOf(names[k]!, x.elemType, x.dims, x.values));
  });
  return {
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8,
    opsetImport: [{ domain: '', version: opset }],
    graph: { name: 'g', node: [nodeOf(c)], input: inputs, initializer, output: c.out.map((o, k) => vi(outNames(c)[k]!, o.elemType ?? DataType.FLOAT)) },
  };
}

/** Output dims and element types onnxruntime really produces. */
async function ortOutputs(c: Case): Promise<{ dims: number[]; type: string }[]> {
  const s = await session(encodeModel(caseModel(c)));
  try {
    const feeds: Record<string, ort.Tensor> = {};
    c.in.forEach((x, k) => {
      if (x.kind !== 'input') return;
      const dims = x.dims as number[];
      const n = dims.reduce((a, b) => a * b, 1);
      const type = ORT_TYPE[x.elemType]!;
      // integers are 1 (a valid divisor, axis, repeat or dim), floats vary
      const data =
        type === 'int64'
          ? new BigInt64Array(n).fill(1n)
          : type === 'float32'
            ? Float32Array.from({ length: n }, (_, i) => (i % 7) - 3)
            : type === 'float64'
              ? new Float64Array(n)
              : type === 'int32'
                ? new Int32Array(n).fill(1)
                : new Uint8Array(n).fill(1);
      feeds[`x${k}`] = new ort.Tensor(type, data, dims);
    });
    const out = await s.run(feeds);
    return outNames(c).map((n) => ({ dims: [...out[n]!.dims], type: out[n]!.type }));
  } finally {
    await s.release();
  }
}

const runnable = (c: Case) => c.ort !== false && c.in.every((x) => x.kind !== 'input' || x.dims.every((d) => typeof d === 'number'));

describe('inference agrees with onnxruntime', () => {
  it.each(CASES.filter(runnable).map((c) => [label(c), c] as const))('%s', async (_, c) => {
    const real = await ortOutputs(c);
    real.forEach((r, k) => {
      const want = c.out[k]!;
      // the expected values are what onnxruntime produces wherever the engine claims to know them
      // (an unknown dim in the expectation is one the engine cannot know; onnxruntime's value stands)
      if (want.shape)
        expect(
          r.dims.map((d, j) => (typeof want.shape![j] === 'number' ? d : want.shape![j])),
          `output ${k} dims`,
        ).toEqual(want.shape);
      if (want.elemType) expect(r.type, `output ${k} type`).toBe(ORT_TYPE[want.elemType]);
    });
  });

  it('runs most cases on onnxruntime', () => {
    expect(CASES.filter(runnable).length).toBeGreaterThan(CASES.length * 0.75);
  });
});

// ---- hostile nodes ----

/** Attributes with the names ops read, in wrong or absurd forms. */
const HOSTILE_ATTRS: AttributeProto[][] = [
  [],
  [intAttr('axis', 99), intAttr('keepdims', 0), intsAttr('perm', [0, 0]), intsAttr('axes', [7, -9]), intAttr('to', 0)],
  [intsAttr('kernel_shape', [0, -1]), intsAttr('strides', [0]), intsAttr('pads', [1]), intsAttr('dilations', []), stringAttr('auto_pad', 'SAME_UPPER')],
  [intsAttr('kernel_shape', [3, 3]), intsAttr('strides', [1e18, 1]), intsAttr('pads', [-100, 0, 0, 0]), intAttr('ceil_mode', 1), intAttr('group', 0)],
  [intsAttr('shape', [-1, -1]), intsAttr('split', [1, 2, 3]), intsAttr('starts', [Number.MAX_SAFE_INTEGER]), intsAttr('ends', [-Number.MAX_SAFE_INTEGER])],
  [intAttr('blocksize', 0), intAttr('k', -5), intAttr('hidden_size', -3), intsAttr('output_shape', [1, 2, 3, 4, 5, 6]), intsAttr('output_padding', [9])],
  [floatAttr('axis', 1.5), stringAttr('perm', 'x'), intAttr('start', -1e9), intAttr('end', 1e9), intAttr('allowzero', 1), intAttr('num_outputs', 0)],
  [tensorAttr('value', { dataType: DataType.INT64, dims: [3], int64Data: [] }), intAttr('batch_dims', 9), intAttr('layout', 1)],
];

const HOSTILE_INPUTS: (Facts | undefined)[][] = [
  [],
  [undefined, undefined, undefined],
  [{}, {}, {}, {}, {}],
  [{ shape: [] }, { shape: [] }, { shape: [] }],
  [{ shape: [0, 0, 0, 0] }, { shape: [0], value: [] }, { shape: [0], value: [] }],
  [
    { elemType: DataType.FLOAT, shape: [2, 3, 4, 5] },
    { elemType: DataType.INT64, shape: [3], value: [0, -1, -1] },
    { shape: [1], value: [0] },
    { value: [99] },
    { value: [0] },
  ],
  [{ shape: ['N', null, 'N'] }, { value: [1e300, -1e300] }, { value: [NaN] }, { value: [Infinity] }, { shape: [null] }],
  [{ shape: [1, 2] }, { shape: [3, 4, 5, 6, 7] }, { shape: [2], value: [-7, 7] }, { shape: [2], value: [5, 5] }],
];

describe('hostile nodes', () => {
  it('no entry throws, and every answer is clean (integer dims >= 0, strings or unknown)', () => {
    const ops = [...Object.keys(OPS), 'ALReLU', 'NotAnOp', ''];
    const bad: string[] = [];
    const cleanDim = (d: unknown) => d === null || typeof d === 'string' || (Number.isInteger(d) && (d as number) >= 0);
    let calls = 0;
    for (const op of ops) {
      for (const attrs of HOSTILE_ATTRS) {
        for (const inputs of HOSTILE_INPUTS) {
          for (const opset of [1, 9, 13, 18, 99]) {
            for (const nOut of [0, 1, 4]) {
              const n = makeNode(
                op,
                inputs.map((_, k) => (inputs[k] === undefined ? '' : `x${k}`)),
                Array.from({ length: nOut }, (_, k) => `y${k}`),
                'n',
                attrs,
              );
              const got = inferNode(n, inputs, opset);
              calls++;
              if (got.length !== nOut) bad.push(`${op}: ${got.length} outputs for ${nOut}`);
              for (const g of got) {
                if (g.shape && !g.shape.every(cleanDim)) bad.push(`${op}: shape ${JSON.stringify(g.shape)}`);
                if (g.elemType !== undefined && !(Number.isInteger(g.elemType) && g.elemType > 0)) bad.push(`${op}: type ${g.elemType}`);
              }
            }
          }
        }
      }
    }
    expect(bad.slice(0, 10)).toEqual([]);
    expect(calls).toBeGreaterThan(10_000);
  });

  it('a node with no input or output list, or no op type, is unknown', () => {
    expect(inferNode({}, [], 13)).toEqual([]);
    expect(inferNode({ opType: 'Relu', output: ['y'] }, [], 13)).toEqual([{}]);
    expect(inferNode({ output: ['y'] }, [], 13)).toEqual([{}]);
  });

  it('a constant whose data and dims disagree has no values (and does not throw)', () => {
    const short: TensorProto = { name: 'w', dataType: DataType.INT64, dims: [4], rawData: new Uint8Array(8) };
    const huge: TensorProto = { name: 'h', dataType: DataType.FLOAT, dims: [2 ** 40, 2 ** 40], rawData: new Uint8Array(4) };
    expect(inferNode(makeNode('Constant', [], ['y'], 'c', [tensorAttr('value', short)]), [], 13)).toEqual([{ elemType: DataType.INT64, shape: [4] }]);
    const info = inferGraph({ name: 'g', initializer: [short, huge], node: [makeNode('Reshape', ['h', 'w'], ['y'], 'r')] }, 13);
    expect(info.consts.has('w')).toBe(false);
    expect(info.consts.has('h')).toBe(false);
    expect(info.shapes.has('y')).toBe(false);
  });

  it('a Constant reads its value attribute by name, whatever else it carries', () => {
    const n = makeNode('Constant', [], ['y'], 'c', [intAttr('junk', 3), intsAttr('value_ints', [4, 5])]);
    expect(inferNode(n, [], 13)).toEqual([{ elemType: DataType.INT64, shape: [2], value: [4, 5] }]);
    expect(inferNode(makeNode('Constant', [], ['y'], 'c', [intAttr('junk', 3)]), [], 13)).toEqual([{}]);
  });

  it('an op named like an Object.prototype property is unknown, not a crash', () => {
    for (const op of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(inferNode(makeNode(op, ['x'], ['y'], 'n'), [{ shape: [1] }], 13)).toEqual([{}]);
    }
  });
});

// ---- whole graphs ----

describe('whole graphs', () => {
  it('folds the shape arithmetic exporters emit around Reshape', () => {
    // x [2,3,4] -> Shape -> Gather(0) -> Unsqueeze -> Concat([-1]) -> Reshape: [2, 12]
    const g = {
      name: 'g',
      input: [vi('x', DataType.FLOAT, [2, 3, 4])],
      output: [vi('y', DataType.FLOAT)],
      initializer: [tensorOf('zero', DataType.INT64, [], [0]), tensorOf('axes', DataType.INT64, [1], [0]), tensorOf('minus', DataType.INT64, [1], [-1])],
      node: [
        makeNode('Shape', ['x'], ['s'], 'a'),
        makeNode('Gather', ['s', 'zero'], ['b'], 'b'),
        makeNode('Unsqueeze', ['b', 'axes'], ['bu'], 'c'),
        makeNode('Concat', ['bu', 'minus'], ['t'], 'd', [intAttr('axis', 0)]),
        makeNode('Reshape', ['x', 't'], ['y'], 'e'),
      ],
    };
    const info = inferGraph(g, 13);
    expect(info.consts.get('s')).toEqual([2, 3, 4]);
    expect(info.consts.get('b')).toEqual([2]);
    expect(info.consts.get('t')).toEqual([2, -1]);
    expect(info.shapes.get('y')).toEqual([2, 12]);
    expect(info.types.get('y')).toBe(DataType.FLOAT);
  });

  it('carries symbolic dims through shape tensors: Reshape, Expand and ConstantOfShape of Shape(v) are shaped like v', () => {
    // x [N, 3, 4]; t = Concat(Slice(Shape(x), 0, 1), [12]) = [N, 12]; e = Expand(1-D ones, Shape(Gather(...)))
    const g = {
      name: 'g',
      input: [vi('x', DataType.FLOAT, [2, 3, 4]), vi('v', DataType.FLOAT, [1])],
      initializer: [
        tensorOf('zero', DataType.INT64, [1], [0]),
        tensorOf('one', DataType.INT64, [1], [1]),
        tensorOf('twelve', DataType.INT64, [1], [12]),
        tensorOf('last', DataType.INT64, [], [2]),
      ],
      node: [
        makeNode('Shape', ['x'], ['s'], 'a'),
        makeNode('Slice', ['s', 'zero', 'one'], ['n'], 'b'),
        makeNode('Concat', ['n', 'twelve'], ['t'], 'c', [intAttr('axis', 0)]),
        makeNode('Reshape', ['x', 't'], ['y'], 'd'),
        makeNode('Expand', ['v', 's'], ['e'], 'e'),
        makeNode('ConstantOfShape', ['t'], ['z'], 'f'),
        makeNode('Gather', ['s', 'last'], ['k'], 'g'),
        makeNode('Unsqueeze', ['k', 'zero'], ['ku'], 'h'),
        makeNode('Reshape', ['x', 'ku'], ['flat'], 'i', []),
      ],
    };
    g.input[0]!.type!.tensorType!.shape!.dim![0] = { dimParam: 'N' };
    const info = inferGraph(g, 13);
    expect(info.dims.get('s')).toEqual(['N', 3, 4]);
    expect(info.consts.has('s')).toBe(false);
    expect(info.dims.get('t')).toEqual(['N', 12]);
    expect(info.shapes.get('y')).toEqual(['N', 12]);
    expect(info.shapes.get('e')).toEqual(['N', 3, 4]);
    expect(info.shapes.get('z')).toEqual(['N', 12]);
    expect(info.consts.get('k')).toEqual([4]);
    expect(info.shapes.get('flat')).toEqual([4]);
  });

  it('declared facts win over inferred ones; a subgraph sees its outer scope', () => {
    const g = {
      name: 'g',
      input: [vi('x', DataType.FLOAT, [2, 3])],
      output: [],
      valueInfo: [{ name: 'y', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'A' }, { dimValue: 3 }] } } } }],
      node: [makeNode('Relu', ['x'], ['y'], 'r')],
    };
    const outer = inferGraph(g, 13);
    expect(outer.shapes.get('y')).toEqual(['A', 3]);
    const inner = inferGraph({ name: 'sub', node: [makeNode('Abs', ['x'], ['z'], 'a')] }, 13, outer);
    expect(inner.shapes.get('z')).toEqual([2, 3]);
    expect(outer.shapes.has('z')).toBe(false);
  });

  it('nodes out of topological order leave their outputs unknown rather than guessed', () => {
    const g = { name: 'g', input: [vi('x', DataType.FLOAT, [2])], node: [makeNode('Abs', ['r'], ['y'], 'a'), makeNode('Relu', ['x'], ['r'], 'b')] };
    const info = inferGraph(g, 13);
    expect(info.shapes.get('r')).toEqual([2]);
    expect(info.shapes.has('y')).toBe(false);
  });
});

// ---- every real model ----

const MODELS = [
  ...allFixtureModels(),
  ...readdirSync(join(ROOT, 'models'))
    .filter((f) => f.endsWith('.onnx'))
    .map((f) => join(ROOT, 'models', f)),
];

/** Infers every scope of a model, as convert does, with the graph's own declarations of inner values removed. */
function inferModel(m: ModelProto): { main?: StaticInfo; all: number } {
  const infoOf = new Map<Scope, StaticInfo>();
  let all = 0;
  const opset = opsetVersion(m);
  const all_ = scopes(m);
  for (const s of all_) {
    const info = inferScope(s, opset, s.kind === 'graph' && s.parent ? infoOf.get(s.parent) : undefined);
    infoOf.set(s, info);
    all += info.shapes.size;
  }
  return { main: m.graph ? infoOf.get(all_[0]!) : undefined, all };
}

/** A declared shape with every dim fixed or named. */
const declaredShape = (v: ValueInfo): (number | string)[] | undefined => {
  const s = valueTypeOf(v.type)?.shape;
  return s?.every((d) => d !== null) ? (s as (number | string)[]) : undefined;
};

describe('every real model', () => {
  const rel = (p: string) => p.replace(`${FIXTURES}/`, '').replace(`${ROOT}/`, '');
  const inferredOutputs: string[] = [];

  it.each(MODELS.map((p) => [rel(p), p] as const))('%s: inferred without throwing; outputs and value_info match the declared ones', (_, p) => {
    const m = decodeModel(readFileSync(p));
    expect(() => inferModel(m)).not.toThrow();
    // again, without the declarations of outputs and inner values: what the engine works out itself
    const declared = [...(m.graph?.output ?? []), ...(m.graph?.valueInfo ?? [])];
    const bare = decodeModel(readFileSync(p));
    if (!bare.graph) return;
    bare.graph.output = [];
    bare.graph.valueInfo = [];
    const { main } = inferModel(bare);
    for (const o of declared) {
      const want = declaredShape(o);
      const got = main!.shapes.get(o.name ?? '');
      if (want && got) {
        // every dim the engine claims matches the declaration (an unknown one claims nothing)
        expect(
          got.map((d, j) => (d === null ? want[j] : d)),
          `${o.name}`,
        ).toEqual(want);
        if (JSON.stringify(got) === JSON.stringify(want) && m.graph?.output?.includes(o)) inferredOutputs.push(`${rel(p)}:${o.name}`);
      }
      const t = valueTypeOf(o.type)?.elemType;
      const gt = main!.types.get(o.name ?? '');
      if (t && gt) expect(dtypeName(gt), `${o.name} type`).toBe(dtypeName(t));
    }
  });

  it('works the outputs of the real CNNs out from their inputs alone', () => {
    for (const m of [
      'light_resnet50.onnx',
      'light_squeezenet.onnx',
      'light_densenet121.onnx',
      'models/mnist-cnn.onnx',
      'models/iris-mlp.onnx',
      'mnist_pytorch2/mnist.onnx',
    ]) {
      expect(
        inferredOutputs.some((o) => o.includes(m)),
        m,
      ).toBe(true);
    }
  });
});
