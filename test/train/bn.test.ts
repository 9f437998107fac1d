/**
 * `--bn train` against PyTorch 1.13 (test/train/oracles/bn_train.py wrote the fixture: small networks with
 * BatchNorm2d/BatchNorm1d exported in eval mode, then K training steps in train mode on fixed batches).
 * Our training-step model reproduces the losses before each step, and every parameter and running
 * statistic after each step, on cpu and wasm (and webgpu, SwiftShader, with the values kept in device
 * memory); the validation model fed the trained values reproduces PyTorch's eval-mode logits; a layer
 * frozen by --freeze stays in inference mode as PyTorch's module.eval() does. Finite differences check the
 * train-mode gradient; the loop writes the trained running statistics into the output model and refuses
 * to resume a checkpoint with the other mode; `frozen` builds the same graph as before.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/types.js';
import { readNpzArrays } from '../../src/data/numpy.js';
import { toFloat32, valueAt } from '../../src/data/npy.js';
import { DataType } from '../../src/onnx/dtype.js';
import { readModel } from '../../src/onnx/read.js';
import { decodeModel } from '../../src/onnx/schema.js';
import type { GraphProto, ModelProto, TensorProto } from '../../src/onnx/types.js';
import { openRuntime } from '../../src/runtime/index.js';
import { SWIFTSHADER_ICD } from '../../src/runtime/node.js';
import { tensorFromProto } from '../../src/runtime/tensor.js';
import type { EpName, HostTensor, Runtime } from '../../src/runtime/types.js';
import { batchNormLayers, trainBatchNorm } from '../../src/train/batchnorm.js';
import { labelsFeed } from '../../src/train/gradients.js';
import { finetune, type FinetuneLog } from '../../src/train/loop.js';
import type { OptimizerConfig } from '../../src/train/optim.js';
import { chooseParameters } from '../../src/train/params.js';
import { freshStart, StepRunner } from '../../src/train/runner.js';
import { buildEvalModel, buildTrainingModel, type TrainingModel } from '../../src/train/step.js';
import { errorLine, runCli } from '../cli.js';
import { ROOT } from '../helpers.js';
import { gradCheck, n, type Case, type InputSpec } from './rules.harness.js';

const ORACLE = join(ROOT, 'test/train/oracles/bn_train');

interface Scenario {
  optimizer: 'adam' | 'momentum' | 'sgd';
  lr: number;
  steps: number;
  batch: number;
  losses: number[];
  parameters: string[];
  frozen: string[];
  running: string[];
}
const expected = JSON.parse(readFileSync(join(ORACLE, 'expected.json'), 'utf8')) as { scenarios: Record<string, Scenario> };

const OPTIMIZERS: Record<Scenario['optimizer'], OptimizerConfig> = {
  adam: { name: 'adam', beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  momentum: { name: 'momentum', momentum: 0.9 },
  sgd: { name: 'sgd' },
};

const opened = new Map<EpName, Runtime>();
afterAll(async () => {
  for (const rt of opened.values()) await rt.close();
});
async function runtime(ep: EpName): Promise<Runtime> {
  let rt = opened.get(ep);
  if (!rt) {
    rt = await openRuntime(ep, ep === 'webgpu' ? { vulkanIcd: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD } : {});
    opened.set(ep, rt);
  }
  return rt;
}

function arrays(name: string): Map<string, { data: Float32Array; shape: number[]; ints?: Int32Array }> {
  const file = join(ORACLE, `${name}.npz`);
  const out = new Map<string, { data: Float32Array; shape: number[]; ints?: Int32Array }>();
  for (const [k, get] of readNpzArrays(readFileSync(file), file)) {
    const a = get();
    const n = a.shape.reduce((p, q) => p * q, 1);
    out.set(k, { data: toFloat32(a), shape: a.shape, ...(k === 'y' ? { ints: Int32Array.from({ length: n }, (_, i) => valueAt(a, i)) } : {}) });
  }
  return out;
}

/** Worst violation of |a - e| <= tol * max(1, |e|), as a ratio (<= 1 passes). */
function worst(actual: ArrayLike<number>, want: ArrayLike<number>, tol: number): number {
  expect(actual.length).toBe(want.length);
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(actual[i]! - want[i]!) / (tol * Math.max(1, Math.abs(want[i]!))));
  return w;
}

async function trainingModel(name: string): Promise<{ tm: TrainingModel; model: ModelProto; dir: string }> {
  const s = expected.scenarios[name]!;
  const mf = await readModel(join(ORACLE, `${name}.onnx`));
  const params = chooseParameters(mf.model.graph!, { freeze: s.frozen }).trainable;
  expect([...params].sort()).toEqual([...s.parameters].sort());
  const tm = buildTrainingModel(mf.model, {
    sourceDir: mf.dir,
    file: name,
    params,
    task: 'classification',
    optimizer: OPTIMIZERS[s.optimizer],
    batchNorm: 'train',
  });
  return { tm, model: mf.model, dir: mf.dir };
}

/** K steps on one EP; after each, every parameter and running statistic against PyTorch's. */
async function replay(name: string, ep: EpName, tol: number): Promise<{ losses: number[]; final: Record<string, HostTensor>; onDevice: boolean }> {
  const s = expected.scenarios[name]!;
  const a = arrays(name);
  const { tm } = await trainingModel(name);
  const runner = await StepRunner.open(await runtime(ep), tm, freshStart(tm));
  const x = a.get('x')!;
  const y = a.get('y')!;
  const per = x.data.length / s.steps;
  try {
    const losses: number[] = [];
    for (let t = 0; t < s.steps; t++) {
      const xb: HostTensor = { type: 'float32', data: x.data.subarray(t * per, (t + 1) * per), dims: x.shape.slice(1) };
      const yb: HostTensor = { type: 'int32', data: y.ints!.subarray(t * s.batch, (t + 1) * s.batch), dims: [s.batch] };
      losses.push((await runner.step(xb, labelsFeed(yb, 'classification'), t + 1, s.lr)).loss);
      const now = (await runner.snapshot()).params;
      for (const p of [...s.parameters, ...s.running]) {
        const want = a.get(`step${t + 1}/${p}`)!;
        const got = now[p];
        // a frozen layer's running statistics are not carried: PyTorch's stay as they were too (checked below)
        if (!got) {
          expect(s.running).toContain(p);
          expect(Array.from(want.data)).toEqual(Array.from(a.get(`initial/${p}`)!.data));
          continue;
        }
        expect(worst(got.data as Float32Array, want.data, tol), `${ep} ${name} step ${t + 1} ${p}`).toBeLessThanOrEqual(1);
      }
    }
    expect(worst(losses, s.losses, tol), `${ep} ${name} losses ${losses.join(' ')} vs ${s.losses.join(' ')}`).toBeLessThanOrEqual(1);
    return { losses, final: (await runner.snapshot()).params, onDevice: runner.onDevice };
  } finally {
    await runner.close();
  }
}

describe('--bn train against PyTorch (model.train(), momentum as exported)', () => {
  for (const name of Object.keys(expected.scenarios)) {
    it(`${name}: losses, parameters and running statistics after each step match to 1e-5 on cpu; eval-mode logits after`, async () => {
      const s = expected.scenarios[name]!;
      const { tm, model, dir } = await trainingModel(name);
      // every BatchNormalization with a trained scale or bias trains; the frozen one keeps its running statistics
      const frozenLayers = new Set(s.frozen.map((f) => f.split('.')[0]));
      const trainedStats = s.running.filter((r) => !frozenLayers.has(r.split('.')[0]));
      expect(tm.running.map((r) => r.name)).toEqual(trainedStats);
      expect(tm.batchNorm!.frozen.length).toBe(frozenLayers.size);
      const { final } = await replay(name, 'cpu', 1e-5);
      // validation: the forward with the trained values, BatchNormalization on the running statistics
      const carried = [...s.parameters, ...trainedStats];
      const ev = buildEvalModel(model, { sourceDir: dir, file: name, params: carried });
      const rt = await runtime('cpu');
      const session = await rt.load(ev.bytes, { name });
      try {
        const a = arrays(name);
        const xv = a.get('x_val')!;
        const out = await session.run({ [ev.input]: { type: 'float32', data: xv.data, dims: xv.shape }, ...final });
        expect(worst(out[ev.output]!.data as Float32Array, a.get('logits_val')!.data, 1e-5)).toBeLessThanOrEqual(1);
      } finally {
        await session.release();
      }
    });
  }

  it('cnn_adam on wasm and webgpu (running statistics kept in device memory) matches PyTorch too', async () => {
    const wasm = await replay('cnn_adam', 'wasm', 1e-5);
    expect(wasm.onDevice).toBe(false);
    const gpu = await replay('cnn_adam', 'webgpu', 1e-4);
    expect(gpu.onDevice).toBe(true);
  });
});

describe('the train-mode graph', () => {
  /** The case harness's view of trainBatchNorm's output for one node: its nodes, with its constants as inputs. */
  function trainModeCase(name: string, shape: number[], grads: { S?: boolean; B?: boolean }, momentum?: number): Case {
    const c = shape[1]!;
    const graph: GraphProto = {
      node: [n('BatchNormalization', ['X', 'S', 'B', 'M', 'V'], ['Y'], { epsilon: 1e-3, ...(momentum !== undefined ? { momentum } : {}) })],
      initializer: [],
      input: ['M', 'V'].map((v) => ({ name: v, type: { tensorType: { elemType: DataType.DOUBLE, shape: { dim: [{ dimValue: c }] } } } })),
    };
    let k = 0;
    const slots = trainBatchNorm(
      graph,
      [{ node: 'BatchNormalization_Y', mean: 'M', var: 'V' }],
      17,
      (b) => `${b}_${k++}`,
      new Map(['M', 'V'].map((v) => [v, { name: v, dataType: DataType.DOUBLE, dims: [c] }])),
    );
    expect(slots.map((x) => x.name)).toEqual(['M', 'V']);
    const inputs: Record<string, InputSpec> = {
      X: { shape, grad: true },
      S: { shape: [c], grad: grads.S ?? false },
      B: { shape: [c], grad: grads.B ?? false },
      M: { shape: [c] },
      V: { shape: [c], gen: 'positive' },
    };
    for (const t of graph.initializer!) {
      const h = tensorFromProto(t);
      const dims = (t.dims ?? []).map(Number);
      inputs[t.name!] =
        t.dataType === DataType.INT64
          ? { shape: dims, ints: Array.from(h.data as BigInt64Array, Number) }
          : { shape: dims, values: Array.from(h.data as Float64Array) };
    }
    return { name, nodes: graph.node!, inputs, float64: true };
  }

  for (const [name, shape] of [
    ['BatchNorm2d', [3, 2, 3, 2]],
    ['BatchNorm1d on (N, C)', [5, 3]],
    ['BatchNorm1d on (N, C, L)', [2, 3, 4]],
  ] as const) {
    it(`${name}: the gradient through the batch statistics matches finite differences (x, scale, bias)`, async () => {
      const r = await gradCheck(trainModeCase(name, [...shape], { S: true, B: true }));
      expect(r.failures).toEqual([]);
      expect(r.checked).toBeGreaterThan(shape.reduce((p, q) => p * q, 1));
      expect(r.maxAbsErr).toBeLessThan(1e-6);
    });
  }

  it('with scale and bias constant (frozen), the gradient to x still goes through the batch statistics', async () => {
    const r = await gradCheck(trainModeCase('x only', [4, 2, 2, 2], {}));
    expect(r.failures).toEqual([]);
    expect(r.checked).toBe(32);
  });

  it('only layers with a trained scale or bias and their own initializer statistics train; the rest say why', () => {
    const f = (nm: string): TensorProto => ({ name: nm, dataType: DataType.FLOAT, dims: [2], rawData: new Uint8Array(8) });
    const graph: GraphProto = {
      node: [
        { opType: 'BatchNormalization', input: ['x', 's1', 'b1', 'm1', 'v1'], output: ['y1'], name: 'bn1' },
        { opType: 'BatchNormalization', input: ['y1', 's2', 'b2', 'm2', 'v2'], output: ['y2'], name: 'bn2' },
        { opType: 'BatchNormalization', input: ['y2', 's3', 'b3', 'm3', 'm3'], output: ['y3'], name: 'bn3' },
        { opType: 'BatchNormalization', input: ['y3', 's4', 'b4', 'm4', 'computed'], output: ['y4'], name: 'bn4' },
        { opType: 'Identity', input: ['m1'], output: ['m1copy'], name: 'alias' },
        { opType: 'BatchNormalization', input: ['y4', 's5', 'b5', 'm1copy', 'v5'], output: ['y5'], name: 'bn5' },
      ],
      initializer: ['s1', 'b1', 'm1', 'v1', 's2', 'b2', 'm2', 'v2', 's3', 'b3', 'm3', 's4', 'b4', 'm4', 's5', 'b5', 'v5'].map(f),
    };
    const c = batchNormLayers(graph, ['s1', 'b2', 's3', 'b3', 's4', 's5']);
    // bn1's mean is also read through bn5's Identity: torch.onnx.export's merged equal tensors
    expect(c.train).toEqual([{ node: 'bn2', mean: 'm2', var: 'v2' }]);
    expect(c.frozen).toEqual([
      { node: 'bn1', reason: 'its running statistics are shared with other nodes' },
      { node: 'bn3', reason: 'its running statistics are shared with other nodes' },
      { node: 'bn4', reason: 'its running statistics are not initializers' },
      { node: 'bn5', reason: 'its running statistics are Identity copies of a tensor other nodes share (an exporter merged equal tensors)' },
    ]);
    expect(batchNormLayers(graph, ['b2']).frozen.map((x) => x.node)).toEqual(['bn1', 'bn3', 'bn4', 'bn5']);
    // without the alias, bn1 trains
    graph.node = graph.node!.slice(0, 4);
    expect(batchNormLayers(graph, ['s1', 'b2']).train.map((l) => l.node)).toEqual(['bn1', 'bn2']);
    expect(batchNormLayers(graph, ['b2']).frozen[0]!.reason).toBe('its scale and bias are not trained');
  });

  it('frozen (the default) builds the same step model as before: no running inputs or outputs', async () => {
    const mf = await readModel(join(ORACLE, 'cnn_adam.onnx'));
    const params = chooseParameters(mf.model.graph!).trainable;
    const opts = { sourceDir: mf.dir, file: 'cnn', params, task: 'classification' as const, optimizer: OPTIMIZERS.adam };
    const a = buildTrainingModel(mf.model, opts);
    const b = buildTrainingModel(mf.model, { ...opts, batchNorm: 'frozen' });
    expect(a.running).toEqual([]);
    expect(Buffer.from(a.bytes()).equals(Buffer.from(b.bytes()))).toBe(true);
    expect(a.model.graph!.node!.filter((x) => x.name?.startsWith('bn_train/'))).toEqual([]);
    const t = buildTrainingModel(mf.model, { ...opts, batchNorm: 'train' });
    expect(t.running.map((r) => r.name)).toEqual(['1.running_mean', '1.running_var', '4.running_mean', '4.running_var']);
    const outs = new Set(t.model.graph!.output!.map((o) => o.name));
    for (const r of t.running) expect(outs.has(r.updated)).toBe(true);
  });
});

describe('the loop with --bn train', () => {
  /** x [N, 2] -> Gemm(W, b) [N, 4] -> BatchNormalization -> Relu -> Gemm(V, c) [N, 3]; symbolic batch. */
  function bnModel(): ModelProto {
    const f32 = (name: string, dims: number[], values: number[]): TensorProto => ({
      name,
      dataType: DataType.FLOAT,
      dims,
      rawData: new Uint8Array(Float32Array.from(values).buffer),
    });
    const info = (name: string, dims: (number | string)[]) => ({
      name,
      type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    });
    return {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'bn',
        input: [info('x', ['N', 2])],
        output: [info('y', ['N', 3])],
        initializer: [
          f32('W', [4, 2], [0.5, -0.3, 0.2, 0.8, -0.6, 0.1, 0.4, 0.4]),
          f32('b', [4], [0.1, 0, -0.1, 0.2]),
          f32('g', [4], [1, 0.9, 1.1, 1.2]),
          f32('beta', [4], [0, 0.1, -0.1, 0]),
          f32('rm', [4], [3, -3, 2, 0]),
          f32('rv', [4], [9, 4, 0.25, 1]),
          f32('V', [3, 4], [0.3, -0.2, 0.5, 0.1, -0.4, 0.6, 0.2, -0.1, 0.2, 0.1, -0.5, 0.4]),
          f32('c', [3], [0, 0, 0]),
        ],
        node: [
          { opType: 'Gemm', input: ['x', 'W', 'b'], output: ['h'], name: 'fc1', attribute: [{ name: 'transB', type: 2, i: 1 }] },
          { opType: 'BatchNormalization', input: ['h', 'g', 'beta', 'rm', 'rv'], output: ['hn'], name: 'bn' },
          { opType: 'Relu', input: ['hn'], output: ['hr'], name: 'relu' },
          { opType: 'Gemm', input: ['hr', 'V', 'c'], output: ['y'], name: 'fc2', attribute: [{ name: 'transB', type: 2, i: 1 }] },
        ],
      },
    };
  }
  function blobs(n: number, offset: number): Dataset {
    const x = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const k = (i + offset) % 3;
      y[i] = k;
      x[i * 2] = Math.cos((2 * Math.PI * k) / 3) * 2 + Math.sin(5 * i + offset) * 0.3;
      x[i * 2 + 1] = Math.sin((2 * Math.PI * k) / 3) * 2 + Math.cos(3 * i + offset) * 0.3;
    }
    return { name: 'blobs', sampleShape: [2], x, y, task: 'classification', classes: ['a', 'b', 'c'], count: n };
  }
  const values = (m: ModelProto, name: string) => Array.from(tensorFromProto(m.graph!.initializer!.find((t) => t.name === name)!).data as Float32Array);

  it('writes the trained running statistics into the model, logs the mode, and a checkpoint refuses the other mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-bn-'));
    const rt = await runtime('cpu');
    const common = {
      model: bnModel(),
      sourceDir: dir,
      file: 'bn.onnx',
      train: blobs(48, 0),
      val: blobs(12, 1),
      runtime: rt,
      batchSize: 8,
      optimizer: { name: 'adam' as const },
      schedule: { name: 'constant' as const, lr: 0.01 },
    };
    const out = join(dir, 'out.onnx');
    const ckpt = join(dir, 'run.ckpt');
    const r = await finetune({ ...common, epochs: 2, batchNorm: 'train', out, checkpoint: ckpt });
    expect(r.log.batchNorm).toEqual({ mode: 'train', running: ['rm', 'rv'], train: [{ node: 'bn', mean: 'rm', var: 'rv' }], frozen: [] });
    expect(r.log.parameters.frozen.map((f) => f.name)).not.toContain('rm');
    const written = decodeModel(readFileSync(out));
    for (const s of ['rm', 'rv']) {
      expect(values(written, s)).toEqual(Array.from(r.params[s]!.data as Float32Array));
      // they moved from the exported values toward the data's statistics
      expect(values(written, s)).not.toEqual(values(bnModel(), s));
    }
    expect(values(written, 'rv').every((v) => v > 0)).toBe(true);
    // the same run, frozen, leaves them exactly as exported
    const f = await finetune({ ...common, epochs: 1 });
    expect(f.log.batchNorm.mode).toBe('frozen');
    for (const s of ['rm', 'rv']) expect(values(f.model, s)).toEqual(values(bnModel(), s));
    // resuming the train-mode checkpoint in frozen mode is another run
    await expect(finetune({ ...common, epochs: 3, checkpoint: ckpt, resume: true, out: join(dir, 'out2.onnx') })).rejects.toThrow(
      /BatchNormalization mode train, this run has frozen/,
    );
    // and in train mode it continues, with the running statistics from the checkpoint
    const c = await finetune({ ...common, epochs: 3, batchNorm: 'train', checkpoint: ckpt, resume: true, out: join(dir, 'out3.onnx') });
    expect(c.log.resumedFrom).toBe(2);
  });

  it('refuses batches of one sample: a batch variance needs two', async () => {
    const rt = await runtime('cpu');
    await expect(
      finetune({
        model: bnModel(),
        sourceDir: '.',
        file: 'bn.onnx',
        train: blobs(8, 0),
        val: blobs(4, 1),
        runtime: rt,
        batchSize: 1,
        epochs: 1,
        optimizer: { name: 'sgd' },
        schedule: { name: 'constant', lr: 0.01 },
        batchNorm: 'train',
      }),
    ).rejects.toThrow(/^batchSize: is 1; BatchNormalization with batch statistics needs batches of 2 or more/);
  });
});

describe('through the CLI', () => {
  const MLP = join(ORACLE, 'mlp_sgd.onnx');
  it('finetune --bn train: logged, summarized, written; another --bn on --resume is refused; a bad mode is a usage error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-bn-cli-'));
    const out = join(dir, 'mlp.ft.onnx');
    const args = ['finetune', MLP, '--data', 'iris', '--batch-size', '16', '--max-steps', '3', '--optimizer', 'sgd', '--lr', '0.05', '-o', out];
    const r = await runCli([...args, '--epochs', '1', '--bn', 'train', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as FinetuneLog;
    expect(log.batchNorm.mode).toBe('train');
    expect(log.batchNorm.running).toEqual(['1.running_mean', '1.running_var']);
    const saved = JSON.parse(readFileSync(`${out}.log.json`, 'utf8')) as FinetuneLog;
    expect(saved.batchNorm).toEqual(log.batchNorm);
    const before = decodeModel(readFileSync(MLP));
    const after = decodeModel(readFileSync(out));
    const vals = (m: ModelProto, s: string) => Array.from(tensorFromProto(m.graph!.initializer!.find((t) => t.name === s)!).data as Float32Array);
    expect(vals(after, '1.running_var')).not.toEqual(vals(before, '1.running_var'));
    // the text summary says what happened
    const again = await runCli([...args, '--epochs', '1', '--bn', 'train', '--force', '--no-shuffle']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr + again.stdout).toMatch(/BatchNormalization: 1 layer\(s\) trained with batch statistics/);
    // the checkpoint was made with --bn train: resuming without it is another run
    const resumed = await runCli([...args, '--epochs', '2', '--no-shuffle', '--resume', '--force']);
    expect(resumed.code, resumed.stderr).toBe(2);
    expect(errorLine(resumed)).toMatch(/was made with BatchNormalization mode train, this run has frozen/);
    const bad = await runCli([...args, '--epochs', '1', '--bn', 'eval']);
    expect(bad.code, bad.stderr).toBe(2);
    expect(errorLine(bad)).toMatch(/--bn <mode>.*'eval' is invalid/);
  });
});
