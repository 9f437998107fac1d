/**
 * The training loop as a library call, on models built here: a fixed batch dimension that cannot be
 * made symbolic (a Reshape hard-codes the whole batch) falls back to the model's own batch size, with
 * padded validation batches; frozen parameters stay bit-identical; the output keeps the graph.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/types.js';
import { DataType } from '../../src/onnx/dtype.js';
import type { ModelProto, TensorProto } from '../../src/onnx/types.js';
import { openRuntime } from '../../src/runtime/index.js';
import type { Runtime } from '../../src/runtime/types.js';
import { tensorFromProto } from '../../src/runtime/tensor.js';
import { finetune, type FinetuneOptions } from '../../src/train/loop.js';
import { SWIFTSHADER_ICD } from '../../src/runtime/node.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let rt: Runtime;
beforeAll(async () => {
  rt = await openRuntime('cpu');
});
afterAll(async () => {
  await rt?.close();
});

const f32 = (name: string, dims: number[], values: number[]): TensorProto => ({
  name,
  dataType: DataType.FLOAT,
  dims,
  rawData: new Uint8Array(Float32Array.from(values).buffer),
});
const i64 = (name: string, values: number[]): TensorProto => ({
  name,
  dataType: DataType.INT64,
  dims: [values.length],
  rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
});
const info = (name: string, dims: number[]) => ({
  name,
  type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
});

/**
 * x [2, 4] -> Reshape [4, 2] -> Reshape [2, 4] -> Gemm(W [3, 4], b [3], transB) -> LeakyRelu -> Abs -> Gemm(V, c).
 * The first Reshape's target does not start with the batch (2), so it stays and a batch of 8 cannot pass it.
 */
function fixedBatchModel(): ModelProto {
  const w = Array.from({ length: 12 }, (_, i) => Math.sin(i + 1) * 0.5);
  const v = Array.from({ length: 9 }, (_, i) => Math.cos(i + 1) * 0.5);
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'fixed',
      input: [info('x', [2, 4])],
      output: [info('y', [2, 3])],
      initializer: [i64('s1', [4, 2]), i64('s2', [2, 4]), f32('W', [3, 4], w), f32('b', [3], [0.1, -0.2, 0.05]), f32('V', [3, 3], v), f32('c', [3], [0, 0, 0])],
      node: [
        { opType: 'Reshape', input: ['x', 's1'], output: ['r1'], name: 'r1' },
        { opType: 'Reshape', input: ['r1', 's2'], output: ['r2'], name: 'r2' },
        { opType: 'Gemm', input: ['r2', 'W', 'b'], output: ['h'], name: 'fc1', attribute: [{ name: 'transB', type: 2, i: 1 }] },
        { opType: 'LeakyRelu', input: ['h'], output: ['hl'], name: 'act_leaky', attribute: [{ name: 'alpha', type: 1, f: 0.01 }] },
        { opType: 'Abs', input: ['hl'], output: ['ha'], name: 'act' },
        { opType: 'Gemm', input: ['ha', 'V', 'c'], output: ['y'], name: 'fc2', attribute: [{ name: 'transB', type: 2, i: 1 }] },
      ],
    },
  };
}

/** Three separable blobs in 4-D, 41 samples (odd, so the last validation batch needs padding). */
function blobs(n: number, offset: number): Dataset {
  const x = new Float32Array(n * 4);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = (i + offset) % 3;
    y[i] = k;
    for (let j = 0; j < 4; j++) x[i * 4 + j] = (j === k ? 2 : 0) + Math.sin(7 * i + j + offset) * 0.3;
  }
  return { name: 'blobs', sampleShape: [4], x, y, task: 'classification', classes: ['a', 'b', 'c'], count: n };
}

describe('finetune() on a model with a batch it cannot relax', () => {
  it("falls back to the model's batch of 2, learns, pads validation, and leaves frozen parameters and the graph alone", async () => {
    const model = fixedBatchModel();
    const notes: string[] = [];
    const r = await finetune({
      model,
      sourceDir: '.',
      file: 'fixed.onnx',
      train: blobs(41, 0),
      val: blobs(11, 1),
      test: blobs(9, 2),
      runtime: rt,
      epochs: 4,
      batchSize: 8,
      optimizer: { name: 'adam' },
      schedule: { name: 'constant', lr: 0.05 },
      freeze: ['c'],
      say: (l) => notes.push(l),
    });
    expect(notes.join('\n')).toMatch(/batch dimension is fixed at 2; making it symbolic changed its outputs, so training uses batches of 2/);
    expect(r.log.batch).toMatchObject({ size: 2, relaxed: false, originalBatch: 2, stepsPerEpoch: 20 });
    expect(r.log.parameters.trainable).toEqual(['W', 'b', 'V']);
    expect(r.log.epochs[r.log.epochs.length - 1]!.trainLoss).toBeLessThan(r.log.epochs[0]!.trainLoss);
    expect(r.log.best!.value).toBeGreaterThan(r.log.initial.accuracy!);
    const out = new Map(r.model.graph!.initializer!.map((t) => [t.name!, Array.from(tensorFromProto(t).data as Float32Array | BigInt64Array, Number)]));
    const inp = new Map(model.graph!.initializer!.map((t) => [t.name!, Array.from(tensorFromProto(t).data as Float32Array | BigInt64Array, Number)]));
    expect(out.get('c')).toEqual(inp.get('c'));
    expect(out.get('s1')).toEqual(inp.get('s1'));
    expect(out.get('W')).not.toEqual(inp.get('W'));
    const shape = (m: ModelProto) => m.graph!.node!.map((n) => [n.opType, [...n.input!], [...n.output!]]);
    expect(shape(r.model)).toEqual(shape(model));
    expect(r.model.graph!.input!.map((i) => i.name)).toEqual(['x']);
  });
});

/** x [N, 1, H, W] -> Conv 1->4 3x3 stride 2 -> Relu -> GlobalAveragePool -> Flatten -> Gemm 4->3: any image size. */
function anySizeModel(): ModelProto {
  const sym = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const w = Array.from({ length: 36 }, (_, i) => Math.sin(3 * i + 1) * 0.5);
  const g = Array.from({ length: 12 }, (_, i) => Math.cos(2 * i + 1) * 0.5);
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'any-size',
      input: [sym('x', ['N', 1, 'H', 'W'])],
      output: [sym('y', ['N', 3])],
      initializer: [f32('W', [4, 1, 3, 3], w), f32('B', [4], [0, 0.1, -0.1, 0.05]), f32('G', [3, 4], g), f32('c', [3], [0, 0, 0])],
      node: [
        {
          opType: 'Conv',
          input: ['x', 'W', 'B'],
          output: ['h'],
          name: 'conv',
          attribute: [
            { name: 'strides', type: 7, ints: [2, 2] },
            { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
          ],
        },
        { opType: 'Relu', input: ['h'], output: ['r'], name: 'relu' },
        { opType: 'GlobalAveragePool', input: ['r'], output: ['p'], name: 'gap' },
        { opType: 'Flatten', input: ['p'], output: ['f'], name: 'flat' },
        { opType: 'Gemm', input: ['f', 'G', 'c'], output: ['y'], name: 'fc', attribute: [{ name: 'transB', type: 2, i: 1 }] },
      ],
    },
  };
}

/** 1x6x6 images, class k bright in a third of the rows: a task the conv can learn. */
function stripes(n: number, offset: number): Dataset {
  const x = new Float32Array(n * 36);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = (i + offset) % 3;
    y[i] = k;
    for (let p = 0; p < 36; p++) x[i * 36 + p] = (Math.floor(p / 12) === k ? 1 : 0) + Math.sin(5 * i + p + offset) * 0.1;
  }
  return { name: 'stripes', sampleShape: [1, 6, 6], x, y, task: 'classification', classes: ['a', 'b', 'c'], count: n };
}

describe('finetune() on a model with symbolic image sizes', () => {
  it("takes the data's sample shape for the Conv gradient, learns, and writes the model with its sizes still symbolic", async () => {
    const model = anySizeModel();
    const r = await finetune({
      model,
      sourceDir: '.',
      file: 'any-size.onnx',
      train: stripes(60, 0),
      val: stripes(15, 1),
      runtime: rt,
      epochs: 6,
      batchSize: 10,
      optimizer: { name: 'adam' },
      schedule: { name: 'constant', lr: 0.05 },
    });
    expect(r.log.epochs.at(-1)!.trainLoss).toBeLessThan(r.log.epochs[0]!.trainLoss);
    expect(r.log.best!.value).toBeGreaterThan(r.log.initial.accuracy!);
    expect(r.model.graph!.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['N', 1, 'H', 'W']);
  });
});

describe('finetune() with the update on the host', () => {
  it('trains as the graph update does, epoch by epoch, and resumes from its checkpoint to the same end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-host-'));
    try {
      const run = (updateOn: 'graph' | 'host', epochs: number, extra: Partial<FinetuneOptions> = {}) =>
        finetune({
          model: fixedBatchModel(),
          sourceDir: '.',
          file: 'fixed.onnx',
          train: blobs(41, 0),
          val: blobs(11, 1),
          runtime: rt,
          epochs,
          batchSize: 2,
          optimizer: { name: 'adamw', weightDecay: 0.05 },
          schedule: { name: 'constant', lr: 0.02 },
          seed: 3,
          updateOn,
          force: true,
          ...extra,
        });
      const graph = await run('graph', 3);
      const host = await run('host', 3);
      expect(graph.log.stepGraph.update).toBe('graph');
      expect(host.log.stepGraph.update).toBe('host');
      const near = (a: number, b: number) => Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b));
      host.log.epochs.forEach((e, i) => expect(near(e.trainLoss, graph.log.epochs[i]!.trainLoss), `epoch ${i + 1}`).toBe(true));
      expect(host.log.epochs[2]!.trainLoss).toBeLessThan(host.log.epochs[0]!.trainLoss);
      for (const [name, t] of Object.entries(host.params)) {
        const [a, b] = [t.data as Float32Array, graph.params[name]!.data as Float32Array];
        a.forEach((v, i) => expect(near(v, b[i]!), `${name}[${i}]`).toBe(true));
      }
      // interrupted after 2 epochs and resumed: the same run as the 3 epochs straight (host state checkpointed)
      const ckpt = join(dir, 'run.ckpt');
      await run('host', 2, { checkpoint: ckpt });
      const resumed = await run('host', 3, { checkpoint: ckpt, resume: true });
      expect(resumed.log.epochs.map((e) => e.trainLoss)).toEqual(host.log.epochs.map((e) => e.trainLoss));
      for (const [name, t] of Object.entries(host.params))
        expect(Array.from(resumed.params[name]!.data as Float32Array)).toEqual(Array.from(t.data as Float32Array));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** a one-epoch run on a small split, for the refusals (which come before any work) */
  const small = (runtime: Runtime, updateOn: FinetuneOptions['updateOn']) =>
    finetune({
      model: fixedBatchModel(),
      sourceDir: '.',
      file: 'fixed.onnx',
      train: blobs(8, 0),
      val: blobs(4, 1),
      runtime,
      epochs: 1,
      batchSize: 2,
      optimizer: { name: 'adam' },
      schedule: { name: 'constant', lr: 0.01 },
      updateOn,
    });

  it('refuses an unknown updateOn, naming it', async () => {
    await expect(small(rt, 'gpu' as FinetuneOptions['updateOn'])).rejects.toThrow(/updateOn.*must be 'auto', 'graph' or 'host', got "gpu"/);
  });

  it("refuses 'host' where the parameters stay in device memory", async () => {
    const gpu = await openRuntime('webgpu', { vulkanIcd: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD }).catch(() => undefined);
    if (!gpu) return;
    try {
      await expect(small(gpu, 'host')).rejects.toThrow(/'host' needs parameters in host memory/);
    } finally {
      await gpu.close();
    }
  });
});
