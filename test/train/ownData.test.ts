/**
 * The user's own splits (--val-data, --test-data) and a new classifier head (--num-classes), as a user
 * runs them (the built CLI): files of each kind (.npz built byte by byte, CSV), the log saying where each
 * split came from, the run's validation and test figures equal to what the independent evaluation code
 * measures on the same files, and every disagreement between the sets refused with one error line and
 * nothing written.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EvalReport } from '../../src/eval/types.js';
import { readModel } from '../../src/onnx/read.js';
import { int } from '../../src/onnx/types.js';
import type { FinetuneLog } from '../../src/train/loop.js';
import { errorLine, runCli } from '../cli.js';
import { npy, zip } from '../data/build.js';
import { fixture, ROOT } from '../helpers.js';

const IRIS_MLP = join(ROOT, 'models/iris-mlp.onnx');

/** Deterministic 4-feature samples around one centre per class (a tiny LCG, not the code under test). */
function samples(n: number, classes: number, seed: number): { x: Float32Array; y: number[] } {
  let s = seed * 7919 + 1;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const x = new Float32Array(n * 4);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    y.push(c);
    for (let f = 0; f < 4; f++) x[i * 4 + f] = (f === c % 4 ? 2 : 0) + (c === 2 && f === 3 ? 2 : 0) + (rand() - 0.5) * 2.2;
  }
  return { x, y };
}

function npz(path: string, n: number, classes: number, seed: number): string {
  const { x, y } = samples(n, classes, seed);
  writeFileSync(path, zip({ 'x.npy': npy('<f4', [n, 4], x), 'y.npy': npy('<i8', [n], BigInt64Array.from(y.map(BigInt))) }, seed % 2 === 0));
  return path;
}

function csv(path: string, n: number, seed: number, names = ['no', 'yes'], header = 'f1,f2,f3,f4,label'): string {
  const { x, y } = samples(n, 2, seed);
  const rows = y.map((c, i) => [...x.subarray(i * 4, i * 4 + 4)].map((v) => v.toFixed(4)).join(',') + ',' + names[c]);
  writeFileSync(path, [header, ...rows].join('\n') + '\n');
  return path;
}

/** top-1 accuracy as `alrelu-convert eval model --data file` measures it. */
async function top1(model: string, data: string): Promise<number> {
  const out = await runCli(['eval', model, '--data', data, '--warmup', '0', '--threads', '1', '--json']);
  if (out.code !== 0) throw new Error(`eval failed: ${out.stderr}`);
  const run = (JSON.parse(out.stdout) as EvalReport).results[0]!;
  if (!run.ok || run.metrics.task !== 'classification') throw new Error(`evaluation failed: ${JSON.stringify(run)}`);
  return run.metrics.top1;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'alrelu-own-'));
});

describe('--val-data and --test-data', () => {
  it("separate .npz files: no split is made, the log says where each came from, and the run's figures are eval's", async () => {
    const train = npz(join(dir, 'train.npz'), 90, 3, 1);
    const val = npz(join(dir, 'val.npz'), 31, 3, 2);
    const test = npz(join(dir, 'test.npz'), 23, 3, 3);
    const out = join(dir, 'npz.onnx');
    const r = await runCli([
      'finetune',
      IRIS_MLP,
      '--data',
      train,
      '--val-data',
      val,
      '--test-data',
      test,
      '--epochs',
      '3',
      '--lr',
      '0.01',
      '--batch-size',
      '16',
      '--threads',
      '1',
      '-o',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as FinetuneLog;
    expect(log.data).toMatchObject({ train: 90, val: 31, test: 23 });
    expect(log.data.sources).toEqual({
      train: { spec: train, part: 'all', count: 90 },
      val: { spec: val, part: 'all', count: 31 },
      test: { spec: test, part: 'all', count: 23 },
    });
    expect(JSON.parse(readFileSync(`${out}.log.json`, 'utf8')).data.sources).toEqual(log.data.sources);
    // independent: the evaluation code on the same files
    expect(log.initial.accuracy).toBe(await top1(IRIS_MLP, val));
    expect(log.best!.value).toBe(await top1(out, val));
    expect(log.test!.accuracy).toBe(await top1(out, test));
  });

  it('CSV files, only --val-data: train is all of --data, no test set, and the text says so', async () => {
    const train = csv(join(dir, 'train.csv'), 80, 4);
    const val = csv(join(dir, 'val.csv'), 20, 5);
    const out = join(dir, 'csv.onnx');
    const r = await runCli(['finetune', IRIS_MLP, '--data', train, '--val-data', val, '--num-classes', '2', '--epochs', '1', '--threads', '1', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`data: train: all of ${train}, 80 samples; validation: all of ${val}, 20 samples; test: none`);
    const log = JSON.parse(readFileSync(`${out}.log.json`, 'utf8')) as FinetuneLog;
    expect(log.data).toMatchObject({ train: 80, val: 20, test: null, sources: { test: null } });
    expect(log.test).toBeNull();
  });

  it('without them: the seeded 80/10/10 split of --data, recorded as such', async () => {
    const out = join(dir, 'split.onnx');
    const r = await runCli(['finetune', IRIS_MLP, '--data', 'iris', '--epochs', '1', '--threads', '1', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as FinetuneLog).data.sources).toEqual({
      train: { spec: 'iris', part: 'train', count: 120 },
      val: { spec: 'iris', part: 'val', count: 15 },
      test: { spec: 'iris', part: 'test', count: 15 },
    });
  });

  it('refuses sets that disagree, and outputs onto them; nothing is written', async () => {
    const train = csv(join(dir, 't.csv'), 40, 6);
    const refused = async (args: string[], cause: RegExp) => {
      const out = join(dir, `refused-${Math.random().toString(36).slice(2)}.onnx`);
      const r = await runCli(['finetune', IRIS_MLP, '--data', train, ...args, '--epochs', '1', '--threads', '1', '-o', out]);
      expect(r.code, r.stderr).toBe(2);
      expect(errorLine(r)).toMatch(cause);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.log.json`)).toBe(false);
    };
    const otherClass = csv(join(dir, 'c.csv'), 20, 7, ['no', 'maybe']);
    await refused(
      ['--val-data', otherClass, '--num-classes', '2'],
      /c\.csv: the validation set has class maybe, which the training data \(no, yes\) does not have/,
    );
    const swapped = csv(join(dir, 's.csv'), 20, 8, ['no', 'yes'], 'f2,f1,f3,f4,label');
    await refused(
      ['--test-data', swapped, '--num-classes', '2'],
      /s\.csv: its feature columns are f2, f1, f3, f4, the training data's are f1, f2, f3, f4; the test set must have the same columns/,
    );
    const wide = join(dir, 'wide.npz');
    writeFileSync(wide, zip({ 'x.npy': npy('<f4', [4, 5], new Float32Array(20)), 'y.npy': npy('<i8', [4], new BigInt64Array(4)) }, false));
    await refused(['--val-data', wide, '--num-classes', '2'], /wide\.npz: its samples are 5, the training data's are 4/);
    // the classes' own names, not their count, have to agree: numeric labels 0..2 against no/yes
    await refused(
      ['--val-data', npz(join(dir, 'three.npz'), 9, 3, 9), '--num-classes', '2'],
      /the validation set has classes 0, 1, 2, which the training data \(no, yes\) does not have/,
    );
    // an output onto an input
    const val = csv(join(dir, 'v.csv'), 20, 10);
    const before = readFileSync(val);
    const r = await runCli([
      'finetune',
      IRIS_MLP,
      '--data',
      train,
      '--val-data',
      val,
      '--num-classes',
      '2',
      '--log',
      val,
      '--threads',
      '1',
      '-o',
      join(dir, 'o.onnx'),
    ]);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(/v\.csv/);
    expect(readFileSync(val).equals(before)).toBe(true);
  });

  it('the three files count against one data size limit together', async () => {
    const train = npz(join(dir, 'big-train.npz'), 400, 3, 11);
    const val = npz(join(dir, 'big-val.npz'), 400, 3, 12);
    const args = (limit: string, more: string[]) => [
      'finetune',
      IRIS_MLP,
      '--data',
      train,
      ...more,
      '--max-data-size',
      limit,
      '--epochs',
      '1',
      '--max-steps',
      '1',
      '--threads',
      '1',
      '-o',
      join(dir, `lim-${more.length}.onnx`),
      '--force',
    ];
    // what loading the training file holds (its bytes, arrays and copies) fits; with the validation file's it does not
    const alone = await runCli(args('32K', []));
    expect(alone.code, alone.stderr).toBe(0);
    const both = await runCli(args('32K', ['--val-data', val]));
    expect(both.code).toBe(2);
    expect(errorLine(both)).toMatch(/big-val\.npz.*already loaded for this data set.*above the data size limit \(32 KiB\)/);
  });

  it("the splits' files are part of the run's identity: resuming with another --test-data is refused", async () => {
    const train = npz(join(dir, 'r-train.npz'), 60, 3, 13);
    const val = npz(join(dir, 'r-val.npz'), 20, 3, 14);
    const testA = npz(join(dir, 'r-a.npz'), 20, 3, 15);
    const testB = npz(join(dir, 'r-b.npz'), 20, 3, 16);
    const out = join(dir, 'r.onnx');
    const base = ['finetune', IRIS_MLP, '--data', train, '--val-data', val, '--threads', '1', '-o', out];
    const first = await runCli([...base, '--test-data', testA, '--epochs', '1']);
    expect(first.code, first.stderr).toBe(0);
    const again = await runCli([...base, '--test-data', testB, '--epochs', '2', '--resume', '--force']);
    expect(again.code).toBe(2);
    expect(errorLine(again)).toMatch(/data splits train=all:.*r-a\.npz, this run has .*r-b\.npz/);
    const same = await runCli([...base, '--test-data', testA, '--epochs', '2', '--resume', '--force']);
    expect(same.code, same.stderr).toBe(0);
  });

  it('so is a new head: resuming without it, or with another seed, says so', async () => {
    const train = csv(join(dir, 'h-train.csv'), 60, 17);
    const out = join(dir, 'h.onnx');
    const base = ['finetune', IRIS_MLP, '--data', train, '--threads', '1', '-o', out];
    const first = await runCli([...base, '--num-classes', '2', '--epochs', '1']);
    expect(first.code, first.stderr).toBe(0);
    const own = await runCli([...base, '--epochs', '2', '--resume', '--force']);
    expect(errorLine(own)).toMatch(/was made for another model .*: its run had a new head of 2 classes, this one has the model's own head/);
    const seed = await runCli([...base, '--num-classes', '2', '--seed', '5', '--epochs', '2', '--resume', '--force']);
    expect(errorLine(seed)).toMatch(/its new head was drawn with seed 0, this run's with seed 5/);
    const same = await runCli([...base, '--num-classes', '2', '--epochs', '2', '--resume', '--force']);
    expect(same.code, same.stderr).toBe(0);
  });
});

describe('--num-classes', () => {
  it('the shipped iris MLP gets a 2-class head and learns a 2-class CSV: loss goes down, accuracy far above chance', async () => {
    const train = csv(join(dir, 'two-train.csv'), 160, 21);
    const test = csv(join(dir, 'two-test.csv'), 60, 22);
    const out = join(dir, 'two.onnx');
    const r = await runCli([
      'finetune',
      IRIS_MLP,
      '--data',
      train,
      '--test-data',
      test,
      '--num-classes',
      '2',
      '--epochs',
      '8',
      '--lr',
      '0.01',
      '--batch-size',
      '16',
      '--seed',
      '3',
      '--threads',
      '1',
      '-o',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as FinetuneLog;
    expect(log.head).toMatchObject({
      form: 'Gemm',
      nodes: ['/fc2/Gemm'],
      weight: 'fc2.weight',
      bias: 'fc2.bias',
      oldClasses: 3,
      newClasses: 2,
      features: 16,
      bound: 0.25,
      seed: 3,
    });
    expect(log.data.classes).toBe(2);
    const losses = log.epochs.map((e) => e.trainLoss);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.8);
    // no validation set given: the best epoch is the lowest training loss
    expect(log.best).toMatchObject({ metric: 'train loss', value: Math.min(...losses) });
    const acc = await top1(out, test);
    expect(acc).toBe(log.test!.accuracy);
    expect(acc).toBeGreaterThan(0.8);
    // the written model declares its 2 classes and keeps the head's names
    const m = (await readModel(out)).model.graph!;
    expect(m.output![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || int(d.dimValue))).toEqual(['N', 2]);
    expect(m.initializer!.find((t) => t.name === 'fc2.weight')!.dims!.map(int)).toEqual([2, 16]);
  });

  it('same seed, same run: byte-identical models; another seed, another model', async () => {
    const train = csv(join(dir, 'd-train.csv'), 40, 23);
    const outs = [join(dir, 'd1.onnx'), join(dir, 'd2.onnx'), join(dir, 'd3.onnx')];
    for (const [i, out] of outs.entries()) {
      const r = await runCli([
        'finetune',
        IRIS_MLP,
        '--data',
        train,
        '--num-classes',
        '2',
        '--epochs',
        '1',
        '--seed',
        i === 2 ? '9' : '4',
        '--threads',
        '1',
        '-o',
        out,
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
    expect(readFileSync(outs[0]!).equals(readFileSync(outs[1]!))).toBe(true);
    expect(readFileSync(outs[0]!).equals(readFileSync(outs[2]!))).toBe(false);
  });

  it("refuses N < 2, N unlike the data's classes, regression data, and a model without a head", async () => {
    const train = csv(join(dir, 'n-train.csv'), 40, 24);
    const run = (model: string, more: string[]) =>
      runCli(['finetune', model, '--data', train, ...more, '--epochs', '1', '--threads', '1', '-o', join(dir, 'n.onnx')]);
    expect(errorLine(await run(IRIS_MLP, ['--num-classes', '1']))).toMatch(/--num-classes: expected an integer >= 2, found '1'/);
    expect(errorLine(await run(IRIS_MLP, ['--num-classes', '99999999999']))).toMatch(/--num-classes: 99999999999 is above 1048576/);
    expect(errorLine(await run(IRIS_MLP, ['--num-classes', '3']))).toMatch(
      /--num-classes: is 3, but the training data has 2 classes \(no, yes\); give --num-classes 2/,
    );
    const reg = join(dir, 'reg.csv');
    writeFileSync(reg, 'a,b,c,d,t\n' + Array.from({ length: 20 }, (_, i) => `${i},1,2,3,${i / 3}`).join('\n') + '\n');
    expect(
      errorLine(await runCli(['finetune', IRIS_MLP, '--data', reg, '--task', 'regression', '--num-classes', '2', '--threads', '1', '-o', join(dir, 'n.onnx')])),
    ).toMatch(/--num-classes: replaces a classifier head, but the data is regression/);
    const noHead = await run(fixture('onnx-onnx/node/test_relu/model.onnx'), ['--num-classes', '2']);
    expect(errorLine(noHead)).toMatch(/model\.onnx: no recognisable classifier head: 'y' comes from Relu/);
    expect(existsSync(join(dir, 'n.onnx'))).toBe(false);
  });
});
