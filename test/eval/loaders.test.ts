/**
 * The same samples through different user-file loaders must score the same: 30 MNIST digits as PNG
 * files in an image folder and as x.npy/y.npy (exactly equal metrics), and the 150 iris rows as a CSV
 * with species names (the 98.00% of the built-in set).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadData } from '../../src/data/index.js';
import { IRIS_CLASSES } from '../../src/data/iris.js';
import { encodeNpy } from '../../src/data/npy.js';
import type { Dataset } from '../../src/data/types.js';
import { evaluate } from '../../src/eval/evaluate.js';
import type { EvalReport, RunOk } from '../../src/eval/types.js';
import { fixture } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'alrelu-loaders-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function metrics(r: EvalReport) {
  const run = r.results[0] as RunOk;
  expect(run.ok, JSON.stringify(run)).toBe(true);
  if (run.metrics.task !== 'classification') throw new Error('expected classification');
  return run.metrics;
}

describe('user files through evaluate', () => {
  it('30 digits as PNGs and as .npy give identical mnist-8 results', async () => {
    const all = (await loadData('mnist')) as Dataset;
    // 3 digits per class, pixels quantised to 8 bits so that PNG holds them exactly
    const rows: number[] = [];
    for (let d = 0; d < 10; d++) {
      const first = all.y.indexOf(d); // the full set is ordered by class, ~1,000 of each
      rows.push(first, first + 100, first + 200);
    }
    const x = new Float32Array(rows.length * 784);
    const imgDir = join(tmp, 'digits');
    rows.forEach((r, i) => {
      const png = new PNG({ width: 28, height: 28 });
      for (let p = 0; p < 784; p++) {
        const v = Math.round(all.x[r * 784 + p]! * 255);
        x[i * 784 + p] = v / 255;
        png.data.set([v, v, v, 255], p * 4);
      }
      mkdirSync(join(imgDir, String(all.y[r])), { recursive: true });
      writeFileSync(join(imgDir, String(all.y[r]), `${r}.png`), PNG.sync.write(png));
    });
    const npyDir = join(tmp, 'npy');
    mkdirSync(npyDir);
    writeFileSync(join(npyDir, 'x.npy'), encodeNpy('<f4', [rows.length, 1, 28, 28], x));
    writeFileSync(
      join(npyDir, 'y.npy'),
      encodeNpy(
        '<i4',
        [rows.length],
        Int32Array.from(rows, (r) => all.y[r]!),
      ),
    );

    const opts = { models: [fixture('onnx2c/mnist/model.onnx')], eps: ['cpu' as const], preprocess: { scale: 255 } };
    const fromPng = metrics(await evaluate({ ...opts, data: imgDir, dataOptions: { channels: 'gray' } }));
    const fromNpy = metrics(await evaluate({ ...opts, data: npyDir }));
    expect(fromPng.count).toBe(30);
    expect(fromPng.confusion).toEqual(fromNpy.confusion);
    expect(fromPng.loss).toBeCloseTo(fromNpy.loss, 4);
    expect(fromPng.top1).toBe(fromNpy.top1);
    expect(fromPng.top1).toBeGreaterThanOrEqual(0.9);
  });

  it('iris as a CSV with species names: classes sorted by name, 98.00% as on the built-in set', async () => {
    const iris = (await loadData('iris')) as Dataset;
    const lines = ['sepal_length,sepal_width,petal_length,petal_width,species'];
    for (let i = 0; i < iris.count; i++)
      lines.push([...iris.x.subarray(i * 4, i * 4 + 4)].map((v) => +v.toFixed(1)).join(',') + ',' + IRIS_CLASSES[iris.y[i]!]);
    const csv = join(tmp, 'iris.csv');
    writeFileSync(csv, lines.join('\n') + '\n');
    const m = metrics(
      await evaluate({ models: [fixture('windows-ml/iris_mlp/Network.onnx')], data: csv, eps: ['cpu'], dataOptions: { labelColumn: 'species' } }),
    );
    expect(m.count).toBe(150);
    expect(m.top1).toBeCloseTo(147 / 150, 10);
  });
});
