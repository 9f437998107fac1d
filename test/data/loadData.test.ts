/** The data-spec front door: which loader a spec reaches, test_data_set references, preprocessing. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { isReference, loadData, parseSpec, preprocess, type Dataset, type ReferenceCase } from '../../src/data/index.js';
import { encodeNpy } from '../../src/data/npy.js';
import { encodeTensor } from '../../src/onnx/schema.js';
import { DataType } from '../../src/onnx/dtype.js';
import { fixture } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'alrelu-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function dataset(spec: string, o = {}): Promise<Dataset> {
  const d = await loadData(spec, o);
  if (isReference(d)) throw new Error('expected a labelled data set');
  return d;
}

async function cases(spec: string): Promise<ReferenceCase[]> {
  const d = await loadData(spec);
  if (!isReference(d)) throw new Error('expected reference cases');
  return d;
}

async function userError(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(UserError);
  return (e as UserError).message;
}

describe('data specs', () => {
  it('parses name:split for built-ins only', () => {
    expect(parseSpec('mnist:test')).toEqual({ name: 'mnist', split: 'test' });
    expect(parseSpec('iris')).toEqual({ name: 'iris' });
    expect(parseSpec('data/a:b.csv')).toEqual({ name: 'data/a:b.csv' });
    expect(() => parseSpec('mnist:tset')).toThrow(/unknown split; expected one of train, val, test, all/);
  });

  it('loads built-ins whole by default, or the split asked for', async () => {
    expect((await dataset('mnist')).count).toBe(10_000);
    const test = await dataset('mnist:test');
    expect([test.count, test.split]).toEqual([1000, 'test']);
    expect((await dataset('iris', { split: 'val' })).count).toBe(15);
    expect(await userError(loadData('iris:test', { split: 'train' }))).toMatch(/^split: conflicts with the split in --data iris:test/);
  });

  it('names the built-ins when a name is unknown', async () => {
    const msg = await userError(loadData('mnits'));
    expect(msg).toMatch(/^data=mnits: no such file or folder, and not a built-in data set; the built-in data sets are mnist, iris, penguins, spam/);
  });

  it('rejects files it cannot read as data, by extension', async () => {
    const f = join(tmp, 'weights.bin');
    writeFileSync(f, 'x');
    expect(await userError(loadData(f))).toMatch(/unknown data file type '.bin'/);
    expect(await userError(loadData(fixture('onnx2c/mnist/test_data_set_0/input_0.pb')))).toMatch(/give the test_data_set_N folder/);
  });

  it('reads a folder with x.npy and y.npy, and applies splits to user data too', async () => {
    const dir = join(tmp, 'npy');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'x.npy'),
      encodeNpy(
        '<f4',
        [20, 2],
        Float32Array.from({ length: 40 }, (_, i) => i),
      ),
    );
    writeFileSync(
      join(dir, 'y.npy'),
      encodeNpy(
        '<i8',
        [20],
        BigInt64Array.from({ length: 20 }, (_, i) => BigInt(i % 2)),
      ),
    );
    const all = await dataset(dir);
    expect([all.count, all.sampleShape, Array.from(all.y.slice(0, 4))]).toEqual([20, [2], [0, 1, 0, 1]]);
    const part = await dataset(dir, { split: 'test' });
    expect(part.count).toBe(2); // 20 - floor(0.8*20) - floor(0.1*20)
  });
});

describe('test_data_set references', () => {
  it('reads every set of a model folder in order, tensors keyed by their stored names', async () => {
    const cs = await cases(fixture('onnx2c/mnist'));
    expect(cs.map((c) => c.name)).toEqual(['test_data_set_0', 'test_data_set_1', 'test_data_set_2']);
    const [input] = Object.values(cs[0]!.inputs);
    const [output] = Object.values(cs[0]!.outputs);
    expect([input!.type, input!.dims, output!.dims]).toEqual(['float32', [1, 1, 28, 28], [1, 10]]);
  });

  it('reads a single set folder, with several inputs', async () => {
    const cs = await cases(fixture('onnx-onnx/node/test_prelu_example/test_data_set_0'));
    expect(cs).toHaveLength(1);
    expect(Object.keys(cs[0]!.inputs)).toHaveLength(2);
  });

  it('names the corrupt .pb file, and a set without outputs', async () => {
    const bad = join(tmp, 'bad', 'test_data_set_0');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'input_0.pb'), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2]));
    writeFileSync(join(bad, 'output_0.pb'), Buffer.from([]));
    expect(await userError(loadData(join(tmp, 'bad')))).toMatch(/input_0\.pb: is not a serialized ONNX TensorProto/);
    // an empty output file: no element type
    writeFileSync(join(bad, 'input_0.pb'), encodeTensor({ name: 'x', dims: [2], dataType: DataType.FLOAT, floatData: [1, 2] }));
    expect(await userError(loadData(bad))).toMatch(/output_0\.pb: is not a usable ONNX TensorProto: tensor '' has unsupported element type 0/);
    // dims saying 4 elements over 2 stored floats
    writeFileSync(join(bad, 'output_0.pb'), encodeTensor({ name: 'y', dims: [4], dataType: DataType.FLOAT, floatData: [1, 2] }));
    expect(await userError(loadData(bad))).toMatch(/output_0\.pb: is not a usable ONNX TensorProto: tensor 'y' has 2 elements, dims say 4/);
    rmSync(join(bad, 'output_0.pb'));
    expect(await userError(loadData(bad))).toMatch(/has no output_K\.pb files/);
  });
});

describe('preprocess', () => {
  const ds: Dataset = {
    name: 't',
    sampleShape: [2, 1, 3],
    x: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    y: new Int32Array([0, 1]),
    task: 'classification',
    count: 2,
  };

  it('scales, then subtracts the per-channel mean and divides by the std, leaving the input alone', () => {
    const p = preprocess(ds, { scale: 2, mean: [1, 10], std: [1, 2] });
    expect(Array.from(p.x)).toEqual([1, 3, 5, -1, 0, 1, 13, 15, 17, 5, 6, 7]);
    expect(ds.x[0]).toBe(1);
    expect(Array.from(preprocess(ds, { mean: [0.5], std: [0.5] }).x.slice(0, 2))).toEqual([1, 3]);
  });

  it('transposes [C,H,W] samples to [H,W,C] for --layout nhwc', () => {
    const p = preprocess(ds, { layout: 'nhwc' });
    expect(p.sampleShape).toEqual([1, 3, 2]);
    expect(Array.from(p.x)).toEqual([1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12]);
    expect(preprocess(ds, { layout: 'nchw' })).toBe(ds);
  });

  it('says what fits when a flag does not', () => {
    expect(() => preprocess(ds, { mean: [1, 2, 3] })).toThrow(/^mean: expected 1 value or 2 \(one per channel of samples shaped \[2,1,3\]\), found 3/);
    expect(() => preprocess(ds, { std: [0] })).toThrow(/^std: expected non-zero values/);
    expect(() => preprocess({ ...ds, sampleShape: [6] }, { layout: 'nhwc' })).toThrow(/^layout=nhwc: expected image samples \[C,H,W\]/);
  });
});
