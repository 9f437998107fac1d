/**
 * One training-step model, every execution provider: the same model gives the same losses and
 * parameters step after step on cpu, wasm, webgpu (node, SwiftShader; parameters and Adam state kept
 * in device memory between steps) and in headless Chromium (browser-wasm, browser-webgpu). Plus the
 * pieces around it: schedules, parameter choice, checkpoints.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildResnet } from '../../bench/model.js';
import { convert } from '../../src/convert/convert.js';
import { readNpzArrays } from '../../src/data/numpy.js';
import { toFloat32, valueAt } from '../../src/data/npy.js';
import { readModel } from '../../src/onnx/read.js';
import { openRuntime } from '../../src/runtime/index.js';
import { SWIFTSHADER_ICD } from '../../src/runtime/node.js';
import type { EpName, HostTensor, Runtime } from '../../src/runtime/types.js';
import { readCheckpoint, writeCheckpoint, type RunSettings } from '../../src/train/checkpoint.js';
import { labelsFeed } from '../../src/train/gradients.js';
import { chooseParameters } from '../../src/train/params.js';
import { freshStart, StepRunner } from '../../src/train/runner.js';
import { learningRate } from '../../src/train/schedule.js';
import { buildTrainingModel, type TrainingModel } from '../../src/train/step.js';
import { ROOT } from '../helpers.js';
import { IRIS_ADAM_SETTINGS } from './settings.js';

const GRADIENTS = resolve(ROOT, '../shared/fixtures/gradients');
const opened: Runtime[] = [];
afterAll(async () => {
  for (const rt of opened) await rt.close();
});

async function open(ep: EpName): Promise<Runtime> {
  const rt = await openRuntime(ep, ep === 'webgpu' ? { vulkanIcd: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD } : {});
  opened.push(rt);
  return rt;
}

function batchOf(net: string): { x: HostTensor; y: HostTensor } {
  const file = join(GRADIENTS, net, 'batch.npz');
  const arrays = readNpzArrays(readFileSync(file), file);
  const x = arrays.get('x')!();
  const y = arrays.get('y')!();
  return {
    x: { type: 'float32', data: toFloat32(x), dims: x.shape },
    y: labelsFeed({ type: 'int32', data: Int32Array.from({ length: y.shape[0]! }, (_, i) => valueAt(y, i)), dims: [y.shape[0]!] }, 'classification'),
  };
}

async function trainingModel(net: string): Promise<TrainingModel> {
  const mf = await readModel(join(GRADIENTS, net, 'model.onnx'));
  convert(mf.model);
  const params = chooseParameters(mf.model.graph!).trainable;
  return buildTrainingModel(mf.model, { sourceDir: mf.dir, file: net, params, task: 'classification', optimizer: { name: 'adam' } });
}

/** The shipped CNN's step graph (two 3x3 convs, 8 and 16 channels, on 28x28 and 14x14, a 2x2 MaxPool after each) */
async function mnistStep(cpuKernels = false): Promise<TrainingModel> {
  const mf = await readModel(join(ROOT, 'models/mnist-cnn.onnx'));
  convert(mf.model);
  const params = chooseParameters(mf.model.graph!).trainable;
  return buildTrainingModel(mf.model, { sourceDir: mf.dir, file: 'mnist-cnn.onnx', params, task: 'classification', optimizer: { name: 'adam' }, cpuKernels });
}

/** n seeded noise images of 28x28 with labels 0..9 in turn */
function noiseBatch(n: number): { x: HostTensor; y: HostTensor } {
  let seed = 12345;
  const noise = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return {
    x: { type: 'float32', data: Float32Array.from({ length: n * 28 * 28 }, noise), dims: [n, 1, 28, 28] },
    y: labelsFeed({ type: 'int32', data: Int32Array.from({ length: n }, (_, i) => i % 10), dims: [n] }, 'classification'),
  };
}

async function run(ep: EpName, tm: TrainingModel, batch: { x: HostTensor; y: HostTensor }, steps: number) {
  const rt = await open(ep);
  const runner = await StepRunner.open(rt, tm, freshStart(tm));
  try {
    const losses: number[] = [];
    for (let t = 1; t <= steps; t++) losses.push((await runner.step(batch.x, batch.y, t, 0.01)).loss);
    return { losses, onDevice: runner.onDevice, ...(await runner.snapshot()) };
  } finally {
    await runner.close();
  }
}

const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));

/** Trains `steps` Adam steps on cpu, then on each of `eps`: the same losses (1e-4) and parameters (1e-3). */
async function expectSameTraining(net: string, tm: TrainingModel, batch: { x: HostTensor; y: HostTensor }, steps: number, eps: readonly EpName[]) {
  const cpu = await run('cpu', tm, batch, steps);
  expect(cpu.onDevice).toBe(false);
  // Training really happens: the loss goes down over the steps.
  expect(cpu.losses[steps - 1]!).toBeLessThan(cpu.losses[0]!);
  for (const ep of eps) {
    const other = await run(ep, tm, batch, steps);
    expect(other.onDevice).toBe(ep === 'webgpu');
    const worst = Math.max(...other.losses.map((l, i) => relDiff(l, cpu.losses[i]!)));
    console.log(`${net} ${ep}: losses ${other.losses.map((l) => l.toFixed(6)).join(' ')}, worst rel diff vs cpu ${worst.toExponential(2)}`);
    expect(worst, `${ep} losses ${other.losses.join(' ')} vs cpu ${cpu.losses.join(' ')}`).toBeLessThanOrEqual(1e-4);
    for (const p of tm.params) {
      const a = other.params[p.name]!.data as Float32Array;
      const b = cpu.params[p.name]!.data as Float32Array;
      let w = 0;
      for (let i = 0; i < b.length; i++) w = Math.max(w, relDiff(a[i]!, b[i]!));
      expect(w, `${ep} ${p.name}`).toBeLessThanOrEqual(1e-3);
    }
  }
}

describe('the same training-step model on cpu, wasm, webgpu and in Chromium', () => {
  // cnn_digits' MaxPool windows do not overlap, so its gradient needs no MaxPool Indices output, which
  // onnxruntime 1.30's WebGPU kernel refuses at run time ("The Indices output is not supported yet").
  const cases = [
    ['mlp_iris', 4, ['wasm', 'webgpu', 'browser-wasm', 'browser-webgpu']],
    ['cnn_digits', 3, ['wasm', 'webgpu']],
  ] as const;
  for (const [net, steps, eps] of cases) {
    it(`${net}: ${steps} Adam steps give the same losses (1e-4) and parameters on cpu, ${eps.join(', ')}`, async () => {
      await expectSameTraining(net, await trainingModel(net), batchOf(net), steps, eps);
    });
  }

  // The shipped CNN (two 3x3 convs, 8 and 16 channels, on 28x28 and 14x14): each conv's weight gradient
  // joins nine kernel offsets, which as one Concat onnxruntime-web's WebGPU EP silently got wrong in
  // Chromium (losses 7.4 -> 459069; see src/onnx/concat.ts). A fixed batch of 8 noise images.
  it('mnist-cnn: 3 Adam steps give the same losses and parameters on cpu, wasm, webgpu, browser-wasm, browser-webgpu', async () => {
    await expectSameTraining('mnist-cnn', await mnistStep(), noiseBatch(8), 3, ['wasm', 'webgpu', 'browser-wasm', 'browser-webgpu']);
  });

  // onnxruntime's CPU kernels take MaxPool's gradient through its Indices output (GradOptions.maxPool)
  it("mnist-cnn on onnxruntime's CPU kernels: MaxPool's gradient scatters at its Indices, and trains as the window form does, on cpu, wasm and browser-wasm", async () => {
    const [windows, indices] = [await mnistStep(), await mnistStep(true)];
    // the MaxPools and their gradients' nodes, named after them
    const ops = (tm: TrainingModel) => new Set(tm.model.graph!.node!.filter((n) => n.name?.startsWith('/MaxPool')).map((n) => n.opType));
    expect(ops(indices)).toContain('ScatterElements');
    expect(ops(indices)).not.toContain('SpaceToDepth');
    expect(ops(windows)).toContain('SpaceToDepth');
    expect(ops(windows)).not.toContain('ScatterElements');
    const batch = noiseBatch(8);
    const [a, b] = [await run('cpu', windows, batch, 3), await run('cpu', indices, batch, 3)];
    // the same gradients in the same order: each window's one gradient lands on the same element either way
    for (let i = 0; i < 3; i++) expect(relDiff(b.losses[i]!, a.losses[i]!)).toBeLessThanOrEqual(1e-6);
    await expectSameTraining('mnist-cnn (indices)', indices, batch, 3, ['wasm', 'browser-wasm']);
  });
});

describe('the step graph keeps one tensor per ALReLU for the backward', () => {
  it("its output is recomputed from its input for the backward's readers, and read by the forward only", () => {
    const model = buildResnet();
    convert(model);
    const tm = buildTrainingModel(model, {
      sourceDir: '.',
      file: 'resnet_small',
      params: chooseParameters(model.graph!).trainable,
      task: 'classification',
      optimizer: { name: 'adam' },
    });
    const nodes = tm.model.graph!.node!;
    const lastLoss = Math.max(...nodes.flatMap((n, i) => (n.name?.startsWith('loss/') ? [i] : [])));
    const fused = nodes.filter((n) => n.opType === 'LeakyRelu' && (n.attribute ?? []).some((a) => a.name === 'alpha' && a.f! < 0));
    expect(fused.length).toBe(13);
    for (const n of fused) {
      const readers = nodes.flatMap((r, i) => (r.input!.includes(n.output![0]!) ? [i] : []));
      expect(Math.max(...readers), n.name!).toBeLessThan(lastLoss);
    }
    // the copies: Abs(LeakyRelu(x, +a)) after the loss, each read by the backward
    const copies = nodes.flatMap((n, i) => (n.opType === 'Abs' && n.name?.includes('/recompute') ? [i] : []));
    expect(copies.length).toBeGreaterThanOrEqual(12);
    for (const i of copies) {
      expect(i).toBeGreaterThan(lastLoss);
      expect(nodes[i - 1]!.opType).toBe('LeakyRelu');
      expect(nodes.some((r) => r.input!.includes(nodes[i]!.output![0]!))).toBe(true);
    }
  });
});

describe('schedules', () => {
  it('constant, step (per epoch) and cosine (per step, to 0)', () => {
    expect(learningRate({ name: 'constant', lr: 0.1 }, 5, 100, 200)).toBe(0.1);
    expect(learningRate({ name: 'step', lr: 0.1, every: 2, gamma: 0.5 }, 0, 0, 10)).toBe(0.1);
    expect(learningRate({ name: 'step', lr: 0.1, every: 2, gamma: 0.5 }, 3, 0, 10)).toBeCloseTo(0.05, 12);
    expect(learningRate({ name: 'step', lr: 0.1, every: 2, gamma: 0.5 }, 4, 0, 10)).toBeCloseTo(0.025, 12);
    expect(learningRate({ name: 'cosine', lr: 0.1 }, 0, 0, 100)).toBeCloseTo(0.1, 12);
    expect(learningRate({ name: 'cosine', lr: 0.1 }, 0, 50, 100)).toBeCloseTo(0.05, 12);
    expect(learningRate({ name: 'cosine', lr: 0.1 }, 0, 100, 100)).toBeCloseTo(0, 12);
  });
});

describe('parameters', () => {
  it('float initializers, minus BatchNormalization statistics; --freeze and --train-only by glob or /regex/', async () => {
    const mf = await readModel(join(ROOT, '../shared/fixtures/models/onnx2c/mnist/model.onnx'));
    const all = chooseParameters(mf.model.graph!);
    // the two int64 Reshape targets are not parameters, though (IR 3) they are graph inputs too
    expect(all.trainable.sort()).toEqual(['Parameter193', 'Parameter194', 'Parameter5', 'Parameter6', 'Parameter87', 'Parameter88']);
    expect(chooseParameters(mf.model.graph!, { freeze: ['Parameter19?'] }).trainable.sort()).toEqual([
      'Parameter5',
      'Parameter6',
      'Parameter87',
      'Parameter88',
    ]);
    expect(chooseParameters(mf.model.graph!, { trainOnly: ['/^Parameter19[34]$/'] }).trainable.sort()).toEqual(['Parameter193', 'Parameter194']);
    expect(() => chooseParameters(mf.model.graph!, { freeze: ['nothing*'] })).toThrow(/^freeze: 'nothing\*' matches no parameter/);
    expect(() => chooseParameters(mf.model.graph!, { freeze: ['*'] })).toThrow(/every parameter is frozen/);
    const bn = {
      node: [{ opType: 'BatchNormalization', input: ['x', 's', 'b', 'mean', 'var'], output: ['y'] }],
      initializer: ['s', 'b', 'mean', 'var'].map((name) => ({ name, dataType: 1, dims: [2], rawData: new Uint8Array(8) })),
    };
    const c = chooseParameters(bn);
    expect(c.trainable).toEqual(['s', 'b']);
    expect(c.frozen.map((f) => f.name)).toEqual(['mean', 'var']);
  });
});

describe('checkpoints', () => {
  it('round-trip metadata and tensors exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-ckpt-'));
    const t = (v: number[]): HostTensor => ({ type: 'float32', data: Float32Array.from(v), dims: [v.length] });
    const settings: RunSettings = IRIS_ADAM_SETTINGS;
    const history = [1, 2].map((epoch) => ({ epoch, trainLoss: 1 / epoch, valMetric: 0.5, val: {}, lr: 0.01, seconds: 1, steps: 20 }));
    const meta = {
      version: 2 as const,
      modelHash: 'a'.repeat(64),
      settings,
      params: ['w'],
      epoch: 2,
      globalStep: 40,
      best: { epoch: 1, value: 0.9 },
      sinceBest: 1,
      history,
    };
    await writeCheckpoint(join(dir, 'c.ckpt'), { meta, params: { w: t([1, 2.5]) }, state: { 'm:w': t([0.1, 0.2]) }, best: { w: t([3, 4]) } });
    const back = await readCheckpoint(join(dir, 'c.ckpt'));
    expect(back.meta).toEqual(meta);
    expect(Array.from(back.params.w!.data as Float32Array)).toEqual([1, 2.5]);
    expect(Array.from(back.state['m:w']!.data as Float32Array)).toEqual([Math.fround(0.1), Math.fround(0.2)]);
    expect(Array.from(back.best.w!.data as Float32Array)).toEqual([3, 4]);
    await expect(readCheckpoint(join(dir, 'missing.ckpt'))).rejects.toThrow(/no such checkpoint/);
  });
});
