/**
 * Raising an old model's opset for training: each upgrade rewrites a node whose schema broke into the
 * target opset's form, and onnxruntime's kernels for the old opset are the reference (outputs must be
 * bit-identical). Then whole training runs: an opset-9 classifier trains exactly as the same network
 * written at opset 17, and the loss's opset-9 form (one-hot mask instead of GatherElements) gives the
 * losses and updates of the opset-17 form.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { DataType } from '../../src/onnx/dtype.js';
import { encodeModel } from '../../src/onnx/schema.js';
import type { ModelProto, NodeProto, TensorProto, ValueInfo } from '../../src/onnx/types.js';
import { chooseParameters } from '../../src/train/params.js';
import { raiseOpset, TARGET_OPSET, trainingOpset } from '../../src/train/rules/opset.js';
import { freshStart, StepRunner } from '../../src/train/runner.js';
import { openRuntime } from '../../src/runtime/index.js';
import { SWIFTSHADER_ICD } from '../../src/runtime/node.js';
import type { HostTensor, Runtime } from '../../src/runtime/types.js';
import { buildTrainingModel, LOSS_OUTPUT, LR_INPUT, STEP_INPUT } from '../../src/train/step.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { mulberry32 } from '../../src/data/prng.js';
import { elementCount } from '../../src/onnx/tensor.js';
import { n } from './rules.harness.js';
import { dirname } from 'node:path';
import { opsetVersion, readModel } from '../../src/onnx/read.js';
import { bytesOf, fixture } from '../helpers.js';

const vi = (name: string, dims: (number | string)[], elemType: number = DataType.FLOAT): ValueInfo => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const model = (opset: number, nodes: NodeProto[], inputs: ValueInfo[], outputs: string[], initializer: TensorProto[] = []): ModelProto => ({
  irVersion: opset >= 17 ? 8 : 4,
  opsetImport: [{ domain: '', version: opset }],
  graph: { name: 'g', node: nodes, input: inputs, output: outputs.map((name) => ({ name })), initializer },
});
const clone = (m: ModelProto): ModelProto => structuredClone(m);
const randoms = (count: number, seed: number) => {
  const r = mulberry32(seed);
  return Array.from({ length: count }, () => Math.round((r() * 2 - 1) * 64) / 32);
};

/** The model at its own opset and raised: the same outputs, byte for byte. */
async function expectSameOutputs(m: ModelProto, dims: number[][], rewrites = 1): Promise<void> {
  const up = clone(m);
  let k = 0;
  const { opset, rewritten } = raiseOpset(up.graph!, Number(up.opsetImport![0]!.version), (b) => `${b}__${k++}`);
  expect(opset).toBe(TARGET_OPSET);
  expect(rewritten).toBe(rewrites);
  up.opsetImport = [{ domain: '', version: opset }];
  up.irVersion = 8;
  const feeds = Object.fromEntries(
    m.graph!.input!.map((v, i) => [v.name!, new ort.Tensor('float32', Float32Array.from(randoms(elementCount(dims[i]!), 7 + i)), dims[i]!)]),
  );
  const run = async (x: ModelProto) => {
    const s = await ort.InferenceSession.create(encodeModel(x), { logSeverityLevel: 3, graphOptimizationLevel: 'disabled' });
    try {
      return await s.run(feeds);
    } finally {
      await s.release();
    }
  };
  const [a, b] = [await run(m), await run(up)];
  for (const o of m.graph!.output!) {
    expect(b[o.name!]!.dims).toEqual(a[o.name!]!.dims);
    expect(Buffer.from(bytesOf(b[o.name!]!)).equals(Buffer.from(bytesOf(a[o.name!]!)))).toBe(true);
  }
}

const X = (dims: number[]) => [vi('X', dims)];
const f32 = (name: string, dims: number[], values: number[]) => makeTensor(name, DataType.FLOAT, dims, values);

describe('opset upgrades keep every output bit for bit (onnxruntime runs both)', () => {
  const cases: [string, ModelProto, number[][], number?][] = [
    ['Unsqueeze-11 axes', model(11, [n('Unsqueeze', ['X'], ['Y'], { axes: [0, 3] })], X([2, 3, 4]), ['Y']), [[2, 3, 4]]],
    ['Squeeze-11 axes', model(11, [n('Squeeze', ['X'], ['Y'], { axes: [1] })], X([2, 1, 4]), ['Y']), [[2, 1, 4]]],
    ['Squeeze-11 without axes', model(11, [n('Squeeze', ['X'], ['Y'])], X([2, 1, 4, 1]), ['Y']), [[2, 1, 4, 1]]],
    ['ReduceSum-11 axes, keepdims 0', model(11, [n('ReduceSum', ['X'], ['Y'], { axes: [1], keepdims: 0 })], X([2, 3, 4]), ['Y']), [[2, 3, 4]]],
    ['ReduceSum-11 over everything', model(11, [n('ReduceSum', ['X'], ['Y'])], X([2, 3, 4]), ['Y']), [[2, 3, 4]]],
    ['Split-11 split', model(11, [n('Split', ['X'], ['A', 'B'], { axis: 1, split: [1, 3] })], X([2, 4, 3]), ['A', 'B']), [[2, 4, 3]]],
    ['Slice-9 starts/ends/axes', model(9, [n('Slice', ['X'], ['Y'], { starts: [1, -3], ends: [3, 1000], axes: [0, 2] })], X([3, 4, 5]), ['Y']), [[3, 4, 5]]],
    ['Slice-9 without axes', model(9, [n('Slice', ['X'], ['Y'], { starts: [0, 1], ends: [2, -1] })], X([3, 4]), ['Y']), [[3, 4]]],
    ['Pad-10 constant value', model(10, [n('Pad', ['X'], ['Y'], { pads: [0, 1, 0, 2, 0, 0, 1, 1], value: 1.5 })], X([1, 2, 3, 4]), ['Y']), [[1, 2, 3, 4]]],
    ['Pad-10 reflect', model(10, [n('Pad', ['X'], ['Y'], { pads: [0, 0, 1, 2, 0, 0, 2, 1], mode: 'reflect' })], X([1, 2, 3, 4]), ['Y']), [[1, 2, 3, 4]]],
    ['Clip-10 min and max', model(10, [n('Clip', ['X'], ['Y'], { min: -0.25, max: 0.5 })], X([3, 5]), ['Y']), [[3, 5]]],
    ['Clip-10 max only', model(10, [n('Clip', ['X'], ['Y'], { max: 0.125 })], X([3, 5]), ['Y']), [[3, 5]]],
    ['Dropout-10 ratio, unread mask', model(10, [n('Dropout', ['X'], ['Y', 'M'], { ratio: 0.5 })], X([3, 5]), ['Y']), [[3, 5]]],
    [
      'BatchNormalization-8 spatial',
      model(
        8,
        [n('BatchNormalization', ['X', 's', 'b', 'm', 'v'], ['Y'], { spatial: 1, epsilon: 1e-3 })],
        X([2, 3, 2, 2]),
        ['Y'],
        [f32('s', [3], [1.5, -0.5, 2]), f32('b', [3], [0.25, 0, -1]), f32('m', [3], [0.5, -0.25, 1]), f32('v', [3], [1, 0.5, 2])],
      ),
      [[2, 3, 2, 2]],
    ],
    ['Softmax-11 axis 1 of 3 (flattens the trailing axes)', model(11, [n('Softmax', ['X'], ['Y'], { axis: 1 })], X([2, 3, 4]), ['Y']), [[2, 3, 4]]],
    ['LogSoftmax-9 default axis of 4', model(9, [n('LogSoftmax', ['X'], ['Y'])], X([2, 3, 2, 2]), ['Y']), [[2, 3, 2, 2]]],
    ['Hardmax-11 axis 0', model(11, [n('Hardmax', ['X'], ['Y'], { axis: 0 })], X([2, 3, 4]), ['Y']), [[2, 3, 4]]],
    ['Softmax-12 last axis', model(12, [n('Softmax', ['X'], ['Y'], { axis: 2 })], X([2, 3, 4]), ['Y']), [[2, 3, 4]]],
    ['TopK-9 k', model(9, [n('TopK', ['X'], ['V', 'I'], { k: 2 })], X([3, 5]), ['V', 'I']), [[3, 5]]],
    [
      'Upsample-9 nearest',
      model(9, [n('Upsample', ['X', 's'], ['Y'], { mode: 'nearest' })], X([1, 2, 2, 3]), ['Y'], [f32('s', [4], [1, 1, 2, 3])]),
      [[1, 2, 2, 3]],
    ],
    [
      'Upsample-9 linear',
      model(9, [n('Upsample', ['X', 's'], ['Y'], { mode: 'linear' })], X([1, 2, 2, 3]), ['Y'], [f32('s', [4], [1, 1, 2, 2])]),
      [[1, 2, 2, 3]],
    ],
    [
      'Upsample-7 scales attribute',
      model(
        7,
        [
          {
            ...n('Upsample', ['X'], ['Y'], { mode: 'nearest' }),
            attribute: [
              { name: 'mode', type: 3, s: Buffer.from('nearest') },
              { name: 'scales', type: 6, floats: [1, 1, 2, 2] },
            ],
          },
        ],
        X([1, 2, 2, 3]),
        ['Y'],
      ),
      [[1, 2, 2, 3]],
    ],
    [
      'Resize-10 nearest downsample x0.5 (rounds up)',
      model(10, [n('Resize', ['X', 's'], ['Y'], { mode: 'nearest' })], X([1, 2, 4, 6]), ['Y'], [f32('s', [4], [1, 1, 0.5, 0.5])]),
      [[1, 2, 4, 6]],
    ],
    [
      'Resize-10 nearest x3',
      model(10, [n('Resize', ['X', 's'], ['Y'], { mode: 'nearest' })], X([1, 2, 2, 3]), ['Y'], [f32('s', [4], [1, 1, 3, 3])]),
      [[1, 2, 2, 3]],
    ],
    [
      'Resize-11 nearest, kept as it is',
      model(11, [n('Resize', ['X', 'roi', 's'], ['Y'], { mode: 'nearest' })], X([1, 2, 2, 3]), ['Y'], [f32('roi', [0], []), f32('s', [4], [1, 1, 2, 2])]),
      [[1, 2, 2, 3]],
      0,
    ],
    ['Reshape-4 shape', model(4, [n('Reshape', ['X'], ['Y'], { shape: [0, -1] })], X([2, 3, 4]), ['Y']), [[2, 3, 4]]],
  ];
  for (const [name, m, dims, rewrites] of cases) it(name, () => expectSameOutputs(m, dims, rewrites));

  it('leaves the opset (and the graph) alone where a node has no upgrade', () => {
    const read = model(10, [n('Dropout', ['X'], ['Y', 'M'], { ratio: 0.5 }), n('Add', ['Y', 'M'], ['Z'])], X([3]), ['Z']);
    const upsample = model(6, [n('Upsample', ['X'], ['Y'], { scales: [1.0, 1.0, 2.0, 2.0] })], X([1, 1, 2, 2]), ['Y']);
    const unknown = model(11, [n('Relu', ['X'], ['Y']), n('Det', ['Y'], ['Z'])], X([3, 3]), ['Z']);
    for (const m of [read, upsample, unknown]) {
      const before = JSON.stringify(m);
      const from = Number(m.opsetImport![0]!.version);
      expect(trainingOpset(m.graph!, from)).toBe(from);
      expect(raiseOpset(m.graph!, from, (b) => b)).toEqual({ opset: from, rewritten: 0 });
      expect(JSON.stringify(m)).toBe(before);
    }
  });
});

/** Three momentum steps of the training-step model on a fixed batch: losses and final parameters. */
async function train(m: ModelProto, batch: number): Promise<{ opset: number; rewritten: number; losses: number[]; params: Map<string, Float32Array> }> {
  const params = chooseParameters(m.graph!).trainable;
  const tm = buildTrainingModel(m, { sourceDir: '.', file: 'net.onnx', params, task: 'classification', optimizer: { name: 'momentum', momentum: 0.9 } });
  const s = await ort.InferenceSession.create(tm.bytes(), { logSeverityLevel: 3 });
  const start = freshStart(tm);
  const dims = [batch, 1, 6, 6];
  const feeds: Record<string, ort.Tensor> = {
    [tm.input]: new ort.Tensor('float32', Float32Array.from(randoms(elementCount(dims), 3)), dims),
    [tm.labels]: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: batch }, (_, i) => BigInt((i * 7) % 4)),
      [batch, 1],
    ),
    [LR_INPUT]: new ort.Tensor('float32', new Float32Array([0.05]), []),
  };
  for (const h of [start.params, start.state]) for (const [k, v] of Object.entries(h)) feeds[k] = new ort.Tensor(v.type, v.data, v.dims);
  const losses: number[] = [];
  for (let t = 1; t <= 3; t++) {
    feeds[STEP_INPUT] = new ort.Tensor('float32', new Float32Array([t]), []);
    const out = await s.run(feeds);
    losses.push(Number(out[LOSS_OUTPUT]!.data[0]));
    for (const p of tm.params) feeds[p.name] = out[p.updated]!;
    for (const q of tm.state) feeds[q.name] = out[q.updated]!;
  }
  await s.release();
  const opset = Number(tm.model.opsetImport!.find((o) => !o.domain)!.version);
  expect(tm.opset).toBe(opset);
  expect(tm.sourceOpset).toBe(Number(m.opsetImport![0]!.version));
  return { opset, rewritten: tm.rewritten, losses, params: new Map(tm.params.map((p) => [p.name, feeds[p.name]!.data as Float32Array])) };
}

/** Conv -> Relu -> Dropout -> Flatten -> Gemm -> Softmax over 4 classes, as an exporter writes it at `opset`. */
function classifier(opset: number, extra: NodeProto[] = []): ModelProto {
  const old = opset < 12;
  const nodes = [
    n('Conv', ['X', 'W', 'B'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }),
    n('Relu', ['c'], ['r']),
    old ? n('Dropout', ['r'], ['d', 'mask'], { ratio: 0.3 }) : n('Dropout', ['r'], ['d']),
    n('Flatten', ['d'], ['f']),
    n('Gemm', ['f', 'G', 'H'], ['z'], { transB: 1 }),
    old ? n('Softmax', ['z'], ['P']) : n('Softmax', ['z'], ['P'], { axis: -1 }),
    ...extra,
  ];
  const inits = [
    f32(
      'W',
      [3, 1, 3, 3],
      randoms(27, 11).map((v) => v / 2),
    ),
    f32('B', [3], [0.1, -0.1, 0.05]),
    f32(
      'G',
      [4, 27],
      randoms(108, 12).map((v) => v / 4),
    ),
    f32('H', [4], [0, 0.1, -0.1, 0.2]),
  ];
  return model(opset, nodes, [vi('X', ['N', 1, 6, 6])], ['P', ...extra.map((e) => e.output![0]!)], inits);
}

/** A side output Det(constant): Det has no upgrade and is unknown to the opset table, so a model with it stays at its opset. */
function detBranch(): NodeProto[] {
  const nodes = [n('Constant', [], ['M'], {}), n('Det', ['M'], ['D'])];
  nodes[0]!.attribute = [{ name: 'value', type: 4, t: f32('', [2, 2], [2, 1, 1, 3]) }];
  return nodes;
}

describe('training a model exported at an old opset', () => {
  it('an opset-9 classifier (attribute Dropout, flattening Softmax) trains exactly as the same net at opset 17', async () => {
    const old = await train(classifier(9), 5);
    const modern = await train(classifier(17), 5);
    expect(old.opset).toBe(17);
    expect(old.rewritten).toBe(2); // Dropout's ratio, Softmax's axis
    expect(modern.rewritten).toBe(0);
    expect(old.losses).toEqual(modern.losses);
    expect(old.losses[2]!).toBeLessThan(old.losses[0]!);
    for (const [k, v] of modern.params) expect(Buffer.from(old.params.get(k)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
  });

  it("where the opset stays below 16, the loss picks each label's log-probability with a one-hot mask: same losses and updates", async () => {
    const kept = await train(classifier(11, detBranch()), 5);
    const raised = await train(classifier(11), 5);
    expect(kept.opset).toBe(11);
    expect(raised.opset).toBe(17);
    for (let i = 0; i < 3; i++) expect(Math.abs(kept.losses[i]! - raised.losses[i]!)).toBeLessThan(1e-6);
    for (const [k, v] of raised.params) {
      const a = kept.params.get(k)!;
      for (let i = 0; i < v.length; i++) expect(Math.abs(a[i]! - v[i]!)).toBeLessThan(1e-6);
    }
  });
});

// ONNX's "light" test models keep the architectures but make every weight a constant, so their outputs are
// uniform over the 1000 classes: this checks that the whole graphs upgrade, build and run end to end, with
// the loss the original model's outputs give; the exactness of each rewrite is checked above.
describe("ONNX's opset-9 test CNNs (SqueezeNet, ResNet-50, DenseNet-121) build training graphs", () => {
  const nets: [string, number][] = [
    ['light_squeezenet', 2],
    ['light_resnet50', 1],
    ['light_densenet121', 242],
  ];
  for (const [name, rewritten] of nets) {
    it(`${name}: raised from 9 to 17 (${rewritten} node(s) rewritten); the step's loss is the cross-entropy of the original model's own outputs`, async () => {
      const file = fixture(`onnx-onnx/light/${name}.onnx`);
      const m = (await readModel(file)).model;
      expect(opsetVersion(m)).toBe(9);
      const params = chooseParameters(m.graph!).trainable;
      const tm = buildTrainingModel(m, { sourceDir: dirname(file), file, params, task: 'classification', dynamicBatch: true, optimizer: { name: 'sgd' } });
      expect([tm.sourceOpset, tm.opset, tm.rewritten]).toEqual([9, 17, rewritten]);
      const dims = [2, 3, 224, 224];
      const x = new ort.Tensor('float32', Float32Array.from(randoms(elementCount(dims), 5)), dims);
      const labels = [3n, 997n];
      const ref = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
      const P = (await ref.run({ [tm.input]: new ort.Tensor('float32', x.data.slice(0, x.data.length / 2) as Float32Array, [1, 3, 224, 224]) }))[
        ref.outputNames[0]!
      ]!.data as Float32Array;
      const P2 = (await ref.run({ [tm.input]: new ort.Tensor('float32', x.data.slice(x.data.length / 2) as Float32Array, [1, 3, 224, 224]) }))[
        ref.outputNames[0]!
      ]!.data as Float32Array;
      await ref.release();
      // probabilities as the model gives them, or the softmax of its logits (DenseNet-121 ends in a Reshape)
      const logProb = (p: Float32Array, k: number) => {
        if (tm.loss.kind === 'nll-softmax') return Math.log(p[k]!);
        const max = Math.max(...p);
        return p[k]! - max - Math.log(p.reduce((a, v) => a + Math.exp(v - max), 0));
      };
      const nll = -(logProb(P, 3) + logProb(P2, 997)) / 2;
      const s = await ort.InferenceSession.create(tm.bytes(), { logSeverityLevel: 3 });
      const start = freshStart(tm);
      const feeds: Record<string, ort.Tensor> = {
        [tm.input]: x,
        [tm.labels]: new ort.Tensor('int64', BigInt64Array.from(labels), [2, 1]),
        [LR_INPUT]: new ort.Tensor('float32', new Float32Array([0.01]), []),
        [STEP_INPUT]: new ort.Tensor('float32', new Float32Array([1]), []),
      };
      for (const [k, v] of Object.entries(start.params)) feeds[k] = new ort.Tensor(v.type, v.data, v.dims);
      const out = await s.run(feeds);
      await s.release();
      expect(Math.abs(Number(out[LOSS_OUTPUT]!.data[0]) - nll)).toBeLessThan(1e-4 * Math.max(1, nll));
      for (const p of tm.params) expect((out[p.updated]!.data as Float32Array).every(Number.isFinite)).toBe(true);
    }, 60_000);
  }
});

describe('upgraded and mask-loss training graphs on other execution providers', () => {
  const opened: Runtime[] = [];
  afterAll(async () => {
    for (const rt of opened) await rt.close();
  });
  const nets: [string, () => ModelProto][] = [
    ['opset-9 classifier, raised to 17', () => classifier(9)],
    ['opset-11 classifier kept at 11 (one-hot loss)', () => classifier(11, detBranch())],
  ];
  for (const [name, make] of nets) {
    it(`${name}: 3 momentum steps give the losses of cpu on wasm and webgpu (1e-4)`, async () => {
      const m = make();
      const tm = buildTrainingModel(m, {
        sourceDir: '.',
        file: 'net.onnx',
        params: chooseParameters(m.graph!).trainable,
        task: 'classification',
        optimizer: { name: 'momentum', momentum: 0.9 },
      });
      const dims = [5, 1, 6, 6];
      const x: HostTensor = { type: 'float32', data: Float32Array.from(randoms(elementCount(dims), 3)), dims };
      const y: HostTensor = { type: 'int64', data: BigInt64Array.from({ length: 5 }, (_, i) => BigInt((i * 7) % 4)), dims: [5, 1] };
      const losses: Record<string, number[]> = {};
      for (const ep of ['cpu', 'wasm', 'webgpu'] as const) {
        const rt = await openRuntime(ep, ep === 'webgpu' ? { vulkanIcd: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD } : {});
        opened.push(rt);
        const runner = await StepRunner.open(rt, tm, freshStart(tm));
        losses[ep] = [];
        for (let t = 1; t <= 3; t++) losses[ep].push((await runner.step(x, y, t, 0.05)).loss);
        await runner.close();
      }
      expect(losses.cpu![2]!).toBeLessThan(losses.cpu![0]!);
      for (const ep of ['wasm', 'webgpu'])
        losses[ep]!.forEach((l, i) => expect(Math.abs(l - losses.cpu![i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(losses.cpu![i]!))));
    }, 120_000);
  }
});
