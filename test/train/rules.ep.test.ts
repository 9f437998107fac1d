/**
 * The gradient graphs are standard ONNX on every EP: the same graphs (float32) on onnxruntime-web wasm
 * and on onnxruntime-node WebGPU (SwiftShader here) give CPU's values. This is where EP-specific kernel
 * gaps show: ORT 1.30's WebGPU MaxPool cannot produce Indices, and its grouped ConvTranspose is wrong with
 * one output channel per group (both avoided by the rules; see pool.ts and conv.ts).
 */
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeModel } from '../../src/onnx/schema.js';
import { openRuntime, type HostTensor, type Runtime, type TensorType, type TypedArray } from '../../src/runtime/index.js';
import { SWIFTSHADER_ICD } from '../../src/runtime/node.js';
import { gradModel, type Case } from './rules.harness.js';
import { ACTIVATION_CASES, CONV_CASES, ELEMENTWISE_CASES, LINEAR_CASES, MAXPOOL_INDICES_CASES, POOL_CASES, REDUCE_CASES, SHAPE_CASES } from './rules.cases.js';

const pick = (cases: Case[], names: string[]) => cases.filter((c) => names.some((nm) => c.name.startsWith(nm)));

const CASES: Case[] = [
  ...pick(CONV_CASES, [
    'Conv stride 2',
    'Conv groups',
    'Conv 1x1 stride 2',
    'Conv input gradient as Conv',
    'Conv 16 channels',
    'Conv batch folded into the weight GEMMs: pads',
    'Conv batch folded into the weight GEMMs: stride',
    'Conv depthwise',
    'Conv SAME_UPPER',
    'Conv 1-D',
    'Conv no bias',
    'ConvTranspose stride 2',
    'ConvTranspose groups',
  ]),
  ...pick(POOL_CASES, [
    'MaxPool overlapping 3x3 stride 2',
    'MaxPool ceil_mode',
    'MaxPool symbolic',
    'MaxPool tiles 2x2',
    'MaxPool tiles 3x3 exactly',
    'AveragePool overlapping pads exclude',
    'AveragePool ceil_mode include',
    'GlobalAveragePool',
    'BatchNormalization inference',
  ]),
  ...pick(LINEAR_CASES, ['Gemm transA=1 transB=1 alpha 0.7 beta 1.3 C [1]', 'Gemm transA=0 transB=1', 'MatMul batched broadcast [2,1,3,4]']),
  ...pick(ELEMENTWISE_CASES, ['Add broadcast both ways', 'Div broadcast', 'Add symbolic']),
  ...pick(ACTIVATION_CASES, ['ALReLU model-local', 'LeakyRelu negative', 'Abs', 'LogSoftmax axis -1']),
  ...pick(SHAPE_CASES, ['Slice steps 2', 'Pad negative', 'Concat axis 1']),
  ...pick(REDUCE_CASES, ['ReduceMean keepdims 0', 'Gather axis 0', 'GatherElements']),
].map((c) => ({ ...c, float64: false, name: c.name }));

// the Indices form, which the step graph takes on onnxruntime's CPU kernels (wasm among them); WebGPU has no Indices
const WASM_CASES: Case[] = [
  ...CASES,
  ...pick(MAXPOOL_INDICES_CASES, ['MaxPool overlapping 3x3 stride 2', 'MaxPool ceil_mode', 'MaxPool symbolic']).map((c) => ({ ...c, float64: false })),
];

async function tryOpen(ep: 'wasm' | 'webgpu'): Promise<Runtime | string> {
  try {
    return await openRuntime(ep, ep === 'webgpu' ? { vulkanIcd: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD } : {});
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const runtimes: Runtime[] = [];
afterAll(async () => {
  for (const rt of runtimes) await rt.close();
});

for (const ep of ['wasm', 'webgpu'] as const) {
  describe(`gradient graphs on ${ep} match CPU`, async () => {
    const rt = await tryOpen(ep);
    if (typeof rt === 'string') {
      // CI installs what both EPs need: there, an unavailable EP is a failure, not a skip.
      if (process.env.CI) it(`${ep} opens`, () => expect.fail(rt));
      else it.skip(`${ep} unavailable here: ${rt}`, () => undefined);
      return;
    }
    runtimes.push(rt);
    for (const c of ep === 'wasm' ? WASM_CASES : CASES) {
      it(c.name, async () => {
        const gm = await gradModel(c);
        const bytes = encodeModel(gm.model);
        const cpu = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, intraOpNumThreads: 1 });
        const ref = await cpu.run(gm.feeds);
        await cpu.release();
        const s = await rt.load(bytes);
        const feeds: Record<string, HostTensor> = Object.fromEntries(
          Object.entries(gm.feeds).map(([k, v]) => [k, { type: v.type as TensorType, data: v.data as TypedArray, dims: v.dims.map(Number) }]),
        );
        const out = await s.run(feeds);
        await s.release();
        for (const [name, r] of Object.entries(ref)) {
          const a = r.data as Float32Array;
          const b = out[name]!.data as Float32Array;
          expect(b.length, name).toBe(a.length);
          // float32 sums in a different order: ~1e-6 relative; a wrong kernel is O(1)
          const bad = Array.from(a).findIndex((v, i) => !(Math.abs(b[i]! - v) <= 1e-4 + 1e-3 * Math.abs(v)));
          expect(bad, `${name}[${bad}]: ${ep} ${b[bad]} vs cpu ${a[bad]}`).toBe(-1);
        }
      });
    }
  });
}
