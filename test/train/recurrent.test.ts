/**
 * LSTM, GRU and RNN in training graphs, unrolled into standard ops: the unrolled forward gives onnxruntime's
 * outputs (Y, Y_h, Y_c) across directions, peepholes, linear_before_reset, clipping, initial states and activation
 * lists; and the gradients of a model with an LSTM match central differences in float64.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { mulberry32 } from '../../src/data/prng.js';
import { DataType } from '../../src/onnx/dtype.js';
import { readModel } from '../../src/onnx/read.js';
import { encodeModel } from '../../src/onnx/schema.js';
import { elementCount } from '../../src/onnx/tensor.js';
import type { ModelProto, NodeProto, TensorProto, ValueInfo } from '../../src/onnx/types.js';
import { computeGradients } from '../../src/train/gradients.js';
import { chooseParameters } from '../../src/train/params.js';
import { freshStart, StepRunner } from '../../src/train/runner.js';
import { buildTrainingModel } from '../../src/train/step.js';
import { openRuntime } from '../../src/runtime/index.js';
import { SWIFTSHADER_ICD } from '../../src/runtime/node.js';
import type { HostTensor } from '../../src/runtime/types.js';
import { unrollRecurrent } from '../../src/train/recurrent.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { fixture } from '../helpers.js';
import { n } from './rules.harness.js';

const vi = (name: string, dims: (number | string)[], elemType: number = DataType.FLOAT): ValueInfo => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const rand = (count: number, seed: number, scale = 0.5) => {
  const r = mulberry32(seed);
  return Array.from({ length: count }, () => (r() * 2 - 1) * scale);
};

interface LstmCase {
  name: string;
  /** default LSTM */
  op?: 'LSTM' | 'GRU' | 'RNN';
  S: number;
  B: number;
  I: number;
  H: number;
  attrs: Record<string, number | number[] | string>;
  inputs: ('B' | 'h0' | 'c0' | 'P')[];
  /** sequence_lens, one per batch row */
  lens?: number[];
  strings?: Record<string, string[]>;
  floats?: Record<string, number[]>;
  opset?: number;
}

/** X [S, B, I] -> LSTM/GRU/RNN -> Y, Y_h (and LSTM's Y_c), with seeded weights as initializers. */
function lstmModel(c: LstmCase, dataType: number = DataType.FLOAT): ModelProto {
  const op = c.op ?? 'LSTM';
  const gates = { LSTM: 4, GRU: 3, RNN: 1 }[op];
  const D = c.attrs.direction === 'bidirectional' ? 2 : 1;
  const t = (name: string, dims: number[], seed: number) => makeTensor(name, dataType, dims, rand(elementCount(dims), seed));
  const inits: TensorProto[] = [t('W', [D, gates * c.H, c.I], 1), t('R', [D, gates * c.H, c.H], 2)];
  const ins = ['X', 'W', 'R', '', '', '', '', ''];
  if (c.inputs.includes('B')) {
    inits.push(t('Bias', [D, 2 * gates * c.H], 3));
    ins[3] = 'Bias';
  }
  if (c.lens) {
    inits.push({ name: 'lens', dataType: DataType.INT32, dims: [c.B], rawData: new Uint8Array(Int32Array.from(c.lens).buffer) });
    ins[4] = 'lens';
  }
  if (c.inputs.includes('h0')) {
    inits.push(t('h0', [D, c.B, c.H], 4));
    ins[5] = 'h0';
  }
  if (c.inputs.includes('c0')) {
    inits.push(t('c0', [D, c.B, c.H], 5));
    ins[6] = 'c0';
  }
  if (c.inputs.includes('P')) {
    inits.push(t('P', [D, 3 * c.H], 6));
    ins[7] = 'P';
  }
  while (!ins[ins.length - 1]) ins.pop();
  const outs = op === 'LSTM' ? ['Y', 'Y_h', 'Y_c'] : ['Y', 'Y_h'];
  const node: NodeProto = n(op, ins, outs, { hidden_size: c.H, ...c.attrs });
  for (const [k, v] of Object.entries(c.strings ?? {})) node.attribute!.push({ name: k, type: 8, strings: v.map((s) => Buffer.from(s)) });
  for (const [k, v] of Object.entries(c.floats ?? {})) node.attribute!.push({ name: k, type: 6, floats: v });
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: c.opset ?? 17 }],
    graph: { name: 'rnn', node: [node], input: [vi('X', [c.S, c.B, c.I], dataType)], output: outs.map((name) => ({ name })), initializer: inits },
  };
}

const CASES: LstmCase[] = [
  { name: 'forward, bias, zero initial state', S: 4, B: 2, I: 3, H: 5, attrs: {}, inputs: ['B'] },
  { name: 'reverse, initial h and c', S: 3, B: 2, I: 3, H: 4, attrs: { direction: 'reverse' }, inputs: ['B', 'h0', 'c0'] },
  { name: 'bidirectional, peepholes, clip 0.7', S: 4, B: 3, I: 2, H: 3, attrs: { direction: 'bidirectional', clip: 0.7 }, inputs: ['B', 'h0', 'c0', 'P'] },
  {
    name: 'activations HardSigmoid, LeakyRelu, Tanh with alpha/beta lists',
    S: 3,
    B: 2,
    I: 3,
    H: 4,
    attrs: {},
    inputs: ['B'],
    strings: { activations: ['HardSigmoid', 'LeakyRelu', 'Tanh'] },
    floats: { activation_alpha: [0.3, 0.05], activation_beta: [0.6] },
  },
  { name: 'GRU forward, bias', op: 'GRU', S: 4, B: 2, I: 3, H: 5, attrs: {}, inputs: ['B'] },
  {
    name: 'GRU bidirectional, linear_before_reset, initial h, clip 0.8',
    op: 'GRU',
    S: 3,
    B: 2,
    I: 3,
    H: 4,
    attrs: { direction: 'bidirectional', linear_before_reset: 1, clip: 0.8 },
    inputs: ['B', 'h0'],
  },
  {
    name: 'GRU reverse, no bias, activations Sigmoid and Relu',
    op: 'GRU',
    S: 3,
    B: 2,
    I: 2,
    H: 3,
    attrs: { direction: 'reverse' },
    inputs: [],
    strings: { activations: ['Sigmoid', 'Relu'] },
  },
  { name: 'RNN forward, tanh, bias and initial h', op: 'RNN', S: 4, B: 2, I: 3, H: 4, attrs: {}, inputs: ['B', 'h0'] },
  {
    name: 'LSTM bidirectional, sequence_lens [4, 2, 1]',
    S: 4,
    B: 3,
    I: 2,
    H: 3,
    attrs: { direction: 'bidirectional' },
    inputs: ['B', 'h0', 'c0'],
    lens: [4, 2, 1],
  },
  { name: 'GRU reverse, sequence_lens [1, 3]', op: 'GRU', S: 3, B: 2, I: 3, H: 4, attrs: { direction: 'reverse' }, inputs: ['B'], lens: [1, 3] },
  {
    name: 'RNN bidirectional, Relu',
    op: 'RNN',
    S: 3,
    B: 3,
    I: 2,
    H: 3,
    attrs: { direction: 'bidirectional' },
    inputs: ['B'],
    strings: { activations: ['Relu', 'Relu'] },
  },
];

async function run(m: ModelProto, x: ort.Tensor): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(encodeModel(m), { logSeverityLevel: 3 });
  try {
    return await s.run({ X: x });
  } finally {
    await s.release();
  }
}

describe('LSTM unrolled into standard ops', () => {
  for (const c of CASES) {
    it(`${c.name}: every output as onnxruntime's ${c.op ?? 'LSTM'} (1e-5)`, async () => {
      const m = lstmModel(c);
      const unrolled = structuredClone(m);
      let k = 0;
      expect(unrollRecurrent(unrolled.graph!, 17, ['W'], (b) => `${b}_${k++}`)).toBe(1);
      expect(unrolled.graph!.node!.some((x) => x.opType === (c.op ?? 'LSTM'))).toBe(false);
      const dims = [c.S, c.B, c.I];
      const x = new ort.Tensor('float32', Float32Array.from(rand(elementCount(dims), 9, 1)), dims);
      const [a, b] = [await run(m, x), await run(unrolled, x)];
      for (const o of m.graph!.output!.map((v) => v.name!)) {
        expect(b[o]!.dims).toEqual(a[o]!.dims);
        const [p, q] = [a[o]!.data as Float32Array, b[o]!.data as Float32Array];
        for (let i = 0; i < p.length; i++) expect(Math.abs(p[i]! - q[i]!), `${o}[${i}]`).toBeLessThan(1e-5);
      }
    });
  }

  it('leaves an LSTM that no trainable value reaches alone (onnxruntime runs its own kernel)', () => {
    const m = lstmModel(CASES[0]!);
    expect(unrollRecurrent(m.graph!, 17, ['elsewhere'], (b) => b)).toBe(0);
    expect(m.graph!.node!.map((x) => x.opType)).toEqual(['LSTM']);
  });

  // onnxruntime's LSTM has no float64 kernel: the float64 reference is the unrolled forward, which the
  // cases above hold to onnxruntime's LSTM in float32
  const gradCases: LstmCase[] = [
    { name: 'bidirectional peephole LSTM', S: 3, B: 2, I: 2, H: 3, attrs: { direction: 'bidirectional' }, inputs: ['B', 'P'] },
    { name: 'bidirectional GRU', op: 'GRU', S: 3, B: 2, I: 2, H: 3, attrs: { direction: 'bidirectional' }, inputs: ['B', 'h0'] },
    { name: 'bidirectional RNN', op: 'RNN', S: 3, B: 2, I: 2, H: 3, attrs: { direction: 'bidirectional' }, inputs: ['B'] },
    {
      name: 'bidirectional LSTM over sequences of lengths 3 and 1',
      S: 3,
      B: 2,
      I: 2,
      H: 3,
      attrs: { direction: 'bidirectional' },
      inputs: ['B'],
      lens: [3, 1],
    },
  ];
  for (const c of gradCases)
    it(`gradients of a ${c.name} classifier match central differences (float64)`, async () => {
      // recurrent op -> Y_h [2, B, H] -> Transpose -> Flatten -> Gemm -> 3 logits; cross-entropy on fixed labels
      const m = lstmModel(c, DataType.DOUBLE);
      const g = m.graph!;
      g.node!.push(n('Transpose', ['Y_h'], ['t'], { perm: [1, 0, 2] }), n('Flatten', ['t'], ['f']), n('Gemm', ['f', 'G', 'Gb'], ['logits'], { transB: 1 }));
      g.initializer!.push(makeTensor('G', DataType.DOUBLE, [3, 6], rand(18, 7)), makeTensor('Gb', DataType.DOUBLE, [3], [0.1, 0, -0.1]));
      g.output = [vi('logits', [c.B, 3], DataType.DOUBLE)];
      const xs = rand(c.S * c.B * c.I, 11, 1);
      const labels = [2, 0];
      const x = { type: 'float64' as const, data: Float64Array.from(xs), dims: [c.S, c.B, c.I] };
      const r = await computeGradients(m, { x, y: { type: 'int32', data: Int32Array.from(labels), dims: [c.B] } });
      expect(r.trainingModel.model.graph!.node!.some((node) => node.opType === (c.op ?? 'LSTM'))).toBe(false);
      // the reference: the unrolled forward on perturbed copies of the model
      const loss = async (model: ModelProto) => {
        const flat = structuredClone(model);
        let k = 0;
        unrollRecurrent(flat.graph!, 17, ['W'], (base) => `${base}_${k++}`);
        const s = await ort.InferenceSession.create(encodeModel(flat), { logSeverityLevel: 3 });
        const z = (await s.run({ X: new ort.Tensor('float64', Float64Array.from(xs), [c.S, c.B, c.I]) })).logits!.data as Float64Array;
        await s.release();
        let l = 0;
        for (let b = 0; b < c.B; b++) {
          const row = Array.from(z.subarray(b * 3, b * 3 + 3));
          const mx = Math.max(...row);
          l -= row[labels[b]!]! - mx - Math.log(row.reduce((acc, v) => acc + Math.exp(v - mx), 0));
        }
        return l / c.B;
      };
      const eps = 1e-6;
      for (const p of ['W', 'R', 'Bias', 'P', 'h0'].filter((q) => g.initializer!.some((i) => i.name === q))) {
        const t = g.initializer!.find((i) => i.name === p)!;
        const base = new Float64Array(t.rawData!.slice().buffer);
        const grad = r.grads[p]!.data as Float64Array;
        for (const i of [0, Math.floor(base.length / 2), base.length - 1]) {
          const at = (v: number) => {
            const mm = structuredClone(m);
            const tt = mm.graph!.initializer!.find((q) => q.name === p)!;
            const vals = Float64Array.from(base);
            vals[i] = v;
            tt.rawData = new Uint8Array(vals.buffer);
            return mm;
          };
          const fd = ((await loss(at(base[i]! + eps))) - (await loss(at(base[i]! - eps)))) / (2 * eps);
          expect(Math.abs(grad[i]! - fd), `${p}[${i}]: ${grad[i]} vs ${fd}`).toBeLessThan(1e-6 + 1e-5 * Math.abs(fd));
        }
      }
    });

  it('the Keras LSTM fixture (symbolic sequence length) trains once the data fixes the length', async () => {
    const mf = await readModel(fixture('onnx2c/simple_networks/lstm_k1_b1_r1_relu.onnx'));
    const x = { type: 'float32' as const, data: Float32Array.from(rand(2 * 4 * 5, 3, 1)), dims: [2, 4, 5] };
    const r = await computeGradients(mf.model, { x, y: { type: 'int32', data: Int32Array.from([0, 2]), dims: [2] } }, { sourceDir: mf.dir });
    expect(Object.keys(r.grads).sort()).toEqual(['lstm_B', 'lstm_R', 'lstm_W']);
    for (const v of Object.values(r.grads)) expect((v.data as Float32Array).some((e) => e !== 0) && (v.data as Float32Array).every(Number.isFinite)).toBe(true);
  });
});

describe('an unrolled recurrent training graph on other execution providers', () => {
  it("a bidirectional LSTM classifier with sequence_lens: 3 momentum steps give cpu's losses on wasm and webgpu (1e-4)", async () => {
    const c: LstmCase = { name: 'ep', S: 4, B: 3, I: 2, H: 3, attrs: { direction: 'bidirectional' }, inputs: ['B'], lens: [4, 2, 3] };
    const m = lstmModel(c);
    const g = m.graph!;
    g.node!.push(n('Transpose', ['Y_h'], ['t'], { perm: [1, 0, 2] }), n('Flatten', ['t'], ['f']), n('Gemm', ['f', 'G', 'Gb'], ['logits'], { transB: 1 }));
    g.initializer!.push(makeTensor('G', DataType.FLOAT, [3, 6], rand(18, 7)), makeTensor('Gb', DataType.FLOAT, [3], [0.1, 0, -0.1]));
    g.output = [vi('logits', [c.B, 3])];
    const tm = buildTrainingModel(m, {
      sourceDir: '.',
      file: 'lstm.onnx',
      params: chooseParameters(g).trainable,
      task: 'classification',
      optimizer: { name: 'momentum', momentum: 0.9 },
    });
    const x: HostTensor = { type: 'float32', data: Float32Array.from(rand(c.S * c.B * c.I, 11, 1)), dims: [c.S, c.B, c.I] };
    const y: HostTensor = { type: 'int64', data: BigInt64Array.from([2n, 0n, 1n]), dims: [c.B, 1] };
    const losses: Record<string, number[]> = {};
    for (const ep of ['cpu', 'wasm', 'webgpu'] as const) {
      const rt = await openRuntime(ep, ep === 'webgpu' ? { vulkanIcd: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD } : {});
      try {
        const runner = await StepRunner.open(rt, tm, freshStart(tm));
        losses[ep] = [];
        for (let t = 1; t <= 3; t++) losses[ep].push((await runner.step(x, y, t, 0.1)).loss);
        await runner.close();
      } finally {
        await rt.close();
      }
    }
    expect(losses.cpu![2]!).toBeLessThan(losses.cpu![0]!);
    for (const ep of ['wasm', 'webgpu'])
      losses[ep]!.forEach((l, i) => expect(Math.abs(l - losses.cpu![i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(losses.cpu![i]!))));
  }, 120_000);
});
