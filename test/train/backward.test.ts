/**
 * backward() as a whole: unsupported ops on the path fail clearly (and off the path don't), non-differentiable
 * parts get nothing, opsets are raised only when safe, and a real converted model (the MNIST fixture, opset 8
 * raised to 17, ALReLU as the model-local function) gets gradients that agree with finite differences.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { convert } from '../../src/convert/index.js';
import { makeNode } from '../../src/onnx/attrs.js';
import { DataType } from '../../src/onnx/dtype.js';
import { opsetVersion, readModel } from '../../src/onnx/read.js';
import { encodeModel } from '../../src/onnx/schema.js';
import { tensorValues } from '../../src/onnx/tensor.js';
import { int, type GraphProto, type ModelProto, type ValueInfo } from '../../src/onnx/types.js';
import { backward, NoGradientRuleError, trainingOpset } from '../../src/train/backward.js';
import { fuseAlrelu } from '../../src/train/fuse.js';
import { alreluFunction } from '../../src/convert/forms.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { mulberry32 } from '../../src/data/prng.js';
import { n } from './rules.harness.js';
import { fixture } from '../helpers.js';

const f32 = (name: string, shape: (number | string)[]): ValueInfo => ({
  name,
  type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const rnd = (k: number, seed: number) => {
  const r = mulberry32(seed);
  return Array.from({ length: k }, () => r() - 0.5);
};
const graphOf = (nodes: GraphProto['node'], inits: [string, number[]][], inputs: ValueInfo[] = [f32('X', [2, 3])]): GraphProto => ({
  name: 'g',
  node: [...(nodes ?? []), makeNode('ReduceSum', ['Y'], ['loss'], 'loss', [{ name: 'keepdims', type: 2, i: 0 }])],
  initializer: inits.map(([name, dims], i) =>
    makeTensor(
      name,
      DataType.FLOAT,
      dims,
      rnd(
        dims.reduce((a, b) => a * b, 1),
        i + 1,
      ),
    ),
  ),
  input: inputs,
  output: [f32('loss', [])],
});

describe('backward: which nodes are differentiated', () => {
  it('an op without a rule between a parameter and the loss is a NoGradientRuleError naming op, node, parameter and --freeze', () => {
    const g = graphOf([n('MatMul', ['X', 'W'], ['h']), n('Sin', ['h'], ['Y'])], [['W', [3, 4]]]);
    let err: unknown;
    try {
      backward(g, { wrt: ['W'], loss: 'loss', opset: 17 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoGradientRuleError);
    const msg = (err as Error).message;
    expect(msg).toContain('Sin');
    expect(msg).toContain('Sin_Y');
    expect(msg).toContain('W');
    expect(msg).toContain('--freeze');
  });

  it('the same op before the parameters needs no rule', () => {
    const g = graphOf([n('Sin', ['X'], ['e']), n('MatMul', ['e', 'W'], ['Y'])], [['W', [3, 4]]]);
    const r = backward(g, { wrt: ['W'], loss: 'loss', opset: 17 });
    expect([...r.grads.keys()]).toEqual(['W']);
  });

  it('shape computations from a parameter get no gradient and need no rule', () => {
    // Y = Reshape(X * P, Shape(P)) with a NonZero/Size detour that has no rules
    const g = graphOf([n('Shape', ['P'], ['s']), n('Size', ['P'], ['z']), n('Mul', ['X', 'P'], ['m']), n('Reshape', ['m', 's'], ['Y'])], [['P', [2, 3]]]);
    const r = backward(g, { wrt: ['P'], loss: 'loss', opset: 17 });
    expect([...r.grads.keys()]).toEqual(['P']);
    expect(r.noGrad).toEqual([]);
  });

  it('running statistics and unused parameters land in noGrad, not in grads', () => {
    const g = graphOf(
      [n('BatchNormalization', ['X', 'S', 'B', 'M', 'V'], ['Y'])],
      [
        ['S', [3]],
        ['B', [3]],
        ['M', [3]],
        ['V', [3]],
        ['U', [3]],
      ],
      [f32('X', ['N', 3, 4])],
    );
    const r = backward(g, { wrt: ['S', 'B', 'M', 'V', 'U'], loss: 'loss', opset: 17 });
    expect([...r.grads.keys()].sort()).toEqual(['B', 'S']);
    expect(r.noGrad.sort()).toEqual(['M', 'U', 'V']);
  });

  it('a value feeding several nodes gets the Sum of their contributions', () => {
    const g = graphOf([n('Mul', ['X', 'W'], ['a']), n('Relu', ['W'], ['b']), n('Add', ['a', 'b'], ['Y'])], [['W', [2, 3]]]);
    const r = backward(g, { wrt: ['W'], loss: 'loss', opset: 17 });
    const sum = r.nodes.find((x) => x.output?.[0] === r.grads.get('W'));
    expect(sum?.opType).toBe('Sum');
    expect(sum?.input).toHaveLength(2);
  });

  it('nodes written out of topological order are differentiated in dependency order', () => {
    const inOrder = graphOf([n('Mul', ['X', 'W'], ['m']), n('Relu', ['m'], ['r']), n('Add', ['r', 'W'], ['Y'])], [['W', [2, 3]]]);
    const shuffled = { ...inOrder, node: [inOrder.node![2]!, inOrder.node![3]!, inOrder.node![1]!, inOrder.node![0]!] };
    const a = backward(inOrder, { wrt: ['W'], loss: 'loss', opset: 17 });
    const b = backward(shuffled, { wrt: ['W'], loss: 'loss', opset: 17 });
    expect(b.nodes.map((x) => x.opType)).toEqual(a.nodes.map((x) => x.opType));
    expect(b.grads.has('W')).toBe(true);
  });

  it('a Conv whose spatial size is symbolic says which shape it needs', () => {
    const g = graphOf([n('Conv', ['X', 'W'], ['Y'], { pads: [1, 1, 1, 1] })], [['W', [2, 1, 3, 3]]], [f32('X', ['N', 1, 'H', 'W'])]);
    expect(() => backward(g, { wrt: ['W'], loss: 'loss', opset: 17 })).toThrow(/needs dims 2\.\. of Y \(Conv gradient\)/);
  });

  it('Resize without a rule says why: tf_crop_and_resize, antialias', () => {
    const up = (attrs: Record<string, string | number>) => {
      const g = graphOf([n('Mul', ['X', 'W'], ['m']), n('Resize', ['m', '', 's'], ['Y'], attrs)], [['W', [1, 2, 2, 2]]], [f32('X', [1, 2, 2, 2])]);
      g.initializer!.push(makeTensor('s', DataType.FLOAT, [4], [1, 1, 2, 2]));
      return () => backward(g, { wrt: ['W'], loss: 'loss', opset: 18 });
    };
    expect(up({ mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize' })).toThrow(/tf_crop_and_resize/);
    expect(up({ mode: 'linear', antialias: 1 })).toThrow(/antialias/);
    expect(up({ mode: 'linear' })().grads.has('W')).toBe(true);
    expect(up({ mode: 'cubic' })().grads.has('W')).toBe(true);
  });

  it("the converter's subgraph form Abs(LeakyRelu(x)) is differentiated as one ALReLU (no Sign, no Where)", () => {
    const g = graphOf([n('MatMul', ['X', 'W'], ['h']), n('LeakyRelu', ['h'], ['t'], { alpha: 0.01 }), n('Abs', ['t'], ['Y'])], [['W', [3, 4]]]);
    const ops = backward(g, { wrt: ['W'], loss: 'loss', opset: 17 }).nodes.map((x) => x.opType);
    expect(ops).not.toContain('Sign');
    expect(ops).not.toContain('Where');
    expect(ops).toContain('Clip');
  });

  it("ALReLU and LeakyRelu gradients are exact steps (ALReLU 0 at 0 as abs'(0) = 0, LeakyRelu alpha), subnormals and overflow included", async () => {
    const values = [0, -0, 1e-45, -1e-45, 1.2e-38, -1.2e-38, 3e38, -3e38, 1, -1, 0.5, -7];
    const cases = [
      ['alrelu', 0.01, DataType.FLOAT],
      ['alrelu', -0.2, DataType.FLOAT],
      ['alrelu', 0.01, DataType.DOUBLE],
      ['leaky', 0.2, DataType.FLOAT],
      ['leaky', 0.01, DataType.DOUBLE],
      ['leaky', -0.01, DataType.FLOAT],
    ] as const;
    for (const [kind, alpha, dataType] of cases) {
      const vals = dataType === DataType.DOUBLE ? [...values, 5e-324, -5e-324, 1e308, -1e308] : values;
      const g: GraphProto = {
        name: 'g',
        node: [
          n('LeakyRelu', ['W'], [kind === 'alrelu' ? 't' : 'Y'], { alpha }),
          ...(kind === 'alrelu' ? [n('Abs', ['t'], ['Y'])] : []),
          makeNode('ReduceSum', ['Y'], ['loss'], 'loss', [{ name: 'keepdims', type: 2, i: 0 }]),
        ],
        initializer: [makeTensor('W', dataType, [vals.length], vals)],
        output: [{ name: 'loss', type: { tensorType: { elemType: dataType, shape: { dim: [] } } } }],
      };
      const back = backward(g, { wrt: ['W'], loss: 'loss', opset: 17 });
      g.node!.push(...back.nodes);
      g.initializer!.push(...back.initializers);
      const gradName = back.grads.get('W')!;
      g.output!.push({ name: gradName, type: { tensorType: { elemType: dataType, shape: { dim: [{ dimValue: vals.length }] } } } });
      const model: ModelProto = { irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: g };
      const s = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
      const out = await s.run({});
      await s.release();
      const typed = (v: number) => (dataType === DataType.DOUBLE ? v : Math.fround(v));
      const want = vals.map((v) => (kind === 'alrelu' ? (v > 0 ? 1 : v < 0 ? typed(-Math.abs(alpha)) : 0) : v > 0 ? 1 : typed(alpha)));
      // (+ 0: a -0 gradient at x = -0 is zero too)
      expect(
        Array.from(out[gradName]!.data as Float32Array | Float64Array, (v) => v + 0),
        `${kind} alpha ${alpha} type ${dataType}`,
      ).toEqual(want);
    }
  });

  it("Clip's gradient passes strictly inside (min, max), as PyTorch's ReLU6 does, and reads only Clip's output", async () => {
    const vals = [-1, -0, 0, 1e-45, 3, Math.fround(6 - 2 ** -21), 6, 7];
    const want = [0, 0, 0, 1, 1, 1, 0, 0];
    for (const opset of [10, 17]) {
      const clip = opset < 11 ? n('Clip', ['X'], ['Y'], { min: 0, max: 6 }) : n('Clip', ['X', 'lo', 'hi'], ['Y']);
      const g: GraphProto = {
        name: 'g',
        node: [n('Mul', ['W', 'one'], ['X']), clip, makeNode('ReduceSum', ['Y'], ['loss'], 'loss', [{ name: 'keepdims', type: 2, i: 0 }])],
        initializer: [
          makeTensor('W', DataType.FLOAT, [vals.length], vals),
          makeTensor('one', DataType.FLOAT, [], [1]),
          ...(opset < 11 ? [] : [makeTensor('lo', DataType.FLOAT, [], [0]), makeTensor('hi', DataType.FLOAT, [], [6])]),
        ],
        output: [{ name: 'loss', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [] } } } }],
      };
      const back = backward(g, { wrt: ['W'], loss: 'loss', opset });
      // Clip's input is not kept for the backward
      expect(back.nodes.filter((x) => x.input!.includes('X'))).toEqual([]);
      g.node!.push(...back.nodes);
      g.initializer!.push(...back.initializers);
      const gradName = back.grads.get('W')!;
      g.output!.push({ name: gradName, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: vals.length }] } } } });
      const model: ModelProto = { irVersion: 8, opsetImport: [{ domain: '', version: opset }], graph: g };
      const s = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
      const out = await s.run({});
      await s.release();
      expect(
        Array.from(out[gradName]!.data as Float32Array, (v) => v + 0),
        `opset ${opset}`,
      ).toEqual(want);
    }
  });

  it('fuseAlrelu runs each ALReLU as one LeakyRelu(x, -|a|): same forward values and gradients, a shared intermediate left alone', async () => {
    const vals = [0, -0, 1e-45, -1e-45, 1.2e-38, -1.2e-38, 3e38, -3e38, 1, -1, 0.5, -7];
    const build = (): GraphProto => {
      const g: GraphProto = {
        name: 'g',
        node: [
          n('LeakyRelu', ['W'], ['t1'], { alpha: 0.01 }),
          n('Abs', ['t1'], ['a1']), // subgraph form
          n('LeakyRelu', ['W'], ['t2'], { alpha: -0.2 }),
          n('Abs', ['t2'], ['a2']), // negative alpha: same function, slope -0.2
          n('ALReLU', ['W'], ['a3'], { alpha: 0.03 }, 'ai.alrelu'), // function form
          n('LeakyRelu', ['W'], ['t4'], { alpha: 0.05 }),
          n('Abs', ['t4'], ['a4']),
          n('Mul', ['t4', 'a4'], ['m4']), // t4 read twice: stays
          n('Sum', ['a1', 'a2', 'a3', 'm4'], ['Y']),
          makeNode('ReduceSum', ['Y'], ['loss'], 'loss', [{ name: 'keepdims', type: 2, i: 0 }]),
        ],
        initializer: [makeTensor('W', DataType.FLOAT, [vals.length], vals)],
        output: ['loss', 'a1', 'a2', 'a3'].map((v) => f32(v, v === 'loss' ? [] : [vals.length])),
      };
      const back = backward(g, { wrt: ['W'], loss: 'loss', opset: 17 });
      g.node!.push(...back.nodes);
      g.initializer!.push(...back.initializers);
      g.output!.push(f32(back.grads.get('W')!, [vals.length]));
      return g;
    };
    const run = async (g: GraphProto) => {
      const model: ModelProto = {
        irVersion: 8,
        opsetImport: [
          { domain: '', version: 17 },
          { domain: 'ai.alrelu', version: 1 },
        ],
        graph: g,
        functions: [alreluFunction(17)],
      };
      const s = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
      const out = await s.run({});
      await s.release();
      return g.output!.map((o) => Array.from(out[o.name!]!.data as Float32Array, (v) => v + 0));
    };
    const plain = build();
    const fused = build();
    expect(fuseAlrelu(fused)).toBe(3);
    const ops = fused.node!.map((x) => `${x.opType}${x.opType === 'LeakyRelu' ? `(${x.input![0]},${x.attribute![0]!.f!.toFixed(2)})` : ''}`);
    expect(ops.filter((o) => o.startsWith('LeakyRelu(W'))).toEqual(['LeakyRelu(W,-0.01)', 'LeakyRelu(W,-0.20)', 'LeakyRelu(W,-0.03)', 'LeakyRelu(W,0.05)']);
    expect(ops.filter((o) => o === 'Abs')).toHaveLength(1);
    expect(ops).not.toContain('ALReLU');
    const [a, b] = [await run(plain), await run(fused)];
    expect(b).toEqual(a);
    // and against the definition: x above 0, -|a| x below
    const want = (al: number) => vals.map((v) => Math.fround(v > 0 ? v : Math.fround(-Math.abs(al)) * v) + 0);
    expect(b.slice(1, 4)).toEqual([want(0.01), want(-0.2), want(0.03)]);
  });

  it('the MaxPool gradient asks for a newer opset instead of emitting an invalid model', () => {
    const g = graphOf([n('Mul', ['X', 'W'], ['m']), n('MaxPool', ['m'], ['Y'], { kernel_shape: [2, 2] })], [['W', [1, 1, 4, 4]]], [f32('X', [1, 1, 4, 4])]);
    expect(() => backward(g, { wrt: ['W'], loss: 'loss', opset: 13, maxPool: 'indices' })).toThrow(/opset 16/);
    expect(() => backward(g, { wrt: ['W'], loss: 'loss', opset: 10 })).toThrow(/opset 11/);
    expect(backward(g, { wrt: ['W'], loss: 'loss', opset: 13 }).grads.has('W')).toBe(true);
  });
});

describe('trainingOpset', () => {
  it('raises the MNIST fixture (opset 8: Conv, MaxPool, Reshape, MatMul, Add, Relu) to 17', async () => {
    const m = (await readModel(fixture('onnx2c/mnist/model.onnx'))).model;
    expect(opsetVersion(m)).toBe(8);
    expect(trainingOpset(m.graph!, 8)).toBe(17);
  });
  it('raises past ops whose schema changed when they have an upgrade (Softmax before 13, Squeeze axes attribute), not otherwise', () => {
    expect(trainingOpset({ node: [n('Softmax', ['X'])] }, 11)).toBe(17);
    expect(trainingOpset({ node: [n('Squeeze', ['X'], ['Y'], { axes: [0] })] }, 12)).toBe(17);
    expect(trainingOpset({ node: [n('Upsample', ['X'])] }, 6)).toBe(6);
    expect(trainingOpset({ node: [n('Relu', ['X']), n('TopKLike', ['Y'], ['Z'])] }, 12)).toBe(12);
    expect(trainingOpset({ node: [n('Relu', ['X'])] }, 18)).toBe(18);
  });
});

/** The MNIST fixture with ALReLU (function form), its float initializers turned into inputs we can perturb. */
async function mnistLossModel(): Promise<{
  model: ModelProto;
  params: { name: string; dims: number[]; values: Float32Array }[];
  x: ort.Tensor;
  opset: number;
}> {
  const m = (await readModel(fixture('onnx2c/mnist/model.onnx'))).model;
  convert(m, { form: 'function' });
  const g = m.graph!;
  const opset = trainingOpset(g, opsetVersion(m));
  m.opsetImport = (m.opsetImport ?? []).map((o) => ((o.domain ?? '') === '' ? { ...o, version: opset } : o));
  const params = (g.initializer ?? [])
    .filter((t) => t.dataType === DataType.FLOAT && (t.dims ?? []).length > 0)
    .map((t) => ({ name: t.name!, dims: (t.dims ?? []).map(int), values: Float32Array.from(tensorValues(t)!) }));
  const names = new Set(params.map((p) => p.name));
  g.initializer = (g.initializer ?? []).filter((t) => !names.has(t.name!));
  g.input = [...(g.input ?? []).filter((v) => !names.has(v.name!)), ...params.map((p) => f32(p.name, p.dims))];
  const logits = g.output![0]!.name!;
  const rr = mulberry32(5);
  g.initializer.push(
    makeTensor(
      'R',
      DataType.FLOAT,
      [1, 10],
      Array.from({ length: 10 }, () => rr() * 2 - 1),
    ),
  );
  g.node!.push(makeNode('Mul', [logits, 'R'], ['lr'], 'loss_mul'), makeNode('ReduceSum', ['lr'], ['loss'], 'loss_sum', [{ name: 'keepdims', type: 2, i: 0 }]));
  g.output = [f32('loss', [])];
  const xr = mulberry32(9);
  const x = new ort.Tensor(
    'float32',
    Float32Array.from({ length: 784 }, () => xr()),
    [1, 1, 28, 28],
  );
  return { model: m, params, x, opset };
}

describe('backward on a real model', () => {
  it('MNIST fixture with ALReLU: every emitted node is default-domain and the gradient matches directional finite differences', async () => {
    const { model, params, x, opset } = await mnistLossModel();
    const g = model.graph!;
    const r = backward(g, { wrt: params.map((p) => p.name), loss: 'loss', opset });
    expect(r.noGrad).toEqual([]);
    expect(r.nodes.every((x) => (x.domain ?? '') === '')).toBe(true);
    g.node = [...g.node!, ...r.nodes];
    g.initializer = [...g.initializer!, ...r.initializers];
    g.output = [...g.output!, ...params.map((p) => ({ name: r.grads.get(p.name)! }))];
    const s = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3, intraOpNumThreads: 1 });
    try {
      const inputName = s.inputNames.find((nm) => !params.some((p) => p.name === nm))!;
      const feeds = (delta?: Float32Array[], eps = 0) => ({
        [inputName]: x,
        ...Object.fromEntries(
          params.map((p, i) => [p.name, new ort.Tensor('float32', delta ? p.values.map((v, k) => v + eps * delta[i]![k]!) : p.values, p.dims)]),
        ),
      });
      const out = await s.run(feeds());
      const grads = params.map((p) => out[r.grads.get(p.name)!]!.data as Float32Array);
      // all parameters along one random direction, small eps: kinks (ALReLU, MaxPool argmax) stay uncrossed
      const dr = mulberry32(100);
      const dir = params.map((p) => Float32Array.from(p.values, () => dr() * 2 - 1));
      const analytic = grads.reduce((acc, gv, i) => acc + gv.reduce((a, v, k) => a + v * dir[i]![k]!, 0), 0);
      const lossAt = async (d: Float32Array[], eps: number) => Number((await s.run(feeds(d, eps), ['loss'])).loss!.data[0]);
      const fd = ((await lossAt(dir, 1e-4)) - (await lossAt(dir, -1e-4))) / 2e-4;
      expect(Math.abs(fd - analytic)).toBeLessThan(1e-2 * Math.abs(analytic));
      // single elements of every parameter (a transposed or misplaced weight gradient shows here). The loss is
      // float32 (~2.3; rounding noise ~1e-6 after the convs' sums): eps 3e-3 keeps that under ~1e-3 while
      // first-layer weights, which move every pixel's pre-activation, rarely cross an ALReLU kink or flip a
      // MaxPool argmax (at eps 1e-2 they do: errors ~1e-2; at 1e-3..3e-3 the differences converge to ~1e-4)
      let checked = 0;
      for (const [i, p] of params.entries()) {
        const pick = mulberry32(200 + i);
        for (let t = 0; t < 6; t++) {
          const k = Math.floor(pick() * p.values.length);
          const d = params.map((q, j) => {
            const z = new Float32Array(q.values.length);
            if (j === i) z[k] = 1;
            return z;
          });
          const e = 3e-3;
          const f = ((await lossAt(d, e)) - (await lossAt(d, -e))) / (2 * e);
          const a = grads[i]![k]!;
          expect(Math.abs(f - a), `${p.name}[${k}]`).toBeLessThan(3e-3 + 1e-2 * Math.abs(a));
          checked++;
        }
      }
      expect(checked).toBe(6 * params.length);
    } finally {
      await s.release();
    }
  });
});
