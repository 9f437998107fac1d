/**
 * Every gradient rule against central finite differences on real onnxruntime CPU sessions (see
 * rules.harness.ts; the cases are in rules.cases.ts). float64 where ORT CPU has the op in double: eps 1e-6,
 * tolerance 1e-6 absolute + 1e-6 relative (observed errors ~1e-9). float32 where it has not (Conv,
 * ConvTranspose, AveragePool, GlobalAveragePool, GlobalMaxPool, Elu, Softplus, Erf, HardSigmoid, Mean,
 * InstanceNormalization, and MaxPool's default gradient, made of Convs; in float64 MaxPool takes its Indices
 * form, tested separately): eps 1e-2,
 * tolerance 2e-3 + 2e-3 relative. Those ops are piecewise linear (exact differences away from kinks, which
 * the inputs avoid) or smooth on the scale of eps (truncation ~eps^2/6 * f''' ~ 1e-5), so the error is the
 * loss's float32 rounding (~1e-7 relative on |loss| <~ 10) over 2*eps; observed <= 1.5e-3.
 */
import { describe, expect, it } from 'vitest';
import type { NodeProto } from '../../src/onnx/types.js';
import { attrInt } from '../../src/onnx/attrs.js';
import { RULES } from '../../src/train/rules/index.js';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../src/onnx/schema.js';
import { gradCheck, gradModel, n } from './rules.harness.js';
import { ACTIVATION_CASES, CONV_CASES, ELEMENTWISE_CASES, LINEAR_CASES, MAXPOOL_INDICES_CASES, POOL_CASES, REDUCE_CASES, SHAPE_CASES } from './rules.cases.js';

const groups = {
  'elementwise and broadcasting': ELEMENTWISE_CASES,
  activations: ACTIVATION_CASES,
  'Gemm and MatMul': LINEAR_CASES,
  'Conv and ConvTranspose': CONV_CASES,
  'pooling and normalization': POOL_CASES,
  'MaxPool through Indices': MAXPOOL_INDICES_CASES,
  'shape ops': SHAPE_CASES,
  'reductions and gathers': REDUCE_CASES,
};

/** Every node any rule emitted, for the domain check at the end. */
const emitted: NodeProto[] = [];

/** What the gradient graphs may contain: standard ai.onnx ops that onnxruntime runs on CPU, wasm and WebGPU. */
const STANDARD = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Neg',
  'Sum',
  'Where',
  'ArgMax',
  'Equal',
  'Greater',
  'Less',
  'Not',
  'And',
  'Sign',
  'Exp',
  'Log',
  'Sqrt',
  'Reciprocal',
  'Pow',
  'Sigmoid',
  'Cast',
  'Identity',
  'ReduceSum',
  'Expand',
  'Reshape',
  'Transpose',
  'Slice',
  'Concat',
  'Pad',
  'Squeeze',
  'Unsqueeze',
  'Shape',
  'Size',
  'ConstantOfShape',
  'NonZero',
  'Gather',
  'Range',
  'Conv',
  'ConvTranspose',
  'MaxPool',
  'ScatterElements',
  'ScatterND',
  'Gemm',
  'MatMul',
  'Flatten',
  'CumSum',
  'ReduceMean',
  'Relu',
  'LeakyRelu',
  'Clip',
  'SpaceToDepth',
  'Abs',
  'Softplus',
  'Tanh',
  'Erf',
]);

for (const [group, cases] of Object.entries(groups)) {
  describe(`gradient rules match finite differences: ${group}`, () => {
    for (const c of cases) {
      it(c.name, async () => {
        const r = await gradCheck(c);
        emitted.push(...r.result.nodes);
        expect(r.failures).toEqual([]);
        expect(r.checked).toBeGreaterThan(0);
      });
    }
  });
}

describe('MaxPool gradient forms agree where finite differences cannot look (ties)', () => {
  // zeros after a Relu: whole windows tie; overlapping windows share their first element
  const values = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 3, 0, 3, 0, 3];
  const configs: Record<string, Record<string, number[]>> = {
    'overlapping 2x3 stride 1 with pads': { kernel_shape: [2, 3], strides: [1, 1], pads: [0, 1, 1, 0] },
    'tiles 2x2 stride 2': { kernel_shape: [2, 2], strides: [2, 2] },
    // windows tiling the 4x4 corner exactly, as SpaceToDepth lays them out
    'tiles 2x2 stride 2 exactly (4x4 corner)': { kernel_shape: [2, 2], strides: [2, 2] },
  };
  for (const [label, attrs] of Object.entries(configs)) {
    const corner = label.includes('corner');
    const shape = corner ? [1, 1, 4, 4] : [1, 1, 5, 5];
    const vals = corner ? values.filter((_, i) => i % 5 !== 4 && i < 20) : values;
    it(`windows form == indices form (onnxruntime and PyTorch pick the first maximum): ${label}`, async () => {
      const run = async (form: 'windows' | 'indices') => {
        const gm = await gradModel({
          name: form,
          nodes: [n('MaxPool', ['X'], ['Y'], attrs)],
          inputs: { X: { shape, grad: true, values: vals } },
          grad: { maxPool: form },
        });
        const s = await ort.InferenceSession.create(encodeModel(gm.model), { logSeverityLevel: 3 });
        const out = await s.run(gm.feeds);
        await s.release();
        return Array.from(out[gm.gradOuts[0]!]!.data as Float32Array);
      };
      const [w, i] = [await run('windows'), await run('indices')];
      expect(w).toEqual(i);
      expect(w.filter((v) => v !== 0).length).toBeGreaterThan(3);
    });
  }
});

describe('Conv input gradient forms agree at the size where the Conv form is chosen', () => {
  // the Conv form's weights are W with channel axes swapped per group and every spatial axis reversed
  const configs: { label: string; x: number[]; w: number[]; attrs: Record<string, number | number[]> }[] = [
    { label: '16 channels from 4, uneven pads', x: [2, 16, 32, 32], w: [4, 16, 3, 3], attrs: { pads: [1, 0, 2, 1] } },
    { label: '3x2 kernel (the spatial reversal is not a transpose)', x: [2, 16, 12, 11], w: [8, 16, 3, 2], attrs: { pads: [1, 1, 1, 0] } },
    { label: '4 groups of 8', x: [2, 32, 10, 10], w: [32, 8, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 4 } },
    { label: 'depthwise, 16 channels', x: [2, 16, 10, 10], w: [16, 1, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 16 } },
    { label: '1-D, kernel 5', x: [2, 16, 40], w: [16, 16, 5], attrs: { pads: [2, 2] } },
    { label: '1x1 kernel', x: [2, 16, 9, 9], w: [8, 16, 1, 1], attrs: {} },
  ];
  for (const { label, x, w, attrs } of configs) {
    it(`${label}: auto picks the Conv with flipped weights, == ConvTranspose (to float32 summation order)`, async () => {
      const run = async (form: 'auto' | 'convTranspose') => {
        const gm = await gradModel({
          name: form,
          nodes: [n('Conv', ['X', 'W'], ['Y'], attrs)],
          inputs: { X: { shape: x, grad: true }, W: { shape: w } },
          grad: { convInput: form },
        });
        const ops = gm.model.graph!.node!.map((v) => v.opType);
        const s = await ort.InferenceSession.create(encodeModel(gm.model), { logSeverityLevel: 3 });
        const out = await s.run(gm.feeds);
        await s.release();
        return { ops, dx: Array.from(out[gm.gradOuts[0]!]!.data as Float32Array) };
      };
      const [auto, ct] = [await run('auto'), await run('convTranspose')];
      expect(auto.ops.includes('ConvTranspose')).toBe(false);
      expect(ct.ops.includes('ConvTranspose')).toBe(true);
      expect(auto.dx.length).toBe(x.reduce((p, q) => p * q));
      const scale = Math.max(...ct.dx.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      const bad = auto.dx.findIndex((v, i) => !(Math.abs(v - ct.dx[i]!) <= 1e-5 * scale));
      expect(bad).toBe(-1);
    });
  }
});

describe('Depthwise weight gradient: the correlation form equals the patches form', () => {
  const configs: { label: string; x: number[]; w: number[]; attrs: Record<string, number | number[]>; symbolic?: boolean }[] = [
    { label: '16 channels, stride 1', x: [3, 16, 12, 11], w: [16, 1, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 16 } },
    {
      label: '16 channels, stride 2 (MobileNetV2 downsampling)',
      x: [2, 16, 14, 13],
      w: [16, 1, 3, 3],
      attrs: { pads: [1, 1, 1, 1], strides: [2, 2], group: 16 },
    },
    { label: 'symbolic batch: patches (the group would be N*C)', x: [2, 16, 6, 6], w: [16, 1, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 16 }, symbolic: true },
  ];
  for (const { label, x, w, attrs, symbolic } of configs) {
    it(label, async () => {
      const run = async (form: 'patches' | 'correlation') => {
        const gm = await gradModel({
          name: form,
          nodes: [n('Conv', ['X', 'W'], ['Y'], attrs)],
          inputs: { X: { shape: x, grad: true, ...(symbolic ? { symbolic: [0] } : {}) }, W: { shape: w, grad: true } },
          grad: { depthwiseWeight: form },
        });
        const groups = gm.model.graph!.node!.filter((v) => v.opType === 'Conv').map((v) => attrInt(v, 'group', 1));
        const s = await ort.InferenceSession.create(encodeModel(gm.model), { logSeverityLevel: 3 });
        const out = await s.run(gm.feeds);
        await s.release();
        return { groups, dw: Array.from(out[gm.gradOuts[1]!]!.data as Float32Array) };
      };
      const [corr, patches] = [await run('correlation'), await run('patches')];
      expect(corr.groups.includes(x[0]! * x[1]!)).toBe(!symbolic);
      expect(patches.groups.includes(x[0]! * x[1]!)).toBe(false);
      expect(corr.dw.length).toBe(w.reduce((p, q) => p * q));
      const scale = Math.max(...patches.dw.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      const bad = corr.dw.findIndex((v, i) => !(Math.abs(v - patches.dw[i]!) <= 1e-5 * scale));
      expect(bad).toBe(-1);
    });
  }
});

describe('emitted ops', () => {
  it('are all default-domain standard ops (no com.microsoft gradient ops)', () => {
    expect(emitted.length).toBeGreaterThan(500);
    expect(emitted.filter((x) => (x.domain ?? '') !== '').map((x) => `${x.domain}:${x.opType}`)).toEqual([]);
    expect([...new Set(emitted.map((x) => x.opType!))].filter((op) => !STANDARD.has(op))).toEqual([]);
  });
});

describe('the finite-difference check can fail', () => {
  it('catches a wrong rule (Relu passing the gradient everywhere)', async () => {
    const relu = RULES.Relu!;
    const saved = relu.grad;
    relu.grad = ({ dy }) => [dy[0]!];
    try {
      const r = await gradCheck({ name: 'bad Relu', nodes: [n('Relu', ['X'])], inputs: { X: { shape: [3, 4], grad: true, gen: 'away' } }, float64: true });
      expect(r.failures.length).toBeGreaterThan(0);
    } finally {
      relu.grad = saved;
    }
  });
  it('catches a transposed weight gradient (Conv dW from a wrong stride/dilation swap)', async () => {
    const conv = RULES.Conv!;
    const saved = conv.grad;
    conv.grad = (a) => {
      const out = saved(a);
      // the gradient with the kernel's spatial axes flipped: right shape, wrong values
      return [out[0], out[1] ? a.ctx.transpose(out[1], [0, 1, 3, 2]) : undefined, out[2]];
    };
    try {
      const r = await gradCheck({
        name: 'bad Conv',
        nodes: [n('Conv', ['X', 'W'], ['Y'], { strides: [2, 2] })],
        inputs: { X: { shape: [1, 2, 5, 5] }, W: { shape: [2, 2, 3, 3], grad: true } },
      });
      expect(r.failures.length).toBeGreaterThan(0);
    } finally {
      conv.grad = saved;
    }
  });
});
