/**
 * Fitting data to a model's input: pure planning rules, then real runs on small models built here
 * whose outputs are known exactly (Identity: scores are the features themselves).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/data/npy.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { castSamples, fitSample, pickInput, planFeed } from '../../src/runtime/feed.js';
import type { RunOk } from '../../src/eval/types.js';
import { DataType } from '../../src/onnx/dtype.js';
import { encodeModel } from '../../src/onnx/schema.js';
import { halfToFloat } from '../../src/onnx/tensor.js';
import type { ValueInfo } from '../../src/onnx/types.js';
import type { IoMeta } from '../../src/runtime/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'alrelu-feed-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const io = (name: string, shape: (number | string)[], type: IoMeta['type'] = 'float32'): IoMeta => ({ name, type, shape });

describe('feed planning', () => {
  it('fits samples with or without a batch axis, or by reshape', () => {
    expect(fitSample(['N', 1, 28, 28], [1, 28, 28])).toEqual({ sampleDims: [1, 28, 28], hasBatchDim: true });
    expect(fitSample([1, 784], [1, 28, 28])).toEqual({ sampleDims: [784], hasBatchDim: true });
    expect(fitSample([4], [4])).toEqual({ sampleDims: [4], hasBatchDim: false });
    expect(fitSample([1, 28, 28], [784])).toEqual({ sampleDims: [28, 28], hasBatchDim: true });
    expect(fitSample(['N', 3, 28, 28], [1, 28, 28])).toBeNull();
    expect(fitSample([1, 32, 32, 3], [3, 32, 32])).toBeNull(); // a transpose, not a reshape
  });

  it('batches dynamic inputs, runs batch-1 models sample by sample, pads fixed batches', () => {
    expect(planFeed(io('x', ['N', 4]), [4], 32)).toMatchObject({ batching: 'dynamic', batchSize: 32 });
    expect(planFeed(io('x', [1, 1, 28, 28]), [1, 28, 28], 32)).toMatchObject({ batching: 'single', batchSize: 1 });
    expect(planFeed(io('x', [8, 4]), [4], 32)).toMatchObject({ batching: 'fixed', batchSize: 8 });
  });

  it('says what was expected and found, with a layout hint', () => {
    expect(() => planFeed(io('img', ['N', 32, 32, 3]), [3, 32, 32], 8)).toThrow(
      'input img: expected samples of shape [32,32,3] (input [N,32,32,3]), found [3,32,32]; the model wants channels last: try --layout nhwc',
    );
    expect(() => planFeed(io('Input3', [1, 1, 28, 28]), [3, 28, 28], 8)).toThrow(
      /found \[3,28,28\]; the model wants one channel: for an image folder, try --channels gray/,
    );
    expect(() => planFeed(io('t', ['N', 4], 'bool'), [4], 8)).toThrow(/expected numeric data, but the model input is bool/);
    expect(() => pickInput([io('a', ['N', 3]), io('b', ['N', 3])], [3], undefined, 'm.onnx')).toThrow(
      /the model has 2 inputs \(a \[N,3\], b \[N,3\]\) and several fit samples of shape \[3\]; choose one with --input NAME/,
    );
    expect(pickInput([io('a', ['N', 3]), io('b', ['N', 5])], [5], undefined, 'm').name).toBe('b');
  });

  it('casts to the input element type; float16 within half a unit in the last place', () => {
    expect(Array.from(castSamples(Float32Array.from([1.4, 2.6, -0.5]), 'int32') as Int32Array)).toEqual([1, 3, 0]);
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: a sample value, not pi
    const values = [0, 1, -2.5, 0.1, 65504, 1e-7, 3.14159, -1e5];
    const half = castSamples(Float32Array.from(values), 'float16') as Uint16Array;
    // Known bit patterns (IEEE 754 binary16, round to nearest even).
    expect(Array.from(half.slice(0, 5))).toEqual([0x0000, 0x3c00, 0xc100, 0x2e66, 0x7bff]);
    values.forEach((v, i) => {
      if (Math.abs(v) <= 65504) expect(Math.abs(halfToFloat(half[i]!) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25);
    });
  });
});

// ------------------------------------------------------------------------------------------- runs

function value(name: string, dims: (number | string)[], elemType: number = DataType.FLOAT): ValueInfo {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

function model(file: string, opType: string, inputs: ValueInfo[], out: ValueInfo): string {
  const p = join(tmp, file);
  writeFileSync(
    p,
    encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      producerName: 'alrelu-test',
      graph: { name: 'g', node: [{ opType, input: inputs.map((i) => i.name!), output: [out.name!], name: 'n' }], input: inputs, output: [out] },
    }),
  );
  return p;
}

function npyDir(name: string, x: Float32Array, xShape: number[], y: Float32Array | Int32Array, yShape: number[]): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'x.npy'), encodeNpy('<f4', xShape, x));
  writeFileSync(join(dir, 'y.npy'), encodeNpy(y instanceof Int32Array ? '<i4' : '<f4', yShape, y));
  return dir;
}

describe('runs on small built models', () => {
  it('fixed batch 4 over 10 rows: last run zero-padded, padding dropped, top-1 exact', async () => {
    const m = model('fixed4.onnx', 'Identity', [value('x', [4, 3])], value('y', [4, 3]));
    // row i's largest feature is i % 3; labels agree on 7 of the 10 rows
    const x = new Float32Array(30);
    for (let i = 0; i < 10; i++) x[i * 3 + (i % 3)] = 1 + i;
    const y = Int32Array.from({ length: 10 }, (_, i) => (i < 7 ? i % 3 : (i + 1) % 3));
    const r = await evaluate({ models: [m], data: npyDir('fixed', x, [10, 3], y, [10]), eps: ['cpu'] });
    const run = r.results[0] as RunOk;
    expect(run.ok, JSON.stringify(run)).toBe(true);
    if (run.metrics.task !== 'classification') throw new Error('expected classification');
    expect(run.metrics.count).toBe(10);
    expect(run.metrics.top1).toBeCloseTo(0.7, 12);
    expect(run.feed).toMatchObject({ batching: 'fixed', batchSize: 4, feedShape: [4, 3] });
    expect(run.latency).toMatchObject({ batchSize: 4, runs: 2, samples: 10 });
  });

  it('float16 inputs and outputs: samples cast to half bits, scores read back from them', async () => {
    const m = model('half.onnx', 'Identity', [value('x', ['N', 3], DataType.FLOAT16)], value('y', ['N', 3], DataType.FLOAT16));
    const x = Float32Array.from([0.1, 0.7, 0.2, 0.9, 0.05, 0.05, 0.3, 0.3, 0.4, 0.2, 0.5, 0.3]);
    const r = await evaluate({ models: [m], data: npyDir('half', x, [4, 3], Int32Array.from([1, 0, 2, 0]), [4]), eps: ['cpu', 'wasm'] });
    for (const run of r.results as RunOk[]) {
      expect(run.ok, JSON.stringify(run)).toBe(true);
      if (run.metrics.task !== 'classification') throw new Error('expected classification');
      expect(run.metrics.top1).toBe(0.75); // the last row's largest score is class 1, its label 0
      expect(run.metrics.scoreKind).toBe('probabilities'); // rows sum to 1 within half precision
    }
  });

  it('regression: MSE and MAE of an Identity model against its targets', async () => {
    const m = model('ident.onnx', 'Identity', [value('x', ['N', 2])], value('y', ['N', 2]));
    const x = Float32Array.from([0, 1, 2, 3, 4, 5]);
    const t = Float32Array.from([0, 2, 2, 1, 4, 8]); // errors 0,1,0,2,0,3
    const r = await evaluate({
      models: [m],
      data: npyDir('reg', x, [3, 2], t, [3, 2]),
      eps: ['cpu', 'wasm'],
      dataOptions: { task: 'regression' },
      batchSize: 2,
    });
    for (const run of r.results as RunOk[]) {
      expect(run.ok).toBe(true);
      expect(run.metrics).toMatchObject({ task: 'regression', count: 3 });
      if (run.metrics.task !== 'regression') throw new Error('expected regression');
      expect(run.metrics.mse).toBeCloseTo(14 / 6, 12);
      expect(run.metrics.mae).toBeCloseTo(1, 12);
    }
    expect(r.agreement[0]!.outputs[0]).toMatchObject({ maxAbsDiff: 0, argmaxAgreementPct: 100 });
  });

  it('two inputs: --input picks one, and the other being required is said plainly', async () => {
    const m = model('add.onnx', 'Add', [value('a', ['N', 3]), value('b', ['N', 3])], value('y', ['N', 3]));
    const dir = npyDir('two', new Float32Array(6), [2, 3], Int32Array.from([0, 1]), [2]);
    const r = await evaluate({ models: [m], data: dir, eps: ['cpu', 'wasm'] });
    expect(r.results.map((x) => [x.ep, x.ok, !x.ok && x.stage])).toEqual([
      ['cpu', false, 'data'],
      ['wasm', false, 'data'],
    ]);
    expect(!r.results[0]!.ok && r.results[0]!.error).toMatch(/choose one with --input NAME/);
    const named = await evaluate({ models: [m], data: dir, eps: ['cpu'], input: 'a' });
    expect(!named.results[0]!.ok && named.results[0]!.error).toMatch(/also requires input\(s\) b \[N,3\], which the data does not provide \(it feeds only a\)/);
  });
});
