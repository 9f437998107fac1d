/**
 * Image folders are resized to the model input's static height and width by default (per --layout), to
 * the first image's size where the model's are symbolic, and to --image-size when given; eval (text and
 * --json) and finetune (log) say which and why. The folders hold PNGs of sizes other than the model's,
 * built here with pngjs.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelImageSize } from '../../src/data/imageSize.js';
import { DataType } from '../../src/onnx/dtype.js';
import { encodeModel } from '../../src/onnx/schema.js';
import type { ModelProto, NodeProto } from '../../src/onnx/types.js';
import type { EvalReport } from '../../src/eval/types.js';
import type { FinetuneLog } from '../../src/train/loop.js';
import { runCli } from '../cli.js';

type Dim = number | string;
const vi = (name: string, dims: Dim[]) => ({
  name,
  type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const floats = (name: string, dims: number[], f: (i: number) => number) => ({
  name,
  dataType: DataType.FLOAT,
  dims,
  rawData: new Uint8Array(Float32Array.from({ length: dims.reduce((p, d) => p * d, 1) }, (_, i) => f(i)).buffer),
});

/** x -> (Transpose for nhwc) -> Conv 3->4 3x3 -> Relu -> GlobalAveragePool -> Flatten -> Gemm 4->2. */
function imageModel(input: Dim[], nhwc = false): ModelProto {
  const nodes: NodeProto[] = [];
  let x = 'x';
  if (nhwc) {
    nodes.push({ opType: 'Transpose', input: ['x'], output: ['xt'], name: 'to_nchw', attribute: [{ name: 'perm', type: 7, ints: [0, 3, 1, 2] }] });
    x = 'xt';
  }
  nodes.push(
    { opType: 'Conv', input: [x, 'conv.w', 'conv.b'], output: ['c'], name: 'conv', attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
    { opType: 'Relu', input: ['c'], output: ['r'], name: 'relu' },
    { opType: 'GlobalAveragePool', input: ['r'], output: ['p'], name: 'gap' },
    { opType: 'Flatten', input: ['p'], output: ['f'], name: 'flat' },
    { opType: 'Gemm', input: ['f', 'fc.w', 'fc.b'], output: ['logits'], name: 'fc', attribute: [{ name: 'transB', type: 2, i: 1 }] },
  );
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      node: nodes,
      input: [vi('x', input)],
      output: [vi('logits', [input[0]!, 2])],
      initializer: [
        floats('conv.w', [4, 3, 3, 3], (i) => Math.sin(i) / 5),
        floats('conv.b', [4], () => 0.01),
        floats('fc.w', [2, 4], (i) => ((i % 2 ? 1 : -1) * (i + 1)) / 4),
        floats('fc.b', [2], () => 0),
      ],
    },
  };
}

function png(w: number, h: number, seed: number): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) {
    p.data[4 * i] = (i * 7 + seed * 50) & 255;
    p.data[4 * i + 1] = (i * 13 + seed * 30) & 255;
    p.data[4 * i + 2] = (seed * 90) & 255;
    p.data[4 * i + 3] = 255;
  }
  return PNG.sync.write(p);
}

/** Two classes of PNGs of assorted sizes; the first file (a/0.png) is `first` [w, h]. */
function imageFolder(dir: string, first: [number, number], sizes: [number, number][]): string {
  for (const cls of ['a', 'b']) mkdirSync(join(dir, cls), { recursive: true });
  writeFileSync(join(dir, 'a', '0.png'), png(first[0], first[1], 0));
  sizes.forEach(([w, h], i) => writeFileSync(join(dir, i % 2 ? 'b' : 'a', `${i + 1}.png`), png(w, h, i % 2 ? 3 : 1)));
  return dir;
}

let dir: string;
let folder: string;
let model32: string;
let symbolic: string;
let nhwc: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'alrelu-imgsize-'));
  folder = imageFolder(
    join(dir, 'imgs'),
    [48, 40],
    [
      [20, 20],
      [64, 30],
      [33, 31],
      [50, 50],
      [21, 40],
      [40, 21],
      [31, 33],
    ],
  );
  model32 = join(dir, 'm32.onnx');
  symbolic = join(dir, 'msym.onnx');
  nhwc = join(dir, 'mnhwc.onnx');
  writeFileSync(model32, encodeModel(imageModel(['N', 3, 32, 32])));
  writeFileSync(symbolic, encodeModel(imageModel(['N', 3, 'H', 'W'])));
  writeFileSync(nhwc, encodeModel(imageModel(['N', 32, 24, 3], true)));
});

describe('modelImageSize', () => {
  it('reads H and W per layout; says why not where they are symbolic or the input is no image batch', () => {
    expect(modelImageSize(imageModel(['N', 3, 224, 224]))).toMatchObject({ size: [224, 224] });
    expect(modelImageSize(imageModel([1, 32, 24, 3]), { layout: 'nhwc' })).toMatchObject({ size: [32, 24] });
    // the same dims read as nchw would be H=24, W=3: the layout decides
    expect(modelImageSize(imageModel([1, 32, 24, 3]))).toMatchObject({ size: [24, 3] });
    const sym = modelImageSize(imageModel(['N', 3, 'H', 'W']));
    expect(sym.size).toBeUndefined();
    expect(sym.why).toMatch(/'x' is \[N,3,H,W\]: its height and width are not both fixed/);
    expect(modelImageSize(imageModel(['N', 3, 32, 'W'])).size).toBeUndefined();
    const flat = imageModel(['N', 3, 32, 32]);
    flat.graph!.input = [vi('x', ['N', 3072])];
    expect(modelImageSize(flat).why).toMatch(/not a 4-d image batch/);
    const two = imageModel(['N', 3, 32, 32]);
    two.graph!.input!.push(vi('y', ['N', 3, 8, 8]));
    expect(modelImageSize(two).why).toMatch(/2 inputs/);
    expect(modelImageSize(two, { input: 'y' })).toMatchObject({ size: [8, 8] });
    expect(modelImageSize(two, { input: 'z' }).why).toMatch(/no input 'z'/);
  });
});

describe('eval and finetune on a folder of images of other sizes', () => {
  it('eval: a [N,3,32,32] model gets 32x32 images, and says so in text and --json', async () => {
    const j = await runCli(['eval', model32, '--data', folder, '--json', '--threads', '1']);
    expect(j.code, j.stderr).toBe(0);
    const report = JSON.parse(j.stdout) as EvalReport;
    expect(report.data.imageSize).toMatchObject({ height: 32, width: 32, from: 'model' });
    expect(report.results.every((r) => r.ok)).toBe(true);
    expect(report.results[0]!.ok && report.results[0]!.feed.feedShape.slice(1)).toEqual([3, 32, 32]);
    const t = await runCli(['eval', model32, '--data', folder, '--threads', '1']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout + t.stderr).toContain("images resized to 32x32 (HxW): the model's input 'x' is [N,3,32,32] (nchw)");
    // the size that was the default before (the first image's) does not fit this model
    const old = await runCli(['eval', model32, '--data', folder, '--image-size', '40x48', '--threads', '1']);
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(/error: .*expected samples of shape \[3,32,32\].*found \[3,40,48\]/);
  });

  it("eval: symbolic H and W keep the first image's size; --layout nhwc reads [N,H,W,C]; --image-size wins", async () => {
    const s = await runCli(['eval', symbolic, '--data', folder, '--json', '--threads', '1']);
    expect(s.code, s.stderr).toBe(0);
    const rs = JSON.parse(s.stdout) as EvalReport;
    expect(rs.data.imageSize).toMatchObject({ height: 40, width: 48, from: 'first image' });
    expect(rs.data.imageSize!.why).toMatch(/first image's size; the model's input 'x' is \[N,3,H,W\]: its height and width are not both fixed/);

    const n = await runCli(['eval', nhwc, '--data', folder, '--layout', 'nhwc', '--json', '--threads', '1']);
    expect(n.code, n.stderr).toBe(0);
    const rn = JSON.parse(n.stdout) as EvalReport;
    expect(rn.data.imageSize).toMatchObject({ height: 32, width: 24, from: 'model' });
    expect(rn.results[0]!.ok && rn.results[0]!.feed.feedShape.slice(1)).toEqual([32, 24, 3]);

    const g = await runCli(['eval', symbolic, '--data', folder, '--image-size', '16x8', '--json', '--threads', '1']);
    expect(g.code, g.stderr).toBe(0);
    expect((JSON.parse(g.stdout) as EvalReport).data.imageSize).toMatchObject({ height: 16, width: 8, from: 'option' });
  });

  it('finetune: trains the 32x32 model on the folder; its own validation folder is loaded at the same size', async () => {
    const val = imageFolder(
      join(dir, 'val'),
      [17, 90],
      [
        [100, 12],
        [32, 32],
      ],
    );
    const out = join(dir, 'ft.onnx');
    const r = await runCli([
      'finetune',
      model32,
      '--data',
      folder,
      '--val-data',
      val,
      '--epochs',
      '1',
      '--batch-size',
      '2',
      '--threads',
      '1',
      '-o',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as FinetuneLog;
    expect(log.data.imageSize).toMatchObject({ height: 32, width: 32, from: 'model' });
    expect(log.data.sources).toMatchObject({ train: { spec: folder, part: 'all', count: 8 }, val: { spec: val, part: 'all', count: 3 }, test: null });
  });
});

describe('a model declaring absurd image sizes', () => {
  it('is refused by the data size limit before anything is allocated, and the error says where the size came from', async () => {
    const huge = join(dir, 'huge.onnx');
    writeFileSync(huge, encodeModel(imageModel(['N', 3, 100000, 100000])));
    const r = await runCli(['eval', huge, '--data', folder, '--threads', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /holds 8 images of 3x100000x100000 floats.*above the data size limit.*; images are resized to 100000x100000 because the model's input 'x' is \[N,3,100000,100000\] \(nchw\)/,
    );
    // a negative or zero dim is not a size: the first image's is used
    expect(modelImageSize(imageModel(['N', 3, -5, 7])).why).toMatch(/\[N,3,\?,7\]: its height and width are not both fixed/);
  });
});
