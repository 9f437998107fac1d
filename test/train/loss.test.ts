/**
 * The three losses and their detection, checked against closed forms computed here from the model's own
 * outputs: for the last layer's bias b, dL/db is mean_n(softmax(z_n) - onehot(y_n)) for cross-entropy
 * and NLL, and 2/(N·K) Σ_n (z_n - t_n) for mean squared error.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert/convert.js';
import { readNpzArrays } from '../../src/data/numpy.js';
import { toFloat32, valueAt } from '../../src/data/npy.js';
import { readModel } from '../../src/onnx/read.js';
import type { ModelProto } from '../../src/onnx/types.js';
import { openRuntime } from '../../src/runtime/index.js';
import type { HostTensor, Runtime } from '../../src/runtime/types.js';
import { computeGradients } from '../../src/train/gradients.js';
import { ROOT } from '../helpers.js';

const DIR = resolve(ROOT, '../shared/fixtures/gradients/mlp_iris');
const file = join(DIR, 'batch.npz');
const arrays = readNpzArrays(readFileSync(file), file);
const xa = arrays.get('x')!();
const ya = arrays.get('y')!();
const N = xa.shape[0]!;
const K = 3;
const x: HostTensor = { type: 'float32', data: toFloat32(xa), dims: xa.shape };
const labels = Int32Array.from({ length: N }, (_, i) => valueAt(ya, i));
const y: HostTensor = { type: 'int32', data: labels, dims: [N] };

let rt: Runtime;
beforeAll(async () => {
  rt = await openRuntime('cpu');
});
afterAll(async () => {
  await rt?.close();
});

/** The converted MLP, optionally with a Softmax or LogSoftmax appended as the new output. */
async function model(ending?: 'Softmax' | 'LogSoftmax'): Promise<ModelProto> {
  const mf = await readModel(join(DIR, 'model.onnx'));
  convert(mf.model);
  const g = mf.model.graph!;
  if (ending) {
    g.node!.push({ opType: ending, input: ['logits'], output: ['probs'], name: 'final', attribute: [{ name: 'axis', type: 2, i: 1 }] });
    g.output = [{ ...g.output![0]!, name: 'probs' }];
  }
  return mf.model;
}

function softmaxRows(z: ArrayLike<number>): Float64Array {
  const p = new Float64Array(z.length);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, z[n * K + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) s += p[n * K + k] = Math.exp(z[n * K + k]! - m);
    for (let k = 0; k < K; k++) p[n * K + k]! /= s;
  }
  return p;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]!)));
}

describe('losses', () => {
  it('logits: softmax cross-entropy; loss and last-bias gradient match the closed form', async () => {
    const g = await computeGradients(await model(), { x, y }, { runtime: rt, sourceDir: DIR });
    expect(g.lossKind).toBe('cross-entropy');
    const p = softmaxRows(g.logits.data as Float32Array);
    let loss = 0;
    const db = new Float64Array(K);
    for (let n = 0; n < N; n++) {
      loss -= Math.log(p[n * K + labels[n]!]!) / N;
      for (let k = 0; k < K; k++) db[k]! += (p[n * K + k]! - (k === labels[n] ? 1 : 0)) / N;
    }
    expectClose([g.loss], [loss]);
    expectClose(g.grads['4.bias']!.data as Float32Array, db);
  });

  for (const ending of ['LogSoftmax', 'Softmax'] as const) {
    it(`a model ending in ${ending}: detected, NLL; same loss and gradients as cross-entropy on its logits`, async () => {
      const base = await computeGradients(await model(), { x, y }, { runtime: rt, sourceDir: DIR });
      const g = await computeGradients(await model(ending), { x, y }, { runtime: rt, sourceDir: DIR });
      expect(g.lossKind).toBe(ending === 'LogSoftmax' ? 'nll-logsoftmax' : 'nll-softmax');
      expect(g.trainingModel.loss.note).toMatch(new RegExp(`ends in ${ending}`));
      expectClose([g.loss], [base.loss]);
      for (const [k, v] of Object.entries(base.grads)) expectClose(g.grads[k]!.data as Float32Array, v.data as Float32Array, 1e-4);
    });
  }

  it('regression: mean squared error over every element', async () => {
    const t = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i));
    const g = await computeGradients(await model(), { x, y: { type: 'float32', data: t, dims: [N, K] } }, { runtime: rt, sourceDir: DIR, task: 'regression' });
    expect(g.lossKind).toBe('mse');
    const z = g.logits.data as Float32Array;
    let loss = 0;
    const db = new Float64Array(K);
    for (let i = 0; i < N * K; i++) {
      loss += (z[i]! - t[i]!) ** 2 / (N * K);
      db[i % K]! += (2 * (z[i]! - t[i]!)) / (N * K);
    }
    expectClose([g.loss], [loss]);
    expectClose(g.grads['4.bias']!.data as Float32Array, db);
  });
});
